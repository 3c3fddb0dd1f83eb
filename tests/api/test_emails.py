"""POST /emails and friends: validation, storage, idempotency, batches, schedules, suppressed recipients."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
from conftest import verified_domain


def message(sender: str, **extra) -> dict:
    return {"from": f"Acme <hello@{sender}>", "to": [f"u{uuid.uuid4().hex[:8]}@example.org"], "subject": "Hi",
            "text": "plain", "html": "<p>rich</p>", **extra}


def stored_mime(postgres, email_id: str) -> bytes:
    hex_body = postgres.psql(f"SELECT encode(mime, 'hex') FROM emails WHERE id = '{email_id}'",
                             user="postyard_owner", database="postyard").strip()
    return bytes.fromhex(hex_body)


async def test_an_accepted_email_is_stored_before_its_id_is_returned(client, team, sender, postgres):
    response = await client.post("/emails", json=message(sender), headers=team.headers)
    email_id = response.json()["id"]
    state = postgres.psql(f"SELECT state, last_event FROM emails WHERE id = '{email_id}'",
                          user="postyard_owner", database="postyard").strip()
    assert response.status_code == 200 and state == "queued|queued"


async def test_the_stored_message_is_multipart_alternative_with_message_id_on_the_sending_domain(
        client, team, sender, postgres):
    body = message(sender, headers={"List-Unsubscribe": "<https://example.org/u/1>",
                                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
                   attachments=[{"filename": "a.txt", "content": base64.b64encode(b"hello").decode()}])
    email_id = (await client.post("/emails", json=body, headers=team.headers)).json()["id"]
    msg = message_from_bytes(stored_mime(postgres, email_id))
    parts = [p.get_content_type() for p in msg.walk()]
    assert msg["Message-ID"] == f"<{email_id}@{sender}>" and msg["Date"] and msg["From"] == f"Acme <hello@{sender}>"
    assert parts == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/plain"]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_payload()[1].get_payload(decode=True) == b"hello"


async def test_the_envelope_sender_is_a_verp_address_on_the_bounce_subdomain(client, team, sender, postgres):
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    envelope = postgres.psql(f"SELECT envelope_from FROM emails WHERE id = '{email_id}'",
                             user="postyard_owner", database="postyard").strip()
    assert envelope == f"bounce+{uuid.UUID(email_id).hex}@send.{sender}"


async def test_an_email_is_read_back_with_its_last_event_and_history(client, team, sender):
    email_id = (await client.post("/emails", json=message(sender, tags=[{"name": "k", "value": "v"}]),
                                  headers=team.headers)).json()["id"]
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert fetched["last_event"] == "queued" and [e["type"] for e in fetched["events"]] == ["queued"]
    assert fetched["from"] == f"Acme <hello@{sender}>" and fetched["tags"] == [{"name": "k", "value": "v"}]


async def test_sending_from_an_unverified_domain_is_refused(client, team):
    domain = (await client.post("/domains", json={"name": f"n{uuid.uuid4().hex[:8]}.example.test"},
                                headers=team.headers)).json()
    response = await client.post("/emails", json=message(domain["name"]), headers=team.headers)
    assert response.status_code == 403 and "not verified" in response.json()["message"]


async def test_sending_from_another_teams_domain_is_refused(client, team, other_team, postgres):
    theirs = await verified_domain(client, other_team, postgres)
    response = await client.post("/emails", json=message(theirs["name"]), headers=team.headers)
    assert response.status_code == 403


async def test_a_key_restricted_to_one_domain_cannot_send_from_another(client, team, postgres):
    first, second = await verified_domain(client, team, postgres), await verified_domain(client, team, postgres)
    key = (await client.post("/api-keys", json={"name": "one", "permission": "sending_access",
                                                "domain_id": first["id"]}, headers=team.headers)).json()
    headers = {"Authorization": f"Bearer {key['token']}"}
    allowed = await client.post("/emails", json=message(first["name"]), headers=headers)
    refused = await client.post("/emails", json=message(second["name"]), headers=headers)
    assert allowed.status_code == 200 and refused.status_code == 403


@pytest.mark.parametrize("change", [
    {"subject": "Hi\r\nBcc: victim@example.org"},
    {"headers": {"X-Custom": "a\r\nBcc: victim@example.org"}},
    {"headers": {"Bcc": "victim@example.org"}},
    {"headers": {"Bad Name": "x"}},
    {"to": ["not an address"]},
    {"to": [], "bcc": ["hidden@example.org"]},
    {"from": "Acme <hello@example.org>\r\nBcc: victim@example.org"},
    {"to": [f"u{i}@example.org" for i in range(51)]},
    {"html": None, "text": None},
    {"attachments": [{"filename": "a.txt", "content": "***not base64***"}]},
    {"attachments": [{"filename": "a.txt", "path": "http://169.254.169.254/latest"}]},
    {"scheduled_at": "whenever you like"},
])
async def test_invalid_or_injected_input_is_refused_with_422(client, team, sender, change):
    body = {k: v for k, v in {**message(sender), **change}.items() if v is not None}
    response = await client.post("/emails", json=body, headers=team.headers)
    assert response.status_code == 422 and response.json()["name"] in ("validation_error",)


async def test_a_message_over_the_size_limit_is_refused_with_413(client, team, sender, settings):
    big = base64.b64encode(b"x" * (settings.max_message_bytes + 1)).decode()
    response = await client.post("/emails", json=message(sender, attachments=[{"filename": "big.bin",
                                                                               "content": big}]),
                                 headers=team.headers)
    assert response.status_code == 413 and response.json()["name"] == "payload_too_large"


async def test_the_same_idempotency_key_and_body_return_the_original_response(client, team, sender, postgres):
    body, headers = message(sender), {**team.headers, "Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await client.post("/emails", json=body, headers=headers)
    second = await client.post("/emails", json=body, headers=headers)
    count = postgres.psql(f"SELECT count(*) FROM emails WHERE team_id = '{team.team_id}'",
                          user="postyard_owner", database="postyard").strip()
    assert first.json() == second.json() and second.status_code == 200 and count == "1"


async def test_the_same_idempotency_key_with_another_body_is_a_conflict(client, team, sender):
    headers = {**team.headers, "Idempotency-Key": f"k-{uuid.uuid4()}"}
    await client.post("/emails", json=message(sender), headers=headers)
    response = await client.post("/emails", json=message(sender, subject="Other"), headers=headers)
    assert response.status_code == 409 and response.json()["name"] == "invalid_idempotent_request"


async def test_idempotency_keys_are_per_team(client, team, other_team, sender, postgres):
    theirs = await verified_domain(client, other_team, postgres)
    key = f"k-{uuid.uuid4()}"
    mine = await client.post("/emails", json=message(sender), headers={**team.headers, "Idempotency-Key": key})
    their = await client.post("/emails", json=message(theirs["name"]),
                              headers={**other_team.headers, "Idempotency-Key": key})
    assert mine.status_code == their.status_code == 200 and mine.json() != their.json()


async def test_a_batch_is_accepted_whole_or_refused_whole(client, team, sender, postgres):
    good = await client.post("/emails/batch", json=[message(sender) for _ in range(3)], headers=team.headers)
    bad = await client.post("/emails/batch", json=[message(sender), message(sender, to=["nope"])],
                            headers=team.headers)
    count = postgres.psql(f"SELECT count(*) FROM emails WHERE team_id = '{team.team_id}'",
                          user="postyard_owner", database="postyard").strip()
    assert len(good.json()["data"]) == 3 and bad.status_code == 422 and "emails[1]" in bad.json()["message"]
    assert count == "3"


async def test_a_batch_over_100_is_refused(client, team, sender):
    response = await client.post("/emails/batch", json=[message(sender)] * 101, headers=team.headers)
    assert response.status_code == 422


async def test_the_list_pages_newest_first_with_a_cursor(client, team, sender):
    ids = [(await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"] for _ in range(3)]
    first = (await client.get("/emails?limit=2", headers=team.headers)).json()
    second = (await client.get(f"/emails?limit=2&after={first['data'][-1]['id']}", headers=team.headers)).json()
    back = (await client.get(f"/emails?limit=2&before={second['data'][0]['id']}", headers=team.headers)).json()
    assert [e["id"] for e in first["data"] + second["data"]] == ids[::-1]
    assert first["has_more"] is True and second["has_more"] is False
    assert [e["id"] for e in back["data"]] == ids[::-1][:2]


async def test_a_scheduled_email_can_be_moved_and_canceled(client, team, sender):
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    email_id = (await client.post("/emails", json=message(sender, scheduled_at=later),
                                  headers=team.headers)).json()["id"]
    scheduled = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    moved = await client.patch(f"/emails/{email_id}", json={"scheduled_at": (datetime.now(UTC) + timedelta(
        hours=3)).isoformat()}, headers=team.headers)
    canceled = await client.post(f"/emails/{email_id}/cancel", headers=team.headers)
    again = await client.post(f"/emails/{email_id}/cancel", headers=team.headers)
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert scheduled["last_event"] == "scheduled" and moved.status_code == 200 and canceled.status_code == 200
    assert fetched["last_event"] == "canceled" and again.status_code == 422


async def test_a_suppressed_recipient_is_not_sent_and_gets_a_suppressed_event(client, team, sender, postgres):
    blocked, allowed = f"b{uuid.uuid4().hex[:8]}@example.org", f"a{uuid.uuid4().hex[:8]}@example.org"
    await client.post("/suppressions", json={"email": blocked}, headers=team.headers)
    email_id = (await client.post("/emails", json=message(sender, to=[blocked, allowed]),
                                  headers=team.headers)).json()["id"]
    only_blocked = (await client.post("/emails", json=message(sender, to=[blocked.upper()]),
                                      headers=team.headers)).json()["id"]
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    recipients = postgres.psql(f"SELECT recipients FROM emails WHERE id = '{email_id}'",
                               user="postyard_owner", database="postyard").strip()
    other = (await client.get(f"/emails/{only_blocked}", headers=team.headers)).json()
    assert {"type": "suppressed", "recipient": blocked} in [
        {"type": e["type"], "recipient": e["recipient"]} for e in fetched["events"]]
    assert recipients == "{" + allowed + "}" and other["last_event"] == "suppressed"


async def test_a_sending_access_key_may_send_but_not_manage(client, team, sender):
    key = (await client.post("/api-keys", json={"name": "send", "permission": "sending_access"},
                             headers=team.headers)).json()
    headers = {"Authorization": f"Bearer {key['token']}"}
    sent = await client.post("/emails", json=message(sender), headers=headers)
    listed = await client.get("/emails", headers=headers)
    assert sent.status_code == 200 and listed.status_code == 401
