"""The abuse suite: an attacker on the internet (the testbed's outside network namespace) against the
deployed appliance. Each test is one attack of issue 13, and checks what the attacker got: a refusal
with a reason, and nothing at the remote MX, in the suppression list or in the account's sessions.

The attacker's HTTP requests leave from addresses of their own in the outside namespace
(tests/testbed/outside_http.py), so the per-address throttles one attack earns do not answer for the
next; mail goes through the same namespace with postyard/smtp_probe.py.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import re
import shlex
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest

from app.config import Settings
from app.host_layout import POSTFIX_MAPS_DIR
from postyard.secrets import SecretStore
from postyard.testbed import internet
from roles.api import METRICS_TOKEN_SECRET
from tests.testbed.abuse_support import forged_arf, forged_dsn, operator, wait_for_report_pipe, wait_until
from tests.testbed.appliance_support import Appliance, open_appliance, verified_domain
from tests.testbed.mail_support import MailTestbed, Sender, make_message
from tests.testbed.outside_http import OutsideHttp, fresh_sources

REMOTE = internet.MX_DOMAIN
ENHANCED = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}\b")
DEFAULTS = Settings(database_url="")  # the testbed keeps the app's default limits


# -- the customer under attack, and the attacker's vantage point ---------------------------------


@pytest.fixture(scope="module")
def bed(single_testbed):
    return single_testbed


@pytest.fixture(scope="module")
def opened(bed, tmp_path_factory, monkeypatch_module) -> Appliance:
    return open_appliance(bed, tmp_path_factory.mktemp("ca"), monkeypatch_module)


@pytest.fixture(scope="module")
def mail_bed(opened) -> MailTestbed:
    return opened.mail


@pytest.fixture(scope="module")
def domain(opened) -> str:
    return verified_domain(opened)


@pytest.fixture(scope="module")
def new_source(bed) -> Iterator[Callable[[], str]]:
    """A fresh address of the outside namespace for each call, removed after the module."""
    with fresh_sources(bed.outside_netns, str(ipaddress.ip_address(bed.outside_address) + 1)) as new:
        yield new


@pytest.fixture(scope="module")
def outside(bed, opened, new_source) -> Iterator[Callable[..., OutsideHttp]]:
    """HTTPS clients from the outside, each from an address of its own; `key` adds a bearer token."""
    clients: list[OutsideHttp] = []

    def make(key: str | None = None, source: str | None = None) -> OutsideHttp:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        clients.append(OutsideHttp(bed.outside_netns, opened.url, opened.ca_bundle, source or new_source(), headers))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def api(outside, opened) -> OutsideHttp:
    """The customer's own API key, from the outside."""
    return outside(opened.api_key)


def refused(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error body of a refusal with this status and a reason."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert body.get("message"), body
    return body


def token() -> str:
    return uuid.uuid4().hex[:12]


def arrived(mail_bed: MailTestbed, marker: str) -> list[bytes]:
    """The messages the remote MX kept that carry `marker`."""
    return [raw for raw in mail_bed.received_messages() if marker.encode() in raw]


def send(api: OutsideHttp, domain: str, subject: str, to: str | None = None, **extra: Any) -> str:
    response = api.post("/emails", json={"from": f"Acme <hello@{domain}>", "to": [to or f"inbox@{REMOTE}"],
                                         "subject": subject, "text": "From the abuse suite.", **extra})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def email_state(api: OutsideHttp, email_id: str) -> dict[str, Any]:
    response = api.get(f"/emails/{email_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_until_out(api: OutsideHttp, email_id: str) -> None:
    """Until the email was delivered, bounced or failed."""
    wait_until(lambda: email_state(api, email_id)["last_event"] in ("delivered", "bounced", "failed"),
               f"{email_id} out", 90)


def suppressed(api: OutsideHttp) -> set[str]:
    """Every address on the team's suppression list."""
    found, after = set(), None
    while True:
        page = api.get("/suppressions", params={"limit": 100, **({"after": after} if after else {})}).json()
        found |= {item["email"] for item in page["data"]}
        if not page["has_more"]:
            return found
        after = page["data"][-1]["id"]


# -- sign-up ---------------------------------------------------------------------------------------


def test_sign_up_without_an_invite_is_refused_with_a_reason(outside):
    stranger = outside()
    address = f"stranger-{token()}@{REMOTE}"
    attempt = stranger.post("/auth/register", json={"email": address, "password": "a long enough password",
                                                    "team_name": "takeover"})
    refused(attempt, 403)
    login = stranger.post("/auth/login", json={"email": address, "password": "a long enough password"})
    assert login.status_code == 401, login.text  # no account was made


# -- forged bounce and complaint reports -----------------------------------------------------------


@pytest.fixture(scope="module")
def delivered(api, mail_bed, domain) -> dict[str, str]:
    """An email the team sent that arrived at the remote MX, as its recipient saw it."""
    recipient = f"reader-{token()}@{REMOTE}"
    subject = f"report target {token()}"
    email_id = send(api, domain, subject, to=recipient)
    raw = mail_bed.wait_for(subject, timeout=90)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    verp = message["Return-Path"].strip("<>")
    assert verp.startswith("bounce+") and verp.endswith(f".{domain}"), verp
    wait_until(lambda: email_state(api, email_id)["last_event"] == "delivered", f"{email_id} delivered", 90)
    return {"id": email_id, "verp": verp, "message_id": message["Message-ID"], "recipient": recipient}


def deliver_report(mail_bed: MailTestbed, verp: str, report: str) -> None:
    """Send a report to the VERP address over port 25 and wait until the app has read it."""
    session = mail_bed.outside.smtp(host=mail_bed.mail.public_address, port=25, tls="starttls", mail_from="",
                                    rcpt_to=verp, message=report)
    if not (session["rcpt"][0] == 250 and session["data"][0] == 250):  # what the mail host knew, to diagnose
        listed = f"grep -c {shlex.quote(verp.split('@')[1])} {POSTFIX_MAPS_DIR}/bounce_domains || true"
        sync = mail_bed.on_mail_host(f"journalctl -u postyard-dkim-sync -n 15 --no-pager -o cat; {listed}")
        pytest.fail(f"port 25 refused the report: {session['rcpt']} {session.get('data')}\n{sync}")
    wait_for_report_pipe(mail_bed, session["data"][1].rsplit(" ", 1)[-1])


def assert_unchanged(api: OutsideHttp, delivered: dict[str, str], before: set[str], named: str) -> None:
    assert suppressed(api) == before
    assert api.get(f"/suppressions/{named}").status_code == 404
    state = email_state(api, delivered["id"])
    assert state["last_event"] == "delivered", state
    assert not {e["type"] for e in state.get("events") or []} & {"bounced", "complained"}, state["events"]


def test_a_forged_dsn_naming_an_address_that_was_not_a_recipient_suppresses_nothing(api, mail_bed, delivered):
    before = suppressed(api)
    victim = f"victim-{token()}@{REMOTE}"
    deliver_report(mail_bed, delivered["verp"], forged_dsn(delivered["verp"], victim, delivered["message_id"]))
    assert_unchanged(api, delivered, before, victim)


def test_a_forged_complaint_naming_an_address_that_was_not_a_recipient_suppresses_nothing(api, mail_bed,
                                                                                          delivered):
    before = suppressed(api)
    victim = f"victim-{token()}@{REMOTE}"
    deliver_report(mail_bed, delivered["verp"], forged_arf(delivered["verp"], victim, delivered["message_id"]))
    assert_unchanged(api, delivered, before, victim)


def test_a_forged_dsn_whose_returned_message_id_differs_changes_nothing(api, mail_bed, delivered, domain):
    before = suppressed(api)
    other_id = f"<{uuid.uuid4().hex}@{domain}>"
    deliver_report(mail_bed, delivered["verp"], forged_dsn(delivered["verp"], delivered["recipient"], other_id))
    assert_unchanged(api, delivered, before, delivered["recipient"])


# -- header injection ------------------------------------------------------------------------------

INJECTIONS: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "a vertical tab and From in the subject": lambda d, t: {"subject": f"Hi {t}\x0bFrom : ceo@bank.test"},
    "a vertical tab and Bcc in the subject": lambda d, t: {"subject": f"Hi {t}\x0bBcc: x@{REMOTE}"},
    "a form feed in the subject": lambda d, t: {"subject": f"Hi {t}\x0cFrom: ceo@bank.test"},
    "a file separator in the subject": lambda d, t: {"subject": f"Hi {t}\x1cFrom: ceo@bank.test"},
    "a record separator in the subject": lambda d, t: {"subject": f"Hi {t}\x1eFrom: ceo@bank.test"},
    "a next-line (C1) in the subject": lambda d, t: {"subject": f"Hi {t}\x85From: ceo@bank.test"},
    "a line separator in the subject": lambda d, t: {"subject": f"Hi {t}\u2028From: ceo@bank.test"},
    "a vertical tab in the sender's display name": lambda d, t: {
        "subject": f"Hi {t}", "from": f"Acme\x0bFrom: ceo@bank.test <hello@{d}>"},
    "a vertical tab in a recipient's display name": lambda d, t: {
        "subject": f"Hi {t}", "to": [f"Reader\x0bBcc: x@{REMOTE} <inbox@{REMOTE}>"]},
    "a vertical tab in a custom header": lambda d, t: {
        "subject": f"Hi {t}", "headers": {"X-Note": "a\x0bFrom: ceo@bank.test"}},
    "a file separator in a custom header": lambda d, t: {
        "subject": f"Hi {t}", "headers": {"X-Note": "a\x1dBcc: x@remote.test"}},
}


def injection(domain: str, marker: str, name: str) -> dict[str, Any]:
    return {"from": f"Acme <hello@{domain}>", "to": [f"inbox@{REMOTE}"], "text": f"Injected {marker}",
            **INJECTIONS[name](domain, marker)}


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_header_injection_through_post_emails_is_refused_with_422(api, domain, name):
    refused(api.post("/emails", json=injection(domain, token(), name)), 422)


def test_refused_injections_deliver_nothing_and_no_message_has_a_second_from(api, mail_bed, domain):
    marker = token()
    answers = {name: api.post("/emails", json=injection(domain, marker, name)) for name in INJECTIONS}
    # Whatever was accepted is waited for until it is out; the control message, sent last, flushes the rest.
    for answer in answers.values():
        if answer.status_code == 200:
            wait_until_out(api, answer.json()["id"])
    control = f"control {marker}"
    send(api, domain, control)
    mail_bed.wait_for(control, timeout=90)
    kept = arrived(mail_bed, marker)
    for raw in kept:
        headers = email.message_from_bytes(raw)
        assert len(headers.get_all("From") or []) == 1 and "Bcc" not in headers, raw[:2000]
    assert len(kept) == 1, ({name: a.status_code for name, a in answers.items()}, [raw[:400] for raw in kept])


# -- SMTP submission -------------------------------------------------------------------------------


def submission(mail_bed: MailTestbed, login: tuple[str, str], mail_from: str, recipients: str | list[str],
               message: str, port: int = 587) -> dict[str, Any]:
    return mail_bed.outside.smtp(host=mail_bed.mail.public_address, port=port,
                                 tls="implicit" if port == 465 else "starttls", auth=list(login),
                                 mail_from=mail_from, rcpt_to=recipients, message=message)


def refusal(session: dict[str, Any]) -> list[Any]:
    """The first reply of the session's transaction that was not a success."""
    replies = [session.get("mail"), *(session.get("rcpts") or [session.get("rcpt")]), session.get("data")]
    return next((reply for reply in replies if reply and reply[0] >= 400), [250, "accepted"])


def test_smtp_submission_with_sixty_recipients_is_refused_with_a_5xx_enhanced_code(opened, mail_bed, domain):
    marker = token()
    message = make_message(domain, f"sixty {marker}")
    recipients = [f"r{i}-{marker}@{REMOTE}" for i in range(60)]
    session = submission(mail_bed, opened.smtp_login, f"app@{domain}", recipients, message.as_string())
    assert session["auth"][0] == 235, session
    code, text = refusal(session)
    assert 500 <= code < 600 and ENHANCED.match(text) and text.startswith("5."), session
    assert session.get("data", [0])[0] != 250, session


def test_smtp_submission_with_two_from_headers_is_refused_with_a_5xx_enhanced_code(opened, mail_bed, domain):
    message = (f"From: app@{domain}\r\nFrom: ceo@bank.test\r\nTo: inbox@{REMOTE}\r\n"
               f"Subject: two senders {token()}\r\nMessage-ID: <{uuid.uuid4().hex}@{domain}>\r\n\r\nHello.\r\n")
    session = submission(mail_bed, opened.smtp_login, f"app@{domain}", f"inbox@{REMOTE}", message)
    assert session["auth"][0] == 235, session
    code, text = session["data"]
    assert 500 <= code < 600 and ENHANCED.match(text) and text.startswith("5."), session


# -- authentication races --------------------------------------------------------------------------

PASSWORD = "correct horse battery staple"


@pytest.fixture
def account(mail_bed, outside) -> dict[str, str]:
    """A user with a password, who joined through an operator's invite."""
    printed = operator(mail_bed, "invite-team")
    invite_token = re.search(r"^invite token \(shown once\): (\S+)$", printed, re.MULTILINE).group(1)
    address = f"user-{token()}@{REMOTE}"
    made = outside().post("/auth/register", json={"email": address, "password": PASSWORD,
                                                  "team_name": f"team {token()}", "invite": invite_token})
    assert made.status_code == 201, made.text
    return {"email": address, "password": PASSWORD}


def login(client: OutsideHttp, account: dict[str, str], password: str | None = None) -> httpx.Response:
    return client.post("/auth/login", json={"email": account["email"], "password": password or account["password"]})


def session_of(response: httpx.Response) -> dict[str, str]:
    """The cookie and CSRF header a logged-in response gives."""
    assert response.status_code in (200, 201), response.text
    return {"Cookie": f"postyard_session={response.cookies['postyard_session']}",
            "X-CSRF-Token": response.json().get("csrf_token") or ""}


@pytest.fixture
def two_factor(account, outside) -> dict[str, Any]:
    """The account with TOTP on: its secret and backup codes."""
    client = outside()
    headers = session_of(login(client, account))
    setup = client.post("/auth/2fa/setup", headers=headers)
    assert setup.status_code == 200, setup.text
    totp = pyotp.TOTP(setup.json()["secret"])
    # The previous time step's code (accepted within the window) turns 2FA on, so the current one is unused.
    enabled = client.post("/auth/2fa/enable", headers=headers,
                          json={"code": totp.at(datetime.now(UTC) - timedelta(seconds=totp.interval))})
    assert enabled.status_code == 200, enabled.text
    return {**account, "totp": totp, "backup_codes": enabled.json()["backup_codes"]}


def second_factor(client: OutsideHttp, pending: dict[str, str], code: str) -> httpx.Response:
    return client.post("/auth/login/totp", headers={"Cookie": pending["Cookie"]}, json={"code": code})


def pending_login(client: OutsideHttp, account: dict[str, str]) -> dict[str, str]:
    response = login(client, account)
    assert response.status_code == 200 and response.json()["mfa_required"], response.text
    return session_of(response)


def test_a_totp_code_is_accepted_once_and_its_replay_is_refused(two_factor, outside):
    user, attacker = outside(), outside()
    code = two_factor["totp"].now()
    first = second_factor(user, pending_login(user, two_factor), code)
    assert first.status_code == 200, first.text
    replay = second_factor(attacker, pending_login(attacker, two_factor), code)
    refused(replay, 401)


def test_parallel_uses_of_one_backup_code_let_exactly_one_through(two_factor, outside):
    attacker = outside()
    code = two_factor["backup_codes"][0]
    pendings = [pending_login(attacker, two_factor) for _ in range(8)]
    answers = attacker.at_once([("POST", "/auth/login/totp", {"headers": {"Cookie": p["Cookie"]},
                                                               "json": {"code": code}}) for p in pendings])
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 401, 429}, [a.text for a in answers]


def test_thirty_concurrent_wrong_passwords_leave_the_account_throttled(account, outside):
    attacker, owner = outside(), outside()
    wrong = [("POST", "/auth/login", {"json": {"email": account["email"], "password": f"guess {i}"}})
             for i in range(30)]
    statuses = [a.status_code for a in attacker.at_once(wrong)]
    assert set(statuses) <= {401, 429}, statuses
    # Counted before checked: no more guesses were checked than the account allows.
    assert statuses.count(401) <= DEFAULTS.login_max_failures_account, statuses
    thirty_first = login(attacker, account, "guess 31")
    refused(thirty_first, 429)
    assert int(thirty_first.headers["Retry-After"]) > 0
    # The account, not only the attacker's address, is throttled: its owner's right password waits too.
    refused(login(owner, account), 429)


# -- webhooks: server-side request forgery ---------------------------------------------------------

SSRF_URLS = [
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the metadata address
    "http://[::127.0.0.1]/",  # IPv4-compatible loopback
    "http://[2002:7f00:1::]/",  # 6to4 of loopback
    "http://[fec0::1]/",  # site-local
    "http://[::ffff:169.254.169.254]/",  # IPv4-mapped metadata address
    "http://169.254.169.254/latest/meta-data/",  # the metadata address itself
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, its client part 127.0.0.1
    "http://2852039166/",  # 169.254.169.254 written as one number
    "http://0xa9.0xfe.0xa9.0xfe/",  # and in hexadecimal
    "http://[::1]/",
    "http://127.0.0.1:5432/",
]


@pytest.mark.parametrize("url", SSRF_URLS)
def test_a_webhook_to_a_non_public_address_form_is_refused_with_422(api, url):
    refused(api.post("/webhooks", json={"endpoint": url, "events": ["email.sent"]}), 422)


def test_a_webhook_host_with_one_non_public_address_among_its_answers_is_refused(api, mail_bed, domain):
    name = f"hook-{token()}.{domain}"
    # The testbed's receivers live at the outside address; the second answer is the metadata address.
    internet.update(mail_bed.dns, internet.tsig_secret(mail_bed.store), name + ".", "A",
                    [mail_bed.bed.outside_address, "169.254.169.254"])
    refused(api.post("/webhooks", json={"endpoint": f"http://{name}/", "events": ["email.sent"]}), 422)


# -- NUL characters --------------------------------------------------------------------------------

NUL_REQUESTS = {
    "an API key's name": ("POST", "/api-keys", {"json": {"name": "key\x00name"}}),
    "a suppression looked up by address": ("GET", "/suppressions/a%00b@remote.test", {}),
    "a suppression removed by address": ("DELETE", "/suppressions/a%00b@remote.test", {}),
    "a batch removal of suppressions": ("POST", "/suppressions/batch/remove", {"json": {"emails": ["a\x00b@x.test"]}}),
    "an SMTP credential's name": ("POST", "/smtp-credentials", {"json": {"name": "cred\x00name"}}),
}


@pytest.mark.parametrize("name", list(NUL_REQUESTS))
def test_a_nul_character_is_refused_with_422(api, name):
    method, path, options = NUL_REQUESTS[name]
    refused(api.request(method, path, **options), 422)


@pytest.mark.parametrize("field", ["email", "password"])
def test_a_nul_character_in_a_login_is_refused_with_422(outside, field):
    body = {"email": f"someone-{token()}@{REMOTE}", "password": "a password", field: "nul\x00@remote.test"}
    refused(outside().post("/auth/login", json=body), 422)


# -- /metrics --------------------------------------------------------------------------------------


def metrics_token(bed) -> str:
    return SecretStore(bed.directory / "secrets").get(METRICS_TOKEN_SECRET)


def test_metrics_are_closed_to_anonymous_clients_from_outside(outside):
    answer = outside().get("/metrics")
    assert answer.status_code in (401, 403, 404), answer.status_code
    assert "# HELP" not in answer.text


def test_metrics_are_closed_to_a_team_api_key(api):
    answer = api.get("/metrics")
    assert answer.status_code in (401, 403, 404), answer.status_code
    assert "# HELP" not in answer.text


def test_metrics_open_with_the_deploys_bearer_token(bed, outside):
    answer = outside(metrics_token(bed)).get("/metrics")
    assert answer.status_code == 200 and "# HELP" in answer.text, answer.text[:300]


# -- suspension and quotas -------------------------------------------------------------------------


def team_id(client: OutsideHttp) -> str:
    answer = client.get("/team")
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


@pytest.fixture(scope="module")
def sender_team(mail_bed, outside) -> Callable[[], tuple[Sender, OutsideHttp, str]]:
    """A new team with a verified domain and an SMTP credential; its API key's client, and its id."""

    def make() -> tuple[Sender, OutsideHttp, str]:
        sender = mail_bed.new_sender()
        client = outside(sender.api_key)
        return sender, client, team_id(client)

    return make


def test_a_suspended_team_cannot_send_and_its_held_mail_goes_out_after_resumption(mail_bed, sender_team):
    sender, client, team = sender_team()
    held_subject = f"held {token()}"
    soon = datetime.now(UTC) + timedelta(seconds=15)
    held = send(client, sender.domain, held_subject, scheduled_at=soon.isoformat())
    operator(mail_bed, "suspend", team, "--reason", "abuse suite: suspended for the test")
    try:
        assert datetime.now(UTC) < soon, "the suspension came after the scheduled time; the test proves nothing"
        body = refused(client.post("/emails", json={"from": f"hello@{sender.domain}", "to": [f"inbox@{REMOTE}"],
                                                    "subject": "while suspended", "text": "no"}), 403)
        assert "suspend" in body["message"].lower(), body
        refused(client.post("/emails/batch", json=[{"from": f"hello@{sender.domain}", "to": [f"inbox@{REMOTE}"],
                                                     "subject": "while suspended", "text": "no"}]), 403)
        message = make_message(sender.domain, f"smtp while suspended {token()}")
        session = mail_bed.submit(587, sender, message)
        assert session["auth"][0] == 235, session
        code, text = refusal(session)
        assert 500 <= code < 600 and text.startswith("5.7.1"), session
        # Past its time, the scheduled email is held: not sent, and not lost.
        wait_until(lambda: datetime.now(UTC) > soon + timedelta(seconds=8), "the scheduled time passing", 60)
        assert not arrived(mail_bed, held_subject)
        assert email_state(client, held)["last_event"] in ("scheduled", "queued"), email_state(client, held)
    finally:
        operator(mail_bed, "resume", team)
    mail_bed.wait_for(held_subject, timeout=120)


def test_quota_exhaustion_answers_429_with_retry_after_on_the_api_and_4_7_x_on_smtp(mail_bed, sender_team):
    sender, client, team = sender_team()
    operator(mail_bed, "set-quota", team, "--daily", "2")
    send(client, sender.domain, f"quota one {token()}")
    first_smtp = mail_bed.submit(587, sender, make_message(sender.domain, f"quota two {token()}"))
    assert first_smtp["data"][0] == 250, first_smtp  # the API and SMTP count against one quota
    over = client.post("/emails", json={"from": f"hello@{sender.domain}", "to": [f"inbox@{REMOTE}"],
                                        "subject": "over quota", "text": "no"})
    refused(over, 429)
    assert int(over.headers["Retry-After"]) > 0
    session = mail_bed.submit(587, sender, make_message(sender.domain, f"smtp over quota {token()}"))
    code, text = refusal(session)
    assert 400 <= code < 500 and text.startswith("4.7."), session

