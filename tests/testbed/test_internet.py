"""The testbed's internet: the platform hosts resolve through its DNS, which takes signed updates."""

from __future__ import annotations

import secrets

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import pytest

from postyard.remote import ssh_run
from postyard.secrets import SecretStore
from postyard.testbed import internet


@pytest.fixture(scope="module")
def dns_server(split_testbed):
    net = split_testbed.internet_host
    secret = internet.tsig_secret(SecretStore(split_testbed.directory / "secrets"))
    return net.public_address, secret


def resolve(host, name: str) -> str:
    return ssh_run(host, ["sh", "-c", f"getent hosts {name} | cut -d' ' -f1"]).strip()


def test_platform_hosts_resolve_each_other_through_the_testbed_dns(session_hosts):
    assert resolve(session_hosts["api1"], "db1.postyard.test") == session_hosts["db1"].address


def test_remote_test_has_an_mx_on_the_internet_host(dns_server):
    address, _ = dns_server
    answer = dns.query.udp(dns.message.make_query("remote.test.", dns.rdatatype.MX), address, timeout=5)
    assert [str(r.exchange) for rrset in answer.answer for r in rrset] == ["mx.remote.test."]


def test_a_signed_update_is_visible_to_the_platform_hosts(dns_server, session_hosts):
    address, secret = dns_server
    name = f"probe-{secrets.token_hex(4)}.example"
    internet.update(address, secret, name, "A", ["198.51.100.77"])
    try:
        assert resolve(session_hosts["mail1"], f"{name}.test") == "198.51.100.77"
    finally:
        internet.update(address, secret, name, "A", [])


def test_an_unsigned_update_is_refused(dns_server):
    address, _ = dns_server
    message = dns.update.UpdateMessage("test.")
    message.replace("intruder", 60, "A", "198.51.100.66")
    assert dns.query.tcp(message, address, timeout=5).rcode() == dns.rcode.REFUSED
