"""Resend's official Node SDK runs its flows unchanged against the API served by granian, and verifies a
delivery with its own `webhooks.verify`, reading the svix-* headers as Resend's docs do."""

from __future__ import annotations

import json

import pytest
from conftest import unique_domain
from test_emails import message
from test_receiving import mark_receiving, pipe_in
from test_webhooks import _hook
from webhook_support import deliver_all

from tests.inbound_mail import ATTACHMENT, ATTACHMENT_NAME, inbound_message
from tests.node_sdk import run_node_sdk


def test_the_node_sdk_runs_every_flow_it_has(server, server_team, postgres):
    import httpx

    domain = unique_domain()
    created = httpx.post(f"{server}/domains", json={"name": domain},
                         headers={"Authorization": f"Bearer {server_team.key}"}).json()
    postgres.psql(f"UPDATE domains SET status = 'verified' WHERE id = '{created['id']}'",
                  user="postyard_owner", database="postyard")
    seen = run_node_sdk(server, server_team.key, "flows", domain, "http://127.0.0.1:9/hook")
    assert seen["keys"] is True and seen["domain"].startswith("node-") and seen["domains"] >= 1
    assert seen["email"] == "From Node" and seen["listed"] is True and seen["attachment"] == len(b"hello from node")
    assert seen["batch"] == 2 and seen["canceled"] == "canceled"
    assert seen["webhook"] == ["email.delivered"] and seen["webhooks"] == 1
    assert seen["template"] == "published" and seen["templates"] == 2 and seen["rendered"] == "<p>Welcome Bob</p>"


async def test_the_node_sdks_verify_accepts_a_delivery_and_refuses_a_forged_one(client, team, sender, receiver,
                                                                                dispatcher):
    hook = await _hook(client, team, receiver)
    sent = (await client.post("/emails", json=message(sender), headers=team.headers)).json()
    await deliver_all(dispatcher)
    headers, body = receiver.requests[-1]
    delivery = {"payload": body.decode(), "headers": headers, "secret": hook["signing_secret"]}
    event = run_node_sdk("http://unused", "re_unused", "verify", stdin=delivery)
    forged = {**delivery, "payload": body.decode().replace(sent["id"], "0" * 36)}
    assert event["type"] == "email.queued" and event["data"]["email_id"] == sent["id"]
    with pytest.raises(AssertionError, match="No matching signature"):
        run_node_sdk("http://unused", "re_unused", "verify", stdin=forged)
    assert json.loads(body)["data"]["email_id"] == sent["id"]


def test_the_node_sdk_reads_what_a_receiving_domain_took_in(server, server_team, postgres, env):
    import httpx

    headers = {"Authorization": f"Bearer {server_team.key}"}
    created = httpx.post(f"{server}/domains", json={"name": unique_domain(), "capabilities": {"receiving": "enabled"}},
                         headers=headers).json()
    mark_receiving(postgres, created["id"])
    address = f"support@{created['name']}"
    assert pipe_in(env, postgres, inbound_message("alice@sender.example.test", address), [address]) == 0
    email_id = httpx.get(f"{server}/emails/receiving", headers=headers).json()["data"][0]["id"]
    seen = run_node_sdk(server, server_team.key, "receiving", email_id)
    assert seen == {"listed": True, "subject": "Invoice 42", "from": "alice@sender.example.test",
                    "attachment": ATTACHMENT_NAME, "downloaded": len(ATTACHMENT)}
