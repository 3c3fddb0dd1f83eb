"""The clustered database's configuration, as the roles build it."""

from __future__ import annotations

from roles import patroni, postgresql
from roles.support.scram import scram_verifier

MEMBERS = [("db1.example.net", "10.0.1.2"), ("db2.example.net", "10.0.1.3"), ("db3.example.net", "10.0.1.4")]
PASSWORDS = {"superuser": "su", "replication": "rep", "rewind": "rw", "rest": "api"}


def config() -> dict:
    settings = postgresql.server_settings(100, postgresql.memory_settings(4096, 100))
    return patroni.patroni_config("db1.example.net", "10.0.1.2", MEMBERS, settings, ["local all postgres peer"],
                                  PASSWORDS)


def test_replication_is_synchronous_and_over_verified_tls():
    built = config()
    assert built["bootstrap"]["dcs"]["synchronous_mode"] is True
    for kind in ("replication", "rewind"):
        assert built["postgresql"]["authentication"][kind]["sslmode"] == "verify-full"
    assert built["etcd3"]["protocol"] == "https"
    assert built["etcd3"]["hosts"] == ["10.0.1.2:2379", "10.0.1.3:2379", "10.0.1.4:2379"]


def test_cluster_wide_settings_go_to_etcd_and_the_rest_stay_with_the_member():
    built = config()
    assert built["bootstrap"]["dcs"]["postgresql"]["parameters"]["max_connections"] == 100
    assert "max_connections" not in built["postgresql"]["parameters"]
    assert built["postgresql"]["parameters"]["ssl"] == "on"
    assert built["postgresql"]["parameters"]["password_encryption"] == "scram-sha-256"


def test_only_the_cluster_debians_package_just_made_is_dropped():
    assert patroni.after_install(["postgresql", "patroni"]) == ["pg_dropcluster --stop 15 main"]
    assert patroni.after_install(["patroni", "etcd-server"]) == []


def test_the_setup_hands_over_verifiers_and_marks_what_it_applied():
    verifiers = {role.name: scram_verifier(f"password-of-{role.name}", b"0123456789abcdef")
                 for role in postgresql.DATABASE_ROLES}
    sql, mark = patroni.setup_sql("postyard", verifiers)
    assert "password-of-" not in sql
    assert all(verifier in sql for verifier in verifiers.values())
    assert sql.rstrip().endswith(f"IS '{mark}';")
    changed = patroni.setup_sql("postyard", {**verifiers, "postyard_app": "SCRAM-SHA-256$other"})[1]
    assert changed != mark
