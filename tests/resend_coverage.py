"""Every operation of Resend's transactional groups, called on a Postyard API and checked against Resend's
OpenAPI description with openapi-core: the request as the spec allows it, the answer as the spec describes it.

The same run serves the API suite (granian on loopback) and the deployed testbed. What it cannot call yet is
listed in NOT_SERVED with the reason, so the count of what is served is the count the run proves. The receiving
operations need a message received for the team's domain: the caller says how one arrives (the receive pipe in the
API suite, SMTP to the mail host's port 25 on the testbed).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from tests.resend_spec import resend_spec

__all__ = ["EXCLUDED", "GROUPS", "NOT_SERVED", "CoverageRun", "spec_operations"]

GROUPS = ("Emails", "Receiving Emails", "Domains", "API Keys", "Webhooks", "Suppressions", "Templates")
_CLAIM = ("A domain claim moves a domain between Resend accounts; on a self-hosted instance the operator "
          "reassigns a domain (docs/operators.md)")
EXCLUDED = {("post", "/domains/claim"): _CLAIM, ("get", "/domains/{domain_id}/claim"): _CLAIM,
            ("post", "/domains/{domain_id}/claim/verify"): _CLAIM}
NOT_SERVED: dict[tuple[str, str], str] = {}
RECEIVED_WITHIN = 120  # seconds for an inbound message to be stored
_PUBLIC = "https://api.resend.com"
# A domain's records also name what Postyard checks and Resend's `record` enum has no word for; they stay in
# `records` so that SDK users who publish every listed record publish these too (docs/api.md). The rest of
# each answer is checked.
POSTYARD_RECORDS = ("Ownership", "DMARC", "MTA-STS", "TLS-RPT")


def _without_postyard_records(payload: Any) -> Any:
    if isinstance(payload, dict) and isinstance(payload.get("records"), list):
        return {**payload, "records": [r for r in payload["records"] if r.get("record") not in POSTYARD_RECORDS]}
    return payload


def spec_operations() -> list[tuple[str, str, str]]:
    """(method, path, group) of every operation of the groups, in the description's order."""
    found = []
    for path, item in resend_spec()["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and operation.get("tags", [""])[0] in GROUPS:
                found.append((method, path, operation["tags"][0]))
    return found


@lru_cache(maxsize=1)
def _openapi() -> OpenAPI:
    return OpenAPI.from_dict(resend_spec())


def _reason(error: BaseException) -> str:
    parts = [f"{type(error).__name__}: {error}"]
    for inner in getattr(error, "schema_errors", None) or getattr(error.__cause__, "schema_errors", None) or []:
        parts.append(f"  at {'/'.join(map(str, inner.absolute_path))}: {inner.message}")
    return "\n".join(parts)


@dataclass
class CoverageRun:
    """Calls each operation through `client` (a team's API key set) and records what the spec says of it."""

    client: httpx.Client
    domain: str
    checked: dict[tuple[str, str], str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, pattern: str, path: str, body: Any = None) -> Any:
        """Make the request, check it and its answer against the operation `pattern` (the spec names the status
        codes), return the JSON."""
        raw = json.dumps(body).encode() if body is not None else None
        response = self.client.request(method.upper(), path, content=raw,
                                       headers={"content-type": "application/json"} if raw else {})
        assert response.status_code < 300, f"{method.upper()} {path}: {response.status_code} {response.text}"
        parts = urlsplit(path)
        query = {k: v for k, _, v in (p.partition("=") for p in parts.query.split("&") if p)}
        request = MockRequest(_PUBLIC, method, parts.path, args=query, data=raw,
                              headers={"Authorization": "Bearer re_checked"})
        problems = []
        try:
            _openapi().validate_request(request)
        except Exception as error:  # openapi-core raises several unrelated types
            problems.append("request " + _reason(error))
        try:
            checked = json.dumps(_without_postyard_records(response.json())).encode()
            _openapi().validate_response(request, MockResponse(checked, status_code=response.status_code))
        except Exception as error:
            problems.append("response " + _reason(error))
        self.checked[(method, pattern)] = "; ".join(problems)
        return response.json()

    def _emails(self) -> None:
        sender = f"Acme <hello@{self.domain}>"
        bob = f"bob-{uuid.uuid4().hex[:8]}@example.org"  # of this run alone: earlier mail to one may have bounced
        attachment = {"filename": "a.txt", "content": base64.b64encode(b"hello").decode()}
        sent = self.call("post", "/emails", "/emails", {"from": sender, "to": [bob], "subject": "Hi",
                                                         "text": "Hi", "attachments": [attachment]})
        email_id = sent["id"]
        later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        scheduled = self.call("post", "/emails", "/emails", {"from": sender, "to": [bob],
                                                              "subject": "Later", "text": "Later",
                                                              "scheduled_at": later})
        self.call("get", "/emails", "/emails?limit=10")
        self.call("get", "/emails/{email_id}", f"/emails/{email_id}")
        self.call("patch", "/emails/{email_id}", f"/emails/{scheduled['id']}",
                  {"scheduled_at": (datetime.now(UTC) + timedelta(hours=3)).isoformat()})
        self.call("post", "/emails/{email_id}/cancel", f"/emails/{scheduled['id']}/cancel")
        self.call("post", "/emails/batch", "/emails/batch", [
            {"from": sender, "to": ["a@example.org"], "subject": "1", "text": "1"},
            {"from": sender, "to": ["b@example.org"], "subject": "2", "text": "2"}])
        listed = self.call("get", "/emails/{email_id}/attachments", f"/emails/{email_id}/attachments")
        self.call("get", "/emails/{email_id}/attachments/{attachment_id}",
                  f"/emails/{email_id}/attachments/{listed['data'][0]['id']}")
        self.call("post", "/emails/{email_id}/share", f"/emails/{email_id}/share", {"expires_in": "1 hour"})
        self.call("get", "/emails/metrics", "/emails/metrics?dimensions=period,domain&metrics=sent,delivery_rate")

    def _domains(self) -> None:
        created = self.call("post", "/domains", "/domains", {"name": f"cov{uuid.uuid4().hex[:8]}.example",
                                                             "capabilities": {"receiving": "enabled"}})
        domain_id = created["id"]
        self.call("get", "/domains", "/domains?limit=10")
        self.call("get", "/domains/{domain_id}", f"/domains/{domain_id}")
        self.call("patch", "/domains/{domain_id}", f"/domains/{domain_id}",
                  {"tls": "enforced", "capabilities": {"receiving": "disabled"}})
        self.call("post", "/domains/{domain_id}/verify", f"/domains/{domain_id}/verify")
        self.call("delete", "/domains/{domain_id}", f"/domains/{domain_id}")

    def _api_keys(self) -> None:
        created = self.call("post", "/api-keys", "/api-keys", {"name": "coverage"})
        self.call("get", "/api-keys", "/api-keys?limit=10")
        self.call("patch", "/api-keys/{api_key_id}", f"/api-keys/{created['id']}", {"name": "coverage, renamed"})
        self.call("delete", "/api-keys/{api_key_id}", f"/api-keys/{created['id']}")

    def _webhooks(self, endpoint: str) -> None:
        created = self.call("post", "/webhooks", "/webhooks", {"endpoint": endpoint, "events": ["email.sent"]})
        self.call("get", "/webhooks", "/webhooks?limit=10")
        self.call("get", "/webhooks/{webhook_id}", f"/webhooks/{created['id']}")
        self.call("patch", "/webhooks/{webhook_id}", f"/webhooks/{created['id']}", {"events": ["email.bounced"]})
        self.call("delete", "/webhooks/{webhook_id}", f"/webhooks/{created['id']}")

    def _suppressions(self) -> None:
        added = self.call("post", "/suppressions", "/suppressions", {"email": "gone@example.org"})
        self.call("get", "/suppressions", "/suppressions?limit=10")
        self.call("get", "/suppressions/{suppression}", "/suppressions/gone@example.org")
        self.call("post", "/suppressions/batch/add", "/suppressions/batch/add",
                  {"emails": ["one@example.org", "two@example.org"]})
        self.call("post", "/suppressions/batch/remove", "/suppressions/batch/remove",
                  {"emails": ["one@example.org", "two@example.org"]})
        self.call("delete", "/suppressions/{suppression}", f"/suppressions/{added['id']}")

    def _templates(self) -> None:
        created = self.call("post", "/templates", "/templates", {
            "name": "coverage", "alias": f"cov-{uuid.uuid4().hex[:8]}", "from": f"hello@{self.domain}",
            "subject": "Hi {{{NAME}}}", "html": "<p>Hi {{{NAME}}}</p>",
            "variables": [{"key": "NAME", "type": "string", "fallback_value": "there"}]})
        template_id = created["id"]
        self.call("get", "/templates", "/templates?limit=10")
        self.call("get", "/templates/{id}", f"/templates/{template_id}")
        self.call("patch", "/templates/{id}", f"/templates/{template_id}", {"text": "Hi {{{NAME}}}"})
        self.call("post", "/templates/{id}/publish", f"/templates/{template_id}/publish")
        copy = self.call("post", "/templates/{id}/duplicate", f"/templates/{template_id}/duplicate")
        self.call("post", "/emails", "/emails", {"from": f"hello@{self.domain}",
                                                 "to": [f"bob-{uuid.uuid4().hex[:8]}@example.org"],
                                                 "subject": "Welcome", "template": {
                                                     "id": template_id, "variables": {"NAME": "Bob"}}})
        self.call("delete", "/templates/{id}", f"/templates/{copy['id']}")

    def _received(self, address: str) -> str:
        """The id of the first received email to `address`, once it is stored."""
        deadline = time.monotonic() + RECEIVED_WITHIN
        while time.monotonic() < deadline:
            found = [e["id"] for e in self.client.get("/emails/receiving?limit=100").json()["data"]
                     if address in e["to"]]
            if found:
                return found[0]
            time.sleep(0.5)
        raise AssertionError(f"nothing received for {address} within {RECEIVED_WITHIN} s")

    def _receiving(self, deliver_inbound: Callable[[str], None]) -> None:
        domain_id = next(d["id"] for d in self.client.get("/domains?limit=100").json()["data"]
                         if d["name"] == self.domain)
        self.call("patch", "/domains/{domain_id}", f"/domains/{domain_id}", {"capabilities": {"receiving": "enabled"}})
        address = f"coverage-{uuid.uuid4().hex[:8]}@{self.domain}"
        deliver_inbound(address)
        email_id = self._received(address)
        self.call("get", "/emails/receiving", "/emails/receiving?limit=10")
        self.call("get", "/emails/receiving/{email_id}", f"/emails/receiving/{email_id}")
        listed = self.call("get", "/emails/receiving/{email_id}/attachments",
                           f"/emails/receiving/{email_id}/attachments")
        self.call("get", "/emails/receiving/{email_id}/attachments/{attachment_id}",
                  f"/emails/receiving/{email_id}/attachments/{listed['data'][0]['id']}")

    def run(self, webhook_endpoint: str, deliver_inbound: Callable[[str], None],
            between: Callable[[], None] = lambda: None) -> None:
        """Call every served operation once (`between` runs after each group, e.g. to wait for rate limits);
        `deliver_inbound(address)` has a message with an attachment sent to the address, of the run's domain."""
        for group in (self._emails, self._domains, self._api_keys, lambda: self._webhooks(webhook_endpoint),
                      self._suppressions, self._templates, lambda: self._receiving(deliver_inbound)):
            group()
            between()

    def report(self) -> tuple[dict[str, tuple[int, int]], list[str]]:
        """Per group, (served and matching the spec, operations counted), and every mismatch or gap."""
        counts: dict[str, tuple[int, int]] = {}
        problems = []
        for method, path, group in spec_operations():
            if (method, path) in EXCLUDED:
                continue
            ok, total = counts.get(group, (0, 0))
            outcome = self.checked.get((method, path))
            if outcome is None and (method, path) not in NOT_SERVED:
                problems.append(f"{method.upper()} {path}: not called")
            elif outcome:
                problems.append(f"{method.upper()} {path}: {outcome}")
            counts[group] = (ok + (outcome == ""), total + 1)
        served_gaps = [f"{m.upper()} {p} is listed as not served but was called"
                       for (m, p) in NOT_SERVED if (m, p) in self.checked]
        return counts, problems + served_gaps
