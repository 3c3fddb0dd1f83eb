"""The API's unit: its own settings file after the shared one, and the TLS floor the deploy asks for."""

from __future__ import annotations

from app import tls_policy
from app.host_layout import API_PORT
from roles import api, mail_services
from roles.app_runtime import PYTHON
from roles.support.app_units import AppUnit
from tests.unit.test_templates import render


def _rendered(unit: AppUnit) -> list[str]:
    return render("app/service.j2", {"unit": unit, "env_file": "/etc/postyard/app.env", "release": "0"}).splitlines()


def test_the_api_reads_its_own_settings_after_the_shared_ones():
    lines = _rendered(api.api_units(2)[0])
    files = [line for line in lines if line.startswith("EnvironmentFile=")]
    assert files == ["EnvironmentFile=/etc/postyard/app.env", f"EnvironmentFile={api.API_ENV}"]


def test_mail_host_services_do_not_read_the_api_settings():
    for unit in mail_services.mail_units():
        assert f"EnvironmentFile={api.API_ENV}" not in _rendered(unit)


def test_the_api_accepts_the_policys_lowest_tls_version_by_default_and_only_tls_1_3_when_asked():
    default = api.api_units(2)[0].exec_start
    tls13 = tls_policy.granian_protocol(tls_policy.PROTOCOLS[-1])
    strict = api.api_units(2, tls13)[0].exec_start
    assert f"--ssl-protocol-min {tls_policy.GRANIAN_MIN_PROTOCOL}" in default
    assert f"--ssl-protocol-min {tls13}" in strict


def test_the_api_unit_is_active_only_once_the_api_answers_on_its_own_port():
    unit = api.api_units(2)[0]
    lines = _rendered(unit)
    waits = [line for line in lines if line.startswith("ExecStartPost=")]
    assert waits == [f"ExecStartPost={PYTHON} -m app.wait_ready --port {API_PORT}"]
    assert f"--port {API_PORT} " in unit.exec_start
    assert lines.index(waits[0]) > lines.index(f"ExecStart={unit.exec_start}")


def test_mail_host_units_have_no_readiness_wait():
    for unit in mail_services.mail_units():
        assert not any(line.startswith("ExecStartPost=") for line in _rendered(unit))
