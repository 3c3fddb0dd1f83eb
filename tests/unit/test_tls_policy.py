"""The one TLS policy: TLS 1.2 at least, ECDHE with AEAD for 1.2, and every server's configuration says so."""

from __future__ import annotations

import ssl
from types import SimpleNamespace

from app import tls_policy
from roles import dovecot, postfix, redis
from tests.unit.test_templates import CERTIFICATE, render


def test_the_lowest_version_is_tls_1_2_and_tls_1_3_is_on():
    versions = [ssl.TLSVersion[name.replace(".", "_")] for name in tls_policy.PROTOCOLS]
    assert versions == [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]
    assert tls_policy.MIN_PROTOCOL == tls_policy.PROTOCOLS[0]


def test_tls_1_2_suites_are_ecdhe_with_aead_only_in_both_spellings():
    for ciphers in (tls_policy.TLS12_CIPHERS, tls_policy.TLS12_CIPHER_CLASSES):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_ciphers(ciphers)
        tls12 = [c for c in context.get_ciphers() if c["protocol"] == tls_policy.MIN_PROTOCOL]
        assert tls12 and all(c["kea"] == "kx-ecdhe" and c["aead"] for c in tls12), tls12


def test_a_scan_finding_passes_only_for_ecdhe_with_aead():
    assert tls_policy.is_policy_tls12_suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    assert tls_policy.is_policy_tls12_suite("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256")
    for refused in ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256",
                    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDH_anon_WITH_AES_128_CBC_SHA"):
        assert not tls_policy.is_policy_tls12_suite(refused), refused


def test_every_server_configuration_enforces_the_policy():
    main = render("postfix/main.cf.j2").splitlines()
    for setting in ("smtpd_tls_protocols", "smtpd_tls_mandatory_protocols", "smtp_tls_protocols",
                    "smtp_tls_mandatory_protocols"):
        assert f"{setting} = >={tls_policy.MIN_PROTOCOL}" in main, setting
    assert f"tls_high_cipherlist = {tls_policy.TLS12_CIPHERS}" in main
    data = SimpleNamespace(**postfix.DEFAULTS, **dovecot.DEFAULTS)
    conf = render("dovecot/dovecot.conf.j2", dovecot.dovecot_context(data, *CERTIFICATE)).splitlines()
    assert f"ssl_min_protocol = {tls_policy.MIN_PROTOCOL}" in conf
    assert f"ssl_cipher_list = {tls_policy.TLS12_CIPHERS}" in conf
    pg = render("postgresql/postyard.conf.j2").splitlines()
    assert f"ssl_min_protocol_version = '{tls_policy.MIN_PROTOCOL}'" in pg
    assert f"ssl_ciphers = '{tls_policy.TLS12_CIPHER_CLASSES}'" in pg
    cache = render("redis/redis.conf.j2", redis.config_context(SimpleNamespace(**redis.DEFAULTS), ["127.0.0.1"], True))
    assert f'tls-protocols "{" ".join(tls_policy.PROTOCOLS)}"' in cache.splitlines()
    assert f"tls-ciphers {tls_policy.TLS12_CIPHER_CLASSES}" in cache.splitlines()
