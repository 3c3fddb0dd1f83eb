"""Request bodies documented by msgspec's own JSON schema of the type that decodes them: every constraint the
decoder enforces (lengths of list items too) and every `Meta(extra_json_schema=...)` (formats) is stated."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.spec import Components, OpenAPIMediaType, Reference, RequestBody, Schema

from app.lib.openapi.routes import operations

__all__ = ["document_request_bodies", "to_openapi"]

_REF_TEMPLATE = "#/components/schemas/{name}"
_ALIASES = Schema().field_aliases()


def _attribute(key: str) -> str:
    return _ALIASES.get(key) or re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def to_openapi(node: Any) -> Any:
    """A JSON schema (as msgspec writes it) as Litestar's OpenAPI objects."""
    if isinstance(node, list):
        return [to_openapi(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return Reference(ref=node["$ref"])
    values: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "dependentSchemas"):
            values[_attribute(key)] = {name: to_openapi(item) for name, item in value.items()}
        elif key in ("enum", "const", "default", "examples", "required"):
            values[_attribute(key)] = value
        else:
            values[_attribute(key)] = to_openapi(value)
    return Schema(**values)


def _is_msgspec_type(annotation: Any) -> bool:
    try:
        msgspec.json.schema(annotation)
    except (TypeError, ValueError):
        return False
    return True


def document_request_bodies(app: Litestar) -> None:
    """Replace each JSON request body's schema with msgspec's schema of the handler's `data` type."""
    schema = app.openapi_schema
    schema.components = schema.components or Components()
    components = dict(schema.components.schemas or {})
    for handler, _, _, operation in operations(app):
        data = handler.parsed_fn_signature.parameters.get("data")
        body = operation.request_body
        if data is None or not isinstance(body, RequestBody) or "application/json" not in (body.content or {}):
            continue
        annotation = data.raw  # with its Annotated constraints (min and max items of a batch)
        if not _is_msgspec_type(annotation):
            continue
        (root,), definitions = msgspec.json.schema_components([annotation], ref_template=_REF_TEMPLATE)
        components.update({name: to_openapi(definition) for name, definition in definitions.items()})
        body.content["application/json"] = OpenAPIMediaType(schema=to_openapi(root))
    schema.components.schemas = components
