"""API keys: format, shown once, stored as SHA-256, permissions, allowlist, expiry, revocation."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from app.lib.api_keys import generate_api_key, is_well_formed


async def test_a_created_key_is_sk_live_and_32_random_bytes(client, team):
    response = await client.post("/api-keys", json={"name": "ci"}, headers=team.headers)
    token = response.json()["token"]
    assert response.status_code == 201
    assert token.startswith("sk_live_") and len(token) >= len("sk_live_") + 43


async def test_a_test_mode_key_starts_with_sk_test(client, team):
    response = await client.post("/api-keys", json={"name": "ci", "mode": "test"}, headers=team.headers)
    assert response.json()["token"].startswith("sk_test_")


async def test_the_token_is_returned_once_and_never_listed(client, team):
    token = (await client.post("/api-keys", json={"name": "once"}, headers=team.headers)).json()["token"]
    listing = await client.get("/api-keys", headers=team.headers)
    assert token not in listing.text and "once" in listing.text


async def test_keys_are_stored_as_sha256_only(client, team, postgres):
    token = (await client.post("/api-keys", json={"name": "hashed"}, headers=team.headers)).json()["token"]
    stored = postgres.psql("SELECT encode(token_hash, 'hex') FROM api_keys", user="postyard_owner",
                           database="postyard")
    assert hashlib.sha256(token.encode()).hexdigest() in stored and token not in stored


async def test_a_key_with_a_wrong_prefix_is_refused_as_invalid(client):
    response = await client.get("/domains", headers={"Authorization": "Bearer pk_live_" + "a" * 43})
    assert response.status_code == 403 and response.json()["name"] == "invalid_api_key"


def test_prefix_and_length_are_checked_without_a_database():
    assert is_well_formed(generate_api_key("live")) and is_well_formed(generate_api_key("test"))
    assert not is_well_formed("sk_live_short") and not is_well_formed("sk_prod_" + "a" * 43)


async def test_a_request_without_a_key_is_refused_with_missing_api_key(client):
    response = await client.get("/api-keys")
    assert response.status_code == 401 and response.json()["name"] == "missing_api_key"


async def test_a_revoked_key_stops_authenticating(client, team):
    created = (await client.post("/api-keys", json={"name": "short-lived"}, headers=team.headers)).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert (await client.get("/domains", headers=headers)).status_code == 200
    removed = await client.delete(f"/api-keys/{created['id']}", headers=team.headers)
    assert removed.json() == {"id": created["id"], "deleted": True, "object": "api_key"}
    assert (await client.get("/domains", headers=headers)).status_code == 403


async def test_an_expired_key_is_refused(client, team, postgres):
    expires = (datetime.now(UTC) + timedelta(seconds=60)).isoformat()
    created = (await client.post("/api-keys", json={"name": "exp", "expires_at": expires},
                                 headers=team.headers)).json()
    postgres.psql(f"UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = '{created['id']}'",
                  user="postyard_owner", database="postyard")
    response = await client.get("/domains", headers={"Authorization": f"Bearer {created['token']}"})
    assert response.status_code == 403


async def test_an_expiry_in_the_past_is_a_validation_error(client, team):
    response = await client.post("/api-keys", json={"name": "x", "expires_at": "2000-01-01T00:00:00Z"},
                                 headers=team.headers)
    assert response.status_code == 422


async def test_a_key_with_an_ip_allowlist_is_refused_from_other_addresses(client, team):
    created = (await client.post("/api-keys", json={"name": "ip", "allowed_ips": ["192.0.2.0/24"]},
                                 headers=team.headers)).json()
    response = await client.get("/domains", headers={"Authorization": f"Bearer {created['token']}"})
    assert response.status_code == 403


async def test_an_invalid_ip_allowlist_entry_is_a_validation_error(client, team):
    response = await client.post("/api-keys", json={"name": "ip", "allowed_ips": ["not-an-ip"]}, headers=team.headers)
    assert response.status_code == 422 and response.json()["name"] == "validation_error"


async def test_a_sending_access_key_cannot_manage_resources(client, team):
    created = (await client.post("/api-keys", json={"name": "send", "permission": "sending_access"},
                                 headers=team.headers)).json()
    response = await client.get("/api-keys", headers={"Authorization": f"Bearer {created['token']}"})
    assert response.status_code == 401 and response.json()["name"] == "restricted_api_key"


async def test_a_key_may_be_limited_to_one_domain_of_its_team(client, team, other_team):
    theirs = (await client.post("/domains", json={"name": "limit-other.example.test"},
                                headers=other_team.headers)).json()
    ours = (await client.post("/domains", json={"name": "limit-ours.example.test"}, headers=team.headers)).json()
    refused = await client.post("/api-keys", json={"name": "x", "permission": "sending_access",
                                                   "domain_id": theirs["id"]}, headers=team.headers)
    accepted = await client.post("/api-keys", json={"name": "x", "permission": "sending_access",
                                                    "domain_id": ours["id"]}, headers=team.headers)
    assert refused.status_code == 422 and accepted.status_code == 201


async def test_last_used_at_is_recorded(client, team):
    await client.get("/domains", headers=team.headers)
    keys = (await client.get("/api-keys", headers=team.headers)).json()["data"]
    assert keys[0]["last_used_at"] is not None


async def test_key_creation_and_revocation_are_audited(client, team):
    created = (await client.post("/api-keys", json={"name": "audited"}, headers=team.headers)).json()
    await client.delete(f"/api-keys/{created['id']}", headers=team.headers)
    entries = (await client.get("/audit-logs", headers=team.headers)).json()["data"]
    actions = [(e["action"], e["resource_id"]) for e in entries]
    assert ("api_key.created", created["id"]) in actions and ("api_key.revoked", created["id"]) in actions
