"""The one command: bring hosts up, deploy, verify, and say where everything is."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from postyard.appliance import access_summary
from postyard.backup import backup_public_key, list_backups, restore_backup
from postyard.deployer import REPO, DeployError, run_deploy
from postyard.exposure import EXPOSURE
from postyard.inventory_hosts import load_hosts
from postyard.pitr import parse_target_time, restore_to
from postyard.pitr_cluster import restore_cluster_to
from postyard.ssh import SshError, ssh_run
from postyard.targets import Target, TargetError, make_target
from postyard.testbed.commands import CommandError
from postyard.topology import SCHEMA_GROUP, TOPOLOGIES, is_clustered
from postyard.unit_health import report_failed_units

__all__ = ["main", "exposure_markdown"]


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def verify(target: Target) -> int:
    """Run the verification suite (tests/infra) against the target's inventory."""
    argv = [sys.executable, "-m", "pytest", "tests/infra", f"--inventory={target.inventory()}"]
    return subprocess.run(argv, cwd=REPO, env={**os.environ, **target.environment()}, check=False).returncode


def print_summary(target: Target) -> None:
    hosts = load_hosts(target.inventory())
    if not hosts:
        raise TargetError(f"no hosts in {target.inventory().name}: run `make up` first")
    say("deployed:")
    for host in hosts:
        ports = ", ".join(f"{row.port}/{row.protocol}" for row in host.exposures if row.public)
        print(f"    {host.name}  {host.address}")
        print(f"        groups: {', '.join(host.groups)}")
        print(f"        roles:  {', '.join(host.roles)}")
        print(f"        public: {ports}")
        print(f"        ssh:    {host.ssh_command()}")
        if host.outside_netns:
            print(f"        probe from outside: ip netns exec {host.outside_netns} <command>")


def _target(args: argparse.Namespace) -> Target:
    return make_target(args.target, args.testbed, args.project, args.environment, args.yes)


def cmd_up(args: argparse.Namespace) -> int:
    target = _target(args)
    started = time.monotonic()
    say(f"provisioning {args.topology} hosts on {target.name}")
    target.provision(args.topology, log=say)
    say("deploying")
    result = run_deploy(target.inventory(), env=target.environment(), log_path=target.log_dir() / "deploy.log")
    say(f"deploy: {result.changed} of {result.operations} operations changed in {result.seconds:.1f} s")
    status = 0
    if not args.no_verify:
        say("verifying (tests/infra)")
        status = verify(target)
        say("verification passed" if status == 0 else "verification FAILED")
    print_summary(target)
    access_summary(load_hosts(target.inventory()), args.project or "postyard",
                   target.trust_anchor(), say=say)
    say(f"done in {time.monotonic() - started:.0f} s; remove with `make down`")
    return status


def cmd_down(args: argparse.Namespace) -> int:
    _target(args).teardown(log=say)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    target = _target(args)
    result = run_deploy(target.inventory(), env=target.environment(), log_path=target.log_dir() / "deploy.log")
    say(f"deploy: {result.changed} of {result.operations} operations changed in {result.seconds:.1f} s")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    return verify(_target(args))


def cmd_status(args: argparse.Namespace) -> int:
    """Where things are; with --units, each host's failed units too (exit status 1 when there are any)."""
    target = _target(args)
    print_summary(target)
    return report_failed_units(load_hosts(target.inventory())) if args.units else 0


def _db_hosts(target: Target):
    return [h for h in load_hosts(target.inventory()) if "db" in h.groups]


def _db_host(target: Target, name: str | None):
    hosts = _db_hosts(target)
    chosen = [h for h in hosts if name in (None, h.name, h.fqdn)]
    if len(chosen) != 1:
        names = ", ".join(h.name for h in hosts) or "none"
        raise TargetError(f"name one db host with --host (db hosts: {names})")
    return chosen[0]


def cmd_backups(args: argparse.Namespace) -> int:
    for path in list_backups(_db_host(_target(args), args.host)):
        print(path)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    target = _target(args)
    members = _db_hosts(target)
    if args.to and is_clustered(len(members)):
        asides = restore_cluster_to(members, parse_target_time(args.to), say)
        say("restored; once it is checked, remove the data directories it replaced: "
            + ", ".join(f"rm -r {aside} (on {name})" for name, aside in asides.items()))
        return 0
    host = _db_host(target, args.host)
    if args.to:
        aside = restore_to(host, parse_target_time(args.to), say)
        say(f"restored; once it is checked, remove the cluster it replaced: rm -r {aside} (on {host.name})")
        return 0
    backup = args.backup
    if backup == "latest":
        found = list_backups(host)
        if not found:
            raise TargetError(f"{host.name} has no backups yet")
        backup = found[-1]
    say(f"restoring {backup} into database {args.database} on {host.name}")
    restore_backup(host, backup, args.database)
    say("restored")
    return 0


def cmd_backup_key(args: argparse.Namespace) -> int:
    """The public key to authorise on the backup remote (a Storage Box's authorized_keys)."""
    host = _db_host(_target(args), args.host)
    print(backup_public_key(host.secrets()))
    return 0


def cmd_admin(args: argparse.Namespace) -> int:
    """`postyard-api admin ...` on the schema host (the one with the owner's credential), over SSH."""
    command = args.admin_args[1:] if args.admin_args[:1] == ["--"] else args.admin_args
    if not command:
        raise TargetError("name an admin command, e.g. `admin teams` (`admin -- --help` lists them)")
    hosts = sorted((h for h in load_hosts(_target(args).inventory()) if SCHEMA_GROUP in h.groups),
                   key=lambda h: h.name)
    if not hosts:
        raise TargetError(f"no {SCHEMA_GROUP} host in this inventory: run `make up` first")
    print(ssh_run(hosts[0], ["postyard-api", "admin", *command], timeout=120), end="")
    return 0


def exposure_markdown() -> str:
    """The exposure table for humans (the README embeds this output)."""
    lines = ["| port | service | groups | reachable from | notes |", "|---|---|---|---|---|"]
    for row in EXPOSURE:
        clients = " and ".join(filter(None, (", ".join(row.clients[:-1]), row.clients[-1] if row.clients else "")))
        reach = "public" if row.public else f"private network, from {clients} hosts"
        if row.enabled_by:
            reach += f" (only with `{row.enabled_by}`)"
        lines.append(
            f"| {row.port}/{row.protocol} | {row.service} | {', '.join(row.groups)} | {reach} | {row.summary} |"
        )
    return "\n".join(lines) + "\n"


def cmd_exposure(args: argparse.Namespace) -> int:
    print(exposure_markdown(), end="")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="postyard", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        command.set_defaults(handler=handler)
        command.add_argument("--target", choices=("testbed", "hetzner"), default="testbed")
        command.add_argument("--testbed", default="main", help="testbed name (1-6 letters/digits)")
        command.add_argument("--project", help="hetzner: the postyard-project label (default postyard)")
        command.add_argument("--environment", help="hetzner: the postyard-environment label (default production)")
        command.add_argument("--yes", action="store_true", help="down: delete without asking")
        return command

    up = add("up", cmd_up, "provision hosts, deploy, verify, print where things are")
    up.add_argument("--topology", choices=sorted(TOPOLOGIES), default="single")
    up.add_argument("--no-verify", action="store_true", help="skip the verification suite")
    add("down", cmd_down, "remove the hosts and everything created for them")
    add("deploy", cmd_deploy, "deploy to hosts that are already up")
    add("verify", cmd_verify, "run the verification suite against the hosts")
    status = add("status", cmd_status, "print where things are")
    status.add_argument("--units", action="store_true",
                        help="also ask each host over SSH which systemd units have failed (exit 1 if any)")
    backups = add("backups", cmd_backups, "list the encrypted database backups")
    backups.add_argument("--host", help="the db host (needed when there are several)")
    restore = add("restore", cmd_restore, "restore the cluster to a point in time, or a dump into a new database")
    restore.add_argument("--host", help="the db host (needed when there are several)")
    into = restore.add_mutually_exclusive_group(required=True)
    into.add_argument("--to", metavar="TIME",
                      help="replace the cluster with its state at this ISO 8601 time (2026-12-01T14:03:00Z)")
    into.add_argument("--database", help="restore a dump into a new database of this name")
    restore.add_argument("--backup", default="latest", help="with --database: a path from `backups`, or latest")
    backup_key = add("backup-key", cmd_backup_key, "print the SSH key to authorise on the backup remote")
    backup_key.add_argument("--host", help="the db host (needed when there are several)")
    admin = add("admin", cmd_admin, "an operator command on the API host: teams, suspend, resume, approve, "
                                    "set-quota, invite-team, create-operator... (postyard-api admin --help)")
    admin.add_argument("admin_args", nargs=argparse.REMAINDER, help="the command and its arguments")
    exposure = sub.add_parser("exposure", help="print the exposure table as Markdown")
    exposure.set_defaults(handler=cmd_exposure)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if hasattr(args, "target"):
            # inventory files read their settings from the environment, here and in pyinfra
            os.environ.update(_target(args).environment())
        return args.handler(args)
    except (TargetError, CommandError, DeployError, SshError, ValueError) as error:
        print(f"postyard: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("postyard: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
