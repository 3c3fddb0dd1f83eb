"""Encrypted backups: written by the nightly service, unreadable on the host, restorable."""

from __future__ import annotations

import pytest

from postyard.backup import list_backups, restore_backup
from postyard.remote import ssh_run

ROWS = 1234


def psql(host, query: str, database: str = "postyard") -> str:
    return ssh_run(host, ["runuser", "-u", "postgres", "--", "psql", "-XAtc", query, database]).strip()


@pytest.fixture
def node(session_hosts):
    host = session_hosts["node1"]
    psql(host, f"CREATE TABLE backup_probe AS SELECT n, 'marker-' || n AS label FROM generate_series(1, {ROWS}) n")
    yield host
    psql(host, "DROP TABLE IF EXISTS backup_probe")
    psql(host, "DROP DATABASE IF EXISTS restore_check", "postgres")


def test_backup_is_encrypted_and_restores_with_the_same_row_count(node):
    before = set(list_backups(node))
    ssh_run(node, ["systemctl", "start", "postyard-backup.service"])
    written = sorted(set(list_backups(node)) - before)
    assert len(written) == 1
    backup = written[0]

    header = ssh_run(node, ["head", "-c", "21", backup])
    assert header == "age-encryption.org/v1"
    assert ssh_run(node, ["sh", "-c", f"grep -c marker- {backup} || true"]).strip() == "0"

    restore_backup(node, backup, "restore_check")
    assert psql(node, "SELECT count(*) FROM backup_probe", "restore_check") == str(ROWS)
    assert psql(node, "SELECT count(*) FROM backup_probe") == str(ROWS)


def test_the_host_holds_no_key_that_decrypts_backups(node):
    found = ssh_run(node, ["sh", "-c", "grep -rl AGE-SECRET-KEY /etc /var/backups /root /var/lib/postgresql 2>/dev/null || true"])
    assert found.strip() == ""
