"""The API's server process: granian's command line, run after the app's modules are imported.

granian forks its workers from this process, so they share the imported modules' pages (about 60 MiB)
instead of each loading its own copy. The app itself is still built in each worker (`--factory`)."""

from __future__ import annotations

import gc

from granian.cli import entrypoint

import app.asgi  # noqa: F401 - imported for its pages, before granian forks

__all__ = ["main"]


def main() -> None:
    gc.collect()
    gc.freeze()  # the collector would otherwise write to the shared objects and unshare their pages
    entrypoint()


if __name__ == "__main__":
    main()
