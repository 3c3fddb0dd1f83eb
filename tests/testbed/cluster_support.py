"""The clustered database of an ha testbed as Patroni reports it: who leads, who replicates, and a switchover
that puts the first db host in the lead."""

from __future__ import annotations

import json

from postyard.appliance_client import TestbedAppliance
from postyard.ssh import SshError
from postyard.testbed.state import HostRecord
from roles.patroni import CONFIG as PATRONI_CONFIG
from tests.testbed.fault_support import Host, wait_until

__all__ = ["PATRONI_UNIT", "Cluster"]

PATRONI_UNIT = "patroni.service"


class Cluster:
    """The clustered database as Patroni reports it, asked of whichever member answers."""

    def __init__(self, bed: TestbedAppliance) -> None:
        self.bed = bed
        self.members = [h for h in bed.bed.platform_hosts if "db" in h.groups]

    def host(self, record: HostRecord) -> Host:
        return Host(self.bed, record)

    def listing(self, among: list[HostRecord] | None = None) -> list[dict]:
        for record in among or self.members:
            try:
                return json.loads(self.host(record).run(f"patronictl -c {PATRONI_CONFIG} list -f json", timeout=10))
            except (SshError, ValueError):
                continue
        return []

    def leader(self, among: list[HostRecord] | None = None) -> HostRecord | None:
        names = [m["Member"] for m in self.listing(among) if m["Role"] == "Leader" and m["State"] == "running"]
        return next((h for h in self.members if h.fqdn in names), None)

    @staticmethod
    def _replicating(member: dict, timeline: int | None) -> bool:
        # Patroni 3.0 reports a streaming replica as "running"; later releases say "streaming".
        return (member["Role"] in ("Replica", "Sync Standby") and member["State"] in ("running", "streaming")
                and member.get("TL") == timeline and isinstance(member.get("Lag in MB"), int))

    def _timeline(self, members: list[dict]) -> int | None:
        return next((m.get("TL") for m in members if m["Role"] == "Leader" and m["State"] == "running"), None)

    def streams(self, record: HostRecord) -> bool:
        members = self.listing()
        return any(m["Member"] == record.fqdn and self._replicating(m, self._timeline(members)) for m in members)

    def healthy(self) -> bool:
        """One leader, the other members replicating on its timeline, one of them synchronously."""
        members = self.listing()
        timeline = self._timeline(members)
        replicas = [m for m in members if self._replicating(m, timeline)]
        return (len(members) == len(self.members) and timeline is not None
                and len(replicas) == len(members) - 1 and any(m["Role"] == "Sync Standby" for m in replicas))

    def primary(self) -> HostRecord:
        found = self.leader()
        assert found is not None, f"no leader: {self.listing()}"
        return found


    def patronictl(self, arguments: str) -> str:
        return self.host(self.members[0]).run(f"patronictl -c {PATRONI_CONFIG} {arguments}", timeout=120)

    def lead_from_first_member(self) -> None:
        """The first db host made the primary unless it is: the suites that reach "the db host" by name reach
        the primary. Patroni hands over only to the synchronous standby, which it chooses itself, so
        synchronous replication is off for the switchover (the leader steps down cleanly: nothing is lost)."""
        wait_until(self.healthy, 180, "the cluster healthy", interval=2)
        first = self.members[0]
        if self.leader() == first:
            return
        self.patronictl("edit-config --force --set synchronous_mode=false")
        try:
            wait_until(lambda: not any(m["Role"] == "Sync Standby" for m in self.listing()), 60,
                       "synchronous replication off", interval=1)
            self.patronictl(f"switchover --candidate {first.fqdn} --force")
            wait_until(lambda: self.leader() == first, 120, f"{first.fqdn} leading", interval=1)
        finally:
            self.patronictl("edit-config --force --set synchronous_mode=true")
        wait_until(self.healthy, 120, f"the cluster healthy under {first.fqdn}", interval=1)
