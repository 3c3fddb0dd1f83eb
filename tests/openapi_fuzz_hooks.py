"""Schemathesis hooks: the few request rules an OpenAPI document cannot state, so that schemathesis's
positive cases are the requests the API promises to accept. Each rule is one the API answers 422 for:
a combination of fields, a time, a name that must resolve or an id that must name one of the team's own."""

from __future__ import annotations

import ipaddress
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis

from app.domain.emails.metrics import parse_query
from app.domain.emails.validation import FORBIDDEN_HEADERS, parse_schedule
from app.domain.templates.rendering import used_keys
from app.lib.api_error import ApiError
from tests.openapi_fuzz import ENDPOINT_VARIABLE, OWN_TEAM

__all__ = ["ENDPOINT", "RULES", "filter_case", "map_case"]


# Generated host names resolve to nothing; a literal address needs no DNS (the test deploys allow private
# webhook addresses).
# A webhook endpoint the API under test accepts: loopback for the API suite, the outside host's address
# (the only network the testbed exempts from the address check) for the deployed API.
ENDPOINT = "http://127.0.0.1:9/fuzz"


def _not_both_cursors(case: Any) -> bool:
    """List routes page with `after` or `before`, not both."""
    query = case.query or {}
    return query.get("after") is None or query.get("before") is None


def _emails_or_ids(case: Any) -> bool:
    """A batch removal names addresses or ids: exactly one of the two."""
    body = case.body if isinstance(case.body, dict) else {}
    return (body.get("emails") is None) != (body.get("ids") is None) or not isinstance(case.body, dict)


def _own_domain_or_none(case: Any) -> bool:
    """A key or SMTP credential limited to a domain names one of the team's (a generated id names none)."""
    body = case.body if isinstance(case.body, dict) else {}
    return not isinstance(body.get("domain_id"), str)


def _networks_or_none(case: Any) -> bool:
    """A key's allowed_ips are addresses or networks (a rule the schema's plain strings cannot state)."""
    body = case.body if isinstance(case.body, dict) else {}
    entries = body.get("allowed_ips")
    if not isinstance(entries, list):
        return True
    try:
        return all(isinstance(e, str) and ipaddress.ip_network(e, strict=False) for e in entries)
    except ValueError:
        return False


def _addresses(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value or []) if isinstance(value, list) else []


def _sendable(message: Any) -> bool:
    """An email has a sender, a subject, and html or text (a template needs one the team published); at most
    50 recipients in To, Cc and Bcc together; a send time at most 30 days ahead; attachments with a file name
    and content (not a path); custom headers the platform does not write itself, each once whatever its case."""
    if not isinstance(message, dict):
        return True
    recipients = sum(len(_addresses(message.get(field))) for field in ("to", "cc", "bcc"))
    attachments = message.get("attachments") if isinstance(message.get("attachments"), list) else []
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    return message.get("from") is not None and message.get("subject") is not None \
        and message.get("template") is None \
        and (message.get("html") is not None or message.get("text") is not None) and 1 <= recipients <= 50 \
        and _within_30_days(message.get("scheduled_at")) \
        and all(isinstance(a, dict) and a.get("filename") and a.get("content") is not None and not a.get("path")
                for a in attachments) \
        and not {name.lower() for name in headers} & FORBIDDEN_HEADERS \
        and not any(name.lower().startswith("x-postyard-") for name in headers) \
        and len({name.lower() for name in headers}) == len(headers)


def _within_30_days(value: Any) -> bool:
    """A send time the API reads (ISO 8601 or its English forms), at most 29 days ahead (a margin for the run)."""
    if not isinstance(value, str) or not value.strip():
        return True
    try:
        when = parse_schedule(value)
    except ApiError:
        return False
    return when is None or when - datetime.now(UTC) < timedelta(days=29)


def _same_id(field: str, parameter: str) -> Callable[[Any], bool]:
    """An update body that repeats the path's id (as Resend's SDKs do) repeats that one."""
    def rule(case: Any) -> bool:
        body = case.body if isinstance(case.body, dict) else {}
        return body.get(field) is None or body.get(field) == (case.path_parameters or {}).get(parameter)
    return rule


def _declared_variables(case: Any) -> bool:
    """A template declares each variable once, every variable its texts use, and a number's fallback is a
    number."""
    body = case.body if isinstance(case.body, dict) else {}
    variables = body.get("variables") if isinstance(body.get("variables"), list) else []
    keys = [v.get("key") for v in variables if isinstance(v, dict)]
    if not all(isinstance(k, str) for k in keys):
        return True  # a malformed declaration: the schema refuses it
    texts = [body.get(f) for f in ("subject", "html", "text") if isinstance(body.get(f), str)]
    numbers_fall_back_to_numbers = all(
        not isinstance(v, dict) or v.get("type") != "number" or v.get("fallback_value") is None
        or (isinstance(v.get("fallback_value"), int | float) and not isinstance(v.get("fallback_value"), bool))
        for v in variables)
    return len(keys) == len(set(keys)) and used_keys(*texts) <= set(keys) and numbers_fall_back_to_numbers


def _each_sendable(case: Any) -> bool:
    messages = case.body if isinstance(case.body, list) else [case.body]
    return all(_sendable(message) for message in messages)


def _batchable(case: Any) -> bool:
    """Emails of a batch are each sendable, and have neither attachments nor a send time."""
    messages = case.body if isinstance(case.body, list) else []
    return _each_sendable(case) and not any(
        isinstance(m, dict) and (m.get("attachments") or m.get("scheduled_at") is not None) for m in messages)


def _expiry_ahead(case: Any) -> bool:
    """A key cannot be made already expired."""
    body = case.body if isinstance(case.body, dict) else {}
    value = body.get("expires_at")
    if not isinstance(value, str):
        return True
    try:
        expires = datetime.fromisoformat(value)
    except ValueError:
        return True
    return (expires if expires.tzinfo else expires.replace(tzinfo=UTC)) > datetime.now(UTC)


def _printable_reason(case: Any) -> bool:
    """A suspension reason is one line of printable text (Python's `str.isprintable`: Unicode categories
    that a regular expression cannot name portably)."""
    body = case.body if isinstance(case.body, dict) else {}
    reason = body.get("reason")
    return not isinstance(reason, str) or (reason.strip() != "" and reason.strip().isprintable())


def _names_a_team(case: Any) -> bool:
    """Accepting an operator's invite starts a team, which needs a name (a member's invite ignores it)."""
    body = case.body if isinstance(case.body, dict) else {}
    return isinstance(body.get("team_name"), str) and body["team_name"] != ""


def _answerable_metrics(case: Any) -> bool:
    """Metrics for a range of real dates in a real time zone, of what is tracked (the app's own check)."""
    query = case.query or {}
    try:
        parse_query(query.get("start_date"), query.get("end_date"), query.get("timezone", "UTC"),
                    query.get("granularity", "daily"), *(_as_list(query.get(name)) for name in (
                        "metrics", "dimensions", "domain_id", "email_id")))
    except (ApiError, TypeError, ValueError):
        return False
    return True


def _as_list(value: Any) -> list[str] | None:
    return None if value is None else [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _negative_only(case: Any) -> bool:
    """The right second-factor code cannot be generated: only malformed requests are tried."""
    return case.meta is None or not case.meta.generation.mode.is_positive


RULES: dict[str, Callable[[Any], bool]] = {
    **{f"GET {path}": _not_both_cursors for path in ("/emails", "/domains", "/api-keys", "/webhooks", "/templates",
                                                      "/emails/{email_id}/attachments", "/emails/receiving",
                                                      "/emails/receiving/{email_id}/attachments")},
    "PATCH /domains/{domain_id}": _same_id("id", "domain_id"),
    "PATCH /webhooks/{webhook_id}": _same_id("webhook_id", "webhook_id"),
    "POST /templates": _declared_variables,
    "PATCH /templates/{template_id}": _declared_variables,
    "POST /suppressions/batch/remove": _emails_or_ids,
    "POST /api-keys": lambda case: _own_domain_or_none(case) and _expiry_ahead(case) and _networks_or_none(case),
    "POST /smtp-credentials": _own_domain_or_none,
    "POST /emails": _each_sendable,
    "POST /emails/batch": _batchable,
    "PATCH /emails/{email_id}": lambda case: _same_id("id", "email_id")(case) and _within_30_days(
        (case.body or {}).get("scheduled_at") if isinstance(case.body, dict) else None),
    "POST /operator/teams/{team_id}/suspend": _printable_reason,
    "POST /invites/accept": _names_a_team,
    "GET /emails/metrics": _answerable_metrics,
    "POST /auth/2fa/enable": _negative_only,
    "POST /auth/password-reset/confirm": _negative_only,  # nor a reset link's token
}
WEBHOOK_WRITES = frozenset({"POST /webhooks", "PATCH /webhooks/{webhook_id}"})


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    rule = RULES.get(case.operation.label)
    return rule is None or rule(case)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and case.operation.label in WEBHOOK_WRITES and isinstance(case.body, dict) \
            and isinstance(case.body.get("endpoint"), str):
        case.body["endpoint"] = os.environ.get(ENDPOINT_VARIABLE, ENDPOINT)
    # Operator routes act on the fuzzing operator's own team, not on a team a generated or listed id names
    # (other tests' teams).
    own = os.environ.get(OWN_TEAM)
    parameters = case.path_parameters or {}
    if own and case.operation.path.startswith("/operator/teams/") and _is_uuid(parameters.get("team_id")):
        parameters["team_id"] = own
    return case
