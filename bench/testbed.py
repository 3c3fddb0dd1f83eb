"""Benchmark: how long the testbed and the deploy take, each against a baseline from the same run.

    .venv/bin/python bench/testbed.py [--from-nothing]

Figures: root filesystem from nothing (debootstrap, with --from-nothing) against one host from the
cache; fresh deploy against the no-op redeploy that follows it; teardown. Its figures replace its
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import command_line, markdown_table, write_section  # noqa: E402
from postyard.deployer import REPO, run_deploy  # noqa: E402
from postyard.testbed import bed, rootfs  # noqa: E402
from postyard.testbed.state import CACHE_ROOT  # noqa: E402

NAME = "bench"


def timed(action) -> tuple[float, object]:
    started = time.monotonic()
    result = action()
    return time.monotonic() - started, result


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--from-nothing", action="store_true", help="also time debootstrap into an empty cache")
    args = options.parse_args()
    quiet = lambda _line: None  # noqa: E731
    figures: list[tuple[str, float]] = []

    if args.from_nothing:
        with tempfile.TemporaryDirectory(dir=CACHE_ROOT.parent) as empty_cache:
            seconds, _ = timed(lambda: rootfs.ensure_cached_rootfs(Path(empty_cache), log=quiet))
        figures.append(("root filesystem from nothing (debootstrap)", seconds))

    bed.down(NAME, log=quiet)
    seconds, _ = timed(lambda: bed.up(NAME, "single", log=quiet))
    figures.append(("one host from the cache, booted to sshd", seconds))
    inventory, env = REPO / "inventory" / "testbed.py", {"POSTYARD_TESTBED": NAME}
    try:
        fresh = run_deploy(inventory, env=env, echo=False)
        noop = run_deploy(inventory, env=env, echo=False)
    finally:
        seconds, _ = timed(lambda: bed.down(NAME, log=quiet))
    figures += [
        (f"fresh deploy ({fresh.changed} of {fresh.operations} operations changed)", fresh.seconds),
        (f"no-op redeploy ({noop.changed} of {noop.operations} operations changed)", noop.seconds),
        ("teardown", seconds),
    ]
    width = max(len(label) for label, _ in figures)
    for label, value in figures:
        print(f"{label:<{width}}  {value:7.1f} s")
    baselines = {"no-op redeploy": f"{noop.seconds / fresh.seconds:.2f} of the fresh deploy"}
    print(f"no-op redeploy / fresh deploy: {noop.seconds / fresh.seconds:.2f}")
    if args.from_nothing:
        print(f"host from cache / from nothing: {figures[1][1] / figures[0][1]:.3f}")
        baselines["one host from the cache"] = f"{figures[1][1] / figures[0][1]:.3f} of from nothing"
    rows = [[label, f"{value:.1f} s", next((b for k, b in baselines.items() if label.startswith(k)), "")]
            for label, value in figures]
    write_section("testbed", f"{command_line()}\n\n" + markdown_table(["step", "time", "baseline"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
