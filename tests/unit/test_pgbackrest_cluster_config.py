"""pgBackRest's configuration where the database is clustered: who may talk to whom, and where the passphrase is."""

from types import SimpleNamespace

from roles import pgbackrest
from roles.pgbackrest_member import archive_parameters, member_config
from roles.pgbackrest_repository import repository_config

DATA = SimpleNamespace(**pgbackrest.DEFAULTS)
MEMBERS = [("db1.example.net", "10.0.1.2"), ("db2.example.net", "10.0.1.3"), ("db3.example.net", "10.0.1.4")]
REPOSITORY = ("cache1.example.net", "10.0.1.9")


def settings(text: str) -> list[tuple[str, str]]:
    return [tuple(line.split("=", 1)) for line in text.splitlines() if "=" in line and not line.startswith("#")]


def test_a_member_pushes_to_the_repository_host_and_serves_it_alone():
    found = settings(member_config("10.0.1.2", REPOSITORY))
    assert ("repo1-host", "cache1.example.net") in found and ("repo1-host-type", "tls") in found
    assert ("tls-server-address", "10.0.1.2") in found
    assert [value for key, value in found if key == "tls-server-auth"] == ["cache1.example.net=postyard"]
    assert not [key for key, _ in found if key.startswith("repo1-cipher") or key == "repo1-path"]


def test_the_repository_holds_the_passphrase_reaches_every_member_and_serves_them_alone():
    found = settings(repository_config(DATA, "secret-passphrase", "10.0.1.9", MEMBERS))
    assert ("repo1-cipher-pass", "secret-passphrase") in found and ("repo1-cipher-type", "aes-256-cbc") in found
    assert [value for key, value in found if key.endswith("-host")] == [name for name, _ in MEMBERS]
    assert {value for key, value in found if key.endswith("-host-type")} == {"tls"}
    assert [value for key, value in found if key == "tls-server-auth"] == [f"{name}=postyard" for name, _ in MEMBERS]


def test_the_members_archive_with_the_single_hosts_command():
    assert archive_parameters(DATA) == {"archive_mode": "on", "archive_command": pgbackrest.ARCHIVE_COMMAND,
                                        "archive_timeout": DATA.pitr_archive_timeout}
