"""The names `pytest --testbed` gives its testbeds, and their override."""

import pytest

from postyard.testbed.suites import session_testbeds


def test_the_defaults_are_one_single_and_one_split_testbed():
    assert session_testbeds(None) == {"ci": "single", "cis": "split"}


def test_the_override_names_testbeds_and_topologies():
    assert session_testbeds("dev:single, devs:split") == {"dev": "single", "devs": "split"}
    assert session_testbeds("dev:single,devh:ha") == {"dev": "single", "devh": "ha"}


@pytest.mark.parametrize("spec", ["dev", "dev:triple"])
def test_a_malformed_override_is_refused(spec):
    with pytest.raises(ValueError, match="POSTYARD_SESSION_TESTBEDS"):
        session_testbeds(spec)
