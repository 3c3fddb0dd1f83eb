"""The base role's promises, read back from each running host and probed from outside."""

from __future__ import annotations

import pytest

SSHD_POLICY = {
    "passwordauthentication": "no",
    "kbdinteractiveauthentication": "no",
    "permitemptypasswords": "no",
    "permitrootlogin": "without-password",
    "authenticationmethods": "publickey",
    "pubkeyauthentication": "yes",
    "x11forwarding": "no",
    "allowagentforwarding": "no",
    "permittunnel": "no",
    "maxauthtries": "3",
}

WEAK_SSH_CLIENT_OFFERS = [
    "Ciphers=aes128-cbc",
    "Ciphers=aes256-ctr",
    "KexAlgorithms=diffie-hellman-group14-sha1",
    "KexAlgorithms=ecdh-sha2-nistp256",
]


def test_host_name_is_the_inventory_name(host, infra_host):
    assert host.check_output("hostname --fqdn") == infra_host.fqdn


@pytest.mark.parametrize("unit", ["ssh.service", "apt-daily.timer", "apt-daily-upgrade.timer"])
def test_unit_is_running_and_enabled(host, unit):
    service = host.service(unit)
    assert service.is_enabled
    assert service.is_running


def test_time_sync_is_enabled_and_runs_outside_containers(host, in_container):
    timesyncd = host.service("systemd-timesyncd")
    assert timesyncd.is_enabled
    # a container shares the machine's clock; systemd skips timesyncd there by design
    assert timesyncd.is_running or in_container


def test_unattended_upgrades_take_only_security_updates(host):
    assert host.package("unattended-upgrades").is_installed
    assert 'APT::Periodic::Unattended-Upgrade "1"' in host.check_output("apt-config dump APT::Periodic")
    origins = host.check_output("apt-config dump Unattended-Upgrade::Origins-Pattern").splitlines()
    patterns = [line for line in origins if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
    assert patterns
    assert all("label=Debian-Security" in line for line in patterns)


def test_journald_disk_use_is_bounded(host):
    config = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "SystemMaxUse=" in config
    assert "MaxRetentionSec=" in config


@pytest.mark.parametrize("setting, expected", sorted(SSHD_POLICY.items()))
def test_sshd_effective_setting(host, setting, expected):
    effective = dict(
        line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line
    )
    assert effective[setting] == expected


def test_sshd_offers_only_public_key_auth_from_outside(outside, infra_host):
    assert outside.ssh_auth_methods(infra_host.address) == ["publickey"]


@pytest.mark.parametrize("client_offer", WEAK_SSH_CLIENT_OFFERS)
def test_sshd_refuses_weak_algorithms_from_outside(outside, infra_host, client_offer):
    attempt = outside.ssh_handshake(infra_host.address, client_offer)
    assert attempt.returncode != 0
    assert "no matching" in attempt.stderr
