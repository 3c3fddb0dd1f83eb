"""A team's templates on behalf of a principal: create, read, list, update, publish, duplicate, delete (each
change audited), and the published version an email is rendered from."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.templates import repository
from app.domain.templates.rendering import used_keys
from app.domain.templates.schemas import (
    TemplateCreate,
    TemplateListItem,
    TemplateOut,
    TemplateUpdate,
    TemplateVariableIn,
    TemplateVariableOut,
)
from app.lib.api_error import ApiError
from app.lib.audit import record_by
from app.lib.auth import Principal
from app.lib.response_body import ABSENT, Absent, unless_none
from app.lib.timefmt import iso

__all__ = ["create", "delete", "duplicate", "get", "list_items", "publish", "published_version", "to_out", "update"]


def _variables(items: list[TemplateVariableIn] | None) -> list[dict[str, Any]]:
    variables = [{"key": v.key, "type": v.type, "fallback_value": v.fallback_value} for v in items or []]
    for v in variables:
        fallback = v["fallback_value"]
        if v["type"] == "number" and fallback is not None and (isinstance(fallback, bool)
                                                               or not isinstance(fallback, int | float)):
            raise ApiError(422, "validation_error", f"variables: the fallback of {v['key']} must be a number")
    keys = [v["key"] for v in variables]
    if len(keys) != len(set(keys)):
        raise ApiError(422, "validation_error", "variables: each key may be declared once")
    return variables


def _checked(draft: dict[str, Any]) -> dict[str, Any]:
    undeclared = used_keys(draft["subject"], draft["html"], draft["text"]) - {v["key"] for v in draft["variables"]}
    if undeclared:
        raise ApiError(422, "validation_error", f"variables: {', '.join(sorted(undeclared))} is used but not "
                                                "declared")
    if isinstance(draft["reply_to"], str):
        draft["reply_to"] = [draft["reply_to"]]
    return draft


def _status(row: Any) -> str:
    return "published" if row.published is not None else "draft"


def _draft_fields(data: TemplateCreate | TemplateUpdate) -> dict[str, Any]:
    """The draft's fields in the request (ABSENT where an update leaves one out)."""
    return {"from": data.from_, "subject": data.subject, "reply_to": data.reply_to, "html": data.html,
            "text": data.text}


async def get(db: AsyncSession, team_id: uuid.UUID, ref: str, *, lock: bool = False) -> Any:
    """The team's template with this id or alias, or 404."""
    row = await repository.find_template(db, team_id, ref, lock=lock)
    if row is None:
        raise ApiError(404, "not_found", "Template not found")
    return row


def to_out(row: Any) -> TemplateOut:
    """The Resend shape of a template: its draft."""
    draft = row.draft
    return TemplateOut(
        id=str(row.id), name=row.name, alias=unless_none(row.alias), from_=unless_none(draft["from"]),
        subject=unless_none(draft["subject"]), reply_to=draft["reply_to"], html=draft["html"],
        text=unless_none(draft["text"]),
        variables=[TemplateVariableOut(**v) for v in draft["variables"]],
        status=_status(row), current_version_id=str(row.draft_version_id),
        created_at=iso(row.created_at) or "", updated_at=iso(row.updated_at) or "", published_at=iso(row.published_at),
        has_unpublished_versions=row.published_version_id != row.draft_version_id)


async def list_items(db: AsyncSession, team_id: uuid.UUID) -> list[TemplateListItem]:
    """The team's templates as listed, newest first."""
    return [TemplateListItem(id=str(r.id), name=r.name, alias=unless_none(r.alias), created_at=iso(r.created_at) or "",
                             status=_status(r),
                             published_at=iso(r.published_at), updated_at=iso(r.updated_at) or "")
            for r in await repository.team_templates(db, team_id)]


async def create(db: AsyncSession, principal: Principal, data: TemplateCreate) -> uuid.UUID:
    """Store a new draft template."""
    principal.require_write()
    draft = _checked({**_draft_fields(data), "variables": _variables(data.variables)})
    template_id = uuid.uuid4()
    await repository.insert_template(db, template_id, principal.team_id, data.name, data.alias, draft)
    await record_by(db, principal, "template.created", "template", template_id, {"name": data.name})
    return template_id


async def update(db: AsyncSession, principal: Principal, ref: str, data: TemplateUpdate) -> uuid.UUID:
    """Change the draft; the published version sends until the next publish."""
    principal.require_write()
    row = await get(db, principal.team_id, ref, lock=True)
    draft = dict(row.draft)
    draft.update({k: v for k, v in _draft_fields(data).items() if v is not ABSENT})
    if not isinstance(data.variables, Absent):
        draft["variables"] = _variables(data.variables)
    await repository.update_template(db, row.id, row.name if isinstance(data.name, Absent) else data.name,
                                     row.alias if isinstance(data.alias, Absent) else data.alias, _checked(draft))
    await record_by(db, principal, "template.updated", "template", row.id)
    return row.id  # type: ignore[no-any-return]


async def publish(db: AsyncSession, principal: Principal, ref: str) -> uuid.UUID:
    """Make the draft the version emails are rendered from."""
    principal.require_write()
    row = await get(db, principal.team_id, ref, lock=True)
    await repository.publish_template(db, row.id)
    await record_by(db, principal, "template.published", "template", row.id, {"version": str(row.draft_version_id)})
    return row.id  # type: ignore[no-any-return]


async def duplicate(db: AsyncSession, principal: Principal, ref: str) -> uuid.UUID:
    """A new draft template with this one's draft, named "<name> (copy)" and without an alias."""
    principal.require_write()
    row = await get(db, principal.team_id, ref)
    copy_id = uuid.uuid4()
    await repository.insert_template(db, copy_id, principal.team_id, f"{row.name} (copy)"[:200], None,
                                     dict(row.draft))
    await record_by(db, principal, "template.created", "template", copy_id, {"duplicate_of": str(row.id)})
    return copy_id


async def delete(db: AsyncSession, principal: Principal, ref: str) -> uuid.UUID:
    """Remove a template; emails already sent from it keep what was rendered."""
    principal.require_write()
    row = await get(db, principal.team_id, ref, lock=True)
    await repository.delete_template(db, row.id)
    await record_by(db, principal, "template.deleted", "template", row.id)
    return row.id  # type: ignore[no-any-return]


async def published_version(db: AsyncSession, team_id: uuid.UUID, ref: str) -> dict[str, Any]:
    """What an email with `template: {id}` is rendered from: the published version (422 if there is none)."""
    row = await repository.find_template(db, team_id, ref)
    if row is None:
        raise ApiError(422, "validation_error", f"template.id: no template {ref}")
    if row.published is None:
        raise ApiError(422, "validation_error", f"template.id: template {ref} is not published")
    return dict(row.published)
