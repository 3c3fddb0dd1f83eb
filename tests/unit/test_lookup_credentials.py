"""Postfix's lookup tables name their password file, never the password: Postfix logs a table's URL with
each failed lookup, so a URL with the password would write it to the journal."""

from __future__ import annotations

from roles import postfix
from roles.support.database_client import DatabaseLogin

LOGIN = DatabaseLogin("10.0.1.2", "postyard", "postyard_mail", "pa:ss\\word")


def test_no_lookup_url_holds_the_password():
    for lookup in (*postfix.LOOKUPS, postfix.REACHABLE):
        hosts = postfix.lookup_context(lookup, LOGIN)["hosts"]
        assert "pa" not in hosts.split("@")[0] and "word" not in hosts
        assert f"passfile={postfix.PROBE_PGPASS if lookup is postfix.REACHABLE else postfix.PGPASS}" in hosts


def test_a_password_file_line_escapes_colons_and_backslashes():
    assert LOGIN.pgpass_line() == "10.0.1.2:5432:postyard:postyard_mail:pa\\:ss\\\\word\n"
