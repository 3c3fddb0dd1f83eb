"""The clustered database of an ha testbed: who leads as Patroni reports it, who streams as the leader's
PostgreSQL sees it, and a switchover that puts the first db host in the lead."""

from __future__ import annotations

import json
import shlex
from typing import Any

from postyard.appliance_client import TestbedAppliance
from postyard.pitr_cluster import PATRONI_UNIT
from postyard.ssh import SshError
from postyard.testbed.state import HostRecord
from roles.patroni import CONFIG as PATRONI_CONFIG
from tests.testbed.fault_support import Host, wait_until

__all__ = ["PATRONI_UNIT", "Cluster"]

# doveadm's exit codes when the passdb answered: the user found (0) or not (67, EX_NOUSER); 75 is its failure.
LOOKUP_ANSWERED = ("0", "67")
LOOKUP_PROBE = "postyard-lookup-probe"
STREAMING = "SELECT application_name, sync_state FROM pg_stat_replication WHERE state = 'streaming'"


class Cluster:
    """The clustered database, asked of whichever member answers."""

    def __init__(self, bed: TestbedAppliance) -> None:
        self.bed = bed
        self.members = [h for h in bed.bed.platform_hosts if "db" in h.groups]

    def host(self, record: HostRecord) -> Host:
        return Host(self.bed, record)

    def _on_any(self, command: str, among: list[HostRecord] | None = None, timeout: float = 10) -> str | None:
        for record in among or self.members:
            try:
                return self.host(record).run(command, timeout=timeout)
            except SshError:
                continue
        return None

    def listing(self, among: list[HostRecord] | None = None) -> list[dict[str, Any]]:
        """Patroni's list of members, as etcd holds it: a member lost within the last time to live still shows."""
        found = self._on_any(f"patronictl -c {PATRONI_CONFIG} list -f json", among)
        try:
            return json.loads(found) if found else []
        except ValueError:
            return []

    def patronictl(self, arguments: str) -> str:
        found = self._on_any(f"patronictl -c {PATRONI_CONFIG} {arguments}", timeout=120)
        assert found is not None, f"no member answered patronictl {arguments}"
        return found

    def leader(self, among: list[HostRecord] | None = None) -> HostRecord | None:
        names = [m["Member"] for m in self.listing(among) if m["Role"] == "Leader" and m["State"] == "running"]
        return next((h for h in self.members if h.fqdn in names), None)

    def primary(self) -> HostRecord:
        found = self.leader()
        assert found is not None, f"no leader: {self.listing()}"
        return found

    def streaming(self) -> dict[str, str]:
        """{member: sync state} of the members streaming from the leader, as its PostgreSQL sees them."""
        leader = self.leader()
        if leader is None:
            return {}
        try:
            rows = self.host(leader).run(f"runuser -u postgres -- psql -XAtF' ' -c {shlex.quote(STREAMING)}",
                                         timeout=10)
        except SshError:
            return {}
        return dict(line.split(" ", 1) for line in rows.splitlines() if " " in line)

    def streams(self, record: HostRecord) -> bool:
        return record.fqdn in self.streaming()

    def healthy(self) -> bool:
        """A leader, every other member streaming from it, one of them synchronously."""
        streaming = self.streaming()
        return len(streaming) == len(self.members) - 1 and "sync" in streaming.values()

    def lead_from_first_member(self) -> bool:
        """The first db host made the primary unless it is: the suites that reach "the db host" by name reach
        the primary. Patroni hands over only to the synchronous standby, which it chooses itself, so
        synchronous replication is off for the switchover (the leader steps down cleanly: nothing is lost).
        Whether it switched over."""
        wait_until(self.healthy, 180, "the cluster healthy", interval=2)
        first = self.members[0]
        if self.leader() == first:
            return False
        self.patronictl("edit-config --force --set synchronous_mode=false")
        try:
            wait_until(lambda: (members := self.listing()) and not any(m["Role"] == "Sync Standby" for m in members),
                       60, "synchronous replication off", interval=1)
            self.patronictl(f"switchover --candidate {first.fqdn} --force")
            wait_until(lambda: self.leader() == first, 120, f"{first.fqdn} leading", interval=1)
        finally:
            self.patronictl("edit-config --force --set synchronous_mode=true")
        wait_until(self.healthy, 120, f"the cluster healthy under {first.fqdn}", interval=1)
        return True

    def wait_for_login_lookups(self) -> None:
        """Until Dovecot on every mail host looks a login up again: the first lookups after a switchover fail
        on its pooled connections to the old primary (docs/sending.md, "SMTP logins after a database
        restart"). Asked with doveadm on the host, so no failed login counts against the test's address."""
        for record in self.bed.hosts_in("mail"):
            host = self.host(record)
            wait_until(lambda h=host: h.run(f"doveadm auth lookup {LOOKUP_PROBE} >/dev/null 2>&1; echo $?").strip()
                       in LOOKUP_ANSWERED, 60, f"a login lookup answered on {record.fqdn}", interval=1)
