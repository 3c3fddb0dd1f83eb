"""The smaller operations of Resend's transactional groups: unknown fields refused, pagination, renaming a key,
natural-language schedules, and the path's id repeated in a body."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from conftest import unique_domain
from test_emails import message


@pytest.mark.parametrize(("path", "body"), [
    ("/domains", {"name": "unknown-field.example", "open_trackin": True}),
    ("/api-keys", {"name": "k", "scope": "everything"}),
    ("/webhooks", {"endpoint": "http://127.0.0.1:9/hook", "events": ["email.sent"], "secret": "mine"}),
    ("/suppressions", {"email": "a@example.org", "why": "because"}),
])
async def test_a_write_request_with_an_unknown_field_is_refused_naming_it(client, team, path, body):
    response = await client.post(path, json=body, headers=team.headers)
    unknown = next(k for k in body if k not in ("name", "email", "endpoint", "events"))
    assert response.status_code == 422 and response.json()["name"] == "validation_error"
    assert unknown in response.json()["message"]


async def test_an_email_with_an_unknown_field_is_refused_not_sent_without_it(client, team, sender):
    response = await client.post("/emails", json=message(sender, template_data={"name": "Ann"}), headers=team.headers)
    listed = (await client.get("/emails", headers=team.headers)).json()["data"]
    assert response.status_code == 422 and "template_data" in response.json()["message"] and listed == []


async def test_an_update_that_repeats_another_id_than_the_paths_is_refused(client, team):
    domain = (await client.post("/domains", json={"name": unique_domain()}, headers=team.headers)).json()
    other = (await client.post("/domains", json={"name": unique_domain()}, headers=team.headers)).json()
    same = await client.patch(f"/domains/{domain['id']}", json={"id": domain["id"], "tls": "enforced"},
                              headers=team.headers)
    crossed = await client.patch(f"/domains/{domain['id']}", json={"id": other["id"], "tls": "enforced"},
                                 headers=team.headers)
    assert same.status_code == 200 and crossed.status_code == 422 and other["id"] in crossed.json()["message"]


async def test_an_api_key_is_renamed_and_the_rename_is_audited(client, team):
    created = (await client.post("/api-keys", json={"name": "before"}, headers=team.headers)).json()
    renamed = await client.patch(f"/api-keys/{created['id']}", json={"name": "after"}, headers=team.headers)
    listed = (await client.get("/api-keys", headers=team.headers)).json()["data"]
    audit = (await client.get("/audit-logs", headers=team.headers)).json()["data"]
    assert renamed.status_code == 200 and renamed.json() == {"id": created["id"], "object": "api_key"}
    assert {k["id"]: k["name"] for k in listed}[created["id"]] == "after"
    assert any(e["action"] == "api_key.renamed" for e in audit)


async def test_renaming_another_teams_key_is_not_found(client, team, settings):
    from app.cli import create_team

    _, other_key = await create_team(settings, "rename-other")
    theirs = (await client.post("/api-keys", json={"name": "theirs"},
                                headers={"Authorization": f"Bearer {other_key}"})).json()
    response = await client.patch(f"/api-keys/{theirs['id']}", json={"name": "mine now"}, headers=team.headers)
    assert response.status_code == 404


@pytest.mark.parametrize("path", ["/domains", "/webhooks", "/api-keys"])
async def test_lists_page_forwards_and_backwards_with_has_more(client, team, path):
    bodies = {"/domains": lambda i: {"name": unique_domain()},
              "/webhooks": lambda i: {"endpoint": f"http://127.0.0.1:9/hook{i}", "events": ["email.sent"]},
              "/api-keys": lambda i: {"name": f"key {i}"}}
    for i in range(5):
        assert (await client.post(path, json=bodies[path](i), headers=team.headers)).status_code == 201
    whole = [item["id"] for item in (await client.get(path, headers=team.headers)).json()["data"]]
    first = (await client.get(f"{path}?limit=2", headers=team.headers)).json()
    second = (await client.get(f"{path}?limit=2&after={first['data'][-1]['id']}", headers=team.headers)).json()
    back = (await client.get(f"{path}?limit=2&before={second['data'][0]['id']}", headers=team.headers)).json()
    last = (await client.get(f"{path}?limit=10&after={whole[-3]}", headers=team.headers)).json()
    assert [i["id"] for i in first["data"] + second["data"]] == whole[:4] and first["has_more"] is True
    assert [i["id"] for i in back["data"]] == whole[:2] and back["has_more"] is False
    assert [i["id"] for i in last["data"]] == whole[-2:] and last["has_more"] is False


async def test_a_cursor_of_no_item_gives_an_empty_page_and_both_cursors_are_refused(client, team):
    await client.post("/domains", json={"name": unique_domain()}, headers=team.headers)
    response = await client.get("/domains?after=00000000-0000-0000-0000-000000000000", headers=team.headers)
    both = await client.get("/webhooks?after=a&before=b", headers=team.headers)
    not_an_id = await client.get("/templates?after=a", headers=team.headers)
    assert response.status_code == 200 and response.json()["data"] == [] and response.json()["has_more"] is False
    assert both.status_code == 422 and "not both" in both.json()["message"]
    assert not_an_id.status_code == 422 and "after must be an id" in not_an_id.json()["message"]


@pytest.mark.parametrize(("words", "ahead"), [("in 1 min", timedelta(minutes=1)), ("in 2 hours", timedelta(hours=2)),
                                              ("in 3 days", timedelta(days=3))])
async def test_a_natural_language_schedule_is_read_as_resend_documents_it(client, team, sender, words, ahead):
    before = datetime.now(UTC)
    sent = (await client.post("/emails", json=message(sender, scheduled_at=words), headers=team.headers)).json()
    fetched = (await client.get(f"/emails/{sent['id']}", headers=team.headers)).json()
    when = datetime.fromisoformat(fetched["scheduled_at"])
    assert fetched["last_event"] == "scheduled"
    assert before + ahead - timedelta(seconds=5) <= when <= datetime.now(UTC) + ahead + timedelta(seconds=5)


@pytest.mark.parametrize("words", ["whenever you like", "in 40 days", "next tuesday", "tomorrow at 99am"])
async def test_a_schedule_that_is_no_time_or_too_far_is_refused(client, team, sender, words):
    response = await client.post("/emails", json=message(sender, scheduled_at=words), headers=team.headers)
    assert response.status_code == 422 and "scheduled_at" in response.json()["message"]


async def _with_attachments(client, team, sender) -> str:
    files = [{"filename": "report.csv", "content": base64.b64encode(b"a,b\n1,2\n").decode()},
             {"filename": "logo.png", "content": base64.b64encode(b"\x89PNG fake").decode(), "content_id": "logo"}]
    sent = await client.post("/emails", json=message(sender, attachments=files), headers=team.headers)
    return sent.json()["id"]


def _path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_an_emails_attachments_are_listed_read_and_downloaded_through_a_signed_link(client, team, sender):
    email_id = await _with_attachments(client, team, sender)
    listed = (await client.get(f"/emails/{email_id}/attachments", headers=team.headers)).json()
    csv, png = listed["data"]
    one = (await client.get(f"/emails/{email_id}/attachments/{png['id']}", headers=team.headers)).json()
    download = await client.get(_path_and_query(csv["download_url"]))  # no API key: the link is the authority
    assert (csv["filename"], csv["content_type"], csv["size"], csv["content_disposition"]) == (
        "report.csv", "text/csv", 8, "attachment")
    assert (one["id"], one["content_id"], one["content_disposition"]) == (png["id"], "logo", "inline")
    assert download.status_code == 200 and download.content == b"a,b\n1,2\n"
    assert download.headers["content-disposition"] == 'attachment; filename="report.csv"; filename*=UTF-8\'\'report.csv'
    assert download.headers["x-content-type-options"] == "nosniff"


async def test_a_tampered_swapped_or_expired_download_link_is_refused(client, team, sender, monkeypatch):
    email_id = await _with_attachments(client, team, sender)
    csv, png = (await client.get(f"/emails/{email_id}/attachments", headers=team.headers)).json()["data"]
    link = _path_and_query(csv["download_url"])
    tampered = await client.get(link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb"))
    swapped = await client.get(link.replace(csv["id"], png["id"]))
    bare = await client.get(f"/emails/{email_id}/attachments/{csv['id']}/content")
    monkeypatch.setattr("app.domain.emails.attachments.DOWNLOAD_LINK_SECONDS", -1)
    expired = await client.get(link)
    assert [r.status_code for r in (tampered, swapped, bare, expired)] == [403, 403, 403, 403]
    assert expired.json()["name"] == "invalid_link"


async def test_another_teams_email_attachments_are_not_found(client, team, sender, settings):
    from app.cli import create_team

    email_id = await _with_attachments(client, team, sender)
    _, other_key = await create_team(settings, "attachments-other")
    response = await client.get(f"/emails/{email_id}/attachments", headers={"Authorization": f"Bearer {other_key}"})
    assert response.status_code == 404


async def _shared_link(client, team, sender, **body) -> tuple[str, str]:
    html_body = '<p>Hi</p><script>alert(1)</script><img src="https://tracker.example/p.gif">'
    sent = await client.post("/emails", json=message(sender, subject="<b>Invoice</b>", html=html_body),
                             headers=team.headers)
    shared = await client.post(f"/emails/{sent.json()['id']}/share", json=body, headers=team.headers)
    assert shared.status_code == 200, shared.text
    return sent.json()["id"], _path_and_query(shared.json()["url"])


async def test_a_shared_link_opens_the_email_without_a_key_and_its_html_only_sandboxed(client, team, sender):
    email_id, link = await _shared_link(client, team, sender, expires_in="2 hours")
    page = await client.get(link)
    frame = await client.get(link.replace("/shared?", "/shared/html?"))
    assert page.status_code == 200 and "&lt;b&gt;Invoice&lt;/b&gt;" in page.text and "<b>Invoice" not in page.text
    assert "<script" not in page.text and "<iframe sandbox " in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert frame.status_code == 200 and "sandbox" in frame.headers["content-security-policy"]
    assert "img-src data:" in frame.headers["content-security-policy"] and frame.headers["x-frame-options"] == \
        "SAMEORIGIN"


async def test_a_tampered_or_expired_shared_link_and_a_too_long_life_are_refused(client, team, sender, settings):
    from app.domain.emails.sharing import SHARE_PURPOSE, share_token
    from app.lib.crypto import Keyring
    from app.lib.signed_links import LinkSigner

    email_id, link = await _shared_link(client, team, sender)
    tampered = await client.get(link[:-2] + ("AA" if not link.endswith("AA") else "BB"))
    signer = LinkSigner(Keyring(settings.data_keys, settings.active_data_key_id), SHARE_PURPOSE)
    old = share_token(signer, team.team_id, uuid.UUID(email_id), datetime.now(UTC) - timedelta(seconds=1))
    expired = await client.get(f"/shared?token={old}")
    too_long = await client.post(f"/emails/{email_id}/share", json={"expires_in": "3 days"}, headers=team.headers)
    without_body = await client.post(f"/emails/{email_id}/share", headers=team.headers)
    nonsense = await client.post(f"/emails/{email_id}/share", json={"expires_in": "forever"}, headers=team.headers)
    assert [r.status_code for r in (tampered, expired)] == [403, 403]
    assert too_long.status_code == 422 and nonsense.status_code == 422 and without_body.status_code == 200


async def test_another_teams_email_cannot_be_shared(client, team, sender, settings):
    from app.cli import create_team

    email_id, _ = await _shared_link(client, team, sender)
    _, other_key = await create_team(settings, "share-other")
    response = await client.post(f"/emails/{email_id}/share", json={},
                                 headers={"Authorization": f"Bearer {other_key}"})
    assert response.status_code == 404


async def test_a_download_of_a_file_with_a_non_ascii_quoted_name_is_served_with_both_names(client, team, sender):
    name = '文件 "final".pdf'
    sent = await client.post("/emails", json=message(sender, attachments=[
        {"filename": name, "content": base64.b64encode(b"%PDF").decode()}]), headers=team.headers)
    item = (await client.get(f"/emails/{sent.json()['id']}/attachments", headers=team.headers)).json()["data"][0]
    download = await client.get(_path_and_query(item["download_url"]))
    disposition = download.headers["content-disposition"]
    assert download.status_code == 200 and download.content == b"%PDF" and item["filename"] == name
    assert disposition == "attachment; filename=\" final.pdf\"; filename*=UTF-8''%E6%96%87%E4%BB%B6%20%22final%22.pdf"
