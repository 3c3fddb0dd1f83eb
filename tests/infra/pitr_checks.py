"""Reading pgBackRest on a host: its commands as postgres, and the first bytes of each repository file."""

from __future__ import annotations

from roles.pgbackrest import DEFAULTS, STANZA

__all__ = ["ENCRYPTED_HEADER", "REPOSITORY", "pgbackrest", "repository_heads"]

REPOSITORY = DEFAULTS["pitr_repository"]
# pgBackRest's aes-256-cbc files carry OpenSSL's header.
ENCRYPTED_HEADER = "Salted__"


def pgbackrest(host, *arguments: str) -> str:
    return host.check_output("runuser -u postgres -- pgbackrest --stanza=%s " + " ".join(["%s"] * len(arguments)),
                             STANZA, *arguments)


def repository_heads(host) -> set[str]:
    """The first bytes of every archive and backup file: only the encrypted header where all are encrypted."""
    heads = host.check_output(
        f"find {REPOSITORY}/archive {REPOSITORY}/backup -type f -exec head -c {len(ENCRYPTED_HEADER)} {{}} \\; "
        "-exec echo \\;").splitlines()
    assert heads, f"no file in {REPOSITORY}"
    return set(heads)
