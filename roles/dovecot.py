"""Dovecot role: SASL for Postfix's submission listeners against the SMTP credentials view
(bcrypt, BLF-CRYPT), TLS required. fail2ban blocks addresses that keep failing to authenticate.

Mailboxes (IMAPS on 993, LMTP delivery) are not offered yet: a host that asks for them is refused
rather than given listeners with nothing routed to them."""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from app import tls_policy
from app.db import roles as db_roles
from roles import postfix
from roles.support.database_client import database_login
from roles.support.inventory_secrets import install_internal_ca
from roles.support.mail_certificate import certificate_paths
from roles.support.staging import install_validated_template, jinja_options
from roles.support.systemd_units import enabled_and_running

__all__ = ["DEFAULTS", "dovecot_context", "packages", "jail_context", "postfix_filter_context", "deploy_dovecot"]

DEFAULTS: dict[str, Any] = {
    # Optional row of the exposure table (IMAPS on 993); not available yet, see above.
    "mailboxes_enabled": False,
    "dovecot_auth_failure_delay": "2 secs",
    # fail2ban: this many failures within findtime block the address for bantime.
    "fail2ban_maxretry": 5,
    "fail2ban_findtime": "10m",
    "fail2ban_bantime": "1h",
}


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("dovecot-core", "dovecot-pgsql", "fail2ban", "python3-systemd")


def dovecot_context(data: Any, certificate: str, private_key: str) -> dict[str, Any]:
    return {
        "failure_delay": data.dovecot_auth_failure_delay,
        "certificate": certificate,
        "private_key": private_key,
        "tls_policy": tls_policy.DOVECOT,
    }


def postfix_filter_context() -> dict[str, Any]:
    """The journal entries fail2ban's Postfix filter reads: the submission listeners' (journalctl's syntax)."""
    # Postfix logs as <syslog_name>/<program>: the listeners' smtpd is postfix/submission/smtpd.
    return {"journalmatch": " + ".join(f"_SYSTEMD_UNIT={postfix.INSTANCE_UNIT} SYSLOG_IDENTIFIER={name}/smtpd"
                                       for name in postfix.SUBMISSION_SYSLOG_NAMES.values())}


def jail_context(data: Any) -> dict[str, Any]:
    return {
        "bantime": data.fail2ban_bantime,
        "findtime": data.fail2ban_findtime,
        "maxretry": data.fail2ban_maxretry,
    }


@deploy("Dovecot", data_defaults=DEFAULTS)
def deploy_dovecot() -> None:
    if host.data.mailboxes_enabled:
        raise DeployError(f"{host.name}: mailboxes_enabled is set, but mailboxes (IMAPS, LMTP) are not "
                          "available in this release; unset it")
    ca = install_internal_ca()
    sql = files.template(
        name="Upload Dovecot's SQL passdb settings", src="templates/dovecot/postyard-sql.conf.ext.j2",
        dest="/etc/dovecot/postyard-sql.conf.ext", user="root", group="dovecot", mode="640",
        jinja_env_kwargs=jinja_options(), conninfo=database_login(db_roles.DOVECOT).conninfo(),
    )
    certificate, private_key = certificate_paths()
    config = install_validated_template(
        "templates/dovecot/dovecot.conf.j2", "/etc/dovecot/dovecot.conf", validate="doveconf -n -c {path} >/dev/null",
        **dovecot_context(host.data, certificate, private_key),
    )
    systemd.service(name="Restart Dovecot", service="dovecot.service", restarted=True,
                    _if=any_changed(config, sql, ca))
    enabled_and_running(name="Enable Dovecot", service="dovecot.service")

    jail = files.template(
        name="Upload the fail2ban jails", src="templates/dovecot/jail.local.j2", dest="/etc/fail2ban/jail.local",
        mode="644", jinja_env_kwargs=jinja_options(), **jail_context(host.data),
    )
    postfix_filter = files.template(
        name="Point fail2ban's Postfix filter at the journal", src="templates/dovecot/postfix-filter.local.j2",
        dest="/etc/fail2ban/filter.d/postfix.local", mode="644", jinja_env_kwargs=jinja_options(),
        **postfix_filter_context(),
    )
    systemd.service(name="Restart fail2ban", service="fail2ban.service", restarted=True,
                    _if=any_changed(jail, postfix_filter))
    enabled_and_running(name="Enable fail2ban", service="fail2ban.service")
