"""`POSTYARD_SYSTEM_SENDER` (an address, with or without a display name; empty or malformed: no system mail)
and `POSTYARD_CONSOLE_HOSTS`, the host names a reset link may carry."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.domain.emails.system_mail import system_sender


@pytest.mark.parametrize(("value", "expected"), [
    ("Acme Mail <no-reply@ops.example.com>", ("Acme Mail", "no-reply@ops.example.com")),
    ("no-reply@ops.example.com", ("Postyard", "no-reply@ops.example.com")),
    ("", None),
    ("not an address", None),
])
def test_the_system_sender_is_parsed_once_for_its_name_and_address(value: str, expected) -> None:
    assert system_sender(Settings(system_sender=value)) == expected


def test_the_setting_is_read_from_the_environment() -> None:
    settings = Settings.from_env({"POSTYARD_SYSTEM_SENDER": "Postyard <no-reply@ops.example.com>"})
    assert system_sender(settings) == ("Postyard", "no-reply@ops.example.com")


def test_the_console_host_names_are_a_lowercase_set_and_empty_means_any() -> None:
    assert Settings(console_hosts=" API.example.com,console.example.com ,").console_host_names == frozenset(
        {"api.example.com", "console.example.com"})
    assert Settings().console_host_names == frozenset()
