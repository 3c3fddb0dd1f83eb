"""Domain ownership: many teams may add a name; only DNS carrying an entry's own token makes it that team's."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import asyncpg
import httpx
import pytest
from conftest import unique_domain

from app.cli import create_team


async def _add(client, team, name: str, **extra) -> dict:
    response = await client.post("/domains", json={"name": name, **extra}, headers=team.headers)
    assert response.status_code == 201, response.text
    return response.json()


def _record(domain: dict, kind: str) -> dict:
    return next(r for r in domain["records"] if r["record"] == kind)


def _status(domain: dict, kind: str) -> str:
    return _record(domain, kind)["status"]


def _publish(dns_zone, domain: dict, *kinds: str) -> None:
    """Publish the entry's records, or only those of `kinds`."""
    for record in domain["records"]:
        if not kinds or record["record"] in kinds:
            dns_zone.publish(record)


async def _verify(client, team, domain: dict):
    return await client.post(f"/domains/{domain['id']}/verify", headers=team.headers)


async def _get(client, team, domain: dict) -> dict:
    return (await client.get(f"/domains/{domain['id']}", headers=team.headers)).json()


async def _send(client, team, name: str) -> int:
    response = await client.post("/emails", json={"from": f"hello@{name}", "to": "someone@example.org",
                                                  "subject": "s", "text": "t"}, headers=team.headers)
    return response.status_code


def _mail_view(postgres, sql: str) -> list[str]:
    return postgres.psql(sql, user="postyard_mail", database="postyard").split()


@pytest.fixture
async def held(client, team, other_team, dns_zone) -> tuple[dict, dict]:
    """One name added by both teams, verified by `team` with all its records published."""
    name = unique_domain()
    ours, theirs = await _add(client, team, name), await _add(client, other_team, name)
    _publish(dns_zone, ours)
    assert (await _verify(client, team, ours)).json()["status"] == "verified"
    return ours, theirs


@pytest.fixture
async def taken_over(client, team, other_team, dns_zone, held) -> tuple[dict, dict]:
    """`held`, then the holder's ownership record withdrawn and `other_team`'s published and verified."""
    ours, theirs = held
    dns_zone.withdraw(_record(ours, "Ownership"))
    _publish(dns_zone, theirs, "Ownership", "DKIM")
    response = await _verify(client, other_team, theirs)
    assert response.status_code == 200 and response.json()["status"] == "verified", response.text
    return ours, theirs


async def test_each_entry_of_a_shared_name_has_its_own_ownership_token_and_dkim_selector(client, team, other_team):
    name = unique_domain()
    ours, theirs = await _add(client, team, name), await _add(client, other_team, name)
    assert ours["id"] != theirs["id"] and ours["name"] == theirs["name"] == name
    assert _record(ours, "Ownership")["name"] == _record(theirs, "Ownership")["name"] == f"_postyard.{name}"
    assert _record(ours, "Ownership")["value"] != _record(theirs, "Ownership")["value"]
    assert _record(ours, "DKIM")["name"] != _record(theirs, "DKIM")["name"]


async def test_the_dkim_key_alone_without_the_ownership_record_does_not_verify(client, team, dns_zone):
    domain = await _add(client, team, unique_domain())
    for record in domain["records"]:
        if record["record"] != "Ownership":
            dns_zone.publish(record)
    verified = (await _verify(client, team, domain)).json()
    assert verified["status"] == "partially_verified" and _status(verified, "Ownership") == "failed"
    assert _status(verified, "DKIM") == "verified"


async def test_only_the_team_whose_ownership_record_is_published_verifies_a_shared_name(client, team, other_team,
                                                                                        held):
    ours, theirs = held
    answer = await _verify(client, other_team, theirs)
    assert answer.status_code == 200 and answer.json()["status"] == "partially_verified"
    assert _status(answer.json(), "Ownership") == "failed"  # the other entry's token does not count
    assert (await _get(client, team, ours))["status"] == "verified"


async def test_a_team_cannot_send_from_a_name_another_team_verified(client, team, other_team, held):
    ours, theirs = held
    await _verify(client, other_team, theirs)
    assert await _send(client, other_team, ours["name"]) == 403
    assert await _send(client, team, ours["name"]) == 200


async def test_the_mail_views_expose_nothing_of_a_name_nobody_verified(client, team, other_team, postgres):
    name = unique_domain()
    await _add(client, team, name)
    await _add(client, other_team, name)
    for view, column in (("mail_dkim_keys", "domain"), ("mail_domain_tls_policy", "domain"),
                         ("mail_bounce_domains", "domain"), ("mail_sender_logins", "sender_domain")):
        assert _mail_view(postgres, f"SELECT count(*) FROM {view} WHERE {column} = '{name}'") == ["0"], view


async def test_the_mail_views_expose_exactly_one_row_per_name_from_the_verified_entry(client, team, other_team,
                                                                                    held, postgres):
    ours, theirs = held
    name = ours["name"]
    mine = (await client.post("/smtp-credentials", json={"name": "a"}, headers=team.headers)).json()
    stranger = (await client.post("/smtp-credentials", json={"name": "b"}, headers=other_team.headers)).json()
    await client.patch(f"/domains/{theirs['id']}", json={"tls": "enforced"}, headers=other_team.headers)
    selector = _record(ours, "DKIM")["name"].split(".")[0]
    assert _mail_view(postgres, f"SELECT selector FROM mail_dkim_keys WHERE domain = '{name}'") == [selector]
    assert _mail_view(postgres, f"SELECT tls_mode FROM mail_domain_tls_policy WHERE domain = '{name}'") == [
        "opportunistic"]
    assert _mail_view(postgres, f"SELECT bounce_domain || '|' || tls_mode FROM mail_bounce_domains "
                                f"WHERE domain = '{name}'") == [f"send.{name}|opportunistic"]
    logins = _mail_view(postgres, f"SELECT username FROM mail_sender_logins WHERE sender_domain = '{name}'")
    assert mine["username"] in logins and stranger["username"] not in logins


async def test_a_name_stays_with_its_holder_while_the_holders_ownership_record_is_published(
        client, team, other_team, dns_zone, held):
    ours, theirs = held
    _publish(dns_zone, theirs, "Ownership", "DKIM")
    answer = await _verify(client, other_team, theirs)
    assert answer.status_code == 409 and answer.json()["name"] == "domain_claimed"
    assert f"_postyard.{ours['name']}" in answer.json()["message"]
    assert (await _get(client, team, ours))["status"] == "verified"
    assert (await _get(client, other_team, theirs))["status"] == "not_started"
    assert await _send(client, other_team, ours["name"]) == 403


async def test_a_team_takes_a_name_over_once_only_its_ownership_record_is_published(
        client, team, other_team, taken_over, postgres):
    ours, theirs = taken_over
    previous = await _get(client, team, ours)
    assert previous["status"] == "failed" and _status(previous, "Ownership") == "failed"
    assert await _send(client, team, ours["name"]) == 403
    assert await _send(client, other_team, ours["name"]) == 200
    selector = _record(theirs, "DKIM")["name"].split(".")[0]
    assert _mail_view(postgres, f"SELECT selector FROM mail_dkim_keys WHERE domain = '{ours['name']}'") == [selector]


async def test_the_team_that_lost_a_name_finds_why_in_its_audit_log(client, team, other_team, taken_over):
    ours, _ = taken_over
    lost = (await client.get("/audit-logs", headers=team.headers)).json()["data"][0]
    gained = (await client.get("/audit-logs", headers=other_team.headers)).json()["data"][0]
    assert lost["action"] == "domain.ownership_lost" and lost["resource_id"] == ours["id"]
    assert lost["details"]["name"] == ours["name"] and "ownership record" in lost["details"]["reason"]
    assert gained["action"] == "domain.verified" and gained["details"] == {"status": "verified", "taken_over": True}


async def test_the_previous_holder_cannot_verify_again_while_the_new_holders_record_is_published(
        client, team, dns_zone, taken_over):
    ours, _ = taken_over
    assert (await _verify(client, team, ours)).json()["status"] == "partially_verified"
    dns_zone.publish(_record(ours, "Ownership"))
    answer = await _verify(client, team, ours)
    assert answer.status_code == 409 and answer.json()["name"] == "domain_claimed"


async def test_concurrent_verifications_of_one_name_never_yield_two_verified_entries(server, settings, dns_zone,
                                                                                    postgres):
    teams = [{"Authorization": f"Bearer {(await create_team(settings, 'race'))[1]}"} for _ in range(2)]
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        for _ in range(5):
            name = unique_domain()
            entries = [(await http.post("/domains", json={"name": name}, headers=h)).json() for h in teams]
            _publish(dns_zone, entries[0])
            _publish(dns_zone, entries[1], "Ownership", "DKIM")
            answers = await asyncio.gather(*(http.post(f"/domains/{e['id']}/verify", headers=h)
                                             for e, h in zip(entries, teams, strict=True)))
            verified = postgres.psql(f"SELECT count(*) FROM domains WHERE name = '{name}' AND status = 'verified'",
                                     user="postyard_owner", database="postyard").strip()
            assert sorted(a.status_code for a in answers) == [200, 409] and verified == "1"
            assert [a.json()["name"] for a in answers if a.status_code == 409] == ["domain_claimed"]


async def test_a_verification_that_loses_the_race_answers_409_with_a_reason(server, settings, dns_zone, postgres):
    teams = [{"Authorization": f"Bearer {(await create_team(settings, 'race'))[1]}"} for _ in range(2)]
    name = unique_domain()
    connection = await asyncpg.connect(postgres.url("postgres").replace("+asyncpg", ""))
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        ours, theirs = [(await http.post("/domains", json={"name": name}, headers=h)).json() for h in teams]
        _publish(dns_zone, ours)
        try:
            racing = connection.transaction()
            await racing.start()  # the other team's verification, not committed yet
            await connection.execute("UPDATE domains SET status = 'verified' WHERE id = $1", uuid.UUID(theirs["id"]))
            answer = asyncio.ensure_future(http.post(f"/domains/{ours['id']}/verify", headers=teams[0]))
            async with asyncio.timeout(20):  # until our verification waits for the other's row
                while not await connection.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                                    "'postyard' AND wait_event_type = 'Lock'"):
                    assert not answer.done(), answer.result().text
                    await asyncio.sleep(0.05)
            await racing.commit()
            response = await answer
        finally:
            await connection.close()
        after = (await http.get(f"/domains/{ours['id']}", headers=teams[0])).json()
    assert response.status_code == 409 and response.json()["name"] == "domain_claimed"
    assert "at the same moment" in response.json()["message"] and after["status"] == "not_started"


async def test_the_database_refuses_a_second_verified_entry_of_a_name(client, team, other_team, postgres):
    name = unique_domain()
    await _add(client, team, name)
    await _add(client, other_team, name)
    with pytest.raises(subprocess.CalledProcessError) as refused:
        postgres.psql(f"UPDATE domains SET status = 'verified' WHERE name = '{name}'",
                      user="postyard_owner", database="postyard")
    assert "domains_verified_name" in refused.value.stderr
