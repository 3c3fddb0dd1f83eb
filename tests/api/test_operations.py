"""Health, metrics, security.txt, OpenAPI docs, security headers, request ids, JSON logs and the admin CLI."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from api_support import free_port, wait_for_port
from conftest import DATA_KEY_ID, verified_domain
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.cli import main, rotate_data_key
from app.config import Settings
from app.domain.system.controllers import security_txt_body
from app.lib.headers import API_CSP, DOCS_CSP
from app.lib.logs import JsonFormatter, request_id


async def test_readiness_reports_database_and_redis_and_health_answers_the_same(client):
    ready, health = await client.get("/health/ready"), await client.get("/health")
    assert ready.status_code == health.status_code == 200
    assert ready.json() == health.json() == {"status": "ok", "database": "ok", "redis": "ok", "degraded": []}


@contextlib.contextmanager
def own_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of the test's own, which it may stop: its URL and its process."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.terminate()
        proc.wait(10)


async def test_with_redis_stopped_the_api_is_ready_but_degraded(settings):
    with own_redis() as (url, redis):
        app = create_app(msgspec.structs.replace(settings, redis_url=url))
        async with AsyncTestClient(app=app, base_url="https://testserver.local") as client:
            before = (await client.get("/health/ready")).json()
            redis.terminate()
            redis.wait(10)
            ready, health = await client.get("/health/ready"), await client.get("/health")
    assert before["degraded"] == [] and before["redis"] == "ok"
    assert ready.status_code == health.status_code == 200
    assert ready.json() == {"status": "degraded", "database": "ok", "redis": "unavailable", "degraded": ["redis"]}


@pytest.fixture
async def database_down_client(settings):
    """The app configured with a database nobody listens on (and no Redis either)."""
    broken = msgspec.structs.replace(settings, database_url="postgresql+asyncpg://postyard_app@127.0.0.1:1/postyard",
                                     redis_url="redis://127.0.0.1:1/0")
    async with AsyncTestClient(app=create_app(broken), base_url="https://testserver.local") as c:
        yield c


@pytest.mark.parametrize("path", ["/health/ready", "/health"])
async def test_with_the_database_down_readiness_answers_503_with_retry_after(database_down_client, path):
    response = await database_down_client.get(path)
    assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1
    assert response.json() == {"status": "unavailable", "database": "unavailable", "redis": "unavailable",
                               "degraded": ["redis"]}


async def test_with_a_database_that_never_answers_readiness_answers_503_within_three_seconds(settings):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never says a word
        url = f"postgresql+asyncpg://postyard_app@127.0.0.1:{silent.getsockname()[1]}/postyard"
        app = create_app(msgspec.structs.replace(settings, database_url=url))
        async with AsyncTestClient(app=app, base_url="https://testserver.local") as client:
            started = time.monotonic()
            response = await client.get("/health/ready")
            took = time.monotonic() - started
    assert response.status_code == 503 and response.json()["database"] == "unavailable" and took < 3


async def test_liveness_answers_while_the_database_and_redis_are_down(database_down_client):
    response = await database_down_client.get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


METRICS_TOKEN = "metrics-token-of-the-deploy"


@pytest.fixture
async def configured_client(settings):
    """The app with a metrics token and a security contact, as a deploy configures it."""
    configured = msgspec.structs.replace(settings, metrics_token=METRICS_TOKEN,
                                         security_contact="mailto:security@example.com,https://example.com/report")
    async with AsyncTestClient(app=create_app(configured), base_url="https://testserver.local") as c:
        yield c


async def test_metrics_are_served_in_prometheus_format_to_the_bearer_of_the_metrics_token(configured_client):
    await configured_client.get("/ping")
    response = await configured_client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200 and "postyard_http_request_duration_seconds" in response.text


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {METRICS_TOKEN}", METRICS_TOKEN])
async def test_metrics_without_the_right_token_are_refused(configured_client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = await configured_client.get("/metrics", headers=headers)
    assert response.status_code == 401 and "postyard_http" not in response.text


async def test_metrics_are_not_served_at_all_when_no_token_is_configured(client, team):
    anonymous = await client.get("/metrics")
    with_api_key = await client.get("/metrics", headers=team.headers)
    assert anonymous.status_code == with_api_key.status_code == 404


async def test_security_txt_names_the_contacts_and_expires_within_a_year(configured_client):
    response = await configured_client.get("/.well-known/security.txt")
    fields = [line.split(": ", 1) for line in response.text.splitlines()]
    expires = datetime.strptime(dict(fields)["Expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert response.status_code == 200 and response.headers["content-type"] == "text/plain; charset=utf-8"
    assert [v for k, v in fields if k == "Contact"] == ["mailto:security@example.com", "https://example.com/report"]
    assert datetime.now(UTC) < expires < datetime.now(UTC) + timedelta(days=365)


def test_security_txt_expires_the_configured_number_of_days_ahead():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert security_txt_body("mailto:a@example.com", 30, now) == (
        "Contact: mailto:a@example.com\nExpires: 2026-01-31T00:00:00Z\nPreferred-Languages: en\n")


def test_settings_refuse_a_security_txt_expiry_of_a_year_or_more(env):
    with pytest.raises(msgspec.ValidationError):
        Settings.from_env({**env, "POSTYARD_SECURITY_TXT_DAYS": "365"})


async def test_without_a_security_contact_there_is_no_security_txt(client):
    assert (await client.get("/.well-known/security.txt")).status_code == 404


async def test_the_openapi_schema_and_its_docs_ui_are_served(client):
    schema = await client.get("/docs/openapi.json")
    ui = await client.get("/docs")
    assert "/domains/{domain_id}/verify" in schema.json()["paths"] and ui.status_code == 200


async def test_the_docs_ui_loads_only_assets_of_this_origin_under_its_own_csp(client):
    page = await client.get("/docs")
    sources = [part.split('"', 2)[1] for part in page.text.split("src=")[1:] + page.text.split("href=")[1:]]
    assets = [await client.get(source) for source in sources]
    assert page.headers["content-security-policy"] == DOCS_CSP and "'unsafe-eval'" not in DOCS_CSP
    assert "<script>" not in page.text and all(source.startswith("/docs/assets/") for source in sources)
    assert len(sources) == 4 and all(asset.status_code == 200 and asset.content for asset in assets)


async def test_the_docs_serve_no_file_of_the_package_beyond_the_ui_assets(client):
    response = await client.get("/docs/assets/swagger-ui-bundle.js.map")
    assert response.status_code == 404


@pytest.mark.parametrize("path", ["/ping", "/no-such-path", "/docs/openapi.json"])
async def test_every_api_response_forbids_framing_referrers_and_loading_anything(client, path):
    headers = (await client.get(path)).headers
    assert headers["content-security-policy"] == API_CSP if path != "/docs/openapi.json" else DOCS_CSP
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
    assert headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"


async def test_hsts_preload_is_sent_only_when_the_deploy_turns_it_on(settings):
    app = create_app(msgspec.structs.replace(settings, hsts_preload=True))
    async with AsyncTestClient(app=app, base_url="https://testserver.local") as c:
        hsts = (await c.get("/ping")).headers["strict-transport-security"]
    assert hsts == "max-age=63072000; includeSubDomains; preload"


async def test_every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept(client):
    fresh = await client.get("/ping")
    kept = await client.get("/ping", headers={"x-request-id": "abc-123"})
    assert len(fresh.headers["x-request-id"]) == 32 and kept.headers["x-request-id"] == "abc-123"


async def test_unknown_paths_and_methods_answer_with_a_request_id(client):
    unknown = await client.get("/no-such-path", headers={"x-request-id": "lost-1"})
    wrong_method = await client.delete("/ping")
    assert unknown.status_code == 404 and unknown.headers["x-request-id"] == "lost-1"
    assert wrong_method.status_code == 405 and len(wrong_method.headers["x-request-id"]) == 32


def test_log_lines_are_json_with_the_request_id():
    token = request_id.set("rid-1")
    try:
        line = JsonFormatter().format(logging.makeLogRecord(
            {"name": "postyard.test", "msg": "hello", "levelname": "INFO", "path": "/x"}))
    finally:
        request_id.reset(token)
    assert json.loads(line) | {"time": None} == {
        "time": None, "level": "info", "logger": "postyard.test", "message": "hello", "request_id": "rid-1",
        "path": "/x"}


def test_settings_are_read_from_postyard_environment_variables(env):
    settings = Settings.from_env({**env, "POSTYARD_RATE_LIMIT": "42", "POSTYARD_COOKIE_SECURE": "false"})
    assert settings.rate_limit == 42 and settings.cookie_secure is False and settings.active_data_key_id == DATA_KEY_ID


def test_the_cli_creates_a_team_and_prints_its_first_full_access_key(env, capsys, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from app.config import get_settings

    get_settings.cache_clear()
    try:
        assert main(["create-team", "cli team"]) == 0
    finally:
        get_settings.cache_clear()
    assert "sk_live_" in capsys.readouterr().out


async def test_rotating_the_data_key_re_encrypts_dkim_keys_under_the_new_key(client, team, settings, postgres):
    domain = await verified_domain(client, team, postgres)  # the mail view shows verified domains only
    new_key = os.urandom(32)
    rotated = msgspec.structs.replace(settings, data_keys={**settings.data_keys, "k-next": new_key},
                                      active_data_key_id="k-next")
    changed = await rotate_data_key(rotated)
    key_ids = postgres.psql(f"SELECT key_id FROM mail_dkim_keys WHERE domain = '{domain['name']}'",
                            user="postyard_mail", database="postyard").split()
    restored = await rotate_data_key(msgspec.structs.replace(rotated, active_data_key_id=DATA_KEY_ID))
    assert changed >= 1 and key_ids == ["k-next"] and restored == changed


async def test_the_openapi_schema_declares_public_routes_public_and_every_error_with_its_body(client):
    schema = (await client.get("/docs/openapi.json")).json()
    paths = schema["paths"]
    public = [paths[p]["get"] for p in ("/health", "/health/live", "/health/ready", "/ping",
                                        "/.well-known/security.txt")] + [
        paths[p]["post"] for p in ("/auth/register", "/auth/login")]
    get_domain = paths["/domains/{domain_id}"]["get"]
    assert all(operation["security"] == [] for operation in public) and "security" not in schema
    assert get_domain["security"] == [{"apiKey": []}, {"session": []}]
    assert {"401", "403", "404", "422", "429", "503"} <= set(get_domain["responses"]) and "400" not in get_domain[
        "responses"]
    assert get_domain["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"}
    assert schema["components"]["schemas"]["ErrorBody"]["required"] == ["statusCode", "name", "message"]


async def test_readiness_documents_its_503_with_the_health_body_and_retry_after(client):
    paths = (await client.get("/docs/openapi.json")).json()["paths"]
    for path in ("/health/ready", "/health"):
        unavailable = paths[path]["get"]["responses"]["503"]
        assert unavailable["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Health"}
        assert "Retry-After" in unavailable["headers"]
    assert set(paths["/health/live"]["get"]["responses"]) == {"200"}


async def test_every_documented_operation_lists_no_400_and_only_errors_with_the_error_body(client):
    schema = (await client.get("/docs/openapi.json")).json()
    operations = [op for item in schema["paths"].values() for op in item.values()]
    errors = [(op["operationId"], code, spec) for op in operations for code, spec in op["responses"].items()
              if code.startswith("4") or code.startswith("5")]
    assert all(code != "400" for _, code, _ in errors)
    assert all(spec["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
               for operation_id, code, spec in errors if not operation_id.startswith("system/health"))


async def test_options_lists_every_method_of_its_path(client):
    collection = await client.options("/api-keys")
    item = await client.options("/domains/some-id")
    assert collection.status_code == item.status_code == 204
    assert collection.headers["allow"] == "GET, OPTIONS, POST"
    assert item.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"
