"""Point-in-time recovery of a clustered database: the members archive WAL to the repository host, which takes the
backups through their TLS servers, holds the only passphrase, and keeps the repository encrypted."""

from __future__ import annotations

import json
import time

import pytest

from roles.pgbackrest import BACKUP_KINDS, CONFIG, SERVER_PORT, SERVER_UNIT, STANZA, TLS_SERVICE
from roles.support.inventory_secrets import INTERNAL_CA_PATH, internal_certificate_path, internal_key_path
from tests.infra.pitr_checks import ENCRYPTED_HEADER, REPOSITORY, pgbackrest, repository_heads

# The repository host creates the stanza and takes the first full backup once the members answer, trying again
# every 10 s (roles/pgbackrest_repository.py): after a fresh deploy that can take a minute or two.
FIRST_BACKUP_WITHIN = 300


@pytest.fixture
def repository(pitr_repository):
    """The repository host, once its first full backup is done."""
    deadline = time.monotonic() + FIRST_BACKUP_WITHIN
    while True:
        found = pitr_repository.run(f"runuser -u postgres -- pgbackrest --stanza={STANZA} --output=json info")
        info = json.loads(found.stdout) if found.rc == 0 else []
        if info and "full" in {backup["type"] for backup in info[0].get("backup", [])}:
            return pitr_repository
        assert time.monotonic() < deadline, f"no full backup after {FIRST_BACKUP_WITHIN} s: {found.stdout}"
        time.sleep(5)


def settings(host) -> list[tuple[str, str]]:
    lines = host.check_output(f"cat {CONFIG}").splitlines()
    return [tuple(line.split("=", 1)) for line in lines if "=" in line and not line.startswith("#")]


def test_the_repository_host_checks_that_the_primarys_wal_reaches_it(repository):
    pgbackrest(repository, "check")  # fails unless a WAL switch on the primary reaches the repository


def test_every_member_archives_when_it_is_the_primary(pitr_member):
    assert pitr_member.check_output("runuser -u postgres -- psql -XAtc 'SHOW archive_mode'") == "on"
    command = pitr_member.check_output("runuser -u postgres -- psql -XAtc 'SHOW archive_command'")
    assert command == f"pgbackrest --stanza={STANZA} archive-push %p"


def test_the_repository_holds_a_full_backup_of_the_cluster(repository):
    info = json.loads(pgbackrest(repository, "--output=json", "info"))
    assert info[0]["status"]["code"] == 0, info[0]["status"]
    assert "full" in {backup["type"] for backup in info[0]["backup"]}


def test_a_member_reads_the_repository_through_the_repository_hosts_server(repository, pitr_member):
    info = json.loads(pgbackrest(pitr_member, "--output=json", "info"))
    assert info[0]["status"]["code"] == 0, info[0]["status"]


@pytest.mark.parametrize("kind", BACKUP_KINDS)
def test_backups_are_scheduled_on_the_repository_host(pitr_repository, kind):
    timer = pitr_repository.service(f"postyard-pitr-{kind}.timer")
    assert timer.is_enabled and timer.is_running


def test_the_repository_is_encrypted(repository):
    assert repository_heads(repository) == {ENCRYPTED_HEADER}


def test_only_the_repository_host_holds_the_passphrase(pitr_repository, pitr_member):
    assert "repo1-cipher-pass" in dict(settings(pitr_repository))
    assert "repo1-cipher-pass" not in dict(settings(pitr_member))
    config = pitr_repository.file(CONFIG)
    assert (config.user, config.mode) == ("postgres", 0o600)
    repository = pitr_repository.file(REPOSITORY)
    assert repository.user == "postgres" and repository.mode & 0o007 == 0


def test_each_tls_server_takes_only_the_other_side(pitr_repository, pitr_member, pitr_repository_host,
                                                    pitr_member_host, all_hosts):
    members = {h.fqdn for h in all_hosts if "pgbackrest_member" in h.roles
               and h.environment == pitr_member_host.environment}
    repository_clients = {value.split("=")[0] for key, value in settings(pitr_repository) if key == "tls-server-auth"}
    member_clients = {value.split("=")[0] for key, value in settings(pitr_member) if key == "tls-server-auth"}
    if pitr_member_host.environment == pitr_repository_host.environment:
        assert repository_clients == members
        assert member_clients == {pitr_repository_host.fqdn}
    assert pitr_repository.service(f"{SERVER_UNIT}.service").is_running
    assert pitr_member.service(f"{SERVER_UNIT}.service").is_running


def tls_handshake(client, server: str, certificate: str, key: str) -> str:
    """What OpenSSL's client sees of the server's answer to this client certificate (TLS 1.3 reports a refused
    certificate as an alert on the first read, so the client waits for the server to close)."""
    return client.run(f"timeout 10 openssl s_client -connect {server}:{SERVER_PORT} -servername {server} "
                      f"-CAfile {INTERNAL_CA_PATH} -verify_return_error -cert {certificate} -key {key} "
                      "-ign_eof </dev/null 2>&1").stdout


def test_a_members_server_refuses_a_certificate_the_internal_ca_did_not_sign(pitr_repository, pitr_member_host):
    """The repository host may reach a member's server; with a certificate of its own name that it signed itself,
    it gets no further than the handshake, while its own certificate passes it."""
    directory = pitr_repository.check_output("mktemp -d")
    try:
        pitr_repository.check_output(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=%s "
            f"-keyout {directory}/key.pem -out {directory}/cert.pem", pitr_repository.check_output("hostname -f"))
        forged = tls_handshake(pitr_repository, pitr_member_host.fqdn, f"{directory}/cert.pem",
                               f"{directory}/key.pem")
    finally:
        pitr_repository.run(f"rm -rf {directory}")
    own = tls_handshake(pitr_repository, pitr_member_host.fqdn, internal_certificate_path(TLS_SERVICE),
                        internal_key_path(TLS_SERVICE))
    assert "Verify return code: 0 (ok)" in own and "alert" not in own, own
    assert "alert unknown ca" in forged, forged
