"""The mail-host sync writes Postfix's maps from the mail views, rewrites them within seconds of a change to a
domain or an SMTP credential (NOTIFY mail_routes_changed), and writes nothing while nothing changed."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conftest import DATA_KEY, DATA_KEY_ID
from test_dkim_sync import verified_domain

from app.lib.crypto import Keyring
from app.mailhost.dkim_sync import run
from app.mailhost.postfix_maps import (
    BOUNCE_DOMAINS,
    BOUNCE_TRANSPORT,
    MAP_NAMES,
    SENDER_LOGINS,
    SENDER_TLS_TRANSPORT,
    STALE_PENDING_SECONDS,
    MapDirectory,
    postmap_cdb,
    remove_stale_pending,
)

KEYRING = Keyring({DATA_KEY_ID: DATA_KEY}, DATA_KEY_ID)
WITHIN = 5.0


class RecordingIndex:
    """postmap where the host has it, else a stand-in whose 'cdb' is the source text; counts the builds."""

    def __init__(self) -> None:
        self.built: list[str] = []

    def __call__(self, source: Path) -> None:
        self.built.append(source.name)
        if shutil.which("postmap"):
            postmap_cdb(source)
        else:
            shutil.copyfile(source, source.with_name(source.name + ".cdb"))


@pytest.fixture
async def sync(postgres, tmp_path) -> AsyncIterator[tuple[Path, RecordingIndex]]:
    """The sync as the mail host runs it, polling only once an hour: whatever it writes soon came by NOTIFY."""
    maps_dir = tmp_path / "maps"
    maps_dir.mkdir()
    index = RecordingIndex()
    dsn = postgres.url("postyard_mail").replace("+asyncpg", "")
    service = asyncio.create_task(run(dsn, KEYRING, tmp_path / "dkim", None, poll_seconds=3600,
                                      maps=MapDirectory(maps_dir, index)))
    await until(lambda: all((maps_dir / f"{name}.cdb").exists() for name in MAP_NAMES), "the first maps")
    yield maps_dir, index
    service.cancel()
    await asyncio.gather(service, return_exceptions=True)


async def until(condition: Callable[[], bool], what: str, within: float = WITHIN) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            pytest.fail(f"{what}: not within {within} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def source(maps_dir: Path, name: str) -> str:
    return (maps_dir / name).read_text()


def bounce_domain(domain: dict) -> str:
    return next(r["name"] for r in domain["records"] if r["type"] == "MX").lower()


async def test_a_verified_domain_reaches_every_map_within_seconds(client, team, dns_zone, sync):
    maps_dir, _ = sync
    credential = (await client.post("/smtp-credentials", json={"name": "app"}, headers=team.headers)).json()
    domain = await verified_domain(client, team, dns_zone)
    name, bounce = domain["name"], bounce_domain(domain)
    await until(lambda: f"@{name} {credential['username']}" in source(maps_dir, SENDER_LOGINS), "the sender login")
    assert f"{bounce} {name}\n" in source(maps_dir, BOUNCE_DOMAINS)
    assert f"{bounce} postyard-bounce:\n" in source(maps_dir, BOUNCE_TRANSPORT)
    assert f"@{name} " not in source(maps_dir, SENDER_TLS_TRANSPORT)


async def test_enforcing_tls_reaches_the_sender_transport_map_within_seconds(client, team, dns_zone, sync):
    maps_dir, _ = sync
    domain = await verified_domain(client, team, dns_zone)
    await until(lambda: bounce_domain(domain) in source(maps_dir, BOUNCE_DOMAINS), "the domain")
    response = await client.patch(f"/domains/{domain['id']}", json={"tls": "enforced"}, headers=team.headers)
    assert response.status_code == 200, response.text
    took = await until(lambda: f"@{domain['name']} postyard-enforced:" in source(maps_dir, SENDER_TLS_TRANSPORT),
                       "the enforced transport")
    assert f"@{bounce_domain(domain)} postyard-enforced:\n" in source(maps_dir, SENDER_TLS_TRANSPORT)
    print(f"[postfix maps] enforced TLS in the map {took:.2f} s after the change")


async def test_a_revoked_credential_leaves_the_sender_login_map_within_seconds(client, team, dns_zone, sync):
    maps_dir, _ = sync
    credential = (await client.post("/smtp-credentials", json={"name": "app"}, headers=team.headers)).json()
    await verified_domain(client, team, dns_zone)
    await until(lambda: credential["username"] in source(maps_dir, SENDER_LOGINS), "the login")
    await client.delete(f"/smtp-credentials/{credential['id']}", headers=team.headers)
    await until(lambda: credential["username"] not in source(maps_dir, SENDER_LOGINS), "the revocation")
    assert (maps_dir / f"{SENDER_LOGINS}.cdb").read_bytes() != b"" or not shutil.which("postmap")


async def test_a_change_to_nothing_the_maps_hold_writes_nothing(client, team, dns_zone, sync, postgres):
    maps_dir, index = sync
    domain = await verified_domain(client, team, dns_zone)
    await until(lambda: bounce_domain(domain) in source(maps_dir, BOUNCE_DOMAINS), "the domain")
    await asyncio.sleep(0.5)
    built, stamps = list(index.built), {p.name: p.stat().st_mtime_ns for p in maps_dir.iterdir()}
    # Notifies mail_routes_changed, but changes no row of the views.
    postgres.psql(f"UPDATE domains SET tls_mode = tls_mode WHERE id = '{domain['id']}'", database="postyard")
    await asyncio.sleep(1.5)
    assert index.built == built
    assert {p.name: p.stat().st_mtime_ns for p in maps_dir.iterdir()} == stamps


def test_a_dead_writers_pending_files_are_removed_and_a_live_ones_kept(tmp_path) -> None:
    old, fresh = tmp_path / ".bounce_domains.pending-41.cdb.tmp", tmp_path / ".bounce_domains.pending-42"
    for path in (old, fresh):
        path.write_text("x")
    stale = time.time() - STALE_PENDING_SECONDS - 60
    os.utime(old, (stale, stale))
    assert remove_stale_pending(tmp_path) == [old.name]
    assert fresh.exists() and not old.exists()


async def test_keys_that_cannot_be_written_leave_the_maps_syncing(client, team, dns_zone, postgres, tmp_path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")  # the DKIM root lies under a file: every write of the keys fails
    maps_dir = tmp_path / "maps"
    maps_dir.mkdir()
    dsn = postgres.url("postyard_mail").replace("+asyncpg", "")
    service = asyncio.create_task(run(dsn, KEYRING, blocked / "dkim", None, poll_seconds=3600,
                                      maps=MapDirectory(maps_dir, RecordingIndex())))
    try:
        await until(lambda: all((maps_dir / f"{name}.cdb").exists() for name in MAP_NAMES), "the first maps")
        assert not service.done()
    finally:
        service.cancel()
        await asyncio.gather(service, return_exceptions=True)
