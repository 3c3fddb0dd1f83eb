"""Verdicts on received mail that no DNS answer can settle: whatever arrives is recorded, never an error (the
API suite and the testbed check pass and fail against published records)."""

from __future__ import annotations

import msgspec

from app.domain.receiving.message_fields import addresses_of, bodies_of, headers_of
from app.domain.receiving.verdicts import authenticate


def test_a_message_from_no_smtp_client_with_no_signature_and_no_readable_from_is_recorded_as_such():
    verdicts = authenticate(b"\x00\xff not a message", "mx.postyard.test", "unknown", "", "")
    assert (verdicts.spf, verdicts.dkim, verdicts.dmarc) == ("none", "none", "permerror")
    assert verdicts.header.startswith("mx.postyard.test; spf=none")


def test_a_signature_that_cannot_be_read_fails():
    raw = b"DKIM-Signature: v=1; nonsense\r\nFrom: nobody\r\n\r\nbody\r\n"
    verdicts = authenticate(raw, "mx.postyard.test", "", "", "")
    assert verdicts.dkim in ("fail", "permerror") and verdicts.dmarc == "permerror"


def test_hostile_headers_are_shown_as_sent_or_left_out_never_an_error():
    raw = (b"From: =?utf-8?q?=E2=80=AE?= <a@x.test>, \"unterminated\r\nTo: <<<@@@>>>\r\nSubject: \xff\xfe\r\n"
           b"Received: one\r\nReceived: two\r\n\r\nbody")
    fields = addresses_of(raw)
    assert isinstance(fields.subject, str) and isinstance(fields.to, list)
    assert headers_of(raw)["Received"] == ["one", "two"]
    assert msgspec.json.encode([fields.subject, headers_of(raw)])  # 8-bit bytes shown as U+FFFD, never an error
    assert bodies_of(raw)[1] is not None
