"""Create and destroy a whole testbed: bridges, NAT, hosts, and the outside vantage point."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from postyard.secrets import SecretStore
from postyard.testbed import apt_pool, internet, machine, network, rootfs, sysctl
from postyard.testbed import state as testbed_state
from postyard.testbed.commands import CommandError, run
from postyard.testbed.state import CACHE_ROOT, HostRecord, TestbedState
from postyard.topology import TOPOLOGIES

__all__ = ["up", "down", "power_off", "power_on", "reboot", "is_healthy", "leftovers"]

Log = Callable[[str], None]
DOMAIN = "postyard.test"
APT_POOL = CACHE_ROOT / "apt-archives"
SYSCTL_ORIGINALS = testbed_state.STATE_ROOT / "sysctl-originals.json"


def plan(name: str, topology: str) -> TestbedState:
    if topology not in TOPOLOGIES:
        raise CommandError(f"unknown topology {topology!r}; choose one of {', '.join(TOPOLOGIES)}")
    testbed_state.testbed_dir(name)  # validates the name
    used = {s.index for other in testbed_state.existing_names() if (s := testbed_state.load(other))}
    index = next(i for i in range(256) if i not in used)
    bed = TestbedState(
        name=name,
        index=index,
        topology=topology,
        public_subnet=f"10.77.{index}.0/24",
        private_subnet=f"10.78.{index}.0/24",
        gateway=f"10.77.{index}.1",
        outside_address=f"10.77.{index}.200",
        domain=DOMAIN,
    )
    bed.hosts.append(
        HostRecord(
            name="net", fqdn=f"ns.{internet.ZONE}", groups=[], public_address=f"10.77.{index}.2",
            private_address="", netns=f"{bed.prefix}-net", machine=f"{bed.prefix}-net",
            rootfs=str(bed.directory / "machines" / "net"), kind="internet",
        )
    )
    for number, host in enumerate(TOPOLOGIES[topology], start=1):
        bed.hosts.append(
            HostRecord(
                name=host.name,
                fqdn=f"{host.name}.{DOMAIN}",
                groups=list(host.groups),
                public_address=f"10.77.{index}.{9 + number}",
                private_address=f"10.78.{index}.{9 + number}",
                netns=f"{bed.prefix}-{host.name}",
                machine=f"{bed.prefix}-{host.name}",
                rootfs=str(bed.directory / "machines" / host.name),
            )
        )
    return bed


def is_healthy(bed: TestbedState) -> bool:
    return all(h.nspawn_pid and machine.is_running(h.nspawn_pid) for h in bed.hosts)


def up(
    name: str = "main", topology: str = "single", log: Log = print, cache_dir: Path = CACHE_ROOT
) -> TestbedState:
    """Bring the testbed up, reusing it if it already runs with this topology.

    cache_dir holds the root filesystem tarball (built there when missing).
    """
    existing = testbed_state.load(name)
    if existing and existing.topology == topology and is_healthy(existing):
        log(f"testbed {name!r} is already up ({len(existing.hosts)} host(s))")
        return existing
    if existing or leftovers(name):
        down(name, log=log)
    bed = plan(name, topology)
    testbed_state.save(bed)
    try:
        build(bed, log, cache_dir)
    except BaseException:
        log(f"testbed {name!r} failed to come up; removing what was created")
        down(name, log=log)
        raise
    return bed


def build(bed: TestbedState, log: Log, cache_dir: Path) -> None:
    started = time.monotonic()
    tarball = rootfs.ensure_cached_rootfs(cache_dir, log=log)
    internet_tarball = rootfs.ensure_cached_rootfs(cache_dir, log=log, flavour="internet")
    for subnet in (bed.public_subnet, bed.private_subnet):
        network.check_subnet_is_free(subnet)
    ensure_ssh_key(bed.ssh_key)
    public_key = bed.ssh_key.with_suffix(".pub").read_text()

    network.create_bridge(bed.public_bridge, f"{bed.gateway}/24")
    network.create_bridge(bed.private_bridge, None)
    network.create_nat_table(bed.nft_table, bed.public_subnet, bed.public_bridge)
    sysctl.raise_to_minimums(SYSCTL_ORIGINALS)
    testbed_state.save(bed)

    network.create_netns(bed.outside_netns)
    network.attach_netns(
        bed.outside_netns, f"{bed.prefix}-op", "eth0", bed.public_bridge, f"{bed.outside_address}/24", None
    )

    resolv_conf = Path("/etc/resolv.conf").read_text()
    net = bed.internet_host
    assert net is not None
    for number, host in enumerate(bed.hosts, start=1):
        log(f"creating {host.fqdn} at {host.public_address}")
        root = Path(host.rootfs)
        if host.kind == "internet":
            rootfs.clone_rootfs(internet_tarball, root, host.fqdn, public_key)
            (root / "etc/resolv.conf").write_text("nameserver 127.0.0.1\n")  # its own bind
            internet.configure(
                root, host.public_address, [bed.public_subnet, bed.private_subnet],
                dns_records(bed),
                SecretStore(bed.directory / "secrets"), resolv_conf,
            )
        else:
            rootfs.clone_rootfs(tarball, root, host.fqdn, public_key)
            (root / "etc/resolv.conf").write_text(f"nameserver {net.public_address}\n")
            apt_pool.seed(APT_POOL, root)
        network.create_netns(host.netns)
        network.attach_netns(
            host.netns, f"{bed.prefix}-{number}p", "eth0", bed.public_bridge,
            f"{host.public_address}/24", bed.gateway,
        )
        if host.private_address:
            network.attach_netns(
                host.netns, f"{bed.prefix}-{number}v", "eth1", bed.private_bridge,
                f"{host.private_address}/24", None,
            )
        host.nspawn_pid = boot_host(bed, host)
        testbed_state.save(bed)

    internet.wait_for_dns(net.public_address)
    for host in bed.hosts:
        machine.wait_for_ssh(host.public_address, nspawn_pid=host.nspawn_pid)
    bed.known_hosts.write_text(
        "".join(
            f"{host.public_address} {rootfs.host_public_key(Path(host.rootfs))}\n" for host in bed.hosts
        )
    )
    log(f"testbed {bed.name!r}: {len(bed.platform_hosts)} host(s) and its DNS up in {time.monotonic() - started:.1f} s")


def dns_records(bed: TestbedState) -> dict[str, str]:
    """Each platform host's name, and the API's name at the load balancer where there is one (relative to the
    testbed's top-level zone)."""
    zone = f".{internet.ZONE}"
    records = {h.fqdn.removesuffix(zone): h.public_address for h in bed.platform_hosts}
    if bed.api_name and bed.load_balancer:
        records[bed.api_name.removesuffix(zone)] = bed.load_balancer.public_address
    return records


def boot_host(bed: TestbedState, host: HostRecord) -> int:
    return machine.boot(host.machine, Path(host.rootfs), host.netns, bed.directory / f"{host.name}.console.log")


def ensure_ssh_key(path: Path) -> None:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "postyard-testbed", "-f", str(path)])


def leftovers(name: str) -> dict[str, list[str]]:
    """What of this testbed still exists on the machine, found by name (empty when clean)."""
    prefix = f"pyd{name}-"
    found = {
        "processes": [str(pid) for pid in machine.nspawn_pids_for(prefix)],
        "links": network.links_with_prefix(prefix),
        "netns": network.netns_with_prefix(prefix),
        "nft_tables": [t for t in [f"postyard_testbed_{name}"] if network.nft_table_exists(t)],
    }
    return {kind: items for kind, items in found.items() if items}


def down(name: str = "main", log: Log = print) -> None:
    """Remove everything the testbed created, from its state file and by its name prefix."""
    bed = testbed_state.load(name)
    prefix = f"pyd{name}-"
    pids = set(machine.nspawn_pids_for(prefix))
    if bed:
        pids |= {h.nspawn_pid for h in bed.hosts if h.nspawn_pid}
    for pid in sorted(pids):
        machine.power_off(pid)
    for netns in network.netns_with_prefix(prefix):
        network.delete_netns(netns)
    for link in network.links_with_prefix(prefix):
        network.delete_link(link)
    network.delete_nft_table(f"postyard_testbed_{name}")
    others_remain = any(other != name for other in testbed_state.existing_names())
    if not others_remain:
        sysctl.restore_originals(SYSCTL_ORIGINALS)
    directory = testbed_state.testbed_dir(name)
    for root in (directory / "machines").glob("*") if directory.exists() else ():
        apt_pool.harvest(APT_POOL, root)
    if directory.exists():
        shutil.rmtree(directory)
    log(f"testbed {name!r} removed")


def _record(name: str, host_name: str) -> tuple[TestbedState, HostRecord]:
    bed = testbed_state.load(name)
    if bed is None:
        raise CommandError(f"testbed {name!r} is not up")
    record = next((h for h in bed.hosts if h.name == host_name), None)
    if record is None:
        raise CommandError(f"testbed {name!r} has no host {host_name!r}")
    return bed, record


def power_off(name: str, host_name: str, log: Log = print, cut: bool = False) -> None:
    """Shut one host down, or with `cut` kill every process of it at once, with no shutdown."""
    bed, record = _record(name, host_name)
    if record.nspawn_pid:
        (machine.power_cut if cut else machine.power_off)(record.nspawn_pid)
    record.nspawn_pid = None
    testbed_state.save(bed)
    log(f"{record.fqdn} {'lost its power' if cut else 'powered off'}")


def power_on(name: str, host_name: str, log: Log = print) -> HostRecord:
    """Boot a host that is off (powered off, or never booted); back once it answers on SSH."""
    bed, record = _record(name, host_name)
    if record.nspawn_pid and machine.is_running(record.nspawn_pid):
        raise CommandError(f"{record.fqdn} is running already")
    record.nspawn_pid = boot_host(bed, record)
    testbed_state.save(bed)
    machine.wait_for_ssh(record.public_address, nspawn_pid=record.nspawn_pid)
    log(f"{record.fqdn} powered on")
    return record


def reboot(name: str, host_name: str, log: Log = print) -> HostRecord:
    """Power one host off and boot it again, as a reboot of a real server would."""
    power_off(name, host_name, log=lambda _: None)
    record = power_on(name, host_name, log=lambda _: None)
    log(f"{record.fqdn} rebooted")
    return record
