"""The console's emails: the activity log's filters and pages, a message's timeline, headers and sandboxed HTML,
and canceling or rescheduling a scheduled email, scoped to the team and its roles."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import urlencode

import pytest
from conftest import TeamKey, verified_domain
from console_pages import Page, console_owner, console_page, post_form
from test_emails import message
from test_outbox import db, drain

from app.console.email_queries import PAGE_SIZE
from app.lib.headers import EMAIL_PREVIEW_CSP


@pytest.fixture(autouse=True)
def _see_redirects(client) -> None:
    client.follow_redirects = False


async def _owner(client, postgres) -> tuple[dict, TeamKey, str]:
    """A signed-in owner, a full-access key of their team and a verified domain of it."""
    owner = await console_owner(client)
    key = await client.post("/api-keys", json={"name": "emails"}, headers={"x-csrf-token": owner["csrf_token"]})
    assert key.status_code == 201, key.text
    team = TeamKey(uuid.UUID(owner["team_id"]), key.json()["token"])
    return owner, team, (await verified_domain(client, team, postgres))["name"]


def _insert(postgres, team_id, count: int, *, subject: str, to: str = "someone@example.org",
            last_event: str = "delivered", tags: list[dict] | None = None, domain: str | None = None,
            minutes_ago: int = 0, same_time: bool = False) -> None:
    """`count` settled emails of the team, written directly (numbered subjects, a minute apart unless same_time)."""
    domain_id = f"(SELECT id FROM domains WHERE name = '{domain}')" if domain else "NULL"
    age = f"{minutes_ago}" if same_time else f"{minutes_ago} + i"
    db(postgres, "INSERT INTO emails (id, team_id, mode, domain_id, from_address, to_addresses, subject, tags, "
                 "message_id, envelope_from, recipients, size, state, last_event, created_at) "
                 f"SELECT gen_random_uuid(), '{team_id}', 'live', {domain_id}, 'a@example.test', ARRAY['{to}'], "
                 f"'{subject} ' || i, '{json.dumps(tags or [])}', gen_random_uuid() || '@example.test', "
                 f"'b@example.test', ARRAY['{to}'], 10, 'sent', '{last_event}', "
                 f"date_trunc('second', now()) - make_interval(mins => {age}) FROM generate_series(1, {count}) i")


def _subjects(page: Page) -> list[str]:
    return [page.text_of("tr", data_email_id=row.attrs["data-email-id"]).split(" UTC ")[1].split(" ")[0]
            for row in page.find("tr") if "data-email-id" in row.attrs]


def _ids(page: Page) -> list[str]:
    return [row.attrs["data-email-id"] for row in page.find("tr") if "data-email-id" in row.attrs]


async def _log(client, **filters: str) -> Page:
    return await console_page(client, f"/console/emails?{urlencode(filters)}")


async def test_the_log_lists_the_teams_emails_newest_first_each_linking_to_its_message(client, postgres,
                                                                                       other_team):
    owner, _, _ = await _owner(client, postgres)
    _insert(postgres, owner["team_id"], 3, subject="mine")
    _insert(postgres, other_team.team_id, 2, subject="theirs")
    page = await _log(client)
    assert _subjects(page) == ["mine", "mine", "mine"]
    ids = _ids(page)
    assert [a.attrs["href"] for a in page.find("a") if a.attrs.get("href", "").startswith("/console/emails/")] == \
        [f"/console/emails/{i}" for i in ids]
    assert "mine 1" in page.text_of("tr", data_email_id=ids[0])  # the newest first
    assert not page.find("nav", aria_label="Pages of emails")


async def test_each_filter_narrows_the_log_to_the_matching_emails(client, postgres):
    owner, team, sender = await _owner(client, postgres)
    team_id = owner["team_id"]
    _insert(postgres, team_id, 2, subject="alice", to="Alice.Smith@example.org")
    _insert(postgres, team_id, 1, subject="bounce", last_event="bounced")
    _insert(postgres, team_id, 1, subject="tagged", tags=[{"name": "kind", "value": "welcome"}])
    _insert(postgres, team_id, 1, subject="tagged2", tags=[{"name": "kind", "value": "reset"}])
    _insert(postgres, team_id, 1, subject="fromdomain", domain=sender)
    _insert(postgres, team_id, 1, subject="old", minutes_ago=3 * 24 * 60)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    three_days_ago = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 3 * 86400 - 60))
    expected = {
        (("recipient", "alice.smith@"),): {"alice"},
        (("recipient", "_"),): set(),  # LIKE's wildcards are taken literally
        (("status", "bounced"),): {"bounce"},
        (("tag", "kind"),): {"tagged", "tagged2"},
        (("tag", "kind:welcome"),): {"tagged"},
        (("domain", sender),): {"fromdomain"},
        (("since", today),): {"alice", "bounce", "tagged", "tagged2", "fromdomain"},
        (("until", three_days_ago),): {"old"},
        (("status", "delivered"), ("recipient", "alice")): {"alice"},
    }
    for filters, subjects in expected.items():
        page = await _log(client, **dict(filters))
        assert set(_subjects(page)) == subjects, filters
        if filters[0][0] == "recipient" and subjects:
            assert page.find("input", name="recipient")[0].attrs["value"] == filters[0][1]
    assert [o.attrs["value"] for o in (await _log(client)).find("option") if o.attrs["value"].endswith(sender)] \
        == [sender]


@pytest.mark.parametrize("query, message", [
    ("status=sending", "status must be one of"),
    ("tag=no spaces", "tag must be a tag's name, or name:value"),
    ("since=yesterday", "since must be a date (YYYY-MM-DD)"),
    ("since=2026-02-02&until=2026-01-01", "since must not be after until"),
    ("after=not-an-id", "after must be an email id"),
])
async def test_a_wrong_filter_shows_the_reason(client, postgres, query, message):
    await console_owner(client)
    response = await client.get(f"/console/emails?{query}")
    assert response.status_code == 422
    assert Page(response.text).text_of(role="alert").startswith(message)


async def test_the_pages_walk_every_email_once_forward_and_back(client, postgres):
    owner, _, _ = await _owner(client, postgres)
    _insert(postgres, owner["team_id"], 70, subject="spread")
    _insert(postgres, owner["team_id"], 50, subject="tied", minutes_ago=30, same_time=True)  # ties on created_at
    pages, path = [], "/console/emails?status=delivered"
    while path:
        page = await console_page(client, path)
        pages.append(page)
        older = [a for a in page.find("a") if a.attrs.get("rel") == "next"]
        path = older[0].attrs["href"] if older else ""
        assert "status=delivered" in (path or "status=delivered")
    assert [len(_ids(p)) for p in pages] == [PAGE_SIZE, PAGE_SIZE, 120 - 2 * PAGE_SIZE]
    walked = [i for p in pages for i in _ids(p)]
    stored = db(postgres, f"SELECT string_agg(id::text, ',' ORDER BY created_at DESC, id DESC) FROM emails "
                          f"WHERE team_id = '{owner['team_id']}'").split(",")
    assert walked == stored
    assert not [a for a in pages[0].find("a") if a.attrs.get("rel") == "prev"]
    back = pages[-1]
    for expected in reversed(pages[:-1]):
        back = await console_page(client, [a for a in back.find("a") if a.attrs.get("rel") == "prev"][0].attrs["href"])
        assert _ids(back) == _ids(expected)
    assert not [a for a in back.find("a") if a.attrs.get("rel") == "prev"]


async def test_another_teams_email_is_not_found(client, postgres, other_team):
    await console_owner(client)
    _insert(postgres, other_team.team_id, 1, subject="theirs")
    theirs = db(postgres, f"SELECT id FROM emails WHERE team_id = '{other_team.team_id}'")
    for path in ("", "/html", "/source"):
        response = await client.get(f"/console/emails/{theirs}{path}")
        assert response.status_code == 404, path
        assert Page(response.text).text_of(role="alert") == "Email not found"
    token = (await console_page(client, "/console/emails")).csrf_token()
    response = await client.post(f"/console/emails/{theirs}/cancel", data={"csrf_token": token})
    assert response.status_code == 404


async def _sent(client, settings, owner_engine, postgres, team: TeamKey, sender: str, **extra) -> str:
    """An email sent through the API and handed to the MTA, with a delivery recorded the way the log follower does."""
    email_id = (await client.post("/emails", json=message(sender, **extra), headers=team.headers)).json()["id"]
    await drain(settings, owner_engine)
    detail = json.dumps({"dsn": "2.0.0", "status": "2.0.0", "relay": "mx.example.org[192.0.2.1]:25",
                         "reply": "250 2.0.0 Ok: queued as 4Xyz"})
    db(postgres, "INSERT INTO email_events (id, team_id, email_id, type, recipient, detail) "
                 f"SELECT gen_random_uuid(), team_id, id, 'delivered', to_addresses[1], '{detail}' "
                 f"FROM emails WHERE id = '{email_id}'")
    return email_id


async def test_the_message_shows_its_fields_its_events_as_a_timeline_and_its_headers(
        client, settings, owner_engine, smtp_sink, postgres):
    _, team, sender = await _owner(client, postgres)
    email_id = await _sent(client, settings, owner_engine, postgres, team, sender, cc=["copy@example.org"],
                           tags=[{"name": "kind", "value": "welcome"}], subject="Welcome, Zoë")
    page = await console_page(client, f"/console/emails/{email_id}")
    assert page.text_of("h1") == "Welcome, Zoë"
    assert "copy@example.org" in page.text and "kind:welcome" in page.text
    assert page.text_of("dd", data_field="state") == "sent"
    assert [li.attrs["data-event"] for li in page.find("li") if "data-event" in li.attrs] == \
        ["queued", "sent", "delivered"]
    delivered = page.text_of("li", data_event="delivered")
    assert "Status 2.0.0" in delivered and "Remote reply 250 2.0.0 Ok: queued as 4Xyz" in delivered
    assert "mx.example.org[192.0.2.1]:25" in delivered
    header_names = [" ".join("".join(e.children_text).split()) for e in page.find("th", scope="row")]
    assert {"From", "To", "Cc", "Subject", "Message-ID", "Date"} <= set(header_names), header_names
    subject_row = page.elements.index(page.find("th", scope="row")[header_names.index("Subject")])
    assert "".join(page.elements[subject_row + 1].children_text).strip() == "Welcome, Zoë"  # decoded
    assert f"<{email_id}@{sender}>" in page.text
    source = page.text_of("pre", **{"class": "source"})
    assert source.startswith(header_names[0]) and "rich" in source
    assert page.find("a", href=f"/console/emails/{email_id}/source")
    saved = await client.get(f"/console/emails/{email_id}/source")
    assert saved.status_code == 200 and saved.headers["content-type"].startswith("message/rfc822")
    assert f"Message-ID: <{email_id}@{sender}>".encode() in saved.content


async def test_the_html_is_shown_in_a_sandboxed_frame_under_a_csp_that_loads_nothing_remote(
        client, settings, owner_engine, smtp_sink, postgres):
    _, team, sender = await _owner(client, postgres)
    html = '<p>Hi</p><img src="https://evil.example/pixel.gif"><script>alert(1)</script>'
    email_id = await _sent(client, settings, owner_engine, postgres, team, sender, html=html)
    frame = (await console_page(client, f"/console/emails/{email_id}")).find("iframe")[0]
    assert frame.attrs["src"] == f"/console/emails/{email_id}/html" and frame.attrs["sandbox"] == ""
    preview = await client.get(frame.attrs["src"])
    assert preview.status_code == 200 and preview.text == html  # served as stored; the CSP is the guard
    csp = preview.headers["content-security-policy"]
    assert csp == EMAIL_PREVIEW_CSP
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert directives["default-src"] == ["'none'"] and directives["img-src"] == ["data:"]
    assert "script-src" not in directives and "sandbox" in directives  # no script, no https: image
    assert directives["frame-ancestors"] == ["'self'"]
    assert preview.headers["x-frame-options"] == "SAMEORIGIN"
    # The console page itself keeps its own policy and may not be framed.
    page = await client.get(f"/console/emails/{email_id}")
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


async def test_a_purged_email_shows_its_events_but_no_content_or_source(
        client, settings, owner_engine, smtp_sink, postgres):
    _, team, sender = await _owner(client, postgres)
    email_id = await _sent(client, settings, owner_engine, postgres, team, sender)
    db(postgres, "UPDATE emails SET mime = NULL, html = NULL, text_body = NULL, purged_at = now() "
                 f"WHERE id = '{email_id}'")
    page = await console_page(client, f"/console/emails/{email_id}")
    assert not page.find("pre") and not page.find("iframe") and not page.find("table")
    assert "were removed on" in page.text_of("p", **{"class": "purged"})
    assert len([li for li in page.find("li") if "data-event" in li.attrs]) == 3
    for path in ("html", "source"):
        assert (await client.get(f"/console/emails/{email_id}/{path}")).status_code == 404


async def _scheduled(client, postgres) -> tuple[dict, str]:
    owner, team, sender = await _owner(client, postgres)
    later = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
    sent = await client.post("/emails", json=message(sender, scheduled_at=later), headers=team.headers)
    assert sent.status_code == 200, sent.text
    return owner, sent.json()["id"]


def _state(postgres, email_id: str) -> str:
    return db(postgres, f"SELECT state || ' ' || last_event FROM emails WHERE id = '{email_id}'")


async def test_an_owner_cancels_a_scheduled_email(client, postgres):
    _, email_id = await _scheduled(client, postgres)
    path = f"/console/emails/{email_id}"
    response = await post_form(client, f"{path}/cancel", {}, csrf_from=path)
    assert response.status_code == 303 and response.headers["location"] == path
    assert _state(postgres, email_id) == "canceled canceled"
    page = await console_page(client, path)
    assert page.text_of(role="status") == "The email was canceled; it will not be sent."
    assert not page.find("form", action=f"{path}/cancel")
    again = await post_form(client, f"{path}/cancel", {}, csrf_from=path)
    assert again.status_code == 422
    assert Page(again.text).text_of(role="alert") == "Only an email scheduled for later can be changed or canceled"


async def test_an_owner_reschedules_a_scheduled_email(client, postgres):
    _, email_id = await _scheduled(client, postgres)
    path = f"/console/emails/{email_id}"
    when = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() + 2 * 86400))
    response = await post_form(client, f"{path}/reschedule", {"scheduled_at": when}, csrf_from=path)
    assert response.status_code == 303, response.text
    assert db(postgres, f"SELECT to_char(scheduled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI') FROM emails "
                        f"WHERE id = '{email_id}'") == when
    page = await console_page(client, path)
    assert page.find("input", name="scheduled_at")[0].attrs["value"] == when
    too_late = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() + 40 * 86400))
    refused = await post_form(client, f"{path}/reschedule", {"scheduled_at": too_late}, csrf_from=path)
    assert refused.status_code == 422
    assert Page(refused.text).text_of(role="alert") == "scheduled_at must be within 30 days"


async def test_a_member_sees_a_scheduled_email_but_cannot_cancel_it(client, postgres):
    owner, email_id = await _scheduled(client, postgres)
    db(postgres, f"UPDATE memberships SET role = 'member' WHERE user_id = '{owner['user_id']}'")
    path = f"/console/emails/{email_id}"
    page = await console_page(client, path)
    assert not page.find("form", action=f"{path}/cancel") and not page.find("input", name="scheduled_at")
    response = await post_form(client, f"{path}/cancel", {}, csrf_from=path)
    assert response.status_code == 403
    assert Page(response.text).text_of(role="alert") == "This action needs the owner or admin role"
    assert _state(postgres, email_id) == "queued scheduled"


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_a_cancel_without_the_csrf_token_is_refused_and_changes_nothing(client, postgres, token):
    _, email_id = await _scheduled(client, postgres)
    response = await client.post(f"/console/emails/{email_id}/cancel",
                                 data={} if token is None else {"csrf_token": token})
    assert response.status_code == 403 and "text/html" in response.headers["content-type"]
    assert "security token" in Page(response.text).text_of(role="alert")
    assert _state(postgres, email_id) == "queued scheduled"
