"""The restore drill on the ha testbed: a differential backup taken by the repository host through the members'
TLS servers, two batches of emails through the load-balanced API, and a restore of the whole cluster to a time
between them. The appliance runs from the restored cluster: the first batch is there, the second is not, every
member runs again under one leader, and WAL archiving goes on."""

from __future__ import annotations

import socket
import time
import uuid
from datetime import datetime

import pytest

from postyard.appliance_client import ApiAccess, name_resolver
from postyard.inventory_hosts import InfraHost
from postyard.pitr import RestoreError
from postyard.pitr_cluster import restore_cluster_to
from postyard.ssh import ssh_run
from postyard.testbed import state as testbed_state
from postyard.testbed.hosts import hosts_of_testbed
from roles.pgbackrest import STANZA
from tests.testbed.mail_support import MailTestbed
from tests.testbed.pitr_support import restore_between_two_batches


@pytest.fixture(scope="module")
def drill(ha_testbed: testbed_state.TestbedState,
          monkeypatch_module) -> tuple[list[InfraHost], InfraHost, ApiAccess, str]:
    mail_bed = MailTestbed(ha_testbed)
    monkeypatch_module.setattr(socket, "getaddrinfo", name_resolver(mail_bed.host_names()))
    hosts = hosts_of_testbed(ha_testbed.name).values()
    members = sorted((h for h in hosts if "pgbackrest_member" in h.roles), key=lambda h: h.name)
    repository = next(h for h in hosts if "pgbackrest_repository" in h.roles)
    _, api = mail_bed.open_team(f"pitr-{uuid.uuid4().hex[:6]}")
    return members, repository, api, mail_bed.verified_domain(api, prefix="pitr")


def pgbackrest(host: InfraHost, *arguments: str) -> str:
    return ssh_run(host, ["runuser", "-u", "postgres", "--", "pgbackrest", f"--stanza={STANZA}", *arguments])


def test_a_restore_of_the_cluster_between_two_batches_keeps_the_first_and_not_the_second(drill):
    members, repository, api, domain = drill
    started = time.monotonic()
    ssh_run(repository, ["systemctl", "start", "postyard-pitr-diff.service"], timeout=600)
    backed_up = time.monotonic()
    restored: dict[str, str] = {}

    def restore(when: datetime) -> dict[str, str]:
        restored.update(restore_cluster_to(members, when, print))
        return restored

    def remove_asides(asides: dict[str, str]) -> None:
        for host in members:
            if host.name in asides:
                ssh_run(host, ["rm", "-rf", "--", asides[host.name]])

    with api.client() as client:
        restore_seconds, back = restore_between_two_batches(client, domain, members[0], restore, remove_asides)
    assert set(restored) == {host.name for host in members}
    pgbackrest(repository, "check")  # the restored primary archives to the repository again
    print(f"\ndiff backup {backed_up - started:.1f} s, restore of {len(members)} members {restore_seconds:.1f} s, "
          f"API reading the restored cluster {back:.1f} s later")


def test_a_cluster_restore_to_a_time_to_come_is_refused_and_stops_nothing(drill):
    members = drill[0]
    later = datetime.fromisoformat("2999-01-01T00:00:00+00:00")
    with pytest.raises(RestoreError, match="not in the past"):
        restore_cluster_to(members, later, print)
    for host in members:
        assert ssh_run(host, ["systemctl", "is-active", "patroni"]).strip() == "active"
