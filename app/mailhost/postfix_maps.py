"""Postfix's routing tables as local cdb maps, written from the mail views by the mail-host sync.

Postfix used to ask PostgreSQL for these through `proxy:pgsql` tables, several times per message: each
message's distinct VERP sender defeats Postfix's caches, so every message cost about 21 queries. Now the
sync (app/mailhost/dkim_sync.py) renders them from `mail_bounce_domains` and `mail_sender_logins` when
`NOTIFY mail_routes_changed` wakes it and on every poll, and swaps in each map whose content changed:
postmap builds a pending cdb beside the live one, which a rename replaces. An smtpd notices a replaced
table before its next connection, but trivial-rewrite, which answers relay_domains and the transports for
every other daemon over long-lived connections, looks only every 10 s: until then port 25 would refuse a
new return-path domain, and mail from a domain just set to enforced TLS would leave without it. So after
swapping in one of those maps the sync rewrites the stamp `swapped`, whose change has systemd reload
Postfix (roles/postfix.py). While PostgreSQL is
down Postfix keeps the maps written last.

Keys follow Postfix's lookup of each parameter: relay_domains and transport_maps look up the recipient's
domain; smtpd_sender_login_maps and sender_dependent_default_transport_maps look up the sender's full address,
then `@domain`, and every address of a domain shares its entry, so those keys are `@domain`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

__all__ = ["BOUNCE_DOMAINS", "BOUNCE_TRANSPORT", "DIRECTORY_MODE", "MAP_MODE", "MAP_NAMES", "MAP_PARAMETERS",
           "NOTIFY_CHANNEL", "RECEIVE_TRANSPORT_NEXTHOP",
           "RELOADED_FOR", "SENDER_LOGINS", "SOURCE_MODE", "SWAP_STAMP",
           "SENDER_TLS_TRANSPORT", "STALE_PENDING_SECONDS", "BounceDomain", "MapDirectory", "SenderLogin",
           "postmap_cdb", "remove_stale_pending", "render_maps", "write_maps"]

log = logging.getLogger("postyard.postfix_maps")
NOTIFY_CHANNEL = "mail_routes_changed"

# Map names (file names in the map directory; Postfix opens `cdb:<directory>/<name>`).
# relay_domains: the return-path domains, and the verified domains that receive mail, accepted on port 25
BOUNCE_DOMAINS = "bounce_domains"
# transport_maps: mail to a return-path domain goes to the app's bounce pipe, to a receiving domain to its
# receive pipe
BOUNCE_TRANSPORT = "bounce_transport"
SENDER_LOGINS = "sender_logins"  # smtpd_sender_login_maps: the SMTP logins that may use a sender domain
SENDER_TLS_TRANSPORT = "sender_tls_transport"  # sender_dependent_default_transport_maps: enforced TLS
# The Postfix parameter each map is named in (roles/postfix.py renders them into main.cf).
MAP_PARAMETERS: dict[str, str] = {
    "relay_domains": BOUNCE_DOMAINS,
    "transport_maps": BOUNCE_TRANSPORT,
    "smtpd_sender_login_maps": SENDER_LOGINS,
    "sender_dependent_default_transport_maps": SENDER_TLS_TRANSPORT,
}
MAP_NAMES = tuple(MAP_PARAMETERS.values())

BOUNCE_TRANSPORT_NEXTHOP = "postyard-bounce:"
RECEIVE_TRANSPORT_NEXTHOP = "postyard-receive:"
ENFORCED_TLS_TRANSPORT = "postyard-enforced:"
# Postfix's daemons open their tables as root, before they drop privileges; the maps hold the teams' SMTP
# login names and domains, so no other user reads them.
MAP_MODE = 0o640
SOURCE_MODE = 0o600  # read by the sync and postmap alone
# A pending file this old is a dead writer's: postmap itself is given 60 s.
STALE_PENDING_SECONDS = 600
DIRECTORY_MODE = 0o750
# Rewritten after a swap of a map trivial-rewrite reads; its change has Postfix reload (a systemd path unit
# watches it). smtpd, which alone reads sender_logins, opens a replaced map before its next connection.
SWAP_STAMP = "swapped"
RELOADED_FOR = (BOUNCE_DOMAINS, BOUNCE_TRANSPORT, SENDER_TLS_TRANSPORT)

BOUNCE_QUERY = "SELECT bounce_domain, domain, tls_mode FROM mail_bounce_domains"
LOGIN_QUERY = "SELECT sender_domain, username FROM mail_sender_logins"
RECEIVING_QUERY = "SELECT domain FROM mail_receiving_domains"


@dataclass(frozen=True)
class BounceDomain:
    """A verified sending domain, its return-path (bounce) domain and its outbound TLS mode."""

    bounce_domain: str
    domain: str
    tls_mode: str


@dataclass(frozen=True)
class SenderLogin:
    sender_domain: str
    username: str


def _table(entries: dict[str, str]) -> str:
    """postmap's source format, sorted so that the same rows always give the same bytes."""
    return "".join(f"{key} {value}\n" for key, value in sorted(entries.items()))


def render_maps(bounce_domains: Iterable[BounceDomain], sender_logins: Iterable[SenderLogin],
                receiving_domains: Iterable[str] = ()) -> dict[str, str]:
    """Every map's source text, by map name."""
    domains = list(bounce_domains)
    receiving = {name.lower() for name in receiving_domains}
    logins: dict[str, set[str]] = {}
    for login in sender_logins:
        logins.setdefault(f"@{login.sender_domain.lower()}", set()).add(login.username)
    enforced = {f"@{name.lower()}": ENFORCED_TLS_TRANSPORT
                for d in domains if d.tls_mode == "enforced" for name in (d.domain, d.bounce_domain)}
    return {
        BOUNCE_DOMAINS: _table({**{name: name for name in receiving},
                                **{d.bounce_domain.lower(): d.domain.lower() for d in domains}}),
        BOUNCE_TRANSPORT: _table({**{name: RECEIVE_TRANSPORT_NEXTHOP for name in receiving},
                                  **{d.bounce_domain.lower(): BOUNCE_TRANSPORT_NEXTHOP for d in domains}}),
        SENDER_LOGINS: _table({key: ",".join(sorted(names)) for key, names in logins.items()}),
        SENDER_TLS_TRANSPORT: _table(enforced),
    }


def postmap_cdb(source: Path) -> None:
    """Build <source>.cdb from the text file source."""
    subprocess.run(["postmap", f"cdb:{source}"], check=True, capture_output=True, timeout=60)


def _write_text(path: Path, text: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SOURCE_MODE)
    with os.fdopen(descriptor, "w") as handle:
        os.fchmod(handle.fileno(), SOURCE_MODE)
        handle.write(text)


def _is_current(directory: Path, name: str, text: str) -> bool:
    source = directory / name
    return (directory / f"{name}.cdb").is_file() and source.is_file() and source.read_text() == text


def remove_stale_pending(directory: Path, older_than: float = STALE_PENDING_SECONDS) -> list[str]:
    """Remove what a writer that died mid-swap left (its pending source, cdb or postmap's temporary file);
    a writer still at work is far younger. The names removed."""
    removed = []
    cutoff = time.time() - older_than
    for leftover in directory.glob(".*.pending-*"):
        with contextlib.suppress(FileNotFoundError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                removed.append(leftover.name)
    return removed


def _swap_in(directory: Path, name: str, text: str, index: Callable[[Path], None]) -> None:
    pending = directory / f".{name}.pending-{os.getpid()}"  # the service and a deploy's round may overlap
    pending_cdb = pending.with_name(pending.name + ".cdb")
    try:
        _write_text(pending, text)
        index(pending)
        os.chmod(pending_cdb, MAP_MODE)
        os.rename(pending_cdb, directory / f"{name}.cdb")
        # The source last: it only ever names the content of the cdb in place.
        os.rename(pending, directory / name)
    finally:
        for leftover in (pending, pending_cdb):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def write_maps(maps: dict[str, str], directory: Path, index: Callable[[Path], None] = postmap_cdb) -> list[str]:
    """Swap in every map whose text differs from the one in place; the names of those written."""
    remove_stale_pending(directory)
    written: list[str] = []
    try:
        for name, text in maps.items():
            if _is_current(directory, name, text):
                continue
            _swap_in(directory, name, text, index)
            written.append(name)
    finally:
        # Also when a later map failed: those swapped in are live.
        if reloaded := [name for name in written if name in RELOADED_FOR]:
            # In place, not replaced: one close after writing is the change the path unit waits for.
            (directory / SWAP_STAMP).write_text(f"{time.time():.3f} {' '.join(reloaded)}\n")
    return written


@dataclass(frozen=True)
class MapDirectory:
    """Where the sync keeps Postfix's maps, and how it indexes one (postmap, or a stand-in in tests)."""

    path: Path
    index: Callable[[Path], None] = field(default=postmap_cdb)

    async def sync(self, connection: asyncpg.Connection) -> list[str] | None:
        """Read the views and swap in the maps that changed; the names of those written, or None when one
        could not be written: that is logged, the map left as it was, and the sync tries again within seconds."""
        domains = [BounceDomain(r["bounce_domain"], r["domain"], r["tls_mode"])
                   for r in await connection.fetch(BOUNCE_QUERY)]
        logins = [SenderLogin(r["sender_domain"], r["username"]) for r in await connection.fetch(LOGIN_QUERY)]
        receiving = [r["domain"] for r in await connection.fetch(RECEIVING_QUERY)]
        maps = render_maps(domains, logins, receiving)
        try:
            written = await asyncio.to_thread(write_maps, maps, self.path, self.index)
        except (OSError, subprocess.SubprocessError) as error:
            detail = getattr(error, "stderr", b"") or b""
            log.error("Postfix maps not written (%s): %s", type(error).__name__,
                      detail.decode(errors="replace").strip() or error)
            return None
        if written:
            log.info("Postfix maps written: %s (%d bounce domain(s), %d sender domain(s))", ", ".join(written),
                     len(domains), len({login.sender_domain for login in logins}))
        return written
