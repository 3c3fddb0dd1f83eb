"""Health, metrics, OpenAPI docs, request ids, JSON logs and the admin CLI."""

from __future__ import annotations

import json
import logging
import os

import msgspec

from app.cli import main, rotate_data_key
from app.config import Settings
from app.lib.logs import JsonFormatter, request_id
from conftest import DATA_KEY_ID, unique_domain


async def test_health_reports_database_and_redis(client):
    response = await client.get("/health")
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_metrics_are_served_in_prometheus_format(client):
    await client.get("/ping")
    response = await client.get("/metrics")
    assert response.status_code == 200 and "postyard_http_request_duration_seconds" in response.text


async def test_the_openapi_schema_and_its_docs_ui_are_served(client):
    schema = await client.get("/docs/openapi.json")
    ui = await client.get("/docs")
    assert "/domains/{domain_id}/verify" in schema.json()["paths"] and ui.status_code == 200


async def test_every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept(client):
    fresh = await client.get("/ping")
    kept = await client.get("/ping", headers={"x-request-id": "abc-123"})
    assert len(fresh.headers["x-request-id"]) == 32 and kept.headers["x-request-id"] == "abc-123"


def test_log_lines_are_json_with_the_request_id():
    token = request_id.set("rid-1")
    try:
        line = JsonFormatter().format(logging.makeLogRecord(
            {"name": "postyard.test", "msg": "hello", "levelname": "INFO", "path": "/x"}))
    finally:
        request_id.reset(token)
    assert json.loads(line) | {"time": None} == {
        "time": None, "level": "info", "logger": "postyard.test", "message": "hello", "request_id": "rid-1", "path": "/x"}


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
    domain = (await client.post("/domains", json={"name": unique_domain()}, headers=team.headers)).json()
    new_key = os.urandom(32)
    rotated = msgspec.structs.replace(settings, data_keys={**settings.data_keys, "k-next": new_key},
                                      active_data_key_id="k-next")
    changed = await rotate_data_key(rotated)
    key_ids = postgres.psql(f"SELECT key_id FROM mail_dkim_keys WHERE domain = '{domain['name']}'",
                            user="postyard_mail", database="postyard").split()
    restored = await rotate_data_key(msgspec.structs.replace(rotated, active_data_key_id=DATA_KEY_ID))
    assert changed >= 1 and key_ids == ["k-next"] and restored == changed
