"""The console's API keys and SMTP credentials: creating one shows its secret once, the list never does, revoking
stops it; the API's messages for bad input, members only look, other teams' are not found, CSRF is checked."""

from __future__ import annotations

import pytest
from conftest import unique_domain
from console_pages import SESSION_COOKIE, Page, console_owner, console_page, post_form
from test_console_domains import ROLE_REFUSAL, become_member

from app.console.api_keys import allowlist_entries


@pytest.fixture(autouse=True)
def _see_redirects(client) -> None:
    client.follow_redirects = False


def _db(postgres, sql: str) -> str:
    return postgres.psql(sql, user="postyard_owner", database="postyard").strip()


def _revoke_action(page: Page) -> str:
    """The action of the first revoke form in a list."""
    return next(f.attrs["action"] for f in page.find("form") if f.attrs["action"].endswith("/revoke"))


async def _domain(client, owner: dict) -> dict:
    response = await client.post("/domains", json={"name": unique_domain(), "dkim_algorithm": "ed25519"},
                                 headers={"x-csrf-token": owner["csrf_token"]})
    assert response.status_code == 201, response.text
    return response.json()


async def _create_key(client, **fields: str) -> tuple[Page, str]:
    """Create a key through the console; the answer's page and the token it shows."""
    response = await post_form(client, "/console/api-keys", {"name": "ci", **fields}, csrf_from="/console/api-keys")
    assert response.status_code == 200, response.text
    page = Page(response.text)
    return page, page.text_of("code", id="api-key-token")


def test_the_allowlist_field_takes_lines_commas_and_spaces():
    entries = allowlist_entries("10.0.0.0/8\r\n192.0.2.1, 2001:db8::/32  \n")
    assert entries == ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"]
    assert allowlist_entries("  \n") == []


async def test_a_new_api_keys_token_is_shown_once_and_works(client, postgres):
    owner = await console_owner(client)
    domain = await _domain(client, owner)
    page, token = await _create_key(client, name="deploy", permission="sending_access", mode="test",
                                     domain_id=domain["id"], allowed_ips="127.0.0.1\n10.0.0.0/8",
                                     expires_at="2099-01-02T03:04")
    assert token.startswith("sk_test_")
    assert page.find("button", data_copy_target="api-key-token")
    row = _db(postgres, "SELECT permission, mode, domain_id, allowed_ips, expires_at AT TIME ZONE 'UTC' FROM api_keys "
                        f"WHERE team_id = '{owner['team_id']}' AND name = 'deploy'")
    assert row == f"sending_access|test|{domain['id']}|{{127.0.0.1/32,10.0.0.0/8}}|2099-01-02 03:04:00"
    listed = await client.get("/console/api-keys")
    assert listed.status_code == 200 and token not in listed.text
    text = Page(listed.text).text
    assert "deploy" in text and "sending access" in text and domain["name"] in text and "10.0.0.0/8" in text
    assert "2099-01-02 03:04 UTC" in text


async def test_the_token_is_not_shown_again(client):
    await console_owner(client)
    _, token = await _create_key(client)
    for path in ("/console/api-keys", "/console/", "/console/smtp"):
        assert token not in (await client.get(path)).text, path


async def test_a_full_access_key_made_in_the_console_authenticates_the_api_and_shows_its_last_use(client):
    await console_owner(client)
    _, token = await _create_key(client)
    listed = await console_page(client, "/console/api-keys")
    assert len(listed.find("time")) == 1  # created; never used, no expiry
    session = client.cookies.get(SESSION_COOKIE)
    client.cookies.clear()
    response = await client.get("/api-keys", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200 and [k["name"] for k in response.json()["data"]] == ["ci"]
    assert token.startswith("sk_live_")
    client.cookies.set(SESSION_COOKIE, session)
    assert len((await console_page(client, "/console/api-keys")).find("time")) == 2  # and last used


async def test_a_bad_ip_allowlist_entry_shows_the_apis_message(client, postgres):
    owner = await console_owner(client)
    response = await post_form(client, "/console/api-keys", {"name": "ci", "allowed_ips": "10.0.0.0/8\nnot-an-ip"},
                               csrf_from="/console/api-keys")
    assert response.status_code == 422
    page = Page(response.text)
    assert page.text_of(role="alert") == "allowed_ips must be IP addresses or CIDR networks"
    assert page.text_of("textarea", name="allowed_ips") == "10.0.0.0/8 not-an-ip"
    assert _db(postgres, f"SELECT count(*) FROM api_keys WHERE team_id = '{owner['team_id']}'") == "0"


async def test_a_past_expiry_and_a_missing_name_show_the_apis_messages(client):
    await console_owner(client)
    past = await post_form(client, "/console/api-keys", {"name": "ci", "expires_at": "2000-01-01T00:00"},
                           csrf_from="/console/api-keys")
    assert past.status_code == 422 and Page(past.text).text_of(role="alert") == "expires_at must be in the future"
    nameless = await post_form(client, "/console/api-keys", {"name": ""}, csrf_from="/console/api-keys")
    assert nameless.status_code == 422 and "name" in Page(nameless.text).text_of(role="alert")


async def test_revoking_a_key_stops_it(client, postgres):
    await console_owner(client)
    _, token = await _create_key(client)
    key_id = _db(postgres, f"SELECT id FROM api_keys WHERE token_hash = sha256(convert_to('{token}', 'UTF8'))")
    listed = await console_page(client, "/console/api-keys")
    action = _revoke_action(listed)
    revoked = await post_form(client, action, {}, csrf_from="/console/api-keys")
    assert revoked.status_code == 303 and revoked.headers["location"] == "/console/api-keys"
    page = await console_page(client, "/console/api-keys")
    assert "revoked" in page.text_of(role="status") and not page.find("form", action=action)
    assert action == f"/console/api-keys/{key_id}/revoke"
    assert _db(postgres, f"SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = '{key_id}'") == "t"
    client.cookies.clear()
    assert (await client.get("/domains", headers={"authorization": f"Bearer {token}"})).status_code == 403


async def test_a_new_smtp_credentials_password_is_shown_once(client, postgres):
    owner = await console_owner(client)
    domain = await _domain(client, owner)
    response = await post_form(client, "/console/smtp", {"name": "relay", "domain_id": domain["id"]},
                               csrf_from="/console/smtp")
    assert response.status_code == 200, response.text
    page = Page(response.text)
    username, password = page.text_of("code", id="smtp-username"), page.text_of("code", id="smtp-password")
    assert username.startswith("pyd_") and len(password) >= 24
    assert page.find("button", data_copy_target="smtp-password")
    listed = await client.get("/console/smtp")
    assert username in listed.text and password not in listed.text and domain["name"] in listed.text
    stored = _db(postgres, f"SELECT password_hash, domain_id FROM smtp_credentials WHERE username = '{username}'")
    assert stored.startswith("$2y$") and stored.endswith(domain["id"]) and password not in stored


async def test_revoking_an_smtp_credential_removes_it(client, postgres):
    await console_owner(client)
    created = Page((await post_form(client, "/console/smtp", {"name": "relay"}, csrf_from="/console/smtp")).text)
    username = created.text_of("code", id="smtp-username")
    action = _revoke_action(await console_page(client, "/console/smtp"))
    revoked = await post_form(client, action, {}, csrf_from="/console/smtp")
    assert revoked.status_code == 303
    assert username not in (await client.get("/console/smtp")).text
    assert _db(postgres, f"SELECT revoked_at IS NOT NULL FROM smtp_credentials WHERE username = '{username}'") == "t"


async def test_an_smtp_credential_for_another_teams_domain_is_refused(client):
    owner = await console_owner(client)
    domain = await _domain(client, owner)
    client.cookies.clear()
    await console_owner(client, team_name="Other")
    response = await post_form(client, "/console/smtp", {"name": "relay", "domain_id": domain["id"]},
                               csrf_from="/console/smtp")
    assert response.status_code == 422
    assert Page(response.text).text_of(role="alert") == "domain_id is not a domain of this team"


async def test_a_member_sees_keys_and_credentials_without_forms_and_cannot_change_them(client, postgres):
    owner = await console_owner(client)
    await _create_key(client, name="kept")
    await post_form(client, "/console/smtp", {"name": "kept"}, csrf_from="/console/smtp")
    key_action = _revoke_action(await console_page(client, "/console/api-keys"))
    smtp_action = _revoke_action(await console_page(client, "/console/smtp"))
    await become_member(client, owner)
    for path in ("/console/api-keys", "/console/smtp"):
        page = await console_page(client, path)
        assert "kept" in page.text
        assert [f.attrs["action"] for f in page.find("form")] == ["/console/logout"], path
    token = page.csrf_token()
    for action in ("/console/api-keys", "/console/smtp", key_action, smtp_action):
        response = await client.post(action, data={"csrf_token": token, "name": "forged"})
        assert response.status_code == 403, action
        assert Page(response.text).text_of(role="alert") == ROLE_REFUSAL
    team = owner["team_id"]
    assert _db(postgres, f"SELECT count(*) FROM api_keys WHERE team_id = '{team}' AND revoked_at IS NULL") == "1"
    assert _db(postgres, f"SELECT count(*) FROM smtp_credentials WHERE team_id = '{team}' "
                         "AND revoked_at IS NULL") == "1"


async def test_another_teams_key_and_credential_are_not_found(client, postgres):
    owner = await console_owner(client)
    await _create_key(client)
    await post_form(client, "/console/smtp", {"name": "relay"}, csrf_from="/console/smtp")
    key_action = _revoke_action(await console_page(client, "/console/api-keys"))
    smtp_action = _revoke_action(await console_page(client, "/console/smtp"))
    client.cookies.clear()
    await console_owner(client, team_name="Other")
    token = (await console_page(client, "/console/api-keys")).csrf_token()
    for action, message in ((key_action, "API key not found"), (smtp_action, "SMTP credential not found"),
                            ("/console/api-keys/not-a-uuid/revoke", "API key not found")):
        response = await client.post(action, data={"csrf_token": token})
        assert response.status_code == 404 and Page(response.text).text_of(role="alert") == message, action
    team = owner["team_id"]
    assert _db(postgres, f"SELECT count(*) FROM api_keys WHERE team_id = '{team}' AND revoked_at IS NULL") == "1"


async def test_key_and_credential_forms_without_their_csrf_token_are_refused(client, postgres):
    owner = await console_owner(client)
    for action in ("/console/api-keys", "/console/smtp"):
        response = await client.post(action, data={"name": "forged"})
        assert response.status_code == 403 and "security token" in Page(response.text).text_of(role="alert")
    team = owner["team_id"]
    assert _db(postgres, f"SELECT count(*) FROM api_keys WHERE team_id = '{team}'") == "0"
    assert _db(postgres, f"SELECT count(*) FROM smtp_credentials WHERE team_id = '{team}'") == "0"


async def test_the_key_and_credential_pages_have_no_inline_script_or_style(client):
    await console_owner(client)
    pages = [await console_page(client, p) for p in ("/console/api-keys", "/console/smtp")]
    pages.append((await _create_key(client))[0])
    for page in pages:
        assert all(e.attrs.get("src") for e in page.find("script"))
        assert not page.find("style")
        assert not [e for e in page.elements if "style" in e.attrs or any(a.startswith("on") for a in e.attrs)]
        assert all(page.find("label", **{"for": i.attrs["id"]}) for i in page.find("input")
                   if i.attrs.get("type") != "hidden")
