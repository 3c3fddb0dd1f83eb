"""The restore drill on the one-host testbed: a differential backup under its systemd sandbox, two batches of
emails through the API, and a restore to a time between them. The restored cluster replaces the live one, the
appliance runs from it, the first batch is there and the second is not, and WAL archiving goes on. A restore that
fails halfway puts the cluster it was to replace back."""

from __future__ import annotations

import socket
import time
import uuid
from datetime import datetime

import pytest

from postyard.appliance_client import ApiAccess, name_resolver
from postyard.inventory_hosts import InfraHost, load_hosts
from postyard.pitr import RestoreError, restore_to
from postyard.ssh import SshError, ssh_run
from postyard.testbed import state as testbed_state
from postyard.testbed.hosts import TESTBED_INVENTORY
from roles.pgbackrest import DEFAULTS as PITR_DEFAULTS
from roles.pgbackrest import STANZA
from tests.testbed.mail_support import MailTestbed
from tests.testbed.pitr_support import host_time, restore_between_two_batches

REPOSITORY = PITR_DEFAULTS["pitr_repository"]


@pytest.fixture(scope="module")
def drill(single_testbed: testbed_state.TestbedState,
          monkeypatch_module) -> tuple[InfraHost, MailTestbed, ApiAccess, str]:
    mail_bed = MailTestbed(single_testbed)
    monkeypatch_module.setattr(socket, "getaddrinfo", name_resolver(mail_bed.host_names()))
    host = next(h for h in load_hosts(TESTBED_INVENTORY) if h.fqdn == mail_bed.db.fqdn)
    _, api = mail_bed.open_team(f"pitr-{uuid.uuid4().hex[:6]}")
    return host, mail_bed, api, mail_bed.verified_domain(api, prefix="pitr")


def test_a_restore_between_two_batches_keeps_the_first_and_not_the_second(drill):
    host, _, api, domain = drill
    started = time.monotonic()
    ssh_run(host, ["systemctl", "start", "postyard-pitr-diff.service"])
    backed_up = time.monotonic()
    with api.client() as client:
        restore, back = restore_between_two_batches(
            client, domain, host, lambda when: restore_to(host, when, print),
            lambda aside: ssh_run(host, ["rm", "-rf", "--", aside]))
    ssh_run(host, ["runuser", "-u", "postgres", "--", "pgbackrest", f"--stanza={STANZA}", "check"])
    print(f"\ndiff backup {backed_up - started:.1f} s, restore {restore:.1f} s, "
          f"API reading the restored cluster {back:.1f} s later")


def test_a_restore_to_a_time_to_come_is_refused_and_changes_nothing(drill):
    host = drill[0]
    later = datetime.fromisoformat("2999-01-01T00:00:00+00:00")
    with pytest.raises(RestoreError, match="not in the past"):
        restore_to(host, later, print)
    assert ssh_run(host, ["systemctl", "is-active", "postgresql@15-main"]).strip() == "active"


def test_a_restore_to_before_the_oldest_backup_is_refused(drill):
    with pytest.raises(RestoreError, match="oldest backup"):
        restore_to(drill[0], datetime.fromisoformat("2000-01-01T00:00:00+00:00"), print)


def test_a_restore_that_fails_puts_the_replaced_cluster_back(drill):
    host = drill[0]
    marker = uuid.uuid4().hex
    psql = ["runuser", "-u", "postgres", "--", "psql", "-XAtc"]
    ssh_run(host, [*psql, f"CREATE TABLE pitr_failure_probe AS SELECT '{marker}'::text AS marker"])
    try:
        time.sleep(1)
        between = host_time(host)
        time.sleep(1)
        # the backup sets unreadable: the checks before the restore pass, pgBackRest's restore fails
        sets = f"{REPOSITORY}/backup/{STANZA}/2*"
        ssh_run(host, ["sh", "-c", f"chmod 000 {sets}"])
        try:
            with pytest.raises(SshError, match="puts the replaced cluster back"):
                restore_to(host, between, print)
        finally:
            ssh_run(host, ["sh", "-c", f"chmod 750 {sets}"])
        assert ssh_run(host, ["systemctl", "is-active", "postgresql@15-main"]).strip() == "active"
        assert ssh_run(host, [*psql, "SELECT marker FROM pitr_failure_probe"]).strip() == marker
        assert ssh_run(host, ["ls", "/var/lib/postgresql/15"]).split() == ["main"]
    finally:
        ssh_run(host, [*psql, "DROP TABLE IF EXISTS pitr_failure_probe"])
