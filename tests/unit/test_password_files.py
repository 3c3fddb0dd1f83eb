"""A password file line (libpq's passfile format) escapes what would end a field."""

from __future__ import annotations

from roles.support.database_client import DatabaseLogin

LOGIN = DatabaseLogin("10.0.1.2", "postyard", "postyard_mail", "pa:ss\\word")


def test_a_password_file_line_escapes_colons_and_backslashes():
    assert LOGIN.pgpass_line() == "10.0.1.2:5432:postyard:postyard_mail:pa\\:ss\\\\word\n"
