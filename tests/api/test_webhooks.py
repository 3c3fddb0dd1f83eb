"""Webhooks: endpoints refused when not public, deliveries signed per Standard Webhooks, retried, disabled, replayed."""

from __future__ import annotations

import json
import uuid

import msgspec
import pytest
import resend
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from test_emails import message
from webhook_support import deliver_all

from app.config import Settings
from app.domain.domains.dns import make_resolver
from app.domain.webhooks.dispatcher import Dispatcher
from app.domain.webhooks.ssrf import UnsafeUrl, check_url, vet_url
from app.lib.crypto import Keyring
from tests.resend_spec import webhook_event_validator


async def _hook(client, team, receiver, events=("email.queued",)) -> dict:
    response = await client.post("/webhooks", json={"endpoint": receiver.url, "events": list(events)},
                                 headers=team.headers)
    assert response.status_code == 201
    return response.json()


def verify(secret: str, headers: dict[str, str], body: bytes) -> dict:
    return Webhook(secret).verify(body, {"webhook-id": headers["webhook-id"],
                                         "webhook-timestamp": headers["webhook-timestamp"],
                                         "webhook-signature": headers["webhook-signature"]})


async def test_a_delivery_is_signed_and_verifies_with_standardwebhooks(client, team, sender, receiver, dispatcher):
    hook = await _hook(client, team, receiver)
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    await deliver_all(dispatcher)
    headers, body = receiver.requests[-1]
    payload = verify(hook["signing_secret"], headers, body)
    assert hook["signing_secret"].startswith("whsec_")
    assert payload["type"] == "email.queued" and payload["data"]["email_id"] == email_id
    with pytest.raises(WebhookVerificationError):
        verify(hook["signing_secret"], headers, body.replace(b"queued", b"bounced"))


async def test_resends_sdk_verifies_a_delivery_from_its_svix_headers(client, team, sender, receiver, dispatcher):
    hook = await _hook(client, team, receiver)
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    await deliver_all(dispatcher)
    headers, body = receiver.requests[-1]
    svix = {"id": headers["svix-id"], "timestamp": headers["svix-timestamp"], "signature": headers["svix-signature"]}
    event = resend.Webhooks.verify({"payload": body.decode(), "headers": svix,
                                    "webhook_secret": hook["signing_secret"]})
    assert event["data"]["email_id"] == email_id
    assert [headers[f"svix-{n}"] for n in svix] == [headers[f"webhook-{n}"] for n in svix]
    with pytest.raises(ValueError, match="no matching signature"):
        resend.Webhooks.verify({"payload": body.decode().replace(email_id, str(uuid.uuid4())), "headers": svix,
                                "webhook_secret": hook["signing_secret"]})


async def test_a_suppressed_recipient_is_delivered_in_resends_shape(client, team, sender, receiver, dispatcher):
    await _hook(client, team, receiver, events=["email.suppressed"])
    await client.post("/suppressions", json={"email": "gone@example.org"}, headers=team.headers)
    await client.post("/emails", json=message(sender, to=["gone@example.org"]), headers=team.headers)
    await deliver_all(dispatcher)
    body = json.loads(receiver.requests[-1][1])
    errors = [e.message for e in webhook_event_validator("email.suppressed").iter_errors(body)]
    assert errors == [] and body["data"]["suppressed"]["type"] == "OnAccountSuppressionList"
    assert body["data"]["recipient"] == "gone@example.org"


async def test_the_secret_is_stored_encrypted(client, team, receiver, postgres):
    hook = await _hook(client, team, receiver)
    stored = postgres.psql(f"SELECT encode(secret_ciphertext, 'escape') FROM webhooks WHERE id = '{hook['id']}'",
                           user="postyard_owner", database="postyard")
    assert hook["signing_secret"][6:] not in stored and hook["signing_secret"] not in stored


async def test_only_subscribed_events_are_delivered(client, team, sender, receiver, dispatcher):
    await _hook(client, team, receiver, events=["email.delivered"])
    await client.post("/emails", json=message(sender), headers=team.headers)
    await deliver_all(dispatcher)
    assert receiver.requests == []


async def test_a_failed_delivery_is_retried_with_the_same_webhook_id(client, team, sender, receiver, dispatcher):
    hook = await _hook(client, team, receiver)
    receiver.statuses = [500, 503]
    await client.post("/emails", json=message(sender), headers=team.headers)
    await deliver_all(dispatcher, rounds=4)
    ids = {h["webhook-id"] for h, _ in receiver.requests}
    log = (await client.get(f"/webhooks/{hook['id']}/deliveries", headers=team.headers)).json()["data"]
    assert len(receiver.requests) == 3 and len(ids) == 1
    assert log[0]["state"] == "succeeded" and log[0]["attempts"] == 3


async def test_an_endpoint_that_keeps_failing_is_disabled(client, team, sender, receiver, dispatcher):
    hook = await _hook(client, team, receiver)
    receiver.statuses = [500] * 10
    await client.post("/emails", json=message(sender), headers=team.headers)
    await deliver_all(dispatcher, rounds=6)
    fetched = (await client.get(f"/webhooks/{hook['id']}", headers=team.headers)).json()
    log = (await client.get(f"/webhooks/{hook['id']}/deliveries", headers=team.headers)).json()["data"]
    assert fetched["status"] == "disabled" and log[0]["state"] == "failed" and log[0]["attempts"] == 4


async def test_a_delivery_can_be_replayed_by_hand(client, team, sender, receiver, dispatcher):
    hook = await _hook(client, team, receiver)
    await client.post("/emails", json=message(sender), headers=team.headers)
    await deliver_all(dispatcher)
    first = (await client.get(f"/webhooks/{hook['id']}/deliveries", headers=team.headers)).json()["data"][0]
    replay = await client.post(f"/webhooks/{hook['id']}/deliveries/{first['id']}/replay", headers=team.headers)
    await deliver_all(dispatcher)
    assert replay.status_code == 200 and len(receiver.requests) == 2
    assert receiver.requests[0][1] == receiver.requests[1][1]


async def test_after_rotation_both_secrets_sign_during_the_grace_period(client, team, sender, receiver, dispatcher):
    hook = await _hook(client, team, receiver)
    rotated = (await client.post(f"/webhooks/{hook['id']}/rotate-secret", headers=team.headers)).json()
    await client.post("/emails", json=message(sender), headers=team.headers)
    await deliver_all(dispatcher)
    headers, body = receiver.requests[-1]
    assert rotated["signing_secret"] != hook["signing_secret"]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify(hook["signing_secret"], headers, body) == verify(rotated["signing_secret"], headers, body)


async def test_webhooks_are_listed_updated_and_removed(client, team, receiver):
    hook = await _hook(client, team, receiver)
    updated = await client.patch(f"/webhooks/{hook['id']}", json={"events": ["email.bounced"], "status": "disabled"},
                                 headers=team.headers)
    listed = (await client.get("/webhooks", headers=team.headers)).json()["data"]
    removed = await client.delete(f"/webhooks/{hook['id']}", headers=team.headers)
    gone = await client.get(f"/webhooks/{hook['id']}", headers=team.headers)
    assert updated.status_code == 200 and listed[0]["events"] == ["email.bounced"]
    assert listed[0]["status"] == "disabled" and removed.json()["deleted"] is True and gone.status_code == 404


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://localhost:8080/hook", "http://10.1.2.3/hook", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/hook", "http://[fd00:ec2::254]/",
    "http://100.64.0.1/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/", "ftp://example.org/",
    "http://user:pw@93.184.215.14/",
])
async def test_non_public_webhook_urls_are_refused_when_the_setting_is_off(url):
    with pytest.raises(UnsafeUrl):
        await check_url(url, timeout=1)


def _zone_resolve(settings: Settings):
    """Resolve A and AAAA through the test DNS zone (the guard's resolver seam; production uses getaddrinfo)."""
    import dns.exception

    resolver = make_resolver(settings)

    async def resolve(host: str, port: int) -> list[str]:
        addresses = []
        for rdtype in ("A", "AAAA"):
            try:
                addresses += [r.to_text() for r in await resolver.resolve(host, rdtype)]
            except dns.exception.DNSException:
                pass
        if not addresses:
            raise OSError(f"{host} does not resolve")
        return addresses

    return resolve


@pytest.mark.parametrize("records", [
    [("A", "93.184.215.14"), ("A", "10.0.0.5")],
    [("A", "93.184.215.14"), ("AAAA", "64:ff9b::a9fe:a9fe")],
    [("AAAA", "2606:4700:4700::1111"), ("AAAA", "fec0::1")],
    [("A", "10.0.0.5"), ("A", "93.184.215.14")],
])
async def test_a_name_resolving_to_one_public_and_one_private_address_is_refused(settings, dns_zone, records):
    name = f"hook{uuid.uuid4().hex[:8]}.example.test"
    for rdtype, value in records:
        dns_zone.add(name, rdtype, value)
    with pytest.raises(UnsafeUrl, match="non-public"):
        await vet_url(f"https://{name}/hook", timeout=2, resolve=_zone_resolve(settings))


async def test_a_name_resolving_only_to_public_addresses_is_pinned_to_one_of_them(settings, dns_zone):
    name = f"hook{uuid.uuid4().hex[:8]}.example.test"
    for rdtype, value in [("A", "93.184.215.14"), ("A", "1.1.1.1"), ("AAAA", "2606:4700:4700::1111")]:
        dns_zone.add(name, rdtype, value)
    vetted = await vet_url(f"https://{name}/hook", timeout=2, resolve=_zone_resolve(settings))
    assert vetted.address in {"93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"}
    assert vetted.host_header == name and vetted.pinned_url.endswith(":443/hook")


@pytest.mark.parametrize("url", [
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "http://[::a9fe:a9fe]/", "http://[::ffff:a9fe:a9fe]/",
    "http://[2002:a9fe:a9fe::1]/", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "http://[fec0::1]/",
])
async def test_the_api_refuses_endpoints_that_embed_or_reach_a_non_public_address(settings, team, url):
    from litestar.testing import AsyncTestClient

    from app.asgi import create_app

    strict = msgspec.structs.replace(settings, webhook_allowed_networks="")
    async with AsyncTestClient(app=create_app(strict), base_url="https://testserver.local") as strict_client:
        response = await strict_client.post("/webhooks", json={"endpoint": url, "events": ["email.sent"]},
                                            headers=team.headers)
    assert response.status_code == 422 and response.json()["name"] == "invalid_endpoint"


async def test_the_api_refuses_a_loopback_endpoint_when_private_addresses_are_not_allowed(settings, team):
    from litestar.testing import AsyncTestClient

    from app.asgi import create_app

    strict = msgspec.structs.replace(settings, webhook_allowed_networks="")
    async with AsyncTestClient(app=create_app(strict), base_url="https://testserver.local") as strict_client:
        response = await strict_client.post("/webhooks", json={"endpoint": "http://127.0.0.1:9/hook",
                                                               "events": ["email.sent"]}, headers=team.headers)
    assert response.status_code == 422 and response.json()["name"] == "invalid_endpoint"


async def test_the_dispatcher_refuses_to_post_to_a_private_address_when_not_allowed(
        client, team, sender, receiver, owner_engine, settings: Settings):
    hook = await _hook(client, team, receiver)
    strict = msgspec.structs.replace(settings, webhook_allowed_networks="")
    dispatcher = Dispatcher(strict, owner_engine, Keyring(settings.data_keys, settings.active_data_key_id))
    try:
        await client.post("/emails", json=message(sender), headers=team.headers)
        await deliver_all(dispatcher)
    finally:
        await dispatcher.close()
    log = (await client.get(f"/webhooks/{hook['id']}/deliveries", headers=team.headers)).json()["data"]
    assert receiver.requests == [] and "non-public" in log[0]["last_error"]


async def test_a_delivery_goes_to_the_vetted_address_with_the_endpoints_host_header(client, team, sender, receiver,
                                                                                   dispatcher):
    by_name = receiver.url.replace("127.0.0.1", "localhost")
    await client.post("/webhooks", json={"endpoint": by_name, "events": ["email.queued"]}, headers=team.headers)
    await client.post("/emails", json=message(sender), headers=team.headers)
    await deliver_all(dispatcher)
    headers, _ = receiver.requests[-1]
    assert headers["host"] == by_name.split("/")[2]
