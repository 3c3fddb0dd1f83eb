"""The operators' status checks: what the API host can tell by itself, and each host's own report (host_checks),
each ok, warning or error with a reason, each bounded in time so that a slow dependency cannot hold the page."""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import anyio
from alembic.script import ScriptDirectory
from cryptography import x509
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.migrate import alembic_config
from app.domain.operators.host_checks import host_status
from app.domain.operators.status_checks import ERROR, OK, UNKNOWN, WARNING, Check, HostStatus, days_left
from app.host_layout import API_CERTIFICATE

__all__ = ["CHECK_TIMEOUT", "SystemStatus", "run_checks"]

CHECK_TIMEOUT = 2.0  # seconds any one check may take
# A live log follower records its position at least every few seconds, even with nothing to read.
FOLLOWER_STALE = timedelta(minutes=5)
_PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # PostgreSQL's SSLRequest message


@dataclass(frozen=True)
class SystemStatus:
    """The API host's own checks, then every host's from its last report."""

    checks: list[Check]
    hosts: list[HostStatus]

    @property
    def all_checks(self) -> list[Check]:
        return self.checks + [check for host in self.hosts for check in host.checks]


async def _bounded(name: str, check: Callable[[], Awaitable[list[Check]]]) -> list[Check]:
    """`check`'s results, or an error when it takes longer than CHECK_TIMEOUT or fails."""
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return [Check(name, ERROR, f"no answer within {CHECK_TIMEOUT:g} s")]
    except Exception as exc:  # noqa: BLE001 - any failure is what the check reports
        return [Check(name, ERROR, f"check failed: {type(exc).__name__}")]


def _certificate_file(name: str, path: str, now: datetime) -> Check:
    """Days left on the first certificate of a PEM file (a chain starts with the leaf)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return Check(name, UNKNOWN, f"{path} is not readable here ({exc.strerror or type(exc).__name__})")
    return days_left(name, x509.load_pem_x509_certificate(data).not_valid_after_utc, now)


async def _file_certificates(now: datetime) -> list[Check]:
    ca = os.environ.get("PGSSLROOTCERT")
    checks = [await anyio.to_thread.run_sync(_certificate_file, "API certificate", API_CERTIFICATE, now)]
    if ca:
        checks.append(await anyio.to_thread.run_sync(_certificate_file, "Internal CA", ca, now))
    else:
        checks.append(Check("Internal CA", UNKNOWN, "PGSSLROOTCERT is not set: no internal CA on this host"))
    return checks


async def _postgres_certificate(database_url: str, now: datetime) -> list[Check]:
    """The certificate PostgreSQL presents, read by a TLS handshake of our own (nothing verified, nothing sent)."""
    name = "PostgreSQL certificate"
    url = make_url(database_url)
    if url.host is None:
        return [Check(name, UNKNOWN, "the database is reached over a Unix socket, without TLS")]
    reader, writer = await asyncio.open_connection(url.host, url.port or 5432)
    try:
        writer.write(_PG_SSL_REQUEST)
        await writer.drain()
        if await reader.readexactly(1) != b"S":
            return [Check(name, UNKNOWN, "PostgreSQL offers no TLS on this connection")]
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        await writer.start_tls(context, server_hostname=url.host)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return [days_left(name, x509.load_der_x509_certificate(der).not_valid_after_utc, now)]


@cache
def _code_head() -> str:
    return ",".join(sorted(ScriptDirectory.from_config(alembic_config("")).get_heads()))


async def _database(db: AsyncSession) -> list[Check]:
    """The database answers; its version and schema revision against this release's."""
    async with db.begin_nested():
        version = (await db.execute(text("SELECT current_setting('server_version')"))).scalar_one()
    database = Check("Database", OK, f"PostgreSQL {version} answers")
    try:
        async with db.begin_nested():
            revision = (await db.execute(text("SELECT postyard_schema_revision()"))).scalar_one()
    except Exception:  # noqa: BLE001 - a schema without the function is older than this release
        return [database, Check("Schema", WARNING, f"older than this release's revision {_code_head()}")]
    head = await anyio.to_thread.run_sync(_code_head)
    if revision != head:
        return [database, Check("Schema", WARNING, f"at revision {revision}; this release expects {head}")]
    return [database, Check("Schema", OK, f"at revision {revision}, this release's")]


async def _mail_queue(db: AsyncSession, now: datetime) -> list[Check]:
    """Per mail host: the emails waiting and being sent, and whether its log follower still records."""
    async with db.begin_nested():
        rows = (await db.execute(text("SELECT * FROM postyard_mail_queue()"))).mappings().all()
    if not rows:
        return [Check("Mail queue", OK, "empty; no mail host's log follower has recorded yet")]
    checks = []
    for row in rows:
        counts = f"{row['queued']} queued, {row['sending']} sending"
        if row["outcome_unknown"]:
            counts += f" ({row['outcome_unknown']} waiting for the host's log)"
        if row["mail_host"] is None:
            checks.append(Check("Mail queue: not yet on a mail host", OK, counts))
            continue
        name = f"Mail queue: {row['mail_host']}"
        if row["updated_at"] is None:
            checks.append(Check(name, WARNING, f"{counts}; its log follower has never recorded"))
        elif now - row["updated_at"] > FOLLOWER_STALE:
            ago = int((now - row["updated_at"]).total_seconds() // 60)
            checks.append(Check(name, ERROR, f"{counts}; its log follower stopped recording {ago} minutes ago"))
        else:
            checks.append(Check(name, OK, f"{counts}; log read through {row['logged_through']:%Y-%m-%d %H:%M:%S} UTC"))
    return checks


async def _redis(redis: Redis) -> list[Check]:
    try:
        await asyncio.wait_for(redis.ping(), CHECK_TIMEOUT / 2)
    except Exception:  # noqa: BLE001 - any failure means it does not answer
        return [Check("Redis", WARNING, "does not answer: degraded, rate limits are kept in each API worker")]
    return [Check("Redis", OK, "answers")]


async def _release() -> list[Check]:
    release = os.environ.get("POSTYARD_RELEASE")
    if not release:
        return [Check("Release", UNKNOWN, "POSTYARD_RELEASE is not set: not started by its systemd unit")]
    return [Check("Release", OK, f"{release} deployed")]


async def _host_reports(db: AsyncSession, now: datetime) -> tuple[list[Check], list[HostStatus]]:
    """Each host's status from its last report (operators only, `postyard_host_reports()`)."""
    async with db.begin_nested():
        rows = (await db.execute(text("SELECT * FROM postyard_host_reports()"))).mappings().all()
    if not rows:
        return [Check("Host reports", WARNING, "no host has reported yet: each host's postyard-host-report.service "
                                                "reports every minute once deployed")], []
    # The release most hosts run: a host on another missed a deploy, or is ahead of the others.
    releases = Counter(row["report"].get("release") for row in rows if row["report"].get("release"))
    usual = releases.most_common(1)[0][0] if releases else None
    hosts = [host_status(row["host_name"], str(row["address"]), row["report"], row["reported_at"], now, usual)
             for row in rows]
    reported = "1 host has" if len(hosts) == 1 else f"{len(hosts)} hosts have"
    return [Check("Host reports", OK, f"{reported} reported")], hosts


async def run_checks(db: AsyncSession, redis: Redis, database_url: str) -> SystemStatus:
    """Every check: the database's (one at a time, on the request's transaction, each in a savepoint under a
    statement timeout) and the others at once."""
    now = datetime.now(UTC)
    await db.execute(text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(int(CHECK_TIMEOUT * 1000))})
    checks = [*await _bounded("Database", lambda: _database(db)),
              *await _bounded("Mail queue", lambda: _mail_queue(db, now))]
    try:
        reported, hosts = await asyncio.wait_for(_host_reports(db, now), CHECK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any failure is what the check reports
        reported, hosts = [Check("Host reports", ERROR, f"could not be read: {type(exc).__name__}")], []
    others: list[tuple[str, Callable[[], Awaitable[list[Check]]]]] = [
        ("Redis", lambda: _redis(redis)),
        ("Certificates", lambda: _file_certificates(now)),
        ("PostgreSQL certificate", lambda: _postgres_certificate(database_url, now)),
        ("Release", _release),
    ]
    results: list[list[Check]] = await asyncio.gather(*(_bounded(name, check) for name, check in others))
    return SystemStatus(checks + reported + [check for group in results for check in group], hosts)
