"""Encrypted backups: written by the nightly service, unreadable on the host, restorable."""

from __future__ import annotations

import pytest

from postyard.appliance_client import TestbedAppliance
from postyard.backup import backup_public_key, list_backups, restore_backup
from postyard.deployer import run_deploy
from postyard.ssh import ssh_run
from postyard.testbed.hosts import TESTBED_INVENTORY
from roles.pgbackrest import DEFAULTS as PITR_DEFAULTS
from roles.pgbackrest import MIRROR_UNIT, STANZA

ROWS = 1234
REPOSITORY = PITR_DEFAULTS["pitr_repository"]


def psql(host, query: str, database: str = "postyard") -> str:
    return ssh_run(host, ["runuser", "-u", "postgres", "--", "psql", "-XAtc", query, database]).strip()


@pytest.fixture
def node(single_hosts):
    host = single_hosts["node1"]
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
    found = ssh_run(node, ["sh", "-c", "grep -rl AGE-SECRET-KEY /etc /var/backups /root /var/lib/postgresql "
                                       "2>/dev/null || true"])
    assert found.strip() == ""


@pytest.fixture
def remote_box(single_hosts, single_testbed):
    """The one-host testbed's internet host stands in for a Storage Box: an SSH server with rsync that node1, its
    db host, copies backups to."""
    box, db = TestbedAppliance(single_testbed).target(single_testbed.internet_host), single_hosts["node1"]
    ssh_run(box, ["mkdir", "-p", "/var/backups/remote"])
    host_key = next(line for line in single_testbed.known_hosts.read_text().splitlines()
                    if line.startswith(f"{box.address} "))
    overrides = {
        "backup_remote": f"root@{box.address}:/var/backups/remote",
        "backup_remote_port": "22",
        "backup_remote_host_key": host_key,
    }
    env = {"POSTYARD_TESTBED": single_testbed.name}  # the other testbed's suites run meanwhile: leave it be
    run_deploy(TESTBED_INVENTORY, env=env, echo=False, data=overrides)
    authorised = backup_public_key(db.secrets())
    ssh_run(box, ["sh", "-c", f"echo '{authorised}' >> /root/.ssh/authorized_keys"])
    yield box, db
    # the mirror goes first: its timer would otherwise fail against a box that no longer takes it
    run_deploy(TESTBED_INVENTORY, env=env, echo=False)
    ssh_run(box, ["sh", "-c", "sed -i '/postyard-backup$/d' /root/.ssh/authorized_keys; rm -rf /var/backups/remote"])


def test_backup_is_copied_off_the_host_encrypted(remote_box):
    box, db = remote_box
    ssh_run(db, ["systemctl", "start", "postyard-backup.service"])
    copied = ssh_run(box, ["find", "/var/backups/remote", "-name", "*.dump.age"]).split()
    assert copied
    assert ssh_run(box, ["head", "-c", "21", copied[-1]]) == "age-encryption.org/v1"
    # nothing but the encrypted dumps (and the repository's mirror, whose timer may have run since the deploy)
    listed = set(ssh_run(box, ["ls", "/var/backups/remote"]).split()) - {"pgbackrest"}
    assert listed == {path.rsplit("/", 1)[1] for path in copied}


def test_the_point_in_time_repository_is_mirrored_off_the_host_encrypted(remote_box):
    box, db = remote_box
    listing = ["find", REPOSITORY, "-type", "f", "-printf", "%P\\n"]
    before = set(ssh_run(db, listing).split())
    ssh_run(db, ["systemctl", "start", f"{MIRROR_UNIT}.service"])
    mirror = "/var/backups/remote/pgbackrest"
    assert ssh_run(box, ["test", "-e", f"{mirror}/backup/{STANZA}/backup.info"]) == ""
    copied = set(ssh_run(box, ["find", mirror, "-type", "f", "-printf", "%P\\n"]).split())
    after = set(ssh_run(db, listing).split())
    # WAL goes on being archived meanwhile: everything there before the run was copied, and nothing else came
    # but what was archived meanwhile (or was on its way into place, under a temporary name)
    assert before and before <= copied
    assert {name for name in copied - before - after if not name.endswith(".tmp")} == set()
    heads = ssh_run(box, ["sh", "-c", f"find {mirror} -type f -exec head -c 8 {{}} \\; -exec echo \\;"]).split()
    assert set(heads) == {"Salted__"}
