"""The one SSH runner: what it asks OpenSSH for, and the one error it raises (an `ssh` on PATH plays the host)."""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

import pytest

from postyard.appliance_client import publish_records, record_rdata
from postyard.ssh import SshError, SshTarget, ssh_argv, ssh_run
from postyard.testbed import internet

TARGET = SshTarget("node1.postyard.test", "10.77.0.10", "root", "/keys/id", "/keys/known_hosts")


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `ssh` that runs the remote command line here with sh, and logs its own arguments."""
    log = tmp_path / "argv"
    fake = tmp_path / "bin" / "ssh"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\nfor last; do :; done\nexec sh -c "$last"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    return log


def test_the_runner_never_prompts_and_checks_the_host_key_strictly_with_the_targets_key():
    argv = ssh_argv(TARGET, "true")
    assert argv[:3] == ["ssh", "-o", "BatchMode=yes"] and argv[-2:] == ["root@10.77.0.10", "true"]
    assert "StrictHostKeyChecking=yes" in argv and "UserKnownHostsFile=/keys/known_hosts" in argv
    assert argv[argv.index("-i") + 1] == "/keys/id"


def test_extra_client_options_come_before_the_login():
    argv = ssh_argv(SshTarget("probe", "192.0.2.1"), "true", "PubkeyAuthentication=no")
    assert argv[3:5] == ["-o", "PubkeyAuthentication=no"] and "-i" not in argv


def test_a_list_is_quoted_into_one_remote_command_line(host):
    assert ssh_run(TARGET, ["printf", "%s|", "two words", "$HOME"]) == "two words|$HOME|"
    assert host.read_text().splitlines()[-1] == shlex.join(["printf", "%s|", "two words", "$HOME"])


def test_a_string_is_a_shell_line_and_input_reaches_its_stdin(host):
    assert ssh_run(TARGET, "tr a-z A-Z && echo done", input="hello\n") == "HELLO\ndone\n"


def test_a_failed_command_raises_one_error_naming_host_command_status_and_stderr(host):
    with pytest.raises(SshError) as raised:
        ssh_run(TARGET, ["sh", "-c", "echo broken >&2; exit 3"])
    error = raised.value
    assert (error.host, error.status, error.stderr.strip()) == ("node1.postyard.test", 3, "broken")
    assert error.command == shlex.join(["sh", "-c", "echo broken >&2; exit 3"])
    assert str(error).startswith("node1.postyard.test: `sh -c") and "exited 3: broken" in str(error)


def test_a_command_that_outlives_its_timeout_raises_the_same_error_without_a_status(host):
    with pytest.raises(SshError) as raised:
        ssh_run(TARGET, "sleep 5", timeout=0.3)
    assert raised.value.status is None and "timed out" in str(raised.value)


@pytest.mark.parametrize("record,rdata", [
    ({"type": "MX", "value": "feedback.example.com", "priority": 10}, "10 feedback.example.com."),
    ({"type": "CNAME", "value": "target.example.com"}, "target.example.com."),
    ({"type": "TXT", "value": "v=spf1 -all"}, '"v=spf1 -all"'),
])
def test_a_listed_record_becomes_zone_file_record_data(record, rdata):
    assert record_rdata(record) == rdata


def test_a_name_with_several_records_of_one_type_is_published_once_with_all_of_them(monkeypatch):
    updates: list[tuple[str, str, list[str]]] = []
    monkeypatch.setattr(internet, "update", lambda address, secret, name, rdtype, values: updates.append(
        (name, rdtype, values)))
    spf = "v=spf1 a:mail1.postyard.test a:mail2.postyard.test -all"
    publish_records("192.0.2.53", "secret", [
        {"name": "send.example.test", "type": "MX", "value": "mail1.postyard.test", "priority": 10},
        {"name": "send.example.test", "type": "MX", "value": "mail2.postyard.test", "priority": 10},
        {"name": "send.example.test", "type": "TXT", "value": spf},
    ])
    assert updates == [
        ("send.example.test.", "MX", ["10 mail1.postyard.test.", "10 mail2.postyard.test."]),
        ("send.example.test.", "TXT", [f'"{spf}"']),
    ]
