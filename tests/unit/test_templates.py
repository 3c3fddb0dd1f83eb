"""Every template renders with StrictUndefined from the context its role builds."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from app import tls_policy
from app.host_layout import (
    API_PROXY_SERVICE,
    API_SERVICE,
    DKIM_DIR,
    INTERNAL_LISTENER,
    POSTFIX_MAPS_DIR,
    WEBHOOKS_SERVICE,
)
from roles import (
    api,
    api_proxy,
    base,
    dovecot,
    etcd,
    firewall,
    host_report,
    load_balancer,
    mail_services,
    opendkim,
    pgbackrest,
    pgbackrest_repository,
    postfix,
    postgresql,
    postgresql_backup,
    postgresql_router,
    redis,
    tls,
)
from roles.support.database_client import DatabaseLogin
from roles.support.staging import JINJA_OPTIONS

REPO = Path(__file__).resolve().parents[2]
BASE_DATA = SimpleNamespace(**base.DEFAULTS)
REDIS_DATA = SimpleNamespace(**redis.DEFAULTS)
BACKUP_DATA = SimpleNamespace(**postgresql_backup.DEFAULTS)
PITR_DATA = SimpleNamespace(**pgbackrest.DEFAULTS)
MAIL_DATA = SimpleNamespace(**postfix.DEFAULTS, **dovecot.DEFAULTS, **opendkim.DEFAULTS)
MAIL_LOGIN = DatabaseLogin("10.0.1.2", "postyard", "postyard_mail", "mail-password")
CERTIFICATE = ("/etc/letsencrypt/live/postyard/fullchain.pem", "/etc/letsencrypt/live/postyard/privkey.pem")
# Formats without comments: nothing can say who manages them.
NO_COMMENTS = {"redis/users.acl.j2"}

CONTEXTS: dict[str, dict[str, Any]] = {
    "base/hosts.j2": base.hosts_context("db1.example.net", [("cache1.example.net", "10.0.1.9")]),
    "base/sshd_config.j2": base.sshd_context(BASE_DATA),
    "base/journald.conf.j2": base.journald_context(BASE_DATA),
    "base/timesyncd.conf.j2": {"servers": BASE_DATA.time_servers},
    "base/20auto-upgrades.j2": base.unattended_context(BASE_DATA),
    "base/52postyard-unattended-upgrades.j2": base.unattended_context(BASE_DATA),
    "firewall/nftables.conf.j2": firewall.firewall_context(
        ("mail", "db", "api"), ("base", "firewall", "postfix", "postgresql", "api"), {},
        {"api": ["10.0.1.3"], "mail": ["10.0.1.4"]}, "eth0", "enp7s0", ["198.51.100.7", "2001:db8::/32"],
    ),
    "postgresql/postyard.conf.j2": {
        "listen_addresses": ["127.0.0.1", "::1", "10.0.1.2"],
        "settings": postgresql.server_settings(100, postgresql.memory_settings(4096, 100)),
    },
    "postgresql/pg_hba.conf.j2": {
        "lines": postgresql.hba_lines(postgresql.hba_rules("postyard", {"api": ["10.0.1.3"], "mail": ["10.0.1.4"]})),
    },
    "load_balancer/haproxy.cfg.j2": load_balancer.balancer_context(
        [("api1.example.net", "10.0.1.3"), ("api2.example.net", "10.0.1.6")]),
    "api_proxy/haproxy.cfg.j2": api_proxy.proxy_context(
        "10.0.1.3", "api1.example.net", [("api1.example.net", "10.0.1.3"), ("api2.example.net", "10.0.1.6")]),
    "api_proxy/postyard-api-proxy.service.j2": api_proxy.unit_context(),
    "postgresql_router/haproxy.cfg.j2": postgresql_router.router_context(
        [("db1.example.net", "10.0.1.2"), ("db2.example.net", "10.0.1.5")]),
    "etcd/etcd.env.j2": etcd.config_context("db1.example.net", "10.0.1.2",
                                            [("db1.example.net", "10.0.1.2"), ("db2.example.net", "10.0.1.5")]),
    "redis/redis.conf.j2": redis.config_context(REDIS_DATA, ["127.0.0.1", "-::1", "10.0.1.2"], True),
    "redis/users.acl.j2": redis.acl_context("app-password", "admin-password"),
    "backup/postyard-backup.sh.j2": postgresql_backup.backup_context(BACKUP_DATA, "age1example"),
    "backup/postyard-backup.service.j2": postgresql_backup.backup_context(BACKUP_DATA, "age1example"),
    "backup/postyard-backup.timer.j2": postgresql_backup.backup_context(BACKUP_DATA, "age1example"),
    "pgbackrest/archiving.conf.j2": pgbackrest.archiving_context(PITR_DATA),
    "pgbackrest/backup.service.j2": pgbackrest.unit_context(PITR_DATA, "diff"),
    "pgbackrest/backup.timer.j2": pgbackrest.unit_context(PITR_DATA, "full"),
    "pgbackrest/stanza.service.j2": pgbackrest_repository.stanza_context("/var/lib/pgbackrest"),
    "pgbackrest/server.service.j2": pgbackrest.server_context("the members' WAL", "/var/lib/pgbackrest"),
    "pgbackrest/mirror.service.j2": pgbackrest.mirror_context(
        SimpleNamespace(**pgbackrest.DEFAULTS, **{**postgresql_backup.DEFAULTS, "backup_remote": "u1@box.example:p"})),
    "pgbackrest/mirror.timer.j2": pgbackrest.mirror_context(
        SimpleNamespace(**pgbackrest.DEFAULTS, **{**postgresql_backup.DEFAULTS, "backup_remote": "u1@box.example:p"})),
    "postfix/main.cf.j2": postfix.main_context(MAIL_DATA, "mail.example.net", *CERTIFICATE),
    "postfix/master.cf.j2": postfix.master_context(MAIL_DATA),
    "postfix/submission_header_cleanup.j2": {},
    "app/service.j2": {"unit": api.api_units(2)[0], "env_file": "/etc/postyard/app.env",
                       "release": "0123abcd"},
    "postfix/postyard-rate-policy.service.j2": postfix.policy_context(MAIL_DATA, "0123abcd"),
    "postfix/postyard-restart.conf.j2": postfix.restart_context(),
    "postfix/postyard-postfix-maps.service.j2": postfix.maps_reload_context(),
    "postfix/postyard-postfix-maps.path.j2": postfix.maps_path_context(),
    "host_report/postyard-host-report.service.j2": host_report.unit_context(),
    "dovecot/dovecot.conf.j2": dovecot.dovecot_context(MAIL_DATA, *CERTIFICATE),
    "dovecot/postyard-sql.conf.ext.j2": {"conninfo": MAIL_LOGIN.conninfo()},
    "dovecot/jail.local.j2": dovecot.jail_context(MAIL_DATA),
    "dovecot/postfix-filter.local.j2": dovecot.postfix_filter_context(),
    "opendkim/opendkim.conf.j2": {"log_success": False, "dkim_dir": DKIM_DIR,
                                  "instance": opendkim.INSTANCES[1]},
    "opendkim/postyard-opendkim.service.j2": {"instance": opendkim.INSTANCES[1]},
    "opendkim/sandbox.conf.j2": {"service_user": opendkim.SYNC_USER},
    "opendkim/dkim-sync.env.j2": opendkim.sync_env_context(MAIL_LOGIN.libpq_url(), "k1:AAAA"),
    "opendkim/postyard-dkim-sync.service.j2": {
        "env_file": "/etc/postyard/dkim-sync.env", "source": "/opt/postyard/src",
        "mailhost": "/opt/postyard/venv/bin/python -m app.mailhost", "dkim_dir": DKIM_DIR,
        "postfix_maps_dir": POSTFIX_MAPS_DIR,
        "release": "0123abcd", "service_user": opendkim.SYNC_USER,
    },
    "tls/deploy-hook.sh.j2": tls.hook_context(("mail", "api")),
    "tls/certbot-ca.conf.j2": tls.ca_drop_in_context(),
}
# Macros the other templates import, rendered only through them.
INCLUDES = {"systemd/sandbox.j2"}
TEMPLATES = sorted(str(p.relative_to(REPO / "templates")) for p in (REPO / "templates").rglob("*.j2")
                   if str(p.relative_to(REPO / "templates")) not in INCLUDES)


def render(name: str, context: dict[str, Any] | None = None) -> str:
    environment = Environment(
        loader=FileSystemLoader(REPO / "templates"), undefined=StrictUndefined,
        keep_trailing_newline=True, **JINJA_OPTIONS,
    )
    return environment.get_template(name).render(CONTEXTS[name] if context is None else context)


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_renders_with_strict_undefined(name):
    assert name in CONTEXTS, f"add a context for templates/{name} to this test"
    rendered = render(name)
    assert name in NO_COMMENTS or "Managed by postyard" in rendered
    assert "{{" not in rendered and "{%" not in rendered


def test_every_context_names_an_existing_template():
    assert set(CONTEXTS) <= set(TEMPLATES)


def test_sshd_config_allows_public_keys_only():
    lines = set(render("base/sshd_config.j2").splitlines())
    assert {"PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "AuthenticationMethods publickey"} <= lines


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="nft -c needs root and nftables")
def test_rendered_ruleset_passes_nft_check(tmp_path):
    ruleset = tmp_path / "nftables.conf"
    ruleset.write_text(render("firewall/nftables.conf.j2"))
    # checked in a throwaway network namespace: nothing is applied anywhere
    check = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(ruleset)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


def test_pg_hba_has_no_trust_or_md5_and_ends_in_reject():
    lines = [line for line in render("postgresql/pg_hba.conf.j2").splitlines() if line and line[0] != "#"]
    methods = [line.split()[-1] for line in lines]
    assert "trust" not in methods and "md5" not in methods
    assert all(line.startswith("hostssl") for line in lines if line.split()[-1] == "scram-sha-256")
    assert methods[-1] == "reject"


def test_redis_acl_disables_the_default_user_and_keeps_only_digests():
    acl = render("redis/users.acl.j2")
    assert acl.splitlines()[0].startswith("user default off")
    assert "app-password" not in acl and "admin-password" not in acl


def test_backup_copies_off_host_only_encrypted_files_when_a_remote_is_set():
    data = SimpleNamespace(**{**postgresql_backup.DEFAULTS, "backup_remote": "u1@box.example:postyard"})
    context = postgresql_backup.backup_context(data, "age1example")
    script = render("backup/postyard-backup.sh.j2", context)
    unit = render("backup/postyard-backup.service.j2", context)
    assert "--include='*.dump.age' --exclude='*'" in script
    assert "StrictHostKeyChecking=yes" in script and "-p 23" in script
    assert "\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\nRestrictNamespaces=yes\n" in unit


def test_backup_unit_stays_on_unix_sockets_without_a_remote():
    unit = render("backup/postyard-backup.service.j2")
    assert "\nRestrictAddressFamilies=AF_UNIX\nRestrictNamespaces=yes\n" in unit


def test_postfix_submission_requires_tls_auth_and_the_senders_own_domain():
    master = render("postfix/master.cf.j2")
    submission = master.split("\nsubmission inet")[1].split("\nsubmissions inet")[0]
    assert "-o smtpd_tls_security_level=encrypt" in submission
    assert "-o smtpd_tls_auth_only=yes" in submission
    assert "reject_sender_login_mismatch" in submission
    assert "-o smtpd_relay_restrictions=permit_sasl_authenticated,reject" in submission


def test_postfix_port_25_offers_no_auth_and_relays_nothing():
    main = render("postfix/main.cf.j2")
    assert "smtpd_sasl_auth_enable = no" in main
    assert "reject_unauth_destination" in main.split("smtpd_relay_restrictions = ")[1].splitlines()[0]
    assert "\nsmtp      inet  n       -       n       -       -       smtpd\n" in render("postfix/master.cf.j2")


def test_postfix_reads_its_routing_tables_from_the_syncs_local_cdb_maps():
    main = render("postfix/main.cf.j2")
    settings = dict(line.split(" = ", 1) for line in main.splitlines() if " = " in line and line[0] != "#")
    for parameter, name in postfix.MAP_PARAMETERS.items():
        assert settings[parameter] == f"cdb:{POSTFIX_MAPS_DIR}/{name}"
    assert "pgsql" not in main and "proxy:" not in main


def test_the_internal_listener_asks_no_table_about_recipients():
    master = render("postfix/master.cf.j2")
    internal = master.split(f"\n{INTERNAL_LISTENER} inet")[1].split("\n# ")[0].split("\npickup ")[0]
    assert "-o smtpd_reject_unlisted_recipient=no" in internal
    assert "-o smtpd_recipient_restrictions=\n" in internal and "-o smtpd_sender_restrictions=\n" in internal


def test_the_sync_may_write_the_postfix_maps_directory():
    unit = render("opendkim/postyard-dkim-sync.service.j2")
    assert f"\nReadWritePaths={DKIM_DIR} {POSTFIX_MAPS_DIR}\n" in unit
    assert f"\nPOSTYARD_POSTFIX_MAPS_DIR={POSTFIX_MAPS_DIR}\n" in render("opendkim/dkim-sync.env.j2")


def test_postfix_offers_only_ecdhe_aead_suites_for_tls_1_2():
    main = render("postfix/main.cf.j2")
    ciphers = main.split("tls_high_cipherlist = ")[1].splitlines()[0].split(":")
    assert ciphers and all(c.startswith("ECDHE-") and ("GCM" in c or "CHACHA20" in c) for c in ciphers)
    assert f"smtpd_tls_protocols = {tls_policy.POSTFIX['protocols']}" in main
    assert "smtpd_tls_mandatory_ciphers = high" in main


def test_postfix_master_is_tracked_by_its_pid_file_and_restarted_when_it_dies():
    lines = render("postfix/postyard-restart.conf.j2").splitlines()
    assert postfix.RESTART_DROP_IN == "/etc/systemd/system/postfix@-.service.d/postyard-restart.conf"
    settings = [line for line in lines[lines.index("[Service]"):] if not line.startswith("#")]
    assert settings == ["[Service]", "PIDFile=/var/spool/postfix/pid/master.pid", "Restart=on-failure", "RestartSec=2",
                        "ExecStartPre=-/usr/bin/pkill --signal KILL --uid postfix"]


def test_deploy_hook_reloads_each_service_only_where_it_is_installed():
    hook = render("tls/deploy-hook.sh.j2")
    assert hook.startswith("#!/bin/sh\n")
    assert (f"for unit in postfix.service dovecot.service {API_SERVICE}.service {API_PROXY_SERVICE}.service; do"
            in hook)
    assert 'systemctl try-reload-or-restart "$unit"' in hook


@pytest.mark.skipif(not shutil.which("sh"), reason="needs a POSIX shell")
def test_deploy_hook_is_valid_shell(tmp_path):
    script = tmp_path / "hook"
    script.write_text(render("tls/deploy-hook.sh.j2"))
    check = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


def test_certbot_drop_in_trusts_the_internal_ca():
    assert "\n[Service]\nEnvironment=REQUESTS_CA_BUNDLE=/etc/postyard/tls/internal-ca.crt\n" in render(
        "tls/certbot-ca.conf.j2"
    )


@pytest.mark.parametrize("unit", [*mail_services.mail_units(), *api.api_units(2)], ids=lambda u: u.name)
def test_app_units_are_sandboxed_and_only_the_api_may_bind_a_low_port(unit):
    rendered = render("app/service.j2", {"unit": unit, "env_file": "/etc/postyard/app.env", "release": "0123abcd"})
    lines = set(rendered.splitlines())
    assert {"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
            "SystemCallFilter=@system-service", "User=postyard"} <= lines
    assert "Restart=on-failure" in lines or "Restart=always" in lines
    expected = "CAP_NET_BIND_SERVICE" if unit.name == API_SERVICE else ""
    assert f"CapabilityBoundingSet={expected}" in lines and f"AmbientCapabilities={expected}" in lines


@pytest.mark.parametrize("unit", [*mail_services.mail_units(), *api.api_units(2)], ids=lambda u: u.name)
def test_only_the_webhook_dispatcher_runs_under_a_memory_ceiling(unit):
    rendered = render("app/service.j2", {"unit": unit, "env_file": "/etc/postyard/app.env", "release": "0123abcd"})
    limits = [line for line in rendered.splitlines() if line.startswith("MemoryMax=")]
    expected = [f"MemoryMax={mail_services.WEBHOOKS_MEMORY_MAX}"] if unit.name == WEBHOOKS_SERVICE else []
    assert limits == expected
