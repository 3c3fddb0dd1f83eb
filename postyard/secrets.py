"""Generated secrets of one inventory: created once on the control machine, reused on every run.

They live outside the repository, one file per secret, mode 0600 in a 0700 directory, and are
never printed. Deleting a file makes the next deploy generate and apply a new value (rotation).
"""

from __future__ import annotations

import os
import secrets as random
from collections.abc import Callable
from pathlib import Path

__all__ = ["Secret", "SecretStore", "random_password"]


class Secret(str):
    """A secret string whose repr hides it (tracebacks and test reports print reprs)."""

    def __repr__(self) -> str:
        return "Secret('***')"


def random_password() -> str:
    """256 bits, URL-safe: fits in connection strings and config files without quoting."""
    return random.token_urlsafe(32)


class SecretStore:
    """A directory of secrets for one inventory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"invalid secret name {name!r}")
        return self.directory / name

    def get(self, name: str, generate: Callable[[], str] = random_password) -> Secret:
        """The secret called name, generated and stored on first use."""
        return Secret(self.get_bytes(name, lambda: generate().encode()).decode())

    def get_bytes(self, name: str, generate: Callable[[], bytes]) -> bytes:
        path = self.path(name)
        if path.exists():
            return path.read_bytes()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        value = generate()
        partial = path.with_name(f".{name}.partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(value)
        try:
            os.link(partial, path)  # never replaces a value another process stored first
        except FileExistsError:
            pass
        finally:
            partial.unlink()
        return path.read_bytes()
