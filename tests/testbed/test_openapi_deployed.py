"""Schemathesis, every check on, against the deployed API over HTTPS (granian on 443, the ACME certificate):
with a team's API key, then with an operator's session, at least 3,000 cases find nothing."""

from __future__ import annotations

import hashlib
import shlex
import ssl
import uuid

import httpx
import pytest

from tests.openapi_fuzz import ENDPOINT_VARIABLE, Credentials, FuzzRun, run_schemathesis
from tests.testbed.appliance_support import Appliance, open_appliance
from tests.testbed.mail_support import MailTestbed

MAX_EXAMPLES = 40
MIN_CASES = 3000
PASSWORD = "fuzzing the appliance, from the outside in"
UNLIMITED = 1_000_000
# A team may change its own rate limits and password, and logging out ends the session: these run after
# the others, on their own, logging out last.
LAST = (("team/update", "auth/change-password"), ("auth/logout",))


@pytest.fixture(scope="module")
def opened(single_testbed, tmp_path_factory, monkeypatch_module) -> Appliance:
    return open_appliance(single_testbed, tmp_path_factory.mktemp("ca"), monkeypatch_module)


def _sql(mail_bed: MailTestbed, query: str) -> str:
    """As the database superuser, on the single testbed's one host."""
    return mail_bed.on_mail_host(f"runuser -u postgres -- psql -d postyard -Atc {shlex.quote(query)}")


def _unlimited(mail_bed: MailTestbed, team: str) -> None:
    """The fuzzer's team may send a million requests a minute (before the API has cached its limits)."""
    _sql(mail_bed, f"UPDATE teams SET rate_limit = {UNLIMITED}, api_key_rate_limit = {UNLIMITED} WHERE id = {team}")


def _operator_session(opened: Appliance) -> Credentials:
    """A new team's owner, made an operator too, logged in: team routes and operator routes both answer."""
    printed = opened.mail.on_mail_host("postyard-api admin invite-team")
    token = next(line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("invite token"))
    email = f"fuzz-{uuid.uuid4().hex[:8]}@example.com"
    trust = ssl.create_default_context(cafile=opened.ca_bundle)
    response = httpx.post(f"{opened.url}/auth/register", verify=trust, json={
        "email": email, "password": PASSWORD, "team_name": "Fuzz", "invite": token})
    assert response.status_code == 201, response.text
    _sql(opened.mail, f"UPDATE users SET is_operator = true WHERE email = '{email}'")
    _unlimited(opened.mail, f"'{response.json()['team_id']}'")
    return Credentials(session=response.cookies["postyard_session"], csrf_token=response.json()["csrf_token"],
                       team_id=response.json()["team_id"])


def _in_turn(opened: Appliance, credentials: Credentials, tmp_path, name: str) -> list[FuzzRun]:
    common = {"max_examples": MAX_EXAMPLES, "tls_verify": str(opened.ca_bundle), "in_process": True}
    schema = f"{opened.url}/docs/openapi.json"
    runs = [run_schemathesis(schema, credentials, tmp_path / f"{name}-main",
                             exclude_operation_ids=[o for group in LAST for o in group], **common)]
    for number, group in enumerate(LAST, 1):
        runs.append(run_schemathesis(schema, credentials, tmp_path / f"{name}-last{number}",
                                     include_operation_ids=group, **common))
    return runs


def test_schemathesis_with_every_check_finds_nothing_on_the_deployed_api(opened, single_testbed, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv(ENDPOINT_VARIABLE, f"http://{single_testbed.outside_address}:9/fuzz")
    key_hash = hashlib.sha256(opened.api_key.encode()).hexdigest()
    _unlimited(opened.mail, f"(SELECT team_id FROM api_keys WHERE token_hash = decode('{key_hash}', 'hex'))")
    # Sign the operator up before the fuzzer spends this address's budget for unauthenticated routes.
    session = _operator_session(opened)
    runs = _in_turn(opened, Credentials(api_key=opened.api_key), tmp_path, "api-key")
    runs += _in_turn(opened, session, tmp_path, "session")
    report = "\n\n".join(run.summary for run in runs)
    print(report)
    assert all(run.ok for run in runs), report
    assert sum(run.cases for run in runs) >= MIN_CASES, report
