"""The base of every JSON request body: a field the API does not know is refused (422, naming it), not ignored."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.lib.api_error import ApiError

__all__ = ["RequestBody", "StrictBool", "check_echoed_id"]

# A JSON true or false, nothing else: Litestar converts bodies laxly, which would take 0, 1 or "true" for a bool.
StrictBool = Annotated[Literal[True, False], msgspec.Meta(extra_json_schema={"type": "boolean"})]


class RequestBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A request body; a misspelt or unsupported field fails loudly instead of changing nothing."""


def check_echoed_id(echoed: str | None, path_id: str, field: str) -> None:
    """Resend's SDKs repeat the path's id in some update bodies (`id`, `webhook_id`): it must be the same one."""
    if echoed is not None and echoed != path_id:
        raise ApiError(422, "validation_error", f"{field} ({echoed}) is not the id in the path ({path_id})")
