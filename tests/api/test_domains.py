"""Domains: DKIM keys, the records to publish, DNS verification, rotation, TLS mode, deletion, ownership."""

from __future__ import annotations

import asyncio
import base64

import asyncpg
from conftest import DATA_KEY, DATA_KEY_ID, unique_domain
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


async def _create(client, team, **extra) -> dict:
    response = await client.post("/domains", json={"name": unique_domain(), **extra}, headers=team.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _verified(client, team, dns_zone, **extra) -> dict:
    domain = await _create(client, team, **extra)
    for record in domain["records"]:
        dns_zone.publish(record)
    verified = (await client.post(f"/domains/{domain['id']}/verify", headers=team.headers)).json()
    assert verified["status"] == "verified", verified
    return verified


def _by_record(domain: dict) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for r in domain["records"]:
        grouped.setdefault(r["record"], []).append(r)
    return grouped


async def test_creating_a_domain_returns_dkim_spf_dmarc_mx_mta_sts_and_tls_rpt_records(client, team):
    domain = await _create(client, team)
    records = _by_record(domain)
    name = domain["name"]
    assert domain["status"] == "not_started"
    assert records["DKIM"][0]["name"].endswith(f"._domainkey.{name}")
    assert records["DKIM"][0]["value"].startswith("v=DKIM1; k=rsa; p=")
    assert {(r["type"], r["name"]) for r in records["SPF"]} == {("MX", f"send.{name}"), ("TXT", f"send.{name}")}
    assert records["DMARC"][0]["name"] == f"_dmarc.{name}"
    assert {r["name"] for r in records["MTA-STS"]} == {f"_mta-sts.{name}", f"mta-sts.{name}"}
    assert records["TLS-RPT"][0]["name"] == f"_smtp._tls.{name}"
    assert records["Ownership"][0]["name"] == f"_postyard.{name}"
    assert records["Ownership"][0]["value"].startswith("postyard-verification=")


def _return_path(domain: dict) -> tuple[list[tuple[str, int]], str]:
    """The return path's MX records (host, priority) and its SPF value."""
    spf = _by_record(domain)["SPF"]
    mx = [(r["value"], r["priority"]) for r in spf if r["type"] == "MX"]
    (txt,) = [r["value"] for r in spf if r["type"] == "TXT"]
    return mx, txt


async def _verify(client, team, domain: dict) -> dict:
    return (await client.post(f"/domains/{domain['id']}/verify", headers=team.headers)).json()


def _record_status(postgres, domain: dict) -> dict[str, str]:
    """The statuses the last verification stored, by record key."""
    rows = postgres.psql(f"SELECT key, value FROM domains, jsonb_each_text(record_status) "
                         f"WHERE id = '{domain['id']}'", user="postyard_owner", database="postyard")
    return dict(line.split("|") for line in rows.split())


async def test_with_one_mail_host_the_return_path_records_are_unchanged(client, team, dns_zone, postgres):
    domain = await _create(client, team)
    assert _return_path(domain) == ([("mail.postyard.test", 10)], "v=spf1 a:mail.postyard.test -all")
    for record in domain["records"]:
        dns_zone.publish(record)
    assert (await _verify(client, team, domain))["status"] == "verified"
    stored = _record_status(postgres, domain)
    assert stored["spf_mx"] == stored["spf_txt"] == "verified"  # the keys domains verified before carry
    assert not [key for key in stored if key.startswith("spf_mx:")]


async def test_with_two_mail_hosts_the_return_path_has_an_mx_for_each_and_an_spf_naming_both(two_mail_hosts,
                                                                                           team):
    domain = await _create(two_mail_hosts, team)
    mx, spf = _return_path(domain)
    assert mx == [("mx1.postyard.test", 10), ("mx2.postyard.test", 10)]
    assert spf == "v=spf1 a:mx1.postyard.test a:mx2.postyard.test -all"
    assert {r["name"] for r in _by_record(domain)["SPF"]} == {f"send.{domain['name']}"}
    (cname,) = [r for r in _by_record(domain)["MTA-STS"] if r["type"] == "CNAME"]
    assert cname["value"] == "mx1.postyard.test"


async def test_with_two_mail_hosts_a_domain_verifies_only_once_both_mx_records_are_published(two_mail_hosts, team,
                                                                                           dns_zone):
    domain = await _create(two_mail_hosts, team)
    second = next(r for r in domain["records"] if r["type"] == "MX" and r["value"] == "mx2.postyard.test")
    for record in domain["records"]:
        if record is not second:
            dns_zone.publish(record)
    checked = await _verify(two_mail_hosts, team, domain)
    statuses = {r["value"]: r["status"] for r in checked["records"] if r["type"] == "MX"}
    assert statuses == {"mx1.postyard.test": "verified", "mx2.postyard.test": "failed"}
    assert checked["status"] == "partially_verified"
    dns_zone.publish(second)
    checked = await _verify(two_mail_hosts, team, domain)
    assert checked["status"] == "verified"
    assert {r["status"] for r in checked["records"]} == {"verified"}


async def test_with_two_mail_hosts_an_spf_naming_one_of_them_does_not_verify(two_mail_hosts, team, dns_zone):
    domain = await _create(two_mail_hosts, team)
    for record in domain["records"]:
        if record["type"] != "TXT" or record["record"] != "SPF":
            dns_zone.publish(record)
    spf = next(r for r in domain["records"] if r["record"] == "SPF" and r["type"] == "TXT")
    one_host = {**spf, "value": "v=spf1 a:mx1.postyard.test -all"}  # the record of a single-host deployment
    dns_zone.publish(one_host)
    checked = await _verify(two_mail_hosts, team, domain)
    assert checked["status"] == "partially_verified"
    assert [r["status"] for r in checked["records"] if r["record"] == "SPF" and r["type"] == "TXT"] == ["failed"]
    dns_zone.withdraw(one_host)
    dns_zone.publish(spf)
    assert (await _verify(two_mail_hosts, team, domain))["status"] == "verified"


async def test_the_default_dkim_key_is_rsa_2048(client, team):
    value = _by_record(await _create(client, team))["DKIM"][0]["value"]
    public = serialization.load_der_public_key(base64.b64decode(value.split("p=")[1]))
    assert public.key_size == 2048


async def test_an_ed25519_dkim_key_can_be_chosen(client, team):
    value = _by_record(await _create(client, team, dkim_algorithm="ed25519"))["DKIM"][0]["value"]
    assert value.startswith("v=DKIM1; k=ed25519; p=") and len(base64.b64decode(value.split("p=")[1])) == 32


async def test_an_invalid_domain_name_is_a_validation_error(client, team):
    response = await client.post("/domains", json={"name": "not a domain"}, headers=team.headers)
    assert response.status_code == 422 and response.json()["name"] == "validation_error"


async def test_a_team_cannot_add_the_same_domain_name_twice(client, team):
    domain = await _create(client, team)
    response = await client.post("/domains", json={"name": domain["name"].upper()}, headers=team.headers)
    assert response.status_code == 409 and domain["name"] in response.json()["message"]


async def test_verify_reports_failed_records_when_nothing_is_published(client, team):
    domain = await _create(client, team)
    verified = (await client.post(f"/domains/{domain['id']}/verify", headers=team.headers)).json()
    assert verified["status"] == "failed"
    assert {r["status"] for r in verified["records"]} == {"failed"}


async def test_verify_reports_each_record_verified_once_published(client, team, dns_zone):
    domain = await _create(client, team)
    for record in domain["records"]:
        dns_zone.publish(record)
    verified = (await client.post(f"/domains/{domain['id']}/verify", headers=team.headers)).json()
    assert verified["status"] == "verified"
    assert {r["status"] for r in verified["records"]} == {"verified"}


async def test_verify_reports_a_status_per_record(client, team, dns_zone):
    domain = await _create(client, team)
    for record in domain["records"]:
        if record["record"] in ("DKIM", "DMARC"):
            dns_zone.publish(record)
    verified = (await client.post(f"/domains/{domain['id']}/verify", headers=team.headers)).json()
    statuses = {(r["record"], r["type"]): r["status"] for r in verified["records"]}
    assert statuses[("DKIM", "TXT")] == "verified" and statuses[("DMARC", "TXT")] == "verified"
    assert statuses[("SPF", "MX")] == "failed" and verified["status"] == "partially_verified"


async def test_the_dkim_private_key_is_stored_aes_256_gcm_encrypted_under_the_data_key(client, team, dns_zone,
                                                                                       postgres):
    domain = await _verified(client, team, dns_zone)
    row = postgres.psql(
        f"SELECT selector, key_id, encode(private_key_ciphertext, 'base64') FROM mail_dkim_keys "
        f"WHERE domain = '{domain['name']}'", user="postyard_mail", database="postyard").split("|")
    selector, key_id, blob = row[0], row[1], base64.b64decode(row[2].replace("\n", ""))
    associated = f"postyard-dkim:{domain['name']}:{selector}".encode()
    pem = AESGCM(DATA_KEY).decrypt(blob[:12], blob[12:], associated)
    private = serialization.load_pem_private_key(pem, password=None)
    published = _by_record(domain)["DKIM"][0]["value"].split("p=")[1]
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key_id == DATA_KEY_ID and base64.b64encode(der).decode() == published


async def test_a_rotated_dkim_key_stays_beside_the_old_one_until_it_verifies(client, team, dns_zone, postgres):
    domain = await _create(client, team)
    for record in domain["records"]:
        dns_zone.publish(record)
    await client.post(f"/domains/{domain['id']}/verify", headers=team.headers)
    rotated = (await client.post(f"/domains/{domain['id']}/dkim/rotate", headers=team.headers)).json()
    old, new = _by_record(rotated)["DKIM"]
    view = f"SELECT selector, active FROM mail_dkim_keys WHERE domain = '{domain['name']}' ORDER BY active DESC"
    before = postgres.psql(view, user="postyard_mail", database="postyard").split()
    await client.post(f"/domains/{domain['id']}/verify", headers=team.headers)
    still = postgres.psql(view, user="postyard_mail", database="postyard").split()
    dns_zone.publish(new)
    await client.post(f"/domains/{domain['id']}/verify", headers=team.headers)
    after = postgres.psql(view, user="postyard_mail", database="postyard").split()
    old_sel, new_sel = old["name"].split(".")[0], new["name"].split(".")[0]
    assert before == still == [f"{old_sel}|t", f"{new_sel}|f"]
    assert after == [f"{new_sel}|t"]


async def test_the_tls_mode_is_published_to_the_mail_tier(client, team, dns_zone, postgres):
    domain = await _verified(client, team, dns_zone, tls="opportunistic")
    response = await client.patch(f"/domains/{domain['id']}", json={"tls": "enforced"}, headers=team.headers)
    mode = postgres.psql(f"SELECT tls_mode FROM mail_domain_tls_policy WHERE domain = '{domain['name']}'",
                         user="postyard_mail", database="postyard").strip()
    assert response.status_code == 200 and mode == "enforced"


async def test_deleting_a_domain_removes_it_and_its_keys(client, team, dns_zone, postgres):
    domain = await _verified(client, team, dns_zone)
    query = f"SELECT count(*) FROM mail_dkim_keys WHERE domain = '{domain['name']}'"
    before = postgres.psql(query, user="postyard_mail", database="postyard").strip()
    response = await client.delete(f"/domains/{domain['id']}", headers=team.headers)
    left = postgres.psql(query, user="postyard_mail", database="postyard").strip()
    assert response.json()["deleted"] is True and before == "1" and left == "0"
    assert (await client.get(f"/domains/{domain['id']}", headers=team.headers)).status_code == 404


async def test_dkim_key_changes_notify_the_mail_tier(client, team, postgres):
    connection = await asyncpg.connect(host="127.0.0.1", port=postgres.port, user="postyard_mail",
                                       database="postyard")
    received: asyncio.Queue[str] = asyncio.Queue()
    await connection.add_listener("mail_dkim_keys_changed", lambda *args: received.put_nowait(args[2]))
    try:
        await _create(client, team)
        channel = await asyncio.wait_for(received.get(), 5)
    finally:
        await connection.close()
    assert channel == "mail_dkim_keys_changed"


async def test_domain_changes_are_audited(client, team):
    domain = await _create(client, team)
    await client.patch(f"/domains/{domain['id']}", json={"tls": "enforced"}, headers=team.headers)
    await client.delete(f"/domains/{domain['id']}", headers=team.headers)
    entries = (await client.get("/audit-logs", headers=team.headers)).json()["data"]
    assert [e["action"] for e in entries][:3] == ["domain.deleted", "domain.updated", "domain.created"]
