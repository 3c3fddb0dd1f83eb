"""Text PostgreSQL cannot store (NUL, unpaired surrogates) is a 422 with a reason on every route, never a 5xx."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.asgi import create_app
from app.config import Settings
from app.lib.errors import exception_handlers

NUL = "a\x00b"
PLACEHOLDER = "postyard-unpaired-surrogate"
# In a URL: NUL, and the UTF-8 form of the lone surrogate U+D800 (which no valid UTF-8 text contains).
BAD_IN_URL = ("a%00b", "%ED%A0%80")
_METHODS = ("get", "post", "put", "patch", "delete")
_MAX_DEPTH = 6
Step = tuple[str, str]  # ("property", name), ("item", ""), ("value", ""), ("key", "")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    parameters: list[dict[str, Any]]
    body: dict[str, Any] | None


class Schema:
    """The app's OpenAPI document: its operations and minimal values for its schemas."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        for key in ("anyOf", "oneOf"):
            if key in schema:
                branches = [self.resolve(s) for s in schema[key]]
                return next((b for b in branches if b.get("type") != "null"), branches[0])
        return schema

    def operations(self) -> Iterator[Operation]:
        for path, item in self.document["paths"].items():
            for method in _METHODS:
                if method in item:
                    op = item[method]
                    content = op.get("requestBody", {}).get("content", {})
                    body = content.get("application/json", {}).get("schema")
                    yield Operation(method, path, op.get("parameters", []), self.resolve(body) if body else None)

    def sample(self, schema: dict[str, Any]) -> Any:
        """A small value of the schema: required properties only, lengths and bounds respected."""
        schema = self.resolve(schema)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if "enum" in schema:
            return schema["enum"][0]
        if "const" in schema:
            return schema["const"]
        if kind == "object":
            properties = schema.get("properties", {})
            return {name: self.sample(properties[name]) for name in schema.get("required", [])}
        if kind == "array":
            return [self.sample(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
        if kind == "integer":
            return schema.get("minimum", 1)
        if kind == "number":
            return schema.get("minimum", 1)
        if kind == "boolean":
            return False
        if kind == "null":
            return None
        return _string(schema)

    def string_slots(self, schema: dict[str, Any], at: tuple[Step, ...] = ()) -> Iterator[tuple[Step, ...]]:
        """Paths to every place in a value of the schema that holds a string (object keys included)."""
        schema = self.resolve(schema)
        kind = schema.get("type")
        kinds = set(kind) if isinstance(kind, list) else {kind}
        if len(at) > _MAX_DEPTH:
            return
        if "string" in kinds and "enum" not in schema:
            yield at
        if "object" in kinds:
            for name, child in schema.get("properties", {}).items():
                yield from self.string_slots(child, (*at, ("property", name)))
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                yield (*at, ("key", ""))
                yield from self.string_slots(extra, (*at, ("value", "")))
        if "array" in kinds:
            yield from self.string_slots(schema.get("items", {}), (*at, ("item", "")))

    def with_value(self, schema: dict[str, Any], slot: tuple[Step, ...], value: str) -> Any:
        """A sample of the schema holding `value` at `slot`."""
        schema = self.resolve(schema)
        if not slot:
            return value
        (kind, name), rest = slot[0], slot[1:]
        if kind == "item":
            return [self.with_value(schema.get("items", {}), rest, value)]
        if kind == "key":
            return {value: self.sample(schema["additionalProperties"])}
        if kind == "value":
            return {"X-Field": self.with_value(schema["additionalProperties"], rest, value)}
        base = self.sample(schema)
        base[name] = self.with_value(schema["properties"][name], rest, value)
        return base


def _string(schema: dict[str, Any]) -> str:
    formats = {"email": "someone@example.test", "uri": "https://example.test/hook", "uuid": str(uuid.uuid4()),
               "date-time": "2030-01-01T00:00:00Z", "date": "2030-01-01", "ipv4": "192.0.2.1"}
    value = formats.get(schema.get("format", ""), "sample")
    return value + "x" * max(schema.get("minLength", 0) - len(value), 0)


@asynccontextmanager
async def _running(settings: Settings) -> AsyncIterator[Litestar]:
    app = create_app(msgspec.structs.replace(settings, signup="open", rate_limit=10**6, api_key_rate_limit=10**6))
    async with app.lifespan():
        yield app


@dataclass
class Caller:
    name: str
    client: httpx.AsyncClient
    headers: dict[str, str]


def _path(operation: Operation, bad: tuple[str, str] | None) -> str:
    """The operation's path with a fresh id in each path parameter, and `bad` = (name, raw value) in one."""
    path = operation.path
    for parameter in operation.parameters:
        if parameter["in"] == "path":
            raw = bad[1] if bad and bad[0] == parameter["name"] else str(uuid.uuid4())
            path = path.replace("{" + parameter["name"] + "}", raw)
    return path


def _requests(schema: Schema, operation: Operation) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what is bad, request arguments) for each path, query and header parameter and string body field."""
    body = schema.sample(operation.body) if operation.body else None
    plain = {"method": operation.method.upper(), "url": _path(operation, None), "json": body}
    for parameter in operation.parameters:
        name, where = parameter["name"], parameter["in"]
        if where == "path":
            for raw in BAD_IN_URL:
                yield f"path {name}={raw}", {**plain, "url": _path(operation, (name, raw))}
        elif where == "query":
            for raw in BAD_IN_URL:
                yield f"query {name}={raw}", {**plain, "url": f"{plain['url']}?{name}={raw}"}
        elif where == "header":
            yield f"header {name}", {**plain, "headers": {name: NUL}}
    if operation.body is None:
        return
    for slot in schema.string_slots(operation.body):
        label = "body " + ".".join(name or kind for kind, name in slot)
        yield f"{label}=NUL", {**plain, "json": schema.with_value(operation.body, slot, NUL)}
        raw = json.dumps(schema.with_value(operation.body, slot, PLACEHOLDER)).replace(PLACEHOLDER, "\\ud800")
        yield f"{label}=\\ud800", {**plain, "json": None, "content": raw.encode(),
                                   "headers": {"content-type": "application/json"}}


async def _send(caller: Caller, arguments: dict[str, Any]) -> httpx.Response:
    arguments = dict(arguments)
    if arguments.get("json") is None:
        arguments.pop("json", None)
    arguments["headers"] = {**caller.headers, **arguments.get("headers", {})}
    return await caller.client.request(**arguments)


async def test_every_text_input_of_every_route_refuses_nul_and_unpaired_surrogates_without_a_5xx(settings, team):
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    async with _running(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver.local") as session_client, \
                httpx.AsyncClient(transport=transport, base_url="https://testserver.local") as key_client:
            signed_up = await session_client.post("/auth/register", json={
                "email": f"n{uuid.uuid4().hex[:10]}@example.test", "password": "p" * 16, "team_name": "NUL"})
            assert signed_up.status_code == 201, signed_up.text
            callers = [Caller("session", session_client, {"x-csrf-token": signed_up.json()["csrf_token"]}),
                       Caller("api key", key_client, team.headers)]
            schema = Schema(app.openapi_schema.to_schema())
            for operation in schema.operations():
                for label, arguments in _requests(schema, operation):
                    for caller in callers:
                        response = await _send(caller, arguments)
                        statuses[response.status_code] += 1
                        if not 400 <= response.status_code < 500:
                            failures.append(f"{operation.method.upper()} {operation.path} {label} as {caller.name}: "
                                            f"{response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)
    assert statuses[422] > 0


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/api-keys", {"name": NUL}),
    ("POST", "/smtp-credentials", {"name": NUL}),
    ("POST", "/suppressions/batch/remove", {"emails": [NUL]}),
    ("GET", "/suppressions/a%00b@example.test", None),
    ("DELETE", "/suppressions/a%00b@example.test", None),
    ("POST", "/auth/login", {"email": NUL, "password": "p" * 16}),
    ("POST", "/auth/register", {"email": "a@example.test", "password": NUL * 8, "team_name": "T"}),
])
async def test_a_nul_answers_422_naming_where_it_was(settings, team, method, path, body):
    async with _running(settings) as app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                           base_url="https://testserver.local") as client:
        response = await client.request(method, path, json=body, headers=team.headers)
    assert response.status_code == 422 and response.json()["name"] == "validation_error"
    assert "NUL" in response.json()["message"]


async def test_a_nul_in_a_header_answers_422(settings, team):
    async with _running(settings) as app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                           base_url="https://testserver.local") as client:
        response = await client.get("/domains", headers={**team.headers, "x-anything": NUL})
    assert response.status_code == 422 and "header x-anything" in response.json()["message"]


@pytest.mark.parametrize(("sql", "value"), [
    ("INSERT INTO bounded (text_value) VALUES (:v)", "a\x00b"),
    ("INSERT INTO bounded (text_value) VALUES (:v)", "\ud800"),
    ("INSERT INTO bounded (short_value) VALUES (:v)", "too long"),
    ("INSERT INTO bounded (number) VALUES (CAST(:v AS bigint))", str(2**40)),
])
async def test_a_value_the_database_refuses_answers_422_not_500(settings, sql, value):
    engine = create_async_engine(settings.owner_database_url)  # the owner may make a temporary table
    try:
        async with engine.connect() as connection:
            await connection.execute(text(
                "CREATE TEMPORARY TABLE bounded (text_value text, short_value varchar(3), number integer)"))
            with pytest.raises(DBAPIError) as refused:
                await connection.execute(text(sql), {"v": value})
    finally:
        await engine.dispose()
    response = exception_handlers[Exception](None, refused.value)
    assert response.status_code == 422 and response.content.name == "validation_error"
