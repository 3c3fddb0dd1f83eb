"""An API process keeps API keys and teams' sending policy for seconds, and drops them the moment PostgreSQL
announces a change: a key revoked, or a team's limits changed, by another process stops counting within a
second on a granian server that had them cached."""

from __future__ import annotations

import hashlib
import time

import httpx

LOOKUP_CACHE_SECONDS = 5.0  # the setting's default, which the session's server runs with


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _until(check, deadline: float) -> float:
    """Seconds until `check()` held, polling every 20 ms; fails past `deadline` seconds."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < deadline, f"still not so after {deadline} s"
        time.sleep(0.02)
    return time.monotonic() - start


def test_a_key_revoked_by_another_process_is_refused_within_a_second(server, server_team, postgres):
    headers = server_team.headers
    assert httpx.get(f"{server}/domains", headers=headers).status_code == 200  # now the server keeps it
    postgres.psql(f"UPDATE api_keys SET revoked_at = now() WHERE token_hash = "
                  f"decode('{_key_hash(server_team.key)}', 'hex')", user="postyard_owner", database="postyard")
    took = _until(lambda: httpx.get(f"{server}/domains", headers=headers).status_code == 403, deadline=1.0)
    assert took < 1.0


def test_the_server_keeps_a_key_it_read_until_told_or_for_its_seconds(server, server_team, postgres):
    """The control for the test above: without the notification, the server answers from what it kept."""
    headers = server_team.headers
    assert httpx.get(f"{server}/domains", headers=headers).status_code == 200
    # As a replica applies changes: no trigger fires, so nobody is notified.
    postgres.psql("SET session_replication_role = replica; UPDATE api_keys SET revoked_at = now() "
                  f"WHERE token_hash = decode('{_key_hash(server_team.key)}', 'hex')", database="postyard")
    assert httpx.get(f"{server}/domains", headers=headers).status_code == 200
    took = _until(lambda: httpx.get(f"{server}/domains", headers=headers).status_code == 403,
                  deadline=LOOKUP_CACHE_SECONDS + 1.0)
    assert took > 1.0


def test_a_teams_rate_limit_lowered_by_another_process_applies_within_a_second(server, server_team, postgres):
    headers = server_team.headers
    assert httpx.get(f"{server}/domains", headers=headers).status_code == 200
    postgres.psql(f"UPDATE teams SET rate_limit = 1 WHERE id = '{server_team.team_id}'",
                  user="postyard_owner", database="postyard")
    took = _until(lambda: httpx.get(f"{server}/domains", headers=headers).status_code == 429, deadline=1.0)
    assert took < 1.0


def test_a_team_suspended_by_another_process_is_refused_within_a_second(server, server_team, postgres):
    headers = server_team.headers
    assert httpx.get(f"{server}/domains", headers=headers).status_code == 200
    postgres.psql(f"UPDATE teams SET suspended_at = now(), suspension_reason = 'abuse report' "
                  f"WHERE id = '{server_team.team_id}'", user="postyard_owner", database="postyard")
    body = {"from": "a@unverified.example", "to": ["b@example.com"], "subject": "s", "text": "t"}

    def refused() -> bool:
        response = httpx.post(f"{server}/emails", headers=headers, json=body)
        return response.status_code == 403 and response.json().get("name") == "team_suspended"
    assert _until(refused, deadline=1.0) < 1.0
