"""The webhook body of an event, shaped as Resend's (the `webhooks` section of its OpenAPI description).

`data` carries the email's summary; a bounce, a failure, a suppression and a click add Resend's `bounce`,
`failed`, `suppressed` and `click` objects. What Resend has no field for stays in `detail` (e.g. the Postfix
queue id), and the event types Resend does not have (`email.queued`, `email.canceled`) are Postyard's
extensions, sent only to endpoints that subscribe to them by name.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.domain.events.event import Event

__all__ = ["EXTENSION_EVENT_TYPES", "SUPPRESSION_REASONS", "webhook_payload"]

EXTENSION_EVENT_TYPES = ("queued", "canceled")

# A suppression list entry's reason as Resend names it. Resend's schema has only these two, so an entry added
# by hand or by an unsubscribe (the team's or the recipient's wish not to send) counts as a complaint; its own
# reason stays in `detail.reason`.
SUPPRESSION_REASONS = {"hard_bounce": "previous_bounce", "complaint": "previous_complaint",
                       "manual": "previous_complaint", "unsubscribe": "previous_complaint"}

# Enhanced status codes (RFC 3463) of a bounce, by Resend's `subType`.
_BOUNCE_SUBTYPES = {"5.1.1": "NoEmail", "5.1.10": "NoEmail", "4.2.2": "MailboxFull", "5.2.2": "MailboxFull",
                    "5.2.3": "MessageTooLarge", "5.3.4": "MessageTooLarge", "5.6.1": "ContentRejected",
                    "5.7.1": "ContentRejected"}


def _bounce(detail: dict[str, Any]) -> dict[str, Any]:
    kind = {"hard": "Permanent", "soft": "Transient"}.get(detail.get("type", ""), "Undetermined")
    status = str(detail.get("status") or "")
    diagnostic = str(detail.get("diagnostic") or "")
    sub_type = _BOUNCE_SUBTYPES.get(status, "General" if status else "Undetermined")
    return {"type": kind, "subType": sub_type, "message": diagnostic or f"Status {status or 'unknown'}",
            "diagnosticCode": [diagnostic] if diagnostic else []}


def _suppressed(detail: dict[str, Any]) -> dict[str, Any]:
    reason = str(detail.get("reason") or "")
    return {"type": "OnAccountSuppressionList", "reason": SUPPRESSION_REASONS.get(reason, "previous_complaint"),
            "message": f"The recipient is on the team's suppression list ({reason or 'no reason given'})",
            "diagnosticCode": []}


def webhook_payload(event: Event, at: datetime) -> str:
    """The JSON body delivered to the team's endpoints for `event`, emitted at `at`."""
    email = event.email
    data: dict[str, Any] = {
        "email_id": str(email.id), "from": email.from_address, "to": email.to_addresses, "subject": email.subject,
        "created_at": email.created_at.isoformat(), "tags": {t["name"]: t.get("value", "") for t in email.tags},
    }
    if event.recipient:
        data["recipient"] = event.recipient
    detail = dict(event.detail)
    if event.type == "bounced":
        data["bounce"] = _bounce(detail)
    elif event.type == "failed":
        data["failed"] = {"reason": str(detail.pop("reply", None) or detail.pop("reason", None) or "failed")}
    elif event.type == "clicked":
        data["click"] = {"ipAddress": str(detail.pop("ip", "")), "link": str(detail.pop("link", "")),
                         "timestamp": at.isoformat(), "userAgent": str(detail.pop("user_agent", ""))}
    elif event.type == "opened":  # Resend's open carries no reader details: they stay on the event only
        detail.pop("ip", None)
        detail.pop("user_agent", None)
    elif event.type == "suppressed":
        data["suppressed"] = _suppressed(detail)
        if detail.get("reason") in ("hard_bounce", "complaint"):
            detail.pop("reason")
    if detail:
        data["detail"] = detail
    return json.dumps({"type": f"email.{event.type}", "created_at": at.isoformat(), "data": data},
                      separators=(",", ":"))
