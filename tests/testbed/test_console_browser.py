"""The web console in a real browser: headless Debian Chromium (selenium) against the single testbed's API
host over TLS (granian, the ACME certificate pinned by its key), walking each flow a team and an operator
have: signing up with an invite and in with TOTP, a domain's records checked, an API key shown once, a sent
message and its `delivered` event, a bounce and its suppression, a webhook delivery replayed, a member
invited who signs in, a team suspended and resumed; and, over every page the browsers opened, no CSP
violation, no request to another origin, and a form without its CSRF token refused.

A flow whose page the console does not have is skipped, naming the page. Screenshots of the main pages are
saved in the test output directory (POSTYARD_SCREENSHOTS, else pytest's temporary base) and printed."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from selenium.webdriver.common.by import By

from postyard.appliance_client import ApiAccess, name_resolver
from postyard.deployer import REPO
from postyard.testbed import internet
from tests.testbed.browser_support import Browser, BrowserLogs, chromium_options, spki_pin, until
from tests.testbed.mail_support import MailTestbed

WEBHOOK_PORT = 8098
PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    email: str
    password: str
    totp_secret: str | None = None
    totp_step: int = 0  # the last TOTP step used: the API takes each code once


@dataclass
class Story:
    """What the flows made, for the flows after them."""

    owner: Account | None = None
    team_id: str = ""
    domain: str = ""
    api_key: str = ""
    webhook_id: str = ""


@dataclass
class Console:
    """The testbed's console as this module reaches it: the browsers it opens and the API beside them."""

    mail: MailTestbed
    origin: str
    root_pem: str
    options: Any
    logs: BrowserLogs
    shots: Path
    browsers: list[Browser] = field(default_factory=list)

    def browser(self) -> Browser:
        opened = Browser(self.origin, self.options, self.logs, self.shots)
        self.browsers.append(opened)
        return opened

    def admin(self, *argv: str) -> str:
        """`postyard-api admin ...` on the schema host, as `python -m postyard admin` runs it."""
        return self.mail.on_mail_host(["postyard-api", "admin", *argv], timeout=120)

    def api(self, key: str) -> httpx.Client:
        return ApiAccess(self.origin, key, self.root_pem).client()

    def session_api(self, browser: Browser) -> httpx.Client:
        """The API as the browser's signed-in session calls it (its cookie and CSRF token)."""
        cookie = browser.driver.get_cookie("postyard_session")
        assert cookie is not None, "the browser is not signed in"
        token = browser.driver.find_element(By.CSS_SELECTOR, "input[name='csrf_token']").get_attribute("value")
        return httpx.Client(base_url=self.origin, headers={"X-CSRF-Token": token or ""},
                            cookies={"postyard_session": cookie["value"]}, timeout=60,
                            verify=ssl.create_default_context(cadata=self.root_pem))


@pytest.fixture(scope="module")
def console(single_testbed, tmp_path_factory, monkeypatch_module) -> Iterator[Console]:
    mail = MailTestbed(single_testbed)
    names = mail.host_names()
    monkeypatch_module.setattr(socket, "getaddrinfo", name_resolver(names))
    root = mail.acme_root_pem()
    pin = spki_pin(mail.api.fqdn, names[mail.api.fqdn], root)
    shots = Path(os.environ.get("POSTYARD_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    opened = Console(mail, mail.api_url, root, chromium_options(names, [pin]), BrowserLogs(), shots)
    # A deploy of new console code restarts the API: wait until it serves the console (a new connection each time).
    until(lambda: _answers(opened, "/console/login"), 120, "console at /console/login")
    yield opened
    for browser in opened.browsers:
        browser.close()


def _answers(console: Console, path: str) -> bool:
    try:
        return httpx.get(console.origin + path, verify=ssl.create_default_context(cadata=console.root_pem),
                         timeout=10).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def story() -> Story:
    return Story()


@pytest.fixture(scope="module")
def owner_browser(console: Console) -> Browser:
    return console.browser()


def require_page(browser: Browser, path: str) -> None:
    """Open a console page; skip the flow, naming the page, when the console does not have it."""
    browser.open(path)
    if browser.is_missing_page():
        pytest.skip(f"the console has no page {path} yet")


def totp_code(account: Account) -> str:
    """A TOTP code of a step after the last one used (waiting for the next step when needed)."""
    assert account.totp_secret is not None
    totp = pyotp.TOTP(account.totp_secret)
    until(lambda: int(time.time()) // totp.interval > account.totp_step, totp.interval + 5, "new TOTP step")
    account.totp_step = int(time.time()) // totp.interval
    return totp.at(account.totp_step * totp.interval)


def sign_in(browser: Browser, account: Account) -> None:
    browser.open("/console/login")
    browser.submit(browser.form("/console/login"), {"email": account.email, "password": account.password})
    if account.totp_secret is not None:
        assert browser.path.startswith("/console/login/totp"), browser.path
        browser.submit(browser.form("/console/login/totp"), {"code": totp_code(account)})
    assert browser.path.startswith("/console/") and not browser.path.startswith("/console/login"), browser.text()


def sign_out(browser: Browser) -> None:
    browser.submit(browser.form("/console/logout"))
    assert browser.path.startswith("/console/login"), browser.path


def wait_for_event(client: httpx.Client, email_id: str, wanted: str, timeout: float = 120) -> None:
    until(lambda: client.get(f"/emails/{email_id}").raise_for_status().json()["last_event"] == wanted,
          timeout, f"{wanted} event of {email_id}", every=2)


def send(client: httpx.Client, domain: str, to: str, subject: str) -> httpx.Response:
    return client.post("/emails", json={"from": f"Console <hello@{domain}>", "to": [to], "subject": subject,
                                        "text": "Sent for the console's browser tests."})


# -- signing up and in


def test_a_team_owner_signs_up_with_an_invite_and_turns_on_totp(console: Console, story: Story,
                                                                owner_browser: Browser):
    account = Account(f"owner-{uuid.uuid4().hex[:8]}@example.test", PASSWORD)
    printed = console.admin("invite-team", "--email", account.email)
    token = next(line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("invite token"))
    owner_browser.open(f"/console/invites/accept?token={token}")
    owner_browser.submit(owner_browser.form("/console/invites/register"),
                         {"email": account.email, "password": account.password,
                          "team_name": f"Browser {uuid.uuid4().hex[:6]}"})
    assert owner_browser.path == "/console/", owner_browser.text()

    owner_browser.open("/console/account")
    owner_browser.submit(owner_browser.form("/console/account/totp"))
    assert owner_browser.driver.find_element(By.CSS_SELECTOR, "figure.qr img").get_attribute("src") \
        .startswith("data:image/svg+xml;base64,")
    account.totp_secret = owner_browser.driver.find_element(By.ID, "totp-secret").text.strip()
    owner_browser.screenshot("totp-setup")
    owner_browser.submit(owner_browser.form("/console/account/totp/enable"), {"code": totp_code(account)})
    codes = owner_browser.driver.find_elements(By.CSS_SELECTOR, "#backup-codes code")
    assert len(codes) == 10
    story.owner = account
    with console.session_api(owner_browser) as api:
        story.team_id = api.get("/team").raise_for_status().json()["id"]


def test_sign_in_with_a_password_and_a_totp_code(story: Story, owner_browser: Browser):
    assert story.owner is not None
    sign_out(owner_browser)
    owner_browser.screenshot("login")
    owner_browser.submit(owner_browser.form("/console/login"),
                         {"email": story.owner.email, "password": "not the password at all"})
    assert "Email or password is wrong" in owner_browser.text()
    assert owner_browser.last_document_status() == 401
    sign_in(owner_browser, story.owner)
    assert owner_browser.path == "/console/"
    assert story.owner.email in owner_browser.text()


# -- the team's pages


def test_add_a_domain_and_see_its_records_checked(console: Console, story: Story, owner_browser: Browser):
    require_page(owner_browser, "/console/domains")
    name = f"c{uuid.uuid4().hex[:10]}.test"
    owner_browser.submit(owner_browser.form("/console/domains"), {"name": name})
    domain_path = owner_browser.path
    assert domain_path.startswith("/console/domains/") and name in owner_browser.heading()
    statuses = [td.get_attribute("data-status")
                for td in owner_browser.driver.find_elements(By.CSS_SELECTOR, "tr[data-record] td[data-status]")]
    assert statuses and "verified" not in statuses
    with console.session_api(owner_browser) as api:
        records = api.get(f"/domains/{domain_path.rsplit('/', 1)[1]}").raise_for_status().json()["records"]
    console.mail.publish(records)
    owner_browser.submit(owner_browser.form(f"{domain_path}/verify"))
    assert "Records checked: verified" in owner_browser.text(), owner_browser.text()
    checked = [td.get_attribute("data-status")
               for td in owner_browser.driver.find_elements(By.CSS_SELECTOR, "tr[data-record] td[data-status]")]
    assert checked and set(checked) == {"verified"}, checked
    owner_browser.screenshot("domain")
    console.mail.wait_for_key(name, timeout=30)
    story.domain = name


def test_create_an_api_key_and_see_it_once(console: Console, story: Story, owner_browser: Browser):
    require_page(owner_browser, "/console/api-keys")
    owner_browser.submit(owner_browser.form("/console/api-keys"),
                         {"name": "browser key", "permission": "full_access"})
    token = owner_browser.driver.find_element(By.ID, "api-key-token").text.strip()
    assert token and "shown on this page only" in owner_browser.text()
    with console.api(token) as api:
        assert api.get("/domains").status_code == 200
    owner_browser.open("/console/api-keys")
    assert "browser key" in owner_browser.text() and token not in owner_browser.driver.page_source
    owner_browser.screenshot("api-keys")
    story.api_key = token


@pytest.fixture(scope="module")
def sender(console: Console, story: Story, owner_browser: Browser) -> Iterator[httpx.Client]:
    """The owner's team through the API with a key: the one the console showed, else one made through the API
    (so the flows after it run even without the API keys page)."""
    if not story.domain:
        pytest.skip("no verified domain (the domains flow did not run)")
    if not story.api_key:
        owner_browser.open("/console/account")
        with console.session_api(owner_browser) as api:
            story.api_key = api.post("/api-keys", json={"name": "browser fallback"}).raise_for_status() \
                .json()["token"]
    with console.api(story.api_key) as client:
        yield client


def test_a_message_sent_through_the_api_is_in_the_activity_log_with_its_delivered_event(
        story: Story, owner_browser: Browser, sender: httpx.Client):
    subject = f"browser {uuid.uuid4().hex[:8]}"
    sent = send(sender, story.domain, f"inbox@{internet.MX_DOMAIN}", subject).raise_for_status().json()
    wait_for_event(sender, sent["id"], "delivered")
    require_page(owner_browser, "/console/emails")
    owner_browser.wait_for_text(subject)
    assert owner_browser.links(f"/console/emails/{sent['id']}"), "the log does not link to the message"
    owner_browser.screenshot("emails")
    owner_browser.open(f"/console/emails/{sent['id']}")
    assert subject in owner_browser.text()
    owner_browser.wait_for_text("delivered")
    owner_browser.screenshot("email")


def test_a_bounced_message_and_its_suppression(story: Story, owner_browser: Browser, sender: httpx.Client):
    sent = send(sender, story.domain, internet.REJECTED_RECIPIENT, "to nobody").raise_for_status().json()
    wait_for_event(sender, sent["id"], "bounced")
    require_page(owner_browser, f"/console/emails/{sent['id']}")
    owner_browser.wait_for_text("bounced")
    require_page(owner_browser, "/console/suppressions")
    owner_browser.wait_for_text(internet.REJECTED_RECIPIENT)
    owner_browser.screenshot("suppressions")
    owner_browser.open("/console/")
    owner_browser.screenshot("overview")


@pytest.fixture(scope="module")
def webhook_log(console: Console, tmp_path_factory) -> Iterator[Path]:
    """A webhook receiver on the outside vantage point; each delivery a JSON line."""
    bed = console.mail.bed
    path = tmp_path_factory.mktemp("console-hooks") / "deliveries.jsonl"
    path.touch()
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", bed.outside_netns, sys.executable, "-m", "tests.testbed.webhook_receiver",
         bed.outside_address, str(WEBHOOK_PORT), str(path)], cwd=REPO)
    yield path
    receiver.terminate()
    receiver.wait(10)


def _received(path: Path, email_id: str) -> list[dict[str, Any]]:
    bodies = [json.loads(json.loads(line)["body"]) for line in path.read_text().splitlines()]
    return [b for b in bodies if b["data"].get("email_id") == email_id and b["type"] == "email.delivered"]


def test_replay_a_webhook_delivery(console: Console, story: Story, owner_browser: Browser, sender: httpx.Client,
                                   webhook_log: Path):
    require_page(owner_browser, "/console/webhooks")
    endpoint = f"http://{console.mail.bed.outside_address}:{WEBHOOK_PORT}/hook"
    owner_browser.submit(owner_browser.form("/console/webhooks"), {"endpoint": endpoint, "events": "email.delivered"})
    hook_path = next(p for p in [owner_browser.path, *owner_browser.links("/console/webhooks/")]
                     if "/console/webhooks/" in p)
    story.webhook_id = hook_path.rstrip("/").rsplit("/", 1)[1]
    sent = send(sender, story.domain, f"inbox@{internet.MX_DOMAIN}", "webhook").raise_for_status().json()
    wait_for_event(sender, sent["id"], "delivered")
    until(lambda: _received(webhook_log, sent["id"]), 60, "the delivered webhook")
    owner_browser.open(f"/console/webhooks/{story.webhook_id}")
    owner_browser.wait_for_text("email.delivered")
    rows = owner_browser.driver.find_elements(By.CSS_SELECTOR, "tr[data-delivery] td[data-field='response']")
    assert "204" in [r.text for r in rows], [r.text for r in rows]
    owner_browser.screenshot("webhook")
    owner_browser.submit(owner_browser.form(f"/console/webhooks/{story.webhook_id}/deliveries/", contains="/replay"))
    assert owner_browser.last_document_status() == 200
    until(lambda: len(_received(webhook_log, sent["id"])) >= 2, 60, "the replayed delivery")


def test_invite_a_member_who_accepts_and_signs_in(console: Console, story: Story, owner_browser: Browser):
    require_page(owner_browser, "/console/team")
    member = Account(f"member-{uuid.uuid4().hex[:8]}@example.test", PASSWORD)
    form = next((f for f in owner_browser.driver.find_elements(By.CSS_SELECTOR, "form[method='post']")
                 if f.find_elements(By.CSS_SELECTOR, "input[name='email']")
                 and "invite" in (f.get_attribute("action") or "")), None)
    assert form is not None, "no invite form on the team page"
    owner_browser.submit(form, {"email": member.email, "role": "member"})
    links = owner_browser.links("/console/invites/accept?token=") or [
        word for word in owner_browser.text().split() if "/console/invites/accept?token=" in word]
    assert links, owner_browser.text()
    invited = console.browser()
    invited.driver.get(links[0] if links[0].startswith("https://") else console.origin + links[0])
    invited.wait_loaded()
    invited.submit(invited.form("/console/invites/register"), {"email": member.email, "password": member.password})
    assert invited.path == "/console/", invited.text()
    sign_out(invited)
    sign_in(invited, member)
    assert member.email in invited.text()
    owner_browser.open("/console/team")
    assert member.email in owner_browser.text()
    owner_browser.screenshot("team")


def test_an_operator_suspends_a_team_its_sends_are_refused_then_resumes_it(console: Console, story: Story,
                                                                            sender: httpx.Client):
    operator = Account(f"op-{uuid.uuid4().hex[:8]}@example.test", "")
    printed = console.admin("create-operator", operator.email)
    operator.password = next(line.split(": ", 1)[1] for line in printed.splitlines()
                             if line.startswith("operator password"))
    browser = console.browser()
    sign_in(browser, operator)
    require_page(browser, "/console/operator")
    browser.screenshot("operator")
    if not browser.has_form("/console/operator/", contains=f"{story.team_id}/suspend"):
        found = browser.links(story.team_id)
        assert found, f"the operator's page does not list the team {story.team_id}"
        browser.driver.get(found[0])
        browser.wait_loaded()
    browser.submit(browser.form("/console/operator/", contains=f"{story.team_id}/suspend"),
                   {"reason": "browser test"})
    browser.screenshot("operator-team")
    refused = send(sender, story.domain, f"inbox@{internet.MX_DOMAIN}", "while suspended")
    assert refused.status_code == 403 and "browser test" in refused.text, refused.text
    browser.submit(browser.form("/console/operator/", contains=f"{story.team_id}/resume"))
    assert send(sender, story.domain, f"inbox@{internet.MX_DOMAIN}", "resumed").status_code == 200
    require_page(browser, "/console/operator/status")
    host = browser.driver.find_elements(By.CSS_SELECTOR, "section[data-host]")
    assert host, "the status page shows no host's report"
    services = host[0].find_element(By.CSS_SELECTOR, "tr[data-check='Services'] span[data-status]")
    assert services.get_attribute("data-status") == "ok", host[0].text
    browser.driver.execute_script("arguments[0].scrollIntoView()", host[0])
    browser.screenshot("operator-status")


# -- over every page


def test_a_form_without_its_csrf_token_is_refused(story: Story, owner_browser: Browser):
    assert story.owner is not None
    owner_browser.open("/console/account")
    form = owner_browser.form("/console/account/password")
    owner_browser.driver.execute_script("arguments[0].querySelector(\"input[name='csrf_token']\").remove()", form)
    owner_browser.submit(form, {"current_password": story.owner.password, "new_password": "an entirely new one"})
    assert owner_browser.last_document_status() == 403
    assert "security token" in owner_browser.text()
    owner_browser.open("/console/account")  # the password is unchanged: the old one still signs in
    sign_out(owner_browser)
    sign_in(owner_browser, story.owner)


def test_no_csp_violation_and_no_request_leaves_the_platforms_origin(console: Console):
    for browser in console.browsers:
        browser.drain()
    assert console.logs.requests, "the browsers sent no request"
    assert console.logs.csp_violations() == []
    assert console.logs.foreign_requests(console.origin) == []
    print(f"{len(console.logs.requests)} requests, {len(console.logs.documents)} pages, "
          f"{len(console.logs.console)} console messages:")
    for entry in console.logs.console:  # the refusals the flows provoke (401, 403) show as failed loads
        print(f"    {entry['level']} {entry['message']}")
