"""The webhook SSRF guard: every special-purpose address form is refused, public addresses pass."""

from __future__ import annotations

import ipaddress

import pytest

from app.domain.webhooks.ssrf import SPECIAL_PURPOSE, UnsafeUrl, is_public_address, special_purpose, vet_url

REFUSED = {
    "64:ff9b::a9fe:a9fe": "NAT64",  # 169.254.169.254, the metadata service, through NAT64
    "64:ff9b::5db8:d70e": "NAT64",  # even a public IPv4 address: translation forms are refused outright
    "64:ff9b:1::a00:1": "translation",
    "::a9fe:a9fe": "IPv4-compatible",
    "::127.0.0.1": "IPv4-compatible",
    "::ffff:127.0.0.1": "IPv4-mapped",
    "::ffff:169.254.169.254": "IPv4-mapped",
    "::ffff:93.184.215.14": "IPv4-mapped",
    "::ffff:0:a00:1": "IPv4-translated",
    "2002:a9fe:a9fe::1": "6to4",
    "2002:7f00:1::": "6to4",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo",
    "2001:db8::1": "documentation",
    "3fff::1": "documentation",
    "fec0::1": "site-local",
    "fd00:ec2::254": "unique local",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "ff02::1": "multicast",
    "::": "unspecified",
    "::1": "loopback",
    "100::1": "discard",
    "5f00::1": "SRv6",
    "4000::1": "global unicast",
    "2620:4f:8000::53": "AS112",
    "0.0.0.0": "this network",
    "10.1.2.3": "private",
    "100.64.0.1": "carrier-grade NAT",
    "127.0.0.1": "loopback",
    "169.254.169.254": "metadata",
    "172.16.0.1": "private",
    "192.0.0.170": "IETF protocol assignments",
    "192.0.2.1": "TEST-NET-1",
    "192.31.196.1": "AS112",
    "192.52.193.1": "AMT",
    "192.88.99.1": "6to4 relay",
    "192.168.1.1": "private",
    "192.175.48.1": "AS112",
    "198.18.0.1": "benchmarking",
    "198.51.100.1": "TEST-NET-2",
    "203.0.113.1": "TEST-NET-3",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "broadcast",
}
PUBLIC = ("93.184.215.14", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "2a01:4f8:c17:1::1", "2001:4860:4860::8888")


@pytest.mark.parametrize("address,form", REFUSED.items())
def test_a_special_purpose_address_is_not_public(address, form):
    assert not is_public_address(address) and special_purpose(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_a_global_unicast_address_is_public(address):
    assert is_public_address(address)


@pytest.mark.parametrize("address,form", REFUSED.items())
async def test_a_url_with_a_special_purpose_literal_is_refused(address, form):
    literal = f"[{address.replace('%', '%25')}]" if ":" in address else address
    with pytest.raises(UnsafeUrl, match="non-public|does not resolve"):
        await vet_url(f"https://{literal}:8443/hook", timeout=1)


@pytest.mark.parametrize("network", SPECIAL_PURPOSE, ids=str)
def test_every_row_of_the_table_refuses_its_first_and_last_address(network):
    assert special_purpose(str(network[0])) and special_purpose(str(network[-1]))


async def test_a_public_literal_is_pinned_to_itself():
    vetted = await vet_url("https://93.184.215.14/hook", timeout=1)
    assert vetted.address == "93.184.215.14" and vetted.pinned_url == "https://93.184.215.14:443/hook"


async def test_an_exempt_network_admits_only_its_own_addresses():
    exempt = (ipaddress.ip_network("10.77.0.200/32"),)
    vetted = await vet_url("http://10.77.0.200:8080/hook", exempt, timeout=1)
    assert vetted.address == "10.77.0.200"
    for literal in ("10.77.0.201", "127.0.0.1", "[64:ff9b::a4d:c8]", "[::ffff:10.77.0.200]"):
        with pytest.raises(UnsafeUrl, match="non-public"):
            await vet_url(f"http://{literal}:8080/hook", exempt, timeout=1)
