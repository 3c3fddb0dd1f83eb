"""Webhook bodies validate against the schemas of Resend's OpenAPI description, event type by event type."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from app.domain.events.recorder import EVENT_TYPES, EmailSummary, Event
from app.domain.events.webhook_payload import EXTENSION_EVENT_TYPES, webhook_payload
from app.domain.receiving.intake import received_payload
from tests.inbound_mail import inbound_message
from tests.resend_spec import resend_spec, webhook_event_validator

SUMMARY = EmailSummary(id=uuid.uuid4(), team_id=uuid.uuid4(), from_address="Acme <hi@acme.example>",
                       to_addresses=["bob@example.org"], subject="Hi", created_at=datetime.now(UTC),
                       tags=[{"name": "kind", "value": "welcome"}])
DETAILS = {
    "sent": {"queue_id": "4XyZ"},
    "delivered": {"status": "2.0.0", "diagnostic": "smtp; 250 ok"},
    "delivery_delayed": {"status": "4.4.1", "diagnostic": "smtp; 421 try later"},
    "bounced": {"status": "5.1.1", "diagnostic": "smtp; 550 5.1.1 user unknown", "type": "hard"},
    "complained": {"feedback_type": "abuse"},
    "failed": {"reply": "554 5.7.1 rejected"},
    "suppressed": {"reason": "hard_bounce"},
    "scheduled": {"scheduled_at": "2026-12-24T10:00:00+00:00"},
    "opened": {"ip": "198.51.100.7", "user_agent": "Mail/1.0"},
    "clicked": {"ip": "198.51.100.7", "user_agent": "Mail/1.0", "link": "https://acme.example/offer?a=1"},
}


def _body(kind: str, detail: dict) -> dict:
    return json.loads(webhook_payload(Event(SUMMARY, kind, recipient="bob@example.org", detail=detail),
                                      datetime.now(UTC)))


@pytest.mark.parametrize("kind", [k for k in EVENT_TYPES if k not in EXTENSION_EVENT_TYPES])
def test_every_resend_event_type_validates_against_resends_schema(kind):
    body = _body(kind, DETAILS[kind])
    errors = [e.message for e in webhook_event_validator(f"email.{kind}").iter_errors(body)]
    assert errors == [] and body["type"] == f"email.{kind}"


def test_the_extension_event_types_are_exactly_those_resend_does_not_have():
    resend_types = set(resend_spec()["webhooks"])
    assert {f"email.{k}" for k in EVENT_TYPES} - resend_types == {f"email.{k}" for k in EXTENSION_EVENT_TYPES}


def test_a_bounce_carries_resends_type_subtype_and_diagnostic_codes():
    hard = _body("bounced", DETAILS["bounced"])["data"]["bounce"]
    soft = _body("bounced", {"status": "4.2.2", "diagnostic": "smtp; 452 4.2.2 full", "type": "soft"})["data"]["bounce"]
    assert hard == {"type": "Permanent", "subType": "NoEmail", "message": "smtp; 550 5.1.1 user unknown",
                    "diagnosticCode": ["smtp; 550 5.1.1 user unknown"]}
    assert (soft["type"], soft["subType"]) == ("Transient", "MailboxFull")


def test_a_suppression_and_a_failure_carry_resends_reasons():
    complaint = _body("suppressed", {"reason": "complaint"})["data"]
    failed = _body("failed", DETAILS["failed"])["data"]
    assert complaint["suppressed"]["reason"] == "previous_complaint" and "detail" not in complaint
    assert failed["failed"] == {"reason": "554 5.7.1 rejected"} and "detail" not in failed


def test_the_received_event_validates_against_resends_schema():
    email_id = uuid.uuid4()
    raw = inbound_message("alice@sender.example", "support@acme.example")
    body = json.loads(received_payload(email_id, raw, datetime.now(UTC)))
    errors = [e.message for e in webhook_event_validator("email.received").iter_errors(body)]
    assert errors == [] and body["data"]["email_id"] == str(email_id)
    assert (body["data"]["to"], body["data"]["cc"]) == (["support@acme.example"], ["carol@sender.example"])
    assert [a["filename"] for a in body["data"]["attachments"]] == ["invoice.pdf"]


def test_a_click_carries_resends_click_object_and_an_open_no_reader_details():
    clicked = _body("clicked", DETAILS["clicked"])["data"]
    opened = _body("opened", DETAILS["opened"])["data"]
    assert {k: v for k, v in clicked["click"].items() if k != "timestamp"} == {
        "ipAddress": "198.51.100.7", "link": "https://acme.example/offer?a=1", "userAgent": "Mail/1.0"}
    assert "detail" not in clicked and "detail" not in opened
