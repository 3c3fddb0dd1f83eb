"""The names `pytest --testbed` gives its testbeds, their override, and which testbed each test works on."""

import pytest

from postyard.inventory_hosts import InfraHost
from postyard.testbed import suites
from postyard.testbed.inventory import ENVIRONMENT_PREFIX
from postyard.testbed.suites import session_testbeds, used_testbed


def test_the_defaults_are_one_single_and_one_ha_testbed():
    assert session_testbeds(None) == {"ci": "single", "cis": "ha"}


def test_the_override_names_testbeds_and_topologies():
    assert session_testbeds("dev:single, devs:split") == {"dev": "single", "devs": "split"}
    assert session_testbeds("dev:single,devh:ha") == {"dev": "single", "devh": "ha"}


@pytest.mark.parametrize("spec", ["dev", "dev:triple"])
def test_a_malformed_override_is_refused(spec):
    with pytest.raises(ValueError, match="POSTYARD_SESSION_TESTBEDS"):
        session_testbeds(spec)


@pytest.fixture
def session(monkeypatch):
    monkeypatch.setattr(suites, "SESSION_TESTBEDS", {"one": "single", "many": "ha"})


def _host(testbed: str) -> InfraHost:
    return InfraHost(name=f"db1.{testbed}", fqdn="db1.postyard.test", address="10.0.0.1", groups=("db",),
                     roles=("postgresql",), flags={}, tls_names=(), private_address=None,
                     environment=f"{ENVIRONMENT_PREFIX}{testbed}", secrets_dir=None, outside_netns=None,
                     ssh_user="root", ssh_key=None, known_hosts=None)


def test_a_verification_test_works_on_its_hosts_testbed(session):
    assert used_testbed({"db_host": _host("many")}, ["db_host", "db", "outside"]) == "many"
    assert used_testbed({"db_host": _host("one")}, ["db_host", "split_testbed"]) == "one"


def test_a_module_run_on_each_testbed_works_on_the_one_of_its_parameter(session):
    assert used_testbed({"each_testbed": "single"}, ["each_testbed"]) == "one"
    assert used_testbed({"each_testbed": "split"}, ["each_testbed"]) == "many"


def test_the_testbed_fixtures_name_the_testbed(session):
    assert used_testbed({}, ["single_testbed", "tmp_path"]) == "one"
    assert used_testbed({}, ["split_testbed", "ha_testbed"]) == "many"
    assert used_testbed({}, ["tmp_path"]) is None


def test_a_test_on_two_testbeds_is_refused(session):
    with pytest.raises(ValueError, match="two testbeds"):
        used_testbed({}, ["single_testbed", "split_testbed"])
