"""Routes of /emails, shaped like Resend's."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.emails import idempotency, services
from app.domain.emails.accept_groups import AcceptGroups
from app.domain.emails.from_template import with_template
from app.domain.emails.schemas import BatchSent, EmailList, EmailOut, EmailRef, EmailSent, EmailUpdate, SendEmail
from app.domain.emails.validation import Draft, draft_from_request
from app.lib.api_error import ApiError
from app.lib.auth import Principal, provide_principal, provide_sending_principal
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id
from app.lib.pagination import Limit, cursor_id
from app.lib.request_body import check_echoed_id

__all__ = ["EmailController", "EMAIL_REQUEST_MAX_BYTES"]

EMAIL_REQUEST_MAX_BYTES = 40 * 1024 * 1024
MAX_BATCH = 100
IdempotencyKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False, min_length=1,
                                                             max_length=256)]


class EmailController(Controller):
    """Send (one or a batch), read, list, reschedule and cancel emails."""

    path = "/emails"
    tags = ["Emails"]
    dependencies = {"principal": Provide(provide_principal)}

    async def _send(self, request: Request[Any, Any, Any], principal: Principal, db: AsyncSession,
                    drafts: list[Draft], key: str | None, response: Any) -> Any:
        if key is not None:
            digest = idempotency.request_hash(request.url.path, await request.body())
            stored = await idempotency.claim(db, principal.team_id, key, digest, response)
            if stored is not None:
                return stored
        ids = [uuid.UUID(item["id"]) for item in (response["data"] if "data" in response else [response])]
        if key is None and "data" not in response:
            # Stored in a transaction shared with concurrent requests, committed before this returns. What
            # authenticating wrote or read is committed first: nothing is stored if that fails, and no
            # waiting request holds a pooled connection the groups need.
            if db.in_transaction():
                await db.commit()
            groups: AcceptGroups = request.app.state.accept_groups
            await groups.accept(principal, drafts, ids)
            return response
        await services.accept(db, principal, drafts, ids, app_services(request).settings)
        return response  # committed before the answer starts, or a 503 (app/lib/transactions.py)

    @post("/", status_code=200, operation_id="emails/send", request_max_body_size=EMAIL_REQUEST_MAX_BYTES,
          dependencies={"principal": Provide(provide_sending_principal)})
    async def send(
        self, request: Request[Any, Any, Any], data: JSONBody[SendEmail], principal: NamedDependency[Principal],
        db_session: DbSession, idempotency_key: IdempotencyKey = None,
    ) -> EmailSent:
        """Accept one email; it is stored before this answers, and sent by the outbox worker."""
        data = await with_template(db_session, principal.team_id, data)
        draft = draft_from_request(data, app_services(request).settings.max_recipients)
        body = await self._send(request, principal, db_session, [draft], idempotency_key, {"id": str(uuid.uuid4())})
        return EmailSent(id=body["id"])

    @post("/batch", status_code=200, operation_id="emails/send-batch", request_max_body_size=EMAIL_REQUEST_MAX_BYTES,
          dependencies={"principal": Provide(provide_sending_principal)})
    async def send_batch(
        self, request: Request[Any, Any, Any],
        data: JSONBody[Annotated[list[SendEmail], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]],
        principal: NamedDependency[Principal], db_session: DbSession, idempotency_key: IdempotencyKey = None,
    ) -> BatchSent:
        """Accept up to 100 emails at once: all of them, or (on any invalid one) none."""
        if not 1 <= len(data) <= MAX_BATCH:
            raise ApiError(422, "validation_error", f"a batch holds 1 to {MAX_BATCH} emails")
        limit = app_services(request).settings.max_recipients
        drafts = []
        for index, item in enumerate(data):
            try:
                drafts.append(draft_from_request(await with_template(db_session, principal.team_id, item), limit))
            except ApiError as error:
                raise ApiError(error.status_code, error.name, f"emails[{index}]: {error.detail}") from None
        if any(d.attachments or d.scheduled_at for d in drafts):
            raise ApiError(422, "validation_error", "batch emails cannot have attachments or scheduled_at")
        response = {"data": [{"id": str(uuid.uuid4())} for _ in drafts]}
        body = await self._send(request, principal, db_session, drafts, idempotency_key, response)
        return BatchSent(data=[EmailSent(id=item["id"]) for item in body["data"]])

    @get("/", operation_id="emails/list")
    async def list_emails(
        self, principal: NamedDependency[Principal], db_session: DbSession,
        limit: Limit = 20, after: FromQuery[str | None] = None,
        before: FromQuery[str | None] = None,
    ) -> EmailList:
        """The team's emails, newest first, with cursor pagination (`after`/`before` an email id)."""
        if after is not None and before is not None:
            raise ApiError(422, "validation_error", "use after or before, not both")
        data, has_more = await services.list_emails(db_session, principal.team_id, limit,
                                                    cursor_id(after, "after"), cursor_id(before, "before"))
        return EmailList(data=data, has_more=has_more)

    @get("/{email_id:str}", operation_id="emails/get")
    async def get_one(
        self, email_id: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> EmailOut:
        """One email with `last_event` and its event history."""
        return await services.get_email(db_session, principal.team_id, parse_id(email_id, "Email"))

    @patch("/{email_id:str}", operation_id="emails/update")
    async def update(self, email_id: FromPath[str], data: JSONBody[EmailUpdate], principal: NamedDependency[Principal],
                     db_session: DbSession) -> EmailRef:
        """Change when a scheduled email is sent."""
        check_echoed_id(data.id, email_id, "id")
        principal.require_write()
        await services.reschedule(db_session, principal.team_id, parse_id(email_id, "Email"), data.scheduled_at)
        return EmailRef(id=email_id)

    @post("/{email_id:str}/cancel", status_code=200, operation_id="emails/cancel")
    async def cancel(
        self, email_id: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> EmailRef:
        """Cancel a scheduled email."""
        principal.require_write()
        await services.cancel(db_session, principal.team_id, parse_id(email_id, "Email"))
        return EmailRef(id=email_id)
