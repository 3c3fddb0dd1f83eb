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
from postyard.testbed.hosts import testbed_hosts
from roles.pgbackrest import STANZA
from tests.testbed.mail_support import MailTestbed
from tests.testbed.pitr_support import BATCH, host_time, send_batch, status_once_back


@pytest.fixture(scope="module")
def drill(ha_testbed: testbed_state.TestbedState,
          monkeypatch_module) -> tuple[list[InfraHost], InfraHost, ApiAccess, str]:
    mail_bed = MailTestbed(ha_testbed)
    monkeypatch_module.setattr(socket, "getaddrinfo", name_resolver(mail_bed.host_names()))
    hosts = testbed_hosts(ha_testbed.name).values()
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
    with api.client() as client:
        first = send_batch(client, domain, "first")
        time.sleep(1)
        between = host_time(members[0])
        time.sleep(1)
        second = send_batch(client, domain, "second")

        asides = restore_cluster_to(members, between, print)
        restored = time.monotonic()
        try:
            assert [status_once_back(client, email_id) for email_id in first] == [200] * BATCH
            assert [client.get(f"/emails/{email_id}").status_code for email_id in second] == [404] * BATCH
            back = time.monotonic()
            # the appliance takes new mail on the restored cluster
            assert len(send_batch(client, domain, "after")) == BATCH
        finally:
            for host in members:
                ssh_run(host, ["rm", "-rf", "--", asides[host.name]])
    assert set(asides) == {host.name for host in members}
    pgbackrest(repository, "check")  # the restored primary archives to the repository again
    print(f"\ndiff backup {backed_up - started:.1f} s, restore of {len(members)} members "
          f"{restored - backed_up:.1f} s, API reading the restored cluster {back - restored:.1f} s later")


def test_a_cluster_restore_to_a_time_to_come_is_refused_and_stops_nothing(drill):
    members = drill[0]
    later = datetime.fromisoformat("2999-01-01T00:00:00+00:00")
    with pytest.raises(RestoreError, match="not in the past"):
        restore_cluster_to(members, later, print)
    for host in members:
        assert ssh_run(host, ["systemctl", "is-active", "patroni"]).strip() == "active"
