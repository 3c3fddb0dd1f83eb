"""The mail hosts' DKIM sync: keys of verified domains from the mail view, decrypted, signing mail that verifies."""

from __future__ import annotations

import asyncio
import base64
import stat
import time

import asyncpg
import dkim
import pytest
from conftest import DATA_KEY, DATA_KEY_ID, unique_domain
from cryptography.hazmat.primitives import serialization

from app.lib.crypto import Keyring
from app.mailhost.dkim_sync import SigningKey, render_signing_table, run, sync_once

KEYRING = Keyring({DATA_KEY_ID: DATA_KEY}, DATA_KEY_ID)


@pytest.fixture
async def mail_connection(postgres):
    connection = await asyncpg.connect(postgres.url("postyard_mail").replace("+asyncpg", ""))
    yield connection
    await connection.close()


async def add_domain(client, team, name: str | None = None, **extra) -> dict:
    response = await client.post("/domains", json={"name": name or unique_domain(), **extra}, headers=team.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def verified_domain(client, team, dns_zone, name: str | None = None, **extra) -> dict:
    """A domain with its records published and verified."""
    domain = await add_domain(client, team, name, **extra)
    for record in domain["records"]:
        dns_zone.publish(record)
    verified = (await client.post(f"/domains/{domain['id']}/verify", headers=team.headers)).json()
    assert verified["status"] == "verified", verified
    return domain


def has_key_file(root, domain: dict) -> bool:
    current = root / "current"
    return current.is_dir() and any(p.name.startswith(domain["name"] + ".") for p in current.iterdir())


def dkim_record(domain: dict) -> tuple[str, str]:
    record = next(r for r in domain["records"] if r["record"] == "DKIM")
    return record["name"], record["value"]


def signed_message(domain: str, key_file, selector: str, algorithm: str) -> bytes:
    """Sign as OpenDKIM would with the written key file (PEM; dkimpy wants Ed25519 keys raw)."""
    message = (f"From: Sender <sender@{domain}>\r\nTo: someone@remote.test\r\n"
               f"Subject: signed\r\nMessage-ID: <1@{domain}>\r\n\r\nHello.\r\n").encode()
    key = key_file.read_bytes()
    options = {}
    if algorithm == "ed25519":
        private = serialization.load_pem_private_key(key, None)
        key = base64.b64encode(private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()))
        options["signature_algorithm"] = b"ed25519-sha256"
    signature = dkim.sign(message, selector.encode(), domain.encode(), key,
                          include_headers=[b"From", b"To", b"Subject", b"Message-ID"], **options)
    return signature + message


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
async def test_a_verified_domains_key_is_written_and_signs_mail_that_verifies(client, team, dns_zone, mail_connection,
                                                                              tmp_path, algorithm):
    domain = await verified_domain(client, team, dns_zone, dkim_algorithm=algorithm)
    record_name, record_value = dkim_record(domain)
    selector = record_name.split("._domainkey.")[0]

    assert await sync_once(mail_connection, KEYRING, tmp_path, None)

    key_file = tmp_path / "current" / f"{domain['name']}.{selector}.private"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    suffix = ".ed25519" if algorithm == "ed25519" else ""
    assert f"{domain['name']} {record_name}\n" in (tmp_path / f"current/SigningTable{suffix}").read_text()
    key_table = (tmp_path / f"current/KeyTable{suffix}").read_text()
    assert f"{record_name} {domain['name']}:{selector}:{key_file}\n" in key_table
    other = ".ed25519" if not suffix else ""
    assert domain["name"] not in (tmp_path / f"current/KeyTable{other}").read_text()  # one instance per algorithm

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record_value.encode() if name.decode().rstrip(".") == record_name else b""

    assert dkim.verify(signed_message(domain["name"], key_file, selector, algorithm), dnsfunc=dns)


async def test_a_second_sync_without_changes_writes_nothing(client, team, dns_zone, mail_connection, tmp_path):
    await verified_domain(client, team, dns_zone)
    await sync_once(mail_connection, KEYRING, tmp_path, None)
    assert not await sync_once(mail_connection, KEYRING, tmp_path, None)


async def test_an_unverified_domain_has_no_key_on_the_mail_host(client, team, dns_zone, mail_connection, tmp_path):
    unverified, verified = await add_domain(client, team), await verified_domain(client, team, dns_zone)
    await sync_once(mail_connection, KEYRING, tmp_path, None)
    assert has_key_file(tmp_path, verified) and not has_key_file(tmp_path, unverified)


async def test_only_the_verified_entrys_key_signs_a_name_several_teams_added(client, team, other_team, dns_zone,
                                                                             mail_connection, tmp_path):
    name = unique_domain()
    theirs = await add_domain(client, other_team, name)
    ours = await verified_domain(client, team, dns_zone, name)
    await sync_once(mail_connection, KEYRING, tmp_path, None)
    ours_record, theirs_record = dkim_record(ours)[0], dkim_record(theirs)[0]
    assert f"{name} {ours_record}\n" in (tmp_path / "current/SigningTable").read_text()
    assert theirs_record not in (tmp_path / "current/KeyTable").read_text()


async def test_a_deleted_domain_loses_its_key_file(client, team, dns_zone, mail_connection, tmp_path):
    domain = await verified_domain(client, team, dns_zone)
    await sync_once(mail_connection, KEYRING, tmp_path, None)
    assert has_key_file(tmp_path, domain)
    response = await client.delete(f"/domains/{domain['id']}", headers=team.headers)
    assert response.status_code in (200, 204), response.text
    await sync_once(mail_connection, KEYRING, tmp_path, None)
    assert not has_key_file(tmp_path, domain)


async def test_a_key_that_cannot_be_decrypted_is_skipped_and_the_others_are_written(client, team, dns_zone,
                                                                                    mail_connection, tmp_path):
    domain = await verified_domain(client, team, dns_zone)
    await sync_once(mail_connection, Keyring({"another": b"\0" * 32}, "another"), tmp_path, None)
    assert not has_key_file(tmp_path, domain)
    await sync_once(mail_connection, KEYRING, tmp_path, None)
    assert has_key_file(tmp_path, domain)


async def test_a_domain_is_signing_within_ten_seconds_of_its_verification(client, team, dns_zone, postgres,
                                                                          tmp_path):
    dsn = postgres.url("postyard_mail").replace("+asyncpg", "")
    service = asyncio.create_task(run(dsn, KEYRING, tmp_path, None, poll_seconds=3600))
    try:
        await asyncio.sleep(0.5)
        domain = await verified_domain(client, team, dns_zone)
        started = time.monotonic()
        while time.monotonic() - started < 10:
            if has_key_file(tmp_path, domain):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the verified domain's key was not written within 10 seconds")
    finally:
        service.cancel()
        await asyncio.gather(service, return_exceptions=True)


def test_the_signing_table_names_one_key_per_domain_by_the_domain_alone():
    keys = [SigningKey("a.test", "s1", "rsa", b""), SigningKey("a.test", "s2", "rsa", b""),
            SigningKey("b.test", "s1", "ed25519", b"")]
    assert render_signing_table(keys) == "a.test s1._domainkey.a.test\nb.test s1._domainkey.b.test\n"
