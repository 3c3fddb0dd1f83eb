"""The testbed's internet: the platform hosts resolve through its DNS, which takes signed updates."""

from __future__ import annotations

import http.client
import json
import re
import secrets
import smtplib
import ssl
import time

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import pytest

from postyard.appliance_client import TestbedAppliance
from postyard.secrets import SecretStore
from postyard.ssh import ssh_run
from postyard.testbed import internet


@pytest.fixture(scope="module")
def dns_server(split_testbed):
    net = split_testbed.internet_host
    secret = internet.tsig_secret(SecretStore(split_testbed.directory / "secrets"))
    return net.public_address, secret


def resolve(host, name: str) -> str:
    return ssh_run(host, ["sh", "-c", f"getent hosts {name} | cut -d' ' -f1"]).strip()


def test_platform_hosts_resolve_each_other_through_the_testbed_dns(split_hosts):
    assert resolve(split_hosts["api1"], "db1.postyard.test") == split_hosts["db1"].address


def test_remote_test_has_an_mx_on_the_internet_host(dns_server):
    address, _ = dns_server
    answer = dns.query.udp(dns.message.make_query("remote.test.", dns.rdatatype.MX), address, timeout=5)
    assert [str(r.exchange) for rrset in answer.answer for r in rrset] == ["mx.remote.test."]


def test_a_signed_update_is_visible_to_the_platform_hosts(dns_server, split_hosts):
    address, secret = dns_server
    name = f"probe-{secrets.token_hex(4)}.example"
    internet.update(address, secret, name, "A", ["198.51.100.77"])
    try:
        assert resolve(split_hosts["mail1"], f"{name}.test") == "198.51.100.77"
    finally:
        internet.update(address, secret, name, "A", [])


def test_an_unsigned_update_is_refused(dns_server):
    address, _ = dns_server
    message = dns.update.UpdateMessage("test.")
    message.replace("intruder", 60, "A", "198.51.100.66")
    assert dns.query.tcp(message, address, timeout=5).rcode() == dns.rcode.REFUSED


@pytest.fixture(scope="module")
def testbed_ca(split_testbed) -> str:
    return str(SecretStore(split_testbed.directory / "secrets").path("internal-ca.crt"))


def test_the_remote_mx_keeps_a_message_with_the_tls_parameters_of_its_connection(split_testbed, testbed_ca):
    net = split_testbed.internet_host
    subject = f"probe {secrets.token_hex(6)}"
    context = ssl.create_default_context(cafile=testbed_ca)
    with smtplib.SMTP(net.public_address, 25, timeout=10) as client:
        client.starttls(context=context)
        client.sendmail("probe@postyard.test", ["anyone@remote.test"],
                        f"From: probe@postyard.test\r\nTo: anyone@remote.test\r\nSubject: {subject}\r\n\r\nHi.\r\n")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        kept = [m for m in TestbedAppliance(split_testbed).received_messages() if subject.encode() in m]
        if kept:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the remote MX did not keep the message")
    assert re.search(rb"Received: from .*\(using TLSv1\.[23]", kept[0], re.DOTALL)


def test_the_remote_mx_relays_for_no_one(split_testbed):
    net = split_testbed.internet_host
    with smtplib.SMTP(net.public_address, 25, timeout=10) as client:
        client.ehlo("outside.test")
        client.mail("probe@postyard.test")
        code, reply = client.rcpt("someone@elsewhere.test")
    assert code == 554 and b"5.7.1" in reply


def test_the_acme_server_answers_its_directory_over_tls(split_testbed, testbed_ca):
    net = split_testbed.internet_host
    connection = http.client.HTTPSConnection(net.public_address, 14000, timeout=10,
                                             context=ssl.create_default_context(cafile=testbed_ca))
    try:
        connection.request("GET", "/dir")
        directory = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    assert {"newAccount", "newNonce", "newOrder"} <= set(directory)
