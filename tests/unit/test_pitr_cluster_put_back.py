"""A cluster restore that fails on its first member undoes what it did, in order, before it reports the failure."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from postyard import pitr_cluster
from postyard.ssh import SshError

MEMBERS = [SimpleNamespace(name=f"db{n}", fqdn=f"db{n}.example.net") for n in (1, 2, 3)]
WHEN = datetime(2026, 12, 1, 14, 3, tzinfo=UTC)


@pytest.fixture
def hosts(monkeypatch):
    """Every command, by host, in order; the first member's restore unit fails."""
    ran: list[tuple[str, str]] = []

    def ssh_run(host, command, *, input=None, timeout=600):
        text = command if isinstance(command, str) else " ".join(command)
        ran.append((host.name, text))
        if text.startswith("systemd-run"):
            raise SshError(host.name, "restore", 1, "pgBackRest: unable to restore")
        return ""

    monkeypatch.setattr(pitr_cluster, "ssh_run", ssh_run)
    monkeypatch.setattr(pitr_cluster, "check_target", lambda host, when: datetime(2026, 12, 1, 15, tzinfo=UTC))
    monkeypatch.setattr(pitr_cluster, "_listing", lambda host: [
        {"Member": "db2.example.net", "Role": "Leader", "State": "running"}])
    return ran


def test_the_first_member_gets_its_directory_back_and_the_former_leader_starts_first(hosts):
    with pytest.raises(SshError, match="unable to restore"):
        pitr_cluster.restore_cluster_to(MEMBERS, WHEN, lambda line: None)
    failed = next(n for n, (_, text) in enumerate(hosts) if text.startswith("systemd-run"))
    after = hosts[failed + 1:]
    assert after[0][0] == "db1" and "systemctl stop postyard-restore" in after[0][1]
    aside = "/var/lib/postgresql/15/main.before-restore-20261201T150000Z"
    assert after[1] == ("db1", f"sh -c if [ -d {aside} ]; then rm -rf /var/lib/postgresql/15/main && mv {aside} "
                               f"/var/lib/postgresql/15/main; fi")
    assert after[2][0] == "db1" and "remove postyard" in after[2][1]
    starts = [name for name, text in after if text == "systemctl start patroni.service"]
    assert starts == ["db2", "db1", "db3"]  # the former leader first


def test_patroni_stops_on_the_leader_last_and_nothing_moves_before_the_restore(hosts):
    with pytest.raises(SshError):
        pitr_cluster.restore_cluster_to(MEMBERS, WHEN, lambda line: None)
    stops = [name for name, text in hosts if text == "systemctl stop patroni.service"]
    assert stops == ["db1", "db3", "db2"]
    assert not any(text.startswith("mv ") for _, text in hosts)
