"""A clustered database: the members under Patroni, one primary with a synchronous standby, etcd healthy and
closed to a client without a certificate, TLS 1.2 at least on both, and every host's HAProxy sending its
connections to the primary."""

from __future__ import annotations

import json

import pytest

from roles.etcd import CLIENT_PORT, PEER_PORT
from roles.patroni import CONFIG, REST_PORT, SCOPE
from roles.support.inventory_secrets import INTERNAL_CA_PATH, internal_certificate_path, internal_key_path

ETCDCTL = f"etcdctl --endpoints=https://127.0.0.1:{CLIENT_PORT} --cacert={INTERNAL_CA_PATH}"
CERTIFICATE, KEY = internal_certificate_path("etcd"), internal_key_path("etcd")


def test_one_leader_and_a_synchronous_standby_all_running(patroni, all_hosts):
    members = json.loads(patroni.check_output(f"patronictl -c {CONFIG} list -f json"))
    assert len(members) == sum("patroni" in h.roles for h in all_hosts), members
    roles = [member["Role"] for member in members]
    assert roles.count("Leader") == 1 and roles.count("Sync Standby") == 1, members
    assert all(member["State"] in ("running", "streaming") for member in members), members


def test_patronictl_reaches_every_members_rest_api_over_verified_tls(patroni, all_hosts):
    # a switchover or a restart goes through the members' REST API, which patronictl verifies as any client
    # would; `version` asks each member the same way, and changes nothing
    asked = patroni.run(f"patronictl -c {CONFIG} version {SCOPE}")
    answers = [line for line in asked.stdout.splitlines() if ": Patroni " in line]
    assert asked.rc == 0 and "failed" not in asked.stdout + asked.stderr, asked.stdout + asked.stderr
    assert len(answers) == sum("patroni" in h.roles for h in all_hosts), asked.stdout


def test_etcd_is_healthy_and_refuses_a_client_without_a_certificate(patroni, all_hosts):
    healthy = patroni.run(f"{ETCDCTL} --cert={CERTIFICATE} --key={KEY} endpoint health --cluster")
    assert healthy.rc == 0, healthy.stderr
    assert (healthy.stdout + healthy.stderr).count("is healthy") == sum("etcd" in h.roles for h in all_hosts)
    assert patroni.run(f"{ETCDCTL} --command-timeout=3s endpoint health").rc != 0


@pytest.mark.parametrize("port", [CLIENT_PORT, PEER_PORT, REST_PORT])
def test_tls_below_1_2_is_refused(patroni, patroni_host, port):
    def handshake(version: str) -> int:
        return patroni.run(f"timeout 5 openssl s_client -brief -{version} -CAfile {INTERNAL_CA_PATH}"
                           f" -verify_return_error -cert {CERTIFICATE} -key {KEY}"
                           f" -connect {patroni_host.private_address}:{port} </dev/null").rc
    assert handshake("tls1_1") != 0
    assert handshake("tls1_2") == 0


def test_each_host_reaches_the_primary_through_its_haproxy(router):
    url = json.loads(router.check_output("cat /etc/postyard/host-report.json"))["database_url"]
    answer = router.check_output(f"PGSSLROOTCERT={INTERNAL_CA_PATH} psql %s -XAtc 'SELECT pg_is_in_recovery()'", url)
    assert answer == "f"
