"""Templates: Resend's CRUD, publish and duplicate; sending renders the published version, variables escaped in HTML."""

from __future__ import annotations

import uuid
from email import message_from_bytes, policy

import pytest
from test_emails import stored_mime

ORDER = {"name": "order", "subject": "Order {{{ORDER}}}", "html": "<p>Hi {{{NAME}}}, order {{{ORDER}}}</p>",
         "text": "Hi {{{NAME}}}, order {{{ORDER}}}",
         "variables": [{"key": "NAME", "type": "string", "fallback_value": "there"},
                       {"key": "ORDER", "type": "number"}]}


async def _published(client, team, sender, **changes) -> dict:
    body = {**ORDER, "from": f"Shop <shop@{sender}>", "alias": f"order-{uuid.uuid4().hex[:8]}", **changes}
    created = await client.post("/templates", json=body, headers=team.headers)
    assert created.status_code == 201, created.text
    published = await client.post(f"/templates/{created.json()['id']}/publish", headers=team.headers)
    assert published.status_code == 200
    return {**body, "id": created.json()["id"]}


def _parts(mime: bytes) -> dict[str, str]:
    message = message_from_bytes(mime, policy=policy.default)
    return {part.get_content_type(): part.get_content() for part in message.walk() if not part.is_multipart()}


async def test_a_template_is_created_read_listed_updated_published_duplicated_and_deleted(client, team, sender):
    template = await _published(client, team, sender)
    changed = await client.patch(f"/templates/{template['id']}", json={"subject": "Your order {{{ORDER}}}"},
                                 headers=team.headers)
    by_alias = (await client.get(f"/templates/{template['alias']}", headers=team.headers)).json()
    copy = (await client.post(f"/templates/{template['id']}/duplicate", headers=team.headers)).json()
    listed = (await client.get("/templates", headers=team.headers)).json()["data"]
    removed = await client.delete(f"/templates/{template['id']}", headers=team.headers)
    gone = await client.get(f"/templates/{template['id']}", headers=team.headers)
    assert changed.status_code == 200 and by_alias["id"] == template["id"]
    assert by_alias["subject"] == "Your order {{{ORDER}}}" and by_alias["status"] == "published"
    assert by_alias["has_unpublished_versions"] is True and by_alias["variables"][1] == {
        "key": "ORDER", "type": "number", "fallback_value": None}
    assert [t["id"] for t in listed] == [copy["id"], template["id"]]
    assert listed[0]["status"] == "draft" and listed[0]["name"] == "order (copy)"
    assert removed.json() == {"id": template["id"], "deleted": True, "object": "template"} and gone.status_code == 404


async def test_an_email_sent_with_a_template_renders_the_published_version_with_values_escaped(client, team, sender,
                                                                                             postgres):
    template = await _published(client, team, sender)
    await client.patch(f"/templates/{template['id']}", json={"subject": "DRAFT {{{ORDER}}}"}, headers=team.headers)
    sent = await client.post("/emails", json={
        "to": ["ann@example.org"], "template": {"id": template["alias"],
                                                "variables": {"NAME": "<script>x</script>", "ORDER": 42}}},
        headers=team.headers)
    fetched = (await client.get(f"/emails/{sent.json()['id']}", headers=team.headers)).json()
    parts = _parts(stored_mime(postgres, sent.json()["id"]))
    assert sent.status_code == 200 and fetched["subject"] == "Order 42"
    assert fetched["from"] == f"Shop <shop@{sender}>"
    assert "<p>Hi &lt;script&gt;x&lt;/script&gt;, order 42</p>" in parts["text/html"] and "<script>" not in \
        parts["text/html"]
    assert parts["text/plain"].strip() == "Hi <script>x</script>, order 42"


async def test_a_fallback_fills_a_missing_value_and_the_batch_renders_templates(client, team, sender):
    template = await _published(client, team, sender)
    batch = await client.post("/emails/batch", json=[
        {"to": ["a@example.org"], "template": {"id": template["id"], "variables": {"ORDER": 1}}},
        {"to": ["b@example.org"], "subject": "Own subject", "template": {"id": template["id"],
                                                                          "variables": {"ORDER": 2}}}],
        headers=team.headers)
    ids = [e["id"] for e in batch.json()["data"]]
    first, second = [(await client.get(f"/emails/{i}", headers=team.headers)).json() for i in ids]
    assert batch.status_code == 200 and first["subject"] == "Order 1" and second["subject"] == "Own subject"
    assert first["html"] == "<p>Hi there, order 1</p>"


@pytest.mark.parametrize(("template_part", "extra", "reason"), [
    ({"variables": {"NAME": "Ann"}}, {}, "ORDER is required"),
    ({"variables": {"ORDER": "many"}}, {}, "ORDER must be a number"),
    ({"variables": {"ORDER": 1, "EVIL": "x"}}, {}, "EVIL is not a variable"),
    ({"variables": {"ORDER": 1}}, {"html": "<p>mine</p>"}, "takes no html or text"),
])
async def test_a_template_send_with_wrong_variables_or_a_body_is_refused(client, team, sender, template_part,
                                                                        extra, reason):
    template = await _published(client, team, sender)
    response = await client.post("/emails", json={"to": ["a@example.org"], "template": {
        "id": template["id"], **template_part}, **extra}, headers=team.headers)
    assert response.status_code == 422 and reason in response.json()["message"]


async def test_an_unpublished_or_undeclared_template_cannot_send_or_be_stored(client, team, sender):
    draft = (await client.post("/templates", json={**ORDER, "from": f"shop@{sender}"}, headers=team.headers)).json()
    unpublished = await client.post("/emails", json={"to": ["a@example.org"], "template": {
        "id": draft["id"], "variables": {"ORDER": 1}}}, headers=team.headers)
    undeclared = await client.post("/templates", json={"name": "x", "html": "<p>{{{SECRET}}}</p>"},
                                   headers=team.headers)
    assert unpublished.status_code == 422 and "not published" in unpublished.json()["message"]
    assert undeclared.status_code == 422 and "SECRET is used but not declared" in undeclared.json()["message"]


async def test_another_teams_template_is_neither_readable_nor_usable(client, team, sender, settings):
    from app.cli import create_team

    template = await _published(client, team, sender)
    _, other_key = await create_team(settings, "templates-other")
    other = {"Authorization": f"Bearer {other_key}"}
    read = await client.get(f"/templates/{template['id']}", headers=other)
    by_alias = await client.get(f"/templates/{template['alias']}", headers=other)
    used = await client.post("/emails", json={"from": f"x@{sender}", "to": ["a@example.org"], "template": {
        "id": template["id"], "variables": {"ORDER": 1}}}, headers=other)
    assert read.status_code == 404 and by_alias.status_code == 404
    assert used.status_code == 422 and "no template" in used.json()["message"]


async def test_an_update_leaves_out_what_it_does_not_name_and_clears_what_it_sets_to_null(client, team, sender):
    template = await _published(client, team, sender)
    cleared = await client.patch(f"/templates/{template['id']}", json={"text": None, "alias": None},
                                 headers=team.headers)
    fetched = (await client.get(f"/templates/{template['id']}", headers=team.headers)).json()
    no_html = await client.patch(f"/templates/{template['id']}", json={"html": None}, headers=team.headers)
    assert cleared.status_code == 200 and "text" not in fetched and "alias" not in fetched
    assert fetched["subject"] == ORDER["subject"] and fetched["html"] == ORDER["html"]
    assert no_html.status_code == 422
