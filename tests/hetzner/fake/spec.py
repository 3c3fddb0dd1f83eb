"""Check requests and responses against the Hetzner Cloud API's OpenAPI description."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import requests
from jsonschema_path import SchemaPath
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

__all__ = ["SPEC_VARIABLE", "spec_path", "SpecMismatch", "SpecChecker"]

SPEC_VARIABLE = "POSTYARD_HCLOUD_OPENAPI"
REPO = Path(__file__).resolve().parents[3]
PUBLIC_BASE = "https://api.hetzner.cloud/v1"


def spec_path() -> Path:
    """The description beside the repository (shared/specs/), or where the variable points."""
    return Path(os.environ.get(SPEC_VARIABLE) or REPO.parent / "shared" / "specs" / "hcloud-openapi.json")


class SpecMismatch(AssertionError):
    """A request or response that the OpenAPI description does not allow."""


@lru_cache(maxsize=1)
def _openapi(path: str) -> OpenAPI:
    document = json.loads(Path(path).read_text())
    # The description names status ranges "4xx"/"5xx"; OpenAPI 3.0 spells them "4XX"/"5XX".
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"] = {code.upper(): value for code, value in operation["responses"].items()}
    return OpenAPI(SchemaPath.from_dict(_nullable_compositions(document)))


def _nullable_compositions(node):
    """`{nullable: true, allOf: [X]}` means "X or null" in the description (the API sends null);
    OAS 3.0 validators apply `nullable` only beside `type`, so spell it as anyOf [X, null]."""
    if isinstance(node, list):
        return [_nullable_compositions(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_compositions(value) for key, value in node.items()}
    if node.get("nullable") is True and "type" not in node and ("allOf" in node or "$ref" in node):
        inner = {key: value for key, value in node.items() if key != "nullable"}
        return {"anyOf": [inner, {"type": "object", "nullable": True, "enum": [None]}]}
    return node


class SpecChecker:
    """Validates one exchange at a time; raises SpecMismatch with the reason."""

    def __init__(self, path: Path | None = None):
        self.openapi = _openapi(str(path or spec_path()))

    def _request(self, method: str, path_and_query: str, headers: dict[str, str], body: bytes | None):
        prepared = requests.Request(method, PUBLIC_BASE + path_and_query, headers=headers,
                                    data=body or None).prepare()
        return RequestsOpenAPIRequest(prepared)

    def check_request(self, method: str, path_and_query: str, headers: dict[str, str], body: bytes | None) -> None:
        try:
            self.openapi.validate_request(self._request(method, path_and_query, headers, body))
        except Exception as error:  # openapi-core raises several unrelated types
            raise SpecMismatch(f"request {method} {path_and_query}: {_reason(error)}") from error

    def check_response(self, method: str, path_and_query: str, headers: dict[str, str], body: bytes | None,
                       status: int, payload: bytes) -> None:
        response = requests.Response()
        response.status_code = status
        response._content = payload
        response.headers["Content-Type"] = "application/json"
        try:
            self.openapi.validate_response(self._request(method, path_and_query, headers, body),
                                           RequestsOpenAPIResponse(response))
        except Exception as error:
            raise SpecMismatch(f"response {status} to {method} {path_and_query}: {_reason(error)}") from error


def _reason(error: BaseException) -> str:
    parts = [f"{type(error).__name__}: {error}"]
    for inner in getattr(error, "schema_errors", None) or getattr(error.__cause__, "schema_errors", None) or []:
        parts.append(f"  at {'/'.join(map(str, inner.absolute_path))}: {inner.message}")
    return "\n".join(parts)
