"""The official `resend` Python SDK works against the API served by granian."""

from __future__ import annotations

import httpx
import pytest
import resend
from conftest import unique_domain
from test_receiving import mark_receiving, pipe_in

from tests.inbound_mail import ATTACHMENT, ATTACHMENT_NAME, inbound_message


@pytest.fixture
def sdk(server, server_team):
    """The SDK pointed at our server with the team's key."""
    resend.api_url, resend.api_key = server, server_team.key
    return resend


def test_the_sdk_creates_lists_and_removes_api_keys(sdk):
    created = sdk.ApiKeys.create({"name": "from the sdk"})
    listed = sdk.ApiKeys.list()
    removed = sdk.ApiKeys.remove(created["id"])
    assert created["token"].startswith("sk_live_")
    assert created["id"] in [k["id"] for k in listed["data"]] and removed["deleted"] is True


def test_the_sdk_creates_gets_verifies_updates_lists_and_removes_domains(sdk):
    name = unique_domain()
    created = sdk.Domains.create({"name": name})
    fetched = sdk.Domains.get(created["id"])
    verified = sdk.Domains.verify(created["id"])
    updated = sdk.Domains.update({"id": created["id"], "tls": "enforced"})
    listed = sdk.Domains.list()
    removed = sdk.Domains.remove(created["id"])
    assert fetched["name"] == name and {r["record"] for r in fetched["records"]} >= {"DKIM", "SPF"}
    assert verified["id"] == created["id"] and updated["id"] == created["id"]
    assert name in [d["name"] for d in listed["data"]] and removed["deleted"] is True


def test_the_sdk_raises_resends_error_for_another_teams_domain(sdk, server_team, settings):
    import asyncio

    from app.cli import create_team

    _, other_key = asyncio.run(create_team(settings, "sdk-other"))
    resend.api_key = other_key
    theirs = sdk.Domains.create({"name": unique_domain()})
    resend.api_key = server_team.key
    with pytest.raises(resend.exceptions.ResendError) as error:
        sdk.Domains.get(theirs["id"])
    assert "not found" in str(error.value).lower()


def test_the_sdk_sends_an_email_and_reads_it_back(sdk, postgres):
    domain = sdk.Domains.create({"name": unique_domain()})
    postgres.psql(f"UPDATE domains SET status = 'verified' WHERE id = '{domain['id']}'",
                  user="postyard_owner", database="postyard")
    sent = sdk.Emails.send({"from": f"Acme <hello@{domain['name']}>", "to": ["bob@example.org"], "subject": "Hi",
                            "html": "<p>Hi</p>", "text": "Hi", "tags": [{"name": "kind", "value": "welcome"}],
                            "attachments": [{"filename": "a.txt", "content": list(b"hello")}]},
                           {"idempotency_key": "sdk-1"})
    again = sdk.Emails.send({"from": f"Acme <hello@{domain['name']}>", "to": ["bob@example.org"], "subject": "Hi",
                             "html": "<p>Hi</p>", "text": "Hi", "tags": [{"name": "kind", "value": "welcome"}],
                             "attachments": [{"filename": "a.txt", "content": list(b"hello")}]},
                            {"idempotency_key": "sdk-1"})
    fetched = sdk.Emails.get(sent["id"])
    listed = sdk.Emails.list()
    batch = sdk.Batch.send([{"from": f"hello@{domain['name']}", "to": ["a@example.org"], "subject": "1", "text": "1"},
                            {"from": f"hello@{domain['name']}", "to": ["b@example.org"], "subject": "2", "text": "2"}])
    assert again["id"] == sent["id"] and fetched["subject"] == "Hi" and fetched["last_event"] == "queued"
    assert sent["id"] in [e["id"] for e in listed["data"]] and len(batch["data"]) == 2


def test_the_sdk_manages_suppressions_and_webhooks(sdk):
    hook = sdk.Webhooks.create({"endpoint": "http://127.0.0.1:9/hook", "events": ["email.delivered"]})
    fetched = sdk.Webhooks.get(hook["id"])
    removed = sdk.Webhooks.remove(hook["id"])
    added = sdk.Suppressions.add({"email": "gone@example.org"})
    got = sdk.Suppressions.get("gone@example.org")
    listed = sdk.Suppressions.list()
    unsuppressed = sdk.Suppressions.remove(added["id"])
    assert hook["signing_secret"].startswith("whsec_") and fetched["endpoint"] == "http://127.0.0.1:9/hook"
    assert removed["deleted"] is True and got["id"] == added["id"] and listed["data"][0]["email"] == "gone@example.org"
    assert unsuppressed["deleted"] is True


def test_the_sdk_schedules_reschedules_and_cancels_an_email(sdk, postgres):
    from datetime import UTC, datetime, timedelta

    domain = sdk.Domains.create({"name": unique_domain()})
    postgres.psql(f"UPDATE domains SET status = 'verified' WHERE id = '{domain['id']}'",
                  user="postyard_owner", database="postyard")
    later = datetime.now(UTC) + timedelta(hours=1)
    sent = sdk.Emails.send({"from": f"hello@{domain['name']}", "to": ["bob@example.org"], "subject": "Later",
                            "text": "Later", "scheduled_at": later.isoformat()})
    moved = sdk.Emails.update({"id": sent["id"], "scheduled_at": (later + timedelta(hours=1)).isoformat()})
    canceled = sdk.Emails.cancel(sent["id"])
    assert moved["id"] == canceled["id"] == sent["id"] and sdk.Emails.get(sent["id"])["last_event"] == "canceled"


def _verified(sdk, postgres) -> dict:
    domain = sdk.Domains.create({"name": unique_domain()})
    postgres.psql(f"UPDATE domains SET status = 'verified' WHERE id = '{domain['id']}'",
                  user="postyard_owner", database="postyard")
    return domain


def test_the_sdk_renames_a_key_pages_lists_and_updates_a_webhook(sdk):
    key = sdk.ApiKeys.create({"name": "before"})
    renamed = sdk.ApiKeys.update({"id": key["id"], "name": "after"})
    names = {k["id"]: k["name"] for k in sdk.ApiKeys.list()["data"]}
    first = sdk.ApiKeys.list({"limit": 1})
    rest = sdk.ApiKeys.list({"limit": 100, "after": first["data"][0]["id"]})
    hook = sdk.Webhooks.create({"endpoint": "http://127.0.0.1:9/hook", "events": ["email.delivered"]})
    updated = sdk.Webhooks.update({"webhook_id": hook["id"], "events": ["email.bounced"]})
    assert renamed["id"] == key["id"] and names[key["id"]] == "after"
    assert first["has_more"] is True and len(first["data"]) + len(rest["data"]) == len(names)
    assert updated["id"] == hook["id"] and sdk.Webhooks.get(hook["id"])["events"] == ["email.bounced"]


def test_the_sdk_lists_and_reads_a_sent_emails_attachments(sdk, postgres, server):
    domain = _verified(sdk, postgres)
    sent = sdk.Emails.send({"from": f"hello@{domain['name']}", "to": ["bob@example.org"], "subject": "Files",
                            "text": "see attached", "attachments": [{"filename": "a.txt", "content": list(b"hello")}]})
    listed = sdk.Emails.Attachments.list(sent["id"])
    one = sdk.Emails.Attachments.get(sent["id"], listed["data"][0]["id"])
    assert one["filename"] == "a.txt" and one["size"] == 5 and one["download_url"].startswith(f"{server}/emails/")
    assert httpx.get(one["download_url"]).content == b"hello"  # under POSTYARD_PUBLIC_URL, as the server is set


def test_the_sdk_manages_templates_and_sends_with_one(sdk, postgres):
    domain = _verified(sdk, postgres)
    created = sdk.Templates.create({
        "name": "welcome", "alias": f"welcome-{domain['id'][:8]}", "from": f"hello@{domain['name']}",
        "subject": "Welcome {{{NAME}}}", "html": "<p>Hello {{{NAME}}}</p>",
        "variables": [{"key": "NAME", "type": "string", "fallback_value": "friend"}]})
    updated = sdk.Templates.update({"id": created["id"], "text": "Hello {{{NAME}}}"})
    published = sdk.Templates.publish(created["id"])
    copy = sdk.Templates.duplicate(created["id"])
    listed = sdk.Templates.list()
    fetched = sdk.Templates.get(created["id"])
    sent = sdk.Emails.send({"to": ["bob@example.org"], "template": {"id": created["id"],
                                                                    "variables": {"NAME": "Bob"}}})
    removed = sdk.Templates.remove(copy["id"])
    assert updated["id"] == published["id"] == created["id"] and fetched["status"] == "published"
    assert {t["id"] for t in listed["data"]} >= {created["id"], copy["id"]} and removed["deleted"] is True
    assert sdk.Emails.get(sent["id"])["subject"] == "Welcome Bob"


def test_the_sdk_schedules_in_natural_language(sdk, postgres):
    domain = _verified(sdk, postgres)
    sent = sdk.Emails.send({"from": f"hello@{domain['name']}", "to": ["bob@example.org"], "subject": "Soon",
                            "text": "Soon", "scheduled_at": "in 1 hour"})
    assert sdk.Emails.get(sent["id"])["last_event"] == "scheduled"


def test_the_sdk_shares_an_email(sdk, postgres):
    domain = _verified(sdk, postgres)
    sent = sdk.Emails.send({"from": f"hello@{domain['name']}", "to": ["bob@example.org"], "subject": "Shared",
                            "text": "Shared"})
    shared = sdk.Emails.share(sent["id"], {"expires_in": "10m"})
    assert shared["id"] == sent["id"] and "/shared?token=" in shared["url"]


def test_the_sdk_reads_sending_metrics(sdk):
    answer = sdk.Emails.metrics({"dimensions": ["period"], "metrics": ["sent", "delivered"]})
    assert answer["object"] == "metrics" and set(answer["totals"]) == {"sent", "delivered"}


def test_the_sdk_reads_what_a_receiving_domain_took_in(sdk, server_team, postgres, env):
    domain = sdk.Domains.create({"name": unique_domain()})
    sdk.Domains.update({"id": domain["id"], "capabilities": {"receiving": "enabled"}})
    mark_receiving(postgres, domain["id"])
    address = f"support@{domain['name']}"
    assert pipe_in(env, postgres, inbound_message("alice@sender.example.test", address), [address]) == 0
    listed = sdk.Emails.Receiving.list()
    assert [e["to"] for e in listed["data"]] == [[address]]
    email = sdk.Emails.Receiving.get(listed["data"][0]["id"])
    assert (email["from"], email["subject"], email["text"].strip()) == (
        "alice@sender.example.test", "Invoice 42", "Your invoice is attached.")
    attachments = sdk.Emails.Receiving.Attachments.list(email["id"])
    one = sdk.Emails.Receiving.Attachments.get(email["id"], attachments["data"][0]["id"])
    assert (one["filename"], one["size"]) == (ATTACHMENT_NAME, len(ATTACHMENT))
    assert httpx.get(one["download_url"]).content == ATTACHMENT
