"""Mail-host sync: writes the signing keys OpenDKIM reads, from the `mail_dkim_keys` view, and Postfix's
routing maps (app/mailhost/postfix_maps.py).

The view holds the keys of verified domain entries only. Several teams may add the same domain name,
but at most one entry per name is verified, so each domain has the keys of exactly one team and a
team's unverified entry never signs mail (see docs/domains.md).

Runs on every mail host as the `opendkim` user. Private keys arrive AES-256-GCM encrypted
(app/lib/crypto.py); the plaintext exists only in the key directory, mode 0600. Every change is
written to a fresh directory and swapped in with one rename, so OpenDKIM never reads a half-written
set; it is then told to reload (SIGUSR1), which Postfix does not notice. The service wakes on
`NOTIFY mail_dkim_keys_changed` or `mail_routes_changed`, syncs both, and also re-reads every
`poll_seconds`, so a missed notification costs at most one interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from app.config import Settings
from app.db.connections import connect
from app.lib.crypto import Keyring, dkim_associated_data
from app.mailhost import postfix_maps
from app.mailhost.postfix_maps import MapDirectory

__all__ = ["ALGORITHMS", "SigningKey", "fetch_keys", "main", "render_key_table", "render_signing_table",
           "render_tables", "run", "run_once", "sync_once", "write_key_set"]

log = logging.getLogger("postyard.dkim_sync")
NOTIFY_CHANNEL = "mail_dkim_keys_changed"
RECONNECT_SECONDS = 5.0
# After a key set or a map could not be written.
RETRY_SECONDS = 5.0
# Refused, timed out, lost, or the server shutting down or starting up (SQLSTATE classes 08 and 57).
_UNREACHABLE = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                asyncpg.exceptions.OperatorInterventionError)
QUERY = (
    "SELECT domain, selector, algorithm, key_id, private_key_ciphertext "
    "FROM mail_dkim_keys WHERE active ORDER BY domain, selector"
)


@dataclass(frozen=True)
class SigningKey:
    domain: str
    selector: str
    algorithm: str
    private_key_pem: bytes

    @property
    def file_name(self) -> str:
        return f"{self.domain}.{self.selector}.private"

    @property
    def record(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


def render_key_table(keys: Iterable[SigningKey], directory: Path) -> str:
    """KeyTable: one line per key, `record domain:selector:path`."""
    return "".join(f"{k.record} {k.domain}:{k.selector}:{directory / k.file_name}\n" for k in keys)


def render_signing_table(keys: Iterable[SigningKey]) -> str:
    """SigningTable (a plain table, looked up by the From domain): each domain's first key."""
    first: dict[str, SigningKey] = {}
    for key in keys:
        first.setdefault(key.domain, key)
    return "".join(f"{k.domain} {k.record}\n" for k in first.values())


# OpenDKIM 2.11 signs with one algorithm per instance, so each algorithm has its own instance and
# its own pair of tables: KeyTable/SigningTable (RSA), KeyTable.ed25519/SigningTable.ed25519.
ALGORITHMS: dict[str, str] = {"rsa-sha256": "", "ed25519-sha256": ".ed25519"}


def render_tables(keys: list[SigningKey], directory: Path) -> dict[str, bytes]:
    """Every table file, by name: one pair per algorithm, empty where the algorithm has no key."""
    tables = {}
    for algorithm, suffix in ALGORITHMS.items():
        chosen = [k for k in keys if k.algorithm == algorithm]
        tables[f"KeyTable{suffix}"] = render_key_table(chosen, directory).encode()
        tables[f"SigningTable{suffix}"] = render_signing_table(chosen).encode()
    return tables


async def fetch_keys(connection: asyncpg.Connection, keyring: Keyring) -> list[SigningKey]:
    """The active keys, decrypted; a key that cannot be decrypted is skipped and logged."""
    keys = []
    for row in await connection.fetch(QUERY):
        try:
            pem = keyring.decrypt(
                row["key_id"], bytes(row["private_key_ciphertext"]),
                dkim_associated_data(row["domain"], row["selector"]),
            )
        except Exception as error:  # noqa: BLE001 - a wrong data key must not stop signing for every other domain
            log.error("cannot decrypt the DKIM key %s/%s: %s", row["domain"], row["selector"], type(error).__name__)
            continue
        keys.append(SigningKey(row["domain"], row["selector"], row["algorithm"], pem))
    return keys


def _write_private(path: Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


def write_key_set(keys: list[SigningKey], root: Path) -> bool:
    """Make root/current hold exactly these keys and tables; False when it already did."""
    current = root / "current"
    wanted = {k.file_name: k.private_key_pem for k in keys}
    tables = render_tables(keys, current)
    if current.is_dir() and _holds(current, {**wanted, **tables}):
        return False
    staging = root / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700, parents=True)
    for name, content in {**wanted, **tables}.items():
        _write_private(staging / name, content)
    previous = root / f".previous-{os.getpid()}"
    if current.exists():
        os.rename(current, previous)
    os.rename(staging, current)
    shutil.rmtree(previous, ignore_errors=True)
    return True


def _holds(directory: Path, files: dict[str, bytes]) -> bool:
    present = {p.name for p in directory.iterdir()}
    return present == set(files) and all((directory / n).read_bytes() == c for n, c in files.items())


def reload_opendkim(pid_files: Iterable[Path]) -> None:
    for pid_file in pid_files:
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGUSR1)
        except (FileNotFoundError, ValueError, ProcessLookupError) as error:
            log.warning("OpenDKIM (%s) not reloaded (%s); it reads the new keys when it starts", pid_file,
                        type(error).__name__)


async def sync_once(connection: asyncpg.Connection, keyring: Keyring, root: Path,
                    pid_file: Iterable[Path] | None) -> bool | None:
    """Write the key set if it changed (and reload OpenDKIM): whether it changed, or None when it could not be
    written (logged; the set in place stays in use)."""
    keys = await fetch_keys(connection, keyring)
    try:
        changed = write_key_set(keys, root)
    except OSError as error:  # a full or read-only disk: the keys in place stay in use, the maps still sync
        log.error("DKIM keys not written (%s: %s); tried again within %s s", type(error).__name__, error,
                  RETRY_SECONDS)
        return None
    if changed:
        log.info("DKIM keys written: %d key(s) for %d domain(s)", len(keys), len({k.domain for k in keys}))
        if pid_file is not None:
            reload_opendkim(pid_file)
    return changed


async def _serve(connection: asyncpg.Connection, keyring: Keyring, root: Path, pid_file: Iterable[Path] | None,
                 poll_seconds: float, maps: MapDirectory | None) -> None:
    woken = asyncio.Event()
    connection.add_termination_listener(lambda *_: woken.set())  # a lost connection fails the next sync
    for channel in (NOTIFY_CHANNEL, postfix_maps.NOTIFY_CHANNEL):
        await connection.add_listener(channel, lambda *_: woken.set())
    while True:
        woken.clear()  # a change committed from here on wakes the next round
        written = await sync_once(connection, keyring, root, pid_file) is not None
        if maps is not None:
            written = await maps.sync(connection) is not None and written
        try:  # what could not be written is tried again soon, not on the next change or poll
            await asyncio.wait_for(woken.wait(), timeout=poll_seconds if written else RETRY_SECONDS)
        except TimeoutError:
            pass


async def run(dsn: str, keyring: Keyring, root: Path, pid_file: Iterable[Path] | None,
              poll_seconds: float = 60, settings: Settings | None = None, maps: MapDirectory | None = None) -> None:
    """Sync now, then on every notification and every poll_seconds, until cancelled; while the database is
    unreachable, connect again every RECONNECT_SECONDS (the keys and maps written last stay in use)."""
    bounds = settings or Settings()
    while True:
        try:
            connection = await connect(dsn, bounds, "postyard-dkim-sync")
        except _UNREACHABLE as error:
            log.warning("database unreachable (%s); connecting again in %s s", type(error).__name__,
                        RECONNECT_SECONDS)
            await asyncio.sleep(RECONNECT_SECONDS)
            continue
        try:
            await _serve(connection, keyring, root, pid_file, poll_seconds, maps)
        except _UNREACHABLE as error:
            log.warning("database connection lost (%s); connecting again", type(error).__name__)
        finally:
            with contextlib.suppress(Exception):  # a lost connection is simply dropped
                await connection.close(timeout=bounds.database_connect_timeout)


async def run_once(dsn: str, keyring: Keyring, root: Path, pid_file: Iterable[Path] | None, settings: Settings,
                   maps: MapDirectory | None) -> bool:
    """One round, as the deploy runs it before Postfix first reads the maps; False when the keys or a map were
    not written."""
    connection = await connect(dsn, settings, "postyard-dkim-sync")
    try:
        keys_written = await sync_once(connection, keyring, root, pid_file) is not None
        return keys_written and (maps is None or await maps.sync(connection) is not None)
    finally:
        await connection.close(timeout=settings.database_connect_timeout)


def main(settings: Settings, once: bool = False) -> int:
    """Run the service on `dkim_database_url` (the postyard_mail role) until stopped, or one round with once;
    with `postfix_maps_dir` set, it writes Postfix's maps there too."""
    if not settings.dkim_database_url:
        raise SystemExit("POSTYARD_DKIM_DATABASE_URL is not set")
    keyring = Keyring(settings.data_keys, settings.active_data_key_id)
    pid_files = [Path(p) for p in settings.opendkim_pid.split(",") if p]
    maps = MapDirectory(Path(settings.postfix_maps_dir)) if settings.postfix_maps_dir else None
    if once:
        written = asyncio.run(run_once(settings.dkim_database_url, keyring, Path(settings.dkim_dir), pid_files,
                                       settings, maps))
        return 0 if written else 1
    asyncio.run(run(settings.dkim_database_url, keyring, Path(settings.dkim_dir), pid_files,
                    settings.dkim_poll_seconds, settings, maps))
    return 0
