"""Open and click tracking: off by default; when a domain turns it on, the HTML sent carries a signed pixel and
signed redirects, whose use records `opened` and `clicked` with the reader's address and User-Agent until the
team's retention ends. A changed token is refused and redirects nowhere."""

from __future__ import annotations

import email
import re
from email.message import Message

import msgspec
import pytest
from conftest import PUBLIC_URL, verified_domain
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import create_async_engine

from app.asgi import create_app
from app.db import roles
from app.domain.tracking.links import signer
from app.domain.tracking.retention import forget_readers
from app.lib.crypto import Keyring

HTML = ('<html><body><p>Hello <a href="https://shop.example/offer?id=7&amp;ref=mail">the offer</a>, '
        '<a href="mailto:help@shop.example">help</a></p></body></html>')
BROWSER = "Mozilla/5.0 (tracking test)"


def _db(postgres, sql: str) -> str:
    return postgres.psql(sql, user="postyard_owner", database="postyard").strip()


def _sent_html(postgres, email_id: str) -> str:
    raw = _db(postgres, f"SELECT convert_from(mime, 'UTF8') FROM emails WHERE id = '{email_id}'")
    message: Message = email.message_from_string(raw)
    part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    return part.get_payload(decode=True).decode()


async def _tracked_domain(client, team, postgres, **flags) -> dict:
    domain = await verified_domain(client, team, postgres)
    response = await client.patch(f"/domains/{domain['id']}", json=flags, headers=team.headers)
    assert response.status_code == 200, response.text
    return domain


async def _send(client, team, name: str, html: str = HTML) -> str:
    response = await client.post("/emails", json={"from": f"news@{name}", "to": "reader@example.org",
                                                  "subject": "Offer", "html": html, "text": "Offer"},
                                 headers=team.headers)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def _links(html: str) -> tuple[str, str]:
    """The redirect of the offer link and the pixel, as paths under the public URL."""
    click = re.search(rf'href="{re.escape(PUBLIC_URL)}(/t/c/[^"]+)"', html)
    pixel = re.search(rf'src="{re.escape(PUBLIC_URL)}(/t/o/[^"]+)"', html)
    assert click and pixel, html
    return click.group(1), pixel.group(1)


async def _events(client, team, email_id: str) -> list[dict]:
    return [e for e in (await client.get(f"/emails/{email_id}", headers=team.headers)).json()["events"]
            if e["type"] in ("opened", "clicked")]


async def test_tracking_is_off_by_default_and_the_html_goes_out_as_written(client, team, postgres):
    domain = await verified_domain(client, team, postgres)
    shown = (await client.get(f"/domains/{domain['id']}", headers=team.headers)).json()
    listed = (await client.get("/domains", headers=team.headers)).json()["data"]
    assert (shown["open_tracking"], shown["click_tracking"]) == (False, False)
    assert all(d["open_tracking"] is False and d["click_tracking"] is False for d in listed)
    email_id = await _send(client, team, domain["name"])
    assert _sent_html(postgres, email_id) == HTML


async def test_an_open_and_a_click_record_events_and_webhooks_and_the_email_keeps_its_html(client, team, postgres):
    domain = await _tracked_domain(client, team, postgres, open_tracking=True, click_tracking=True)
    assert (await client.get(f"/domains/{domain['id']}", headers=team.headers)).json()["open_tracking"] is True
    hook = await client.post("/webhooks", json={"endpoint": "http://127.0.0.1:9/hook",
                                                "events": ["email.opened", "email.clicked"]}, headers=team.headers)
    assert hook.status_code == 201, hook.text
    email_id = await _send(client, team, domain["name"])
    sent = _sent_html(postgres, email_id)
    click, pixel = _links(sent)
    assert 'href="mailto:help@shop.example"' in sent  # only web links go through the redirect
    assert (await client.get(f"/emails/{email_id}", headers=team.headers)).json()["html"] == HTML

    opened = await client.get(pixel, headers={"User-Agent": BROWSER})
    assert opened.status_code == 200 and opened.headers["content-type"] == "image/gif"
    assert opened.headers["cache-control"].startswith("no-store")
    followed = await client.get(click, headers={"User-Agent": BROWSER}, follow_redirects=False)
    assert followed.status_code == 302
    assert followed.headers["location"] == "https://shop.example/offer?id=7&ref=mail"

    events = await _events(client, team, email_id)
    assert [e["type"] for e in events] == ["opened", "clicked"]
    assert all(e["detail"]["user_agent"] == BROWSER and e["detail"]["ip"] for e in events)
    assert events[1]["detail"]["link"] == "https://shop.example/offer?id=7&ref=mail"
    payloads = _db(postgres, "SELECT event_type || ' ' || payload FROM webhook_deliveries WHERE webhook_id = "
                             f"'{hook.json()['id']}' ORDER BY created_at").splitlines()
    assert [p.split(" ", 1)[0] for p in payloads] == ["email.opened", "email.clicked"]
    assert '"ipAddress"' in payloads[1] and BROWSER in payloads[1] and BROWSER not in payloads[0]


async def test_opens_alone_leave_the_links_as_written(client, team, postgres):
    domain = await _tracked_domain(client, team, postgres, open_tracking=True)
    sent = _sent_html(postgres, await _send(client, team, domain["name"]))
    assert 'href="https://shop.example/offer?id=7&amp;ref=mail"' in sent and f'src="{PUBLIC_URL}/t/o/' in sent


@pytest.mark.parametrize("change", ["flip", "cut", "append", "swap"])
async def test_a_changed_token_is_refused_and_redirects_nowhere(client, team, postgres, change):
    domain = await _tracked_domain(client, team, postgres, open_tracking=True, click_tracking=True)
    email_id = await _send(client, team, domain["name"])
    click, pixel = _links(_sent_html(postgres, email_id))
    token = click.removeprefix("/t/c/")
    changed = {"flip": token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:], "cut": token[:-6],
               "append": token + "x", "swap": pixel.removeprefix("/t/o/")}[change]
    for path in (f"/t/c/{changed}", f"/t/o/{changed}" if change != "swap" else f"/t/o/{token}"):
        refused = await client.get(path, follow_redirects=False)
        assert refused.status_code == 404 and "location" not in refused.headers, (path, refused.text)
    assert await _events(client, team, email_id) == []


async def test_a_token_signed_with_another_key_for_another_site_is_refused(client, team, postgres):
    """An attacker who makes a token of the same shape, for their own site, without the platform's key."""
    domain = await _tracked_domain(client, team, postgres, click_tracking=True)
    email_id = await _send(client, team, domain["name"])
    attacker = signer(Keyring({"k": b"a" * 32}, "k"))
    forged = attacker.sign([str(team.team_id), email_id, "https://evil.example/"])
    refused = await client.get(f"/t/c/{forged}", follow_redirects=False)
    assert refused.status_code == 404 and "location" not in refused.headers
    assert await _events(client, team, email_id) == []


async def test_readers_details_go_when_the_teams_retention_ends(client, team, postgres):
    domain = await _tracked_domain(client, team, postgres, open_tracking=True, click_tracking=True)
    hook = (await client.post("/webhooks", json={"endpoint": "http://127.0.0.1:9/hook", "events": ["email.clicked"]},
                              headers=team.headers)).json()
    email_id = await _send(client, team, domain["name"])
    click, pixel = _links(_sent_html(postgres, email_id))
    await client.get(pixel, headers={"User-Agent": BROWSER})
    await client.get(click, headers={"User-Agent": BROWSER}, follow_redirects=False)
    _db(postgres, f"UPDATE email_events SET created_at = now() - interval '31 days' WHERE email_id = '{email_id}' "
                  "AND type IN ('opened', 'clicked')")
    _db(postgres, "UPDATE webhook_deliveries SET payload = jsonb_set(CAST(payload AS jsonb), '{data,click,timestamp}', "
                  "to_jsonb(now() - interval '31 days'))::text "
                  f"WHERE webhook_id = '{hook['id']}'")
    worker = create_async_engine(postgres.url(roles.WORKER))
    try:
        forgotten = await forget_readers(worker)
    finally:
        await worker.dispose()
    assert forgotten.events >= 2 and forgotten.deliveries >= 1
    events = await _events(client, team, email_id)
    assert [sorted(e["detail"]) for e in events] == [[], ["link"]]
    payload = _db(postgres, f"SELECT payload FROM webhook_deliveries WHERE webhook_id = '{hook['id']}'")
    assert BROWSER not in payload and '"ipAddress":""' in payload.replace(" ", "")


async def test_tracking_cannot_be_turned_on_where_the_operator_set_no_public_url(settings, team, postgres):
    unset = msgspec.structs.replace(settings, public_url="")
    async with AsyncTestClient(app=create_app(unset), base_url=PUBLIC_URL) as bare:
        domain = await verified_domain(bare, team, postgres)
        refused = await bare.patch(f"/domains/{domain['id']}", json={"click_tracking": True}, headers=team.headers)
        created = await bare.post("/domains", json={"name": f"x{domain['name']}", "open_tracking": True},
                                  headers=team.headers)
        assert refused.status_code == created.status_code == 422
        assert "POSTYARD_PUBLIC_URL" in refused.json()["message"]
        shown = (await bare.get(f"/domains/{domain['id']}", headers=team.headers)).json()
        assert shown["click_tracking"] is False


@pytest.mark.parametrize("value", [0, 1, "true", "yes", []])
async def test_a_tracking_switch_is_a_json_boolean_or_refused(client, team, postgres, value):
    domain = await verified_domain(client, team, postgres)
    refused = await client.patch(f"/domains/{domain['id']}", json={"open_tracking": value}, headers=team.headers)
    created = await client.post("/domains", json={"name": f"y{domain['name']}", "click_tracking": value},
                                headers=team.headers)
    assert refused.status_code == created.status_code == 422, (refused.text, created.text)
    assert (await client.get(f"/domains/{domain['id']}", headers=team.headers)).json()["open_tracking"] is False
