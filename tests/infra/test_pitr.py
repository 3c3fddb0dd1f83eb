"""Point-in-time recovery on each db host: WAL archived, backups scheduled, the repository encrypted."""

from __future__ import annotations

import json

import pytest

from roles.pgbackrest import BACKUP_KINDS, CONFIG
from tests.infra.pitr_checks import ENCRYPTED_HEADER, REPOSITORY, pgbackrest, repository_heads


def test_wal_is_archived_to_pgbackrest(pitr):
    assert pitr.check_output("runuser -u postgres -- psql -XAtc 'SHOW archive_mode'") == "on"
    pgbackrest(pitr, "check")  # fails unless a WAL switch reaches the repository
    archived = "SELECT archived_count > 0 FROM pg_stat_archiver"
    assert pitr.check_output(f"runuser -u postgres -- psql -XAtc '{archived}'") == "t"


def test_the_repository_holds_a_full_backup(pitr):
    info = json.loads(pgbackrest(pitr, "--output=json", "info"))
    assert info[0]["status"]["code"] == 0, info[0]["status"]
    assert "full" in {backup["type"] for backup in info[0]["backup"]}


@pytest.mark.parametrize("kind", BACKUP_KINDS)
def test_backups_are_scheduled(pitr, kind):
    timer = pitr.service(f"postyard-pitr-{kind}.timer")
    assert timer.is_enabled and timer.is_running


def test_the_repository_is_encrypted(pitr):
    assert repository_heads(pitr) == {ENCRYPTED_HEADER}


def test_only_postgres_reads_the_repository_and_its_passphrase(pitr):
    config = pitr.file(CONFIG)
    assert (config.user, config.mode) == ("postgres", 0o600)
    repository = pitr.file(REPOSITORY)
    assert repository.user == "postgres" and repository.mode & 0o007 == 0


def test_the_pgbackrest_server_is_not_running(pitr):
    assert not pitr.service("pgbackrest").is_running
