"""Schemathesis, every check on, against the app served by granian: with an API key, then with an operator's
session, no request finds a 5xx, an undocumented status code, a response off its schema, or a valid request
refused. The same runner serves tests/testbed/test_openapi_deployed.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from api_support import granian_app
from conftest import new_team_invite

from tests.openapi_fuzz import Credentials, FuzzRun, run_schemathesis

# Per operation and phase; about 4,000 cases over both runs (each run lists its count).
MAX_EXAMPLES = 40
MIN_CASES = 3000
PASSWORD = "fuzzing is believing, twice over"
# Changing the caller's own rate limits (a team may) or password, or ending the session, would leave the rest
# of a run answering 429 or 401 only: these run after the others, on their own, logging out last.
LAST = (("team/update", "auth/change-password"), ("auth/logout",))


@pytest.fixture(scope="module")
def fuzz_server(env: dict[str, str]) -> Iterator[str]:
    """The app under granian, as in production, with rate limits out of the fuzzer's way."""
    limits = {"POSTYARD_RATE_LIMIT": "1000000", "POSTYARD_API_KEY_RATE_LIMIT": "1000000",
              "POSTYARD_ANONYMOUS_RATE_LIMIT": "1000000", "POSTYARD_LOGIN_MAX_FAILURES_IP": "1000000"}
    with granian_app({**env, **limits}) as url:
        yield url


def _operator_session(url: str, settings, postgres) -> Credentials:
    """Headers of a logged-in operator who owns a team (so team routes and operator routes both answer)."""
    email = f"fuzz-{uuid.uuid4().hex[:8]}@example.com"
    invite = asyncio.run(new_team_invite(settings))
    response = httpx.post(f"{url}/auth/register", json={"email": email, "password": PASSWORD, "team_name": "Fuzz",
                                                        "invite": invite})
    assert response.status_code == 201, response.text
    postgres.psql(f"UPDATE users SET is_operator = true WHERE email = '{email}';"
                  f"UPDATE teams SET rate_limit = 1000000 WHERE id = '{response.json()['team_id']}'",
                  user="postyard_owner", database="postyard")
    return Credentials(session=response.cookies["postyard_session"], csrf_token=response.json()["csrf_token"],
                       team_id=response.json()["team_id"])


def _in_turn(url: str, credentials: Credentials, tmp_path, name: str) -> list[FuzzRun]:
    schema = f"{url}/docs/openapi.json"
    runs = [run_schemathesis(schema, credentials, tmp_path / f"{name}-main", max_examples=MAX_EXAMPLES,
                             exclude_operation_ids=[o for group in LAST for o in group])]
    for number, group in enumerate(LAST, 1):
        runs.append(run_schemathesis(schema, credentials, tmp_path / f"{name}-last{number}",
                                     max_examples=MAX_EXAMPLES, include_operation_ids=group))
    return runs


def test_schemathesis_with_every_check_finds_nothing_with_an_api_key_or_a_session(
        fuzz_server, server_team, settings, postgres, tmp_path):
    runs = _in_turn(fuzz_server, Credentials(api_key=server_team.key), tmp_path, "api-key")
    runs += _in_turn(fuzz_server, _operator_session(fuzz_server, settings, postgres), tmp_path, "session")
    report = "\n\n".join(run.summary for run in runs)
    assert all(run.ok for run in runs), report
    assert sum(run.cases for run in runs) >= MIN_CASES, report
