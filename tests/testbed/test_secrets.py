"""Generated secrets stay where they belong: 0600 files outside the repository, in no log."""

from __future__ import annotations

import stat

import pytest

from postyard.deployer import REPO
from postyard.secrets import SecretStore
from postyard.testbed.hosts import hosts_of_testbed
from postyard.testbed.state import testbed_dir as bed_directory
from postyard.testbed.suites import SESSION_TESTBEDS


@pytest.fixture(scope="module")
def secret_files(each_testbed):
    files = sorted({path for host in hosts_of_testbed(each_testbed.name).values()
                    for path in SecretStore(host.secrets_dir).directory.iterdir()})
    assert files
    return files


def test_secret_files_are_private_and_outside_the_repository(secret_files):
    for path in secret_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
        assert not path.resolve().is_relative_to(REPO)


def test_no_secret_appears_in_the_deploy_log(secret_files):
    log = (bed_directory(next(iter(SESSION_TESTBEDS))) / "deploy.log").read_text()
    assert "Grand total" in log
    for path in secret_files:
        for line in path.read_text().splitlines():
            if len(line) >= 16 and not line.startswith(("-----", "#")):
                assert line not in log, f"a line of {path.name} is in the deploy log"
