"""The API's unit: its own settings file after the shared one, and the TLS floor the deploy asks for."""

from __future__ import annotations

from app import tls_policy
from roles import api, mail_services
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
