"""The console's domains: adding one, its records with copy buttons, checking them in DNS, DKIM rotation, TLS
mode, deletion; members only look, other teams' domains are not found, forms need their CSRF token."""

from __future__ import annotations

import pytest
from conftest import unique_domain
from console_pages import PASSWORD, Page, console_owner, console_page, new_email, post_form

ROLE_REFUSAL = "This action needs the owner or admin role"


@pytest.fixture(autouse=True)
def _see_redirects(client) -> None:
    client.follow_redirects = False


def _api(owner: dict) -> dict[str, str]:
    """Headers for the API with the owner's session cookie."""
    return {"x-csrf-token": owner["csrf_token"]}


async def become_member(client, owner: dict) -> None:
    """Invite a member to the owner's team and sign the client in as them, through the console."""
    invite = await client.post("/team/invites", json={"email": (email := new_email()), "role": "member"},
                               headers=_api(owner))
    assert invite.status_code == 201, invite.text
    client.cookies.clear()
    joined = await client.post("/console/invites/register", data={"invite": invite.json()["token"], "email": email,
                                                                  "password": PASSWORD})
    assert joined.status_code == 303, joined.text


async def _add(client, name: str | None = None, algorithm: str = "ed25519") -> str:
    """Add a domain through the console's form; returns its page's path."""
    response = await post_form(client, "/console/domains", {"name": name or unique_domain(),
                                                            "dkim_algorithm": algorithm}, csrf_from="/console/domains")
    assert response.status_code == 303, response.text
    return response.headers["location"]


def _records(page: Page) -> list[dict[str, str]]:
    """Each record row: name and value (by their copy buttons' targets), type, priority and last check."""
    rows = []
    for row in page.find("tr"):
        number = row.attrs.get("data-record")
        if number is None:
            continue
        cells = page.elements[page.elements.index(row):]
        cells = [e for e in cells if e.tag == "td"][:5]
        rows.append({"name": page.text_of("code", id=f"record-{number}-name"),
                     "value": page.text_of("code", id=f"record-{number}-value"),
                     "type": "".join(cells[1].children_text).strip(),
                     "priority": "".join(cells[3].children_text).strip(),
                     "status": cells[4].attrs["data-status"]})
    return rows


def _db(postgres, sql: str) -> str:
    return postgres.psql(sql, user="postyard_owner", database="postyard").strip()


async def test_adding_a_domain_shows_the_records_to_publish_with_copy_buttons(client, postgres):
    await console_owner(client)
    name = unique_domain()
    path = await _add(client, name)
    page = await console_page(client, path)
    assert page.text_of("h1") == name and "Publish its records" in page.text_of(role="status")
    records = _records(page)
    assert {(r["type"], r["name"]) for r in records} >= {("TXT", f"_postyard.{name}"), ("MX", f"send.{name}"),
                                                          ("TXT", f"_dmarc.{name}")}
    assert [r["priority"] for r in records if r["type"] == "MX"] == ["10"]
    assert any(r["value"].startswith("v=DKIM1; k=ed25519; p=") for r in records)
    assert {r["status"] for r in records} == {"not_started"}
    for button in page.find("button", **{"class": "copy"}):
        assert page.find("code", id=button.attrs["data-copy-target"])
    assert len(page.find("button", **{"class": "copy"})) == 2 * len(records)
    listed = await console_page(client, "/console/domains")
    assert listed.find("a", href=path) and name in listed.text
    assert _db(postgres, f"SELECT count(*) FROM audit_logs WHERE action = 'domain.created' "
                         f"AND details->>'name' = '{name}'") == "1"


async def test_checking_the_records_shows_each_ones_result(client, dns_zone, postgres):
    owner = await console_owner(client)
    path = await _add(client)
    domain_id = path.rsplit("/", 1)[1]
    published = (await client.get(f"/domains/{domain_id}", headers=_api(owner))).json()["records"]
    for record in published:
        if record["record"] in ("Ownership", "DKIM"):
            dns_zone.publish(record)
    checked = await post_form(client, f"{path}/verify", {}, csrf_from=path)
    assert checked.status_code == 303 and checked.headers["location"] == path
    page = await console_page(client, path)
    assert page.text_of(role="status") == "Records checked: partially verified."
    statuses = {(r["type"], r["name"].split(".")[0]): r["status"] for r in _records(page)}
    assert statuses[("TXT", "_postyard")] == "verified" and statuses[("MX", "send")] == "failed"
    for record in published:
        if record["record"] not in ("Ownership", "DKIM"):
            dns_zone.publish(record)
    await post_form(client, f"{path}/verify", {}, csrf_from=path)
    page = await console_page(client, path)
    assert {r["status"] for r in _records(page)} == {"verified"}
    assert page.text_of("dd", data_figure="status") == "verified"
    assert _db(postgres, f"SELECT status FROM domains WHERE id = '{domain_id}'") == "verified"


async def test_with_two_mail_hosts_the_page_lists_an_mx_for_each_and_checks_each(two_mail_hosts, dns_zone):
    client = two_mail_hosts
    client.follow_redirects = False
    owner = await console_owner(client)
    path = await _add(client)
    page = await console_page(client, path)
    mx = [(r["value"], r["priority"]) for r in _records(page) if r["type"] == "MX"]
    assert mx == [("mx1.postyard.test", "10"), ("mx2.postyard.test", "10")]
    (spf,) = [r["value"] for r in _records(page) if r["type"] == "TXT" and r["name"].startswith("send.")]
    assert spf == "v=spf1 a:mx1.postyard.test a:mx2.postyard.test -all"
    labels = [b.attrs["aria-label"] for b in page.find("button", **{"class": "copy"})]
    assert len(labels) == len(set(labels)) == 2 * len(_records(page))
    domain_id = path.rsplit("/", 1)[1]
    for record in (await client.get(f"/domains/{domain_id}", headers=_api(owner))).json()["records"]:
        if record["value"] != "mx2.postyard.test":
            dns_zone.publish(record)
    await post_form(client, f"{path}/verify", {}, csrf_from=path)
    page = await console_page(client, path)
    assert page.text_of(role="status") == "Records checked: partially verified."
    assert [(r["value"], r["status"]) for r in _records(page) if r["type"] == "MX"] == [
        ("mx1.postyard.test", "verified"), ("mx2.postyard.test", "failed")]


async def test_an_invalid_domain_name_shows_the_apis_message_and_adds_nothing(client, postgres):
    owner = await console_owner(client)
    response = await post_form(client, "/console/domains", {"name": "not a domain"}, csrf_from="/console/domains")
    assert response.status_code == 422
    page = Page(response.text)
    assert page.text_of(role="alert") == "name must be a valid domain name"
    assert page.find("input", name="name")[0].attrs["value"] == "not a domain"
    assert _db(postgres, f"SELECT count(*) FROM domains WHERE team_id = '{owner['team_id']}'") == "0"


async def test_adding_a_domain_twice_shows_the_apis_conflict(client):
    await console_owner(client)
    name = unique_domain()
    await _add(client, name)
    response = await post_form(client, "/console/domains", {"name": name.upper()}, csrf_from="/console/domains")
    assert response.status_code == 409 and name in Page(response.text).text_of(role="alert")


async def test_rotating_dkim_adds_a_second_key_record(client):
    await console_owner(client)
    path = await _add(client)
    rotated = await post_form(client, f"{path}/dkim/rotate", {"algorithm": "ed25519"}, csrf_from=path)
    assert rotated.status_code == 303
    page = await console_page(client, path)
    assert len([r for r in _records(page) if r["name"].split(".")[1] == "_domainkey"]) == 2
    bad = await post_form(client, f"{path}/dkim/rotate", {"algorithm": "dsa"}, csrf_from=path)
    assert bad.status_code == 422 and Page(bad.text).text_of(role="alert").startswith("algorithm:")


async def test_the_tls_mode_can_be_enforced(client, postgres):
    await console_owner(client)
    path = await _add(client)
    changed = await post_form(client, f"{path}/tls", {"tls": "enforced"}, csrf_from=path)
    assert changed.status_code == 303
    page = await console_page(client, path)
    assert page.text_of("dd", data_figure="tls") == "enforced"
    assert page.find("option", value="enforced", selected="")
    domain_id = path.rsplit("/", 1)[1]
    assert _db(postgres, f"SELECT tls_mode FROM domains WHERE id = '{domain_id}'") == "enforced"
    bad = await post_form(client, f"{path}/tls", {"tls": "never"}, csrf_from=path)
    assert bad.status_code == 422 and Page(bad.text).text_of(role="alert").startswith("tls:")


async def test_deleting_a_domain_removes_it(client, postgres):
    await console_owner(client)
    path = await _add(client)
    deleted = await post_form(client, f"{path}/delete", {}, csrf_from=path)
    assert deleted.status_code == 303 and deleted.headers["location"] == "/console/domains"
    listed = await console_page(client, "/console/domains")
    assert not listed.find("a", href=path) and "deleted" in listed.text_of(role="status")
    assert (await client.get(path)).status_code == 404
    assert _db(postgres, f"SELECT count(*) FROM domains WHERE id = '{path.rsplit('/', 1)[1]}'") == "0"


async def test_a_member_sees_the_domains_without_forms_and_cannot_change_them(client, postgres):
    owner = await console_owner(client)
    path = await _add(client)
    await become_member(client, owner)
    for page_path in ("/console/domains", path):
        page = await console_page(client, page_path)
        assert [f.attrs["action"] for f in page.find("form")] == ["/console/logout"], page_path
    token = page.csrf_token()
    for action, fields in ((f"{path}/verify", {}), (f"{path}/tls", {"tls": "enforced"}), (f"{path}/delete", {}),
                           (f"{path}/dkim/rotate", {}), ("/console/domains", {"name": unique_domain()})):
        response = await client.post(action, data={"csrf_token": token, **fields})
        assert response.status_code == 403, action
        assert Page(response.text).text_of(role="alert") == ROLE_REFUSAL
    domain_id = path.rsplit("/", 1)[1]
    assert _db(postgres, f"SELECT tls_mode FROM domains WHERE id = '{domain_id}'") == "opportunistic"
    assert _db(postgres, f"SELECT count(*) FROM domains WHERE team_id = '{owner['team_id']}'") == "1"


async def test_another_teams_domain_is_not_found(client, postgres):
    await console_owner(client)
    path = await _add(client)
    client.cookies.clear()
    await console_owner(client, team_name="Other")
    assert (await client.get(path)).status_code == 404
    assert (await client.get("/console/domains/not-a-uuid")).status_code == 404
    token = (await console_page(client, "/console/domains")).csrf_token()
    for action in ("verify", "delete", "dkim/rotate", "tls"):
        response = await client.post(f"{path}/{action}", data={"csrf_token": token, "tls": "enforced"})
        assert response.status_code == 404 and Page(response.text).text_of(role="alert") == "Domain not found"
    assert _db(postgres, f"SELECT count(*) FROM domains WHERE id = '{path.rsplit('/', 1)[1]}'") == "1"


async def test_a_domain_form_without_its_csrf_token_is_refused(client, postgres):
    owner = await console_owner(client)
    path = await _add(client)
    for action, fields in (("/console/domains", {"name": unique_domain()}), (f"{path}/delete", {})):
        response = await client.post(action, data=fields)
        assert response.status_code == 403 and "security token" in Page(response.text).text_of(role="alert")
    assert _db(postgres, f"SELECT count(*) FROM domains WHERE team_id = '{owner['team_id']}'") == "1"


async def test_the_domain_pages_have_no_inline_script_or_style_and_label_every_field(client):
    await console_owner(client)
    path = await _add(client)
    for page in [await console_page(client, p) for p in ("/console/domains", path)]:
        assert all(e.attrs.get("src") for e in page.find("script"))
        assert not page.find("style")
        assert not [e for e in page.elements if "style" in e.attrs or any(a.startswith("on") for a in e.attrs)]
        assert all(page.find("label", **{"for": e.attrs["id"]}) for e in page.elements
                   if e.tag in ("input", "select", "textarea") and e.attrs.get("type") != "hidden")
