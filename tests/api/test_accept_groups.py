"""Group commit of `POST /emails`: concurrent requests share a transaction, and each still gets its own answer.

The groups are driven directly (requests handed over in one turn of the event loop form one group), and
through the app, with the real PostgreSQL under row-level security as the API's role.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest
from api_support import granian_app
from conftest import FAIL_AT_COMMIT, FAIL_AT_INSERT, TeamKey, verified_domain
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.cli import create_team
from app.db.engines import create_engine
from app.domain.emails.accept_groups import AcceptGroups
from app.domain.emails.schemas import SendEmail
from app.domain.emails.validation import Draft, draft_from_request
from app.lib.api_error import ApiError
from app.lib.auth import Principal


def message(domain: str, subject: str = "Hi") -> dict:
    return {"from": f"hello@{domain}", "to": [f"u{uuid.uuid4().hex[:8]}@example.org"], "subject": subject,
            "text": "plain"}


def draft(domain: str, subject: str = "Hi") -> Draft:
    return draft_from_request(msgspec.convert(message(domain, subject), SendEmail), 50)


def db(postgres, sql: str) -> str:
    return postgres.psql(sql, user="postyard_owner", database="postyard").strip()


def stored(postgres, ids: list[uuid.UUID]) -> dict[str, str]:
    """id -> team id of the emails stored among `ids`."""
    listed = ",".join(f"'{i}'" for i in ids)
    rows = db(postgres, f"SELECT id, team_id FROM emails WHERE id IN ({listed})")
    return dict(r.split("|") for r in rows.splitlines() if r)


@pytest.fixture
async def groups(settings) -> AsyncIterator[AcceptGroups]:
    engine = create_engine(settings.database_url, settings, "accept-groups-test")
    yield AcceptGroups(async_sessionmaker(engine, expire_on_commit=False), settings)
    await engine.dispose()


async def hand_over(groups: AcceptGroups, sends: list[tuple[TeamKey, Draft]]) -> tuple[list[uuid.UUID], list]:
    """Hand the sends over in one turn of the loop; their ids and each one's outcome (None or the error)."""
    ids = [uuid.uuid4() for _ in sends]
    outcomes = await asyncio.gather(*[groups.accept(Principal(team_id=t.team_id, ip="127.0.0.1"), [d], [i])
                                      for (t, d), i in zip(sends, ids, strict=True)], return_exceptions=True)
    return ids, outcomes


async def test_waiting_requests_of_two_teams_are_stored_in_one_transaction_each_for_its_team(
        groups, client, team, other_team, postgres, commits):
    mine, theirs = (await verified_domain(client, team, postgres))["name"], \
        (await verified_domain(client, other_team, postgres))["name"]
    sends = [(team, draft(mine)), (other_team, draft(theirs))] * 5
    commits.clear()
    ids, outcomes = await hand_over(groups, sends)
    rows = stored(postgres, ids)
    assert outcomes == [None] * 10 and len(commits) == 1
    assert {rows[str(i)] for i, (t, _) in zip(ids, sends, strict=True) if t is team} == {str(team.team_id)}
    assert {rows[str(i)] for i, (t, _) in zip(ids, sends, strict=True) if t is other_team} == {str(other_team.team_id)}


async def test_a_refused_request_gets_its_own_error_and_the_rest_of_its_group_is_stored(
        groups, client, team, postgres, commits):
    mine = (await verified_domain(client, team, postgres))["name"]
    unverified = (await client.post("/domains", json={"name": f"n{uuid.uuid4().hex[:8]}.example.test"},
                                    headers=team.headers)).json()["name"]
    sends = [(team, draft(mine)), (team, draft(mine)), (team, draft(unverified)), (team, draft(mine))]
    commits.clear()
    ids, outcomes = await hand_over(groups, sends)
    refused = outcomes[2]
    assert isinstance(refused, ApiError) and refused.status_code == 403 and unverified in refused.detail
    assert outcomes[:2] + outcomes[3:] == [None] * 3
    assert set(stored(postgres, ids)) == {str(ids[0]), str(ids[1]), str(ids[3])} and len(commits) == 1


async def test_an_unforeseen_error_of_one_request_fails_that_request_alone(groups, client, team, postgres,
                                                                         failing_insert):
    mine = (await verified_domain(client, team, postgres))["name"]
    ids, outcomes = await hand_over(groups, [(team, draft(mine)), (team, draft(mine, FAIL_AT_INSERT)),
                                             (team, draft(mine))])
    assert outcomes[::2] == [None, None] and not isinstance(outcomes[1], ApiError | None)
    assert set(stored(postgres, ids)) == {str(ids[0]), str(ids[2])}


async def test_a_quota_admits_the_first_requests_of_a_group_and_refuses_the_rest(groups, client, team, postgres):
    mine = (await verified_domain(client, team, postgres))["name"]
    db(postgres, f"UPDATE teams SET daily_quota = 3 WHERE id = '{team.team_id}'")
    ids, outcomes = await hand_over(groups, [(team, draft(mine)) for _ in range(5)])
    assert outcomes[:3] == [None] * 3
    assert all(isinstance(o, ApiError) and o.status_code == 429 for o in outcomes[3:])
    assert set(stored(postgres, ids)) == {str(i) for i in ids[:3]}
    assert db(postgres, f"SELECT sent FROM team_send_counters WHERE team_id = '{team.team_id}' AND period = 'day'") \
        == "3"


async def test_stored_one_by_one_each_request_is_still_scoped_to_its_own_team(
        groups, client, team, other_team, postgres):
    mine, theirs = (await verified_domain(client, team, postgres))["name"], \
        (await verified_domain(client, other_team, postgres))["name"]
    unverified = (await client.post("/domains", json={"name": f"n{uuid.uuid4().hex[:8]}.example.test"},
                                    headers=team.headers)).json()["name"]
    sends = [(other_team, draft(theirs)), (team, draft(unverified)), (team, draft(mine)), (other_team, draft(theirs))]
    ids, outcomes = await hand_over(groups, sends)
    assert isinstance(outcomes[1], ApiError) and outcomes[1].status_code == 403
    assert stored(postgres, ids) == {str(ids[0]): str(other_team.team_id), str(ids[2]): str(team.team_id),
                                     str(ids[3]): str(other_team.team_id)}


async def test_a_failed_commit_answers_503_to_every_request_of_its_group_and_stores_none(
        groups, client, team, other_team, postgres, failing_commit):
    mine, theirs = (await verified_domain(client, team, postgres))["name"], \
        (await verified_domain(client, other_team, postgres))["name"]
    sends = [(team, draft(mine)), (other_team, draft(theirs)), (team, draft(mine, FAIL_AT_COMMIT))]
    ids, outcomes = await hand_over(groups, sends)
    assert all(isinstance(o, ApiError) and o.status_code == 503 and o.headers and "Retry-After" in o.headers
               for o in outcomes)
    assert stored(postgres, ids) == {}


async def test_a_request_whose_client_leaves_before_its_group_starts_is_not_stored(groups, client, team, postgres):
    mine = (await verified_domain(client, team, postgres))["name"]
    ids = [uuid.uuid4() for _ in range(4)]
    principal = Principal(team_id=team.team_id, ip="127.0.0.1")
    tasks = [asyncio.create_task(groups.accept(principal, [draft(mine)], [i])) for i in ids]
    await asyncio.sleep(0)  # every request is handed over; their group has not started
    tasks[1].cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(outcomes[1], asyncio.CancelledError) and outcomes[:1] + outcomes[2:] == [None] * 3
    assert set(stored(postgres, ids)) == {str(ids[0]), str(ids[2]), str(ids[3])}


def server_team_of(settings, postgres, name: str) -> TeamKey:
    team = TeamKey(*asyncio.run(create_team(settings, f"{name}-{uuid.uuid4().hex[:6]}")))
    db(postgres, f"UPDATE teams SET rate_limit = 1000000, api_key_rate_limit = 1000000 WHERE id = '{team.team_id}'")
    return team


def test_concurrent_sends_to_the_server_share_transactions_and_stay_within_their_teams(server, settings, postgres):
    teams = [server_team_of(settings, postgres, name) for name in ("first", "second")]
    domains = [asyncio.run(verified_domain_on(server, t, postgres)) for t in teams]
    senders = [(t, d) for t, d in zip(teams, domains, strict=True)] * 16

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server, timeout=30) as http:
            return await asyncio.gather(*[http.post("/emails", json=message(d), headers=t.headers)
                                          for t, d in senders])

    responses = asyncio.run(send_all())
    assert [r.status_code for r in responses] == [200] * len(senders)
    ids = [uuid.UUID(r.json()["id"]) for r in responses]
    assert stored(postgres, ids) == {str(i): str(t.team_id) for i, (t, _) in zip(ids, senders, strict=True)}
    listed = ",".join(f"'{i}'" for i in ids)
    transactions = int(db(postgres, f"SELECT count(DISTINCT xmin::text) FROM emails WHERE id IN ({listed})"))
    assert transactions < len(senders) / 2  # each answered after a commit shared with other requests


async def verified_domain_on(server: str, team: TeamKey, postgres) -> str:
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        domain = (await http.post("/domains", json={"name": f"d{uuid.uuid4().hex[:10]}.example.test"},
                                  headers=team.headers)).json()
    db(postgres, f"UPDATE domains SET status = 'verified' WHERE id = '{domain['id']}'")
    return domain["name"]


def test_requests_whose_authentication_reads_the_database_do_not_starve_the_groups(env, settings, postgres):
    """With no lookup cache every request reads its key and team in its own session; more of them than the
    pool holds are sent at once, and each must still be stored (its session's connection is returned first)."""
    team = server_team_of(settings, postgres, "uncached")
    with granian_app({**env, "POSTYARD_LOOKUP_CACHE_SECONDS": "0"}) as url:
        domain = asyncio.run(verified_domain_on(url, team, postgres))

        async def send_all() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=60) as http:
                return await asyncio.gather(*[http.post("/emails", json=message(domain), headers=team.headers)
                                              for _ in range(48)])

        responses = asyncio.run(send_all())
    assert [r.status_code for r in responses] == [200] * 48
    assert len(stored(postgres, [uuid.UUID(r.json()["id"]) for r in responses])) == 48
