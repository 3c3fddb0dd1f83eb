"""Query parameters whose values the handlers read as ids, documented as such."""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.spec import Parameter, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from app.lib.openapi.routes import operations

__all__ = ["CURSORS", "document_cursors"]

# List routes page after or before an entry, named by its id (a UUID); anything else answers 422 or 404.
CURSORS = frozenset({"after", "before"})


def _as_uuid(schema: Schema) -> None:
    for option in [schema, *(schema.one_of or []), *(schema.any_of or [])]:
        if isinstance(option, Schema) and option.type == OpenAPIType.STRING:
            option.format = OpenAPIFormat.UUID


def document_cursors(app: Litestar) -> None:
    """State that each `after`/`before` query parameter is a UUID."""
    for served in operations(app):
        for parameter in served.operation.parameters or []:
            if isinstance(parameter, Parameter) and parameter.param_in == "query" and parameter.name in CURSORS \
                    and isinstance(parameter.schema, Schema):
                _as_uuid(parameter.schema)
