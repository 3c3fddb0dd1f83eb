"""Sending with `template: {id, variables}`: the request's message rendered from the published version."""

from __future__ import annotations

import uuid

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.emails.schemas import SendEmail
from app.domain.templates.rendering import render, resolve_values
from app.domain.templates.services import published_version
from app.lib.api_error import ApiError

__all__ = ["with_template"]


async def with_template(db: AsyncSession, team_id: uuid.UUID, data: SendEmail) -> SendEmail:
    """The request with its template rendered into `html`, `text` and (unless given) `subject`, `from` and
    `reply_to`; the request itself when it names no template."""
    if data.template is None:
        return data
    if data.html is not None or data.text is not None:
        raise ApiError(422, "validation_error", "template: an email with a template takes no html or text")
    version = await published_version(db, team_id, data.template.id)
    values = resolve_values(version["variables"], data.template.variables)
    return msgspec.structs.replace(
        data, template=None, html=render(version["html"], values, escape=True),
        text=render(version["text"], values, escape=False),
        subject=data.subject if data.subject is not None else render(version["subject"], values, escape=False),
        from_=data.from_ if data.from_ is not None else version["from"],
        reply_to=data.reply_to if data.reply_to is not None else version["reply_to"])
