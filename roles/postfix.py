"""Postfix role: the inbound MX for bounce domains (25), authenticated submission (465, 587), and the
outbound path for the app's worker (loopback), with DKIM signing by OpenDKIM.

main.cf and master.cf are owned whole, rendered to a staging directory and checked with
`postfix -c <dir> check` (no warnings allowed) before they replace the live files.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from app import tls_policy
from app.db import roles as db_roles
from app.host_layout import (
    INTAKE_SOCKET,
    INTERNAL_LISTENER,
    MILTER_COMMAND_TIMEOUT,
    MILTER_CONNECT_TIMEOUT,
    MILTER_CONTENT_TIMEOUT,
    POLICY_RUNTIME_DIRECTORY,
    POLICY_SERVICE,
    POLICY_SOCKET,
)
from roles import app_runtime
from roles.opendkim import MILTER_SOCKETS
from roles.support.database_client import DatabaseLogin, database_login
from roles.support.inventory_secrets import INTERNAL_CA_PATH, install_internal_ca
from roles.support.mail_certificate import certificate_paths
from roles.support.staging import STAGING_DIR, jinja_options
from roles.support.systemd_units import UNIT_DIR, install_unit, reload_units

__all__ = [
    "DEFAULTS", "LOOKUPS", "LOOKUP_WATCH_UNIT", "MASTER_PID_FILE", "POLICY_UNIT", "REACHABLE", "RESTART_DROP_IN",
    "Lookup", "main_context", "master_context", "policy_context", "lookup_context", "lookup_watch_context",
    "restart_context", "deploy_postfix",
]

DEFAULTS: dict[str, Any] = {
    "postfix_inet_protocols": "all",
    "postfix_message_size_limit": 26214400,
    # Drop the Received line naming the submitting client's address from submitted mail.
    "postfix_hide_submission_client": True,
    # Honour MTA-STS policies of recipient domains (postfix-mta-sts-resolver).
    "postfix_mta_sts": True,
    # Per client IP, per minute (anvil); replies are 421/450 4.7.0-4.7.1. Password guessing is
    # fail2ban's job (roles/dovecot.py); these bound one address's share of the server.
    "postfix_client_connections": 50,
    "postfix_client_connection_rate": 600,
    "postfix_client_message_rate": 3000,
    "postfix_client_recipient_rate": 10000,
    "postfix_client_auth_rate": 300,
    # Per SMTP login, per minute, on 465/587 (app/mailhost/rate_policy.py); replies 450 4.7.1.
    "postfix_user_message_rate": 600,
}

POLICY_UNIT = f"{POLICY_SERVICE}.service"
# The unit that runs the Postfix master (postfix.service only groups the instances).
INSTANCE_UNIT = "postfix@-.service"
MASTER_ANSWERS = "postfix status >/dev/null 2>&1"
# The master's pid file, $queue_directory/pid/master.pid (Debian's queue_directory: /var/spool/postfix).
MASTER_PID_FILE = "/var/spool/postfix/pid/master.pid"
# Lets systemd track the master and start it again when it dies (templates/postfix/postyard-restart.conf.j2).
RESTART_DROP_IN = f"{UNIT_DIR}/{INSTANCE_UNIT}.d/postyard-restart.conf"
PGSQL_DIR = "/etc/postfix/pgsql"
# The lookups' password, out of their URLs (Postfix logs the URL of each failed lookup): one file for
# proxymap (user postfix), one for the lookup watcher's probe (root without capabilities reads only its own).
PGPASS = f"{PGSQL_DIR}/pgpass"
PROBE_PGPASS = f"{PGSQL_DIR}/pgpass.probe"
# Reloads Postfix once PostgreSQL answers again after a failed lookup (templates/postfix/postyard-postfix-lookups.*).
LOOKUP_WATCH_UNIT = "postyard-postfix-lookups.service"
LOOKUP_WATCH_SCRIPT = "/usr/local/sbin/postyard-postfix-lookups"


class Lookup:
    """One Postfix table backed by a SQL view."""

    def __init__(self, name: str, purpose: str, query: str) -> None:
        self.name, self.purpose, self.query = name, purpose, query


LOOKUPS: tuple[Lookup, ...] = (
    Lookup("bounce_domains", "Domains accepted on port 25: the sending domains' return-path domains.",
           "SELECT bounce_domain FROM mail_bounce_domains WHERE bounce_domain = '%s'"),
    Lookup("bounce_transport", "Mail to a return-path domain goes to the app's bounce pipe.",
           "SELECT 'postyard-bounce:' FROM mail_bounce_domains WHERE bounce_domain = '%s'"),
    Lookup("sender_logins", "SMTP logins allowed to use a sender domain (their team owns it, verified).",
           "SELECT username FROM mail_sender_logins WHERE sender_domain = '%d'"),
    Lookup("sender_tls_transport", "Sending domains that require TLS for delivery use the enforced transport.",
           "SELECT 'postyard-enforced:' FROM mail_bounce_domains WHERE tls_mode = 'enforced' "
           "AND (domain = '%d' OR bounce_domain = '%d') LIMIT 1"),
)
# Not a table of main.cf: it answers `ok` whenever PostgreSQL answers, for the lookup watcher.
REACHABLE = Lookup("reachable", "Answers ok whenever PostgreSQL answers (the lookup watcher's probe).", "SELECT 'ok'")


def main_context(data: Any, hostname: str, certificate: str, private_key: str) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "inet_protocols": data.postfix_inet_protocols,
        "message_size_limit": data.postfix_message_size_limit,
        "certificate": certificate,
        "private_key": private_key,
        "tls_policy": tls_policy.POSTFIX,
        "mta_sts": bool(data.postfix_mta_sts),
        "milter_timeouts": {"connect": MILTER_CONNECT_TIMEOUT, "command": MILTER_COMMAND_TIMEOUT,
                            "content": MILTER_CONTENT_TIMEOUT},
        "limits": {
            "connections": data.postfix_client_connections,
            "connection_rate": data.postfix_client_connection_rate,
            "message_rate": data.postfix_client_message_rate,
            "recipient_rate": data.postfix_client_recipient_rate,
            "auth_rate": data.postfix_client_auth_rate,
        },
    }


def submission_options() -> str:
    options = [
        "smtpd_sasl_auth_enable=yes",
        "smtpd_tls_auth_only=yes",
        "smtpd_client_restrictions=permit_sasl_authenticated,reject",
        "smtpd_sender_restrictions=reject_non_fqdn_sender,reject_sender_login_mismatch",
        "smtpd_relay_restrictions=permit_sasl_authenticated,reject",
        "smtpd_recipient_restrictions=reject_non_fqdn_recipient,permit",
        f"smtpd_data_restrictions=check_policy_service,unix:{POLICY_SOCKET}",
        # The app stores each message before the client gets its 250 (app/mailhost/smtp_intake.py); the
        # worker sends it on through the internal listener, where it is signed. speed_adjust: the
        # whole message is received before the intake is involved. A DSN request has nothing to act
        # on (the envelope sender becomes the email's return path), so DSN is not offered.
        f"smtpd_proxy_filter=unix:{INTAKE_SOCKET}",
        "smtpd_proxy_options=speed_adjust",
        "smtpd_discard_ehlo_keywords=dsn",
    ]
    return "\n".join(f"  -o {option}" for option in options)


def master_context(data: Any) -> dict[str, Any]:
    hide = bool(data.postfix_hide_submission_client)
    return {
        "submission_options": submission_options(),
        "hide_submission_client": hide,
        "internal_listener": INTERNAL_LISTENER,
        "milters": MILTER_SOCKETS,
        "launcher": app_runtime.LAUNCHER,
    }


def policy_context(data: Any, release: str) -> dict[str, Any]:
    return {
        "source": app_runtime.SOURCE,
        "python": f"{app_runtime.VENV}/bin/python",
        "socket": POLICY_SOCKET,
        "runtime_directory": POLICY_RUNTIME_DIRECTORY,
        "messages_per_minute": data.postfix_user_message_rate,
        "release": release,
    }


def lookup_context(lookup: Lookup, login: DatabaseLogin) -> dict[str, Any]:
    return {
        "purpose": lookup.purpose,
        # With a URI, Postfix takes the login from the URI alone (user/password are then ignored).
        "hosts": login.libpq_url(PROBE_PGPASS if lookup is REACHABLE else PGPASS) + f"&sslrootcert={INTERNAL_CA_PATH}",
        "database": login.database,
        "query": lookup.query,
    }


def lookup_watch_context() -> dict[str, Any]:
    return {"postfix_unit": INSTANCE_UNIT, "probe_table": f"{PGSQL_DIR}/{REACHABLE.name}.cf", "probe_seconds": 1,
            "reload_spacing": 10, "script": LOOKUP_WATCH_SCRIPT}


def restart_context() -> dict[str, Any]:
    return {"pid_file": MASTER_PID_FILE, "restart_seconds": 2}


def _or_show_journal(command: str) -> str:
    """The command, printing the Postfix instance's status and recent journal if it fails."""
    return (f"{{ {command}; }} || {{ status=$?; systemctl status --no-pager {INSTANCE_UNIT} >&2; "
            f"journalctl --no-pager -n 40 -u {INSTANCE_UNIT} >&2; exit $status; }}")


def _template(src: str, dest: str, mode: str = "644", group: str = "root", **context: Any) -> OperationMeta:
    return files.template(name=f"Upload {dest}", src=src, dest=dest, user="root", group=group, mode=mode,
                          jinja_env_kwargs=jinja_options(), **context)


@deploy("Postfix", data_defaults=DEFAULTS)
def deploy_postfix() -> None:
    packages = ["postfix", "postfix-pgsql"] + (["postfix-mta-sts-resolver"] if host.data.postfix_mta_sts else [])
    apt.packages(name="Install Postfix", packages=packages, no_recommends=True)
    restart_drop_in = _template("templates/postfix/postyard-restart.conf.j2", RESTART_DROP_IN, **restart_context())
    reload_units(restart_drop_in)
    ca = install_internal_ca()
    certificate, private_key = certificate_paths()
    login = database_login(db_roles.MAIL)
    files.directory(name=f"Create {PGSQL_DIR}", path=PGSQL_DIR, user="root", group="postfix", mode="750")
    for path, owner in ((PGPASS, "postfix"), (PROBE_PGPASS, "root")):
        files.put(name=f"Upload {path}", src=StringIO(login.pgpass_line()), dest=path, user=owner, group=owner,
                  mode="600")
    lookups = [
        _template("templates/postfix/pgsql.cf.j2", f"{PGSQL_DIR}/{lookup.name}.cf", mode="640", group="postfix",
                  **lookup_context(lookup, login))
        for lookup in (*LOOKUPS, REACHABLE)
    ]
    header_cleanup = _template("templates/postfix/submission_header_cleanup.j2",
                               "/etc/postfix/submission_header_cleanup")

    # Stage both files together: `postfix check` reads a whole configuration directory.
    staged = str(STAGING_DIR / "postfix")
    main = dict(main_context(host.data, host.data.get("hostname") or host.name, certificate, private_key))
    stage_main = _template("templates/postfix/main.cf.j2", f"{staged}/main.cf", **main)
    stage_master = _template("templates/postfix/master.cf.j2", f"{staged}/master.cf", **master_context(host.data))
    server.shell(
        name="Validate the Postfix configuration",
        commands=[f"out=$(postfix -c {staged} check 2>&1 && postconf -c {staged} -n 2>&1 >/dev/null) "
                  f"&& [ -z \"$out\" ] || {{ echo \"$out\" >&2; rm -f {staged}/main.cf {staged}/master.cf; exit 1; }}"],
        _if=any_changed(stage_main, stage_master),
    )
    live_main = _template("templates/postfix/main.cf.j2", "/etc/postfix/main.cf", **main)
    live_master = _template("templates/postfix/master.cf.j2", "/etc/postfix/master.cf", **master_context(host.data))
    files.put(name="Name this host in /etc/mailname",
              src=StringIO((host.data.get("hostname") or host.name) + "\n"), dest="/etc/mailname", mode="644")

    if host.data.postfix_mta_sts:
        systemd.service(name="Enable the MTA-STS resolver", service="postfix-mta-sts-resolver.service",
                        running=True, enabled=True)
    install_unit(POLICY_UNIT, "templates/postfix/postyard-rate-policy.service.j2",
                 label="the rate limit policy service", user="root", group="root",
                 **policy_context(host.data, app_runtime.release_digest()))
    # Stop, wait for the old master to be gone, start, wait for the new one: `postfix start` refuses to
    # run beside a master still exiting, where systemd cannot kill a control group (a container) it does
    # not wait, and a reload right after a start fails until the new master answers. On a loaded host
    # the first start can still lose that race, so it gets one more try. A new restart drop-in needs a
    # start too: systemd reads the master's pid file only when it starts the unit.
    restart_needed = any_changed(live_master, ca, restart_drop_in)
    server.shell(
        name="Restart Postfix",
        commands=[_or_show_journal(command) for command in (
            "systemctl stop postfix.service",
            f"timeout 60 sh -c 'while {MASTER_ANSWERS}; do sleep 0.2; done'",
            "systemctl start postfix.service || { sleep 2; systemctl reset-failed 'postfix@*'; "
            "systemctl start postfix.service; }",
            f"timeout 60 sh -c 'until {MASTER_ANSWERS}; do sleep 0.2; done'",
        )],
        _if=restart_needed,
    )
    # The master rereads main.cf and the lookup tables on SIGHUP, which `postfix reload` sends it directly;
    # a restart above already read them. A master found stopped is started instead.
    server.shell(
        name="Reload Postfix",
        commands=[_or_show_journal(
            f"if {MASTER_ANSWERS}; then postfix reload; else systemctl restart postfix.service && "
            f"timeout 60 sh -c 'until {MASTER_ANSWERS}; do sleep 0.2; done'; fi"
        )],
        _if=[any_changed(live_main, header_cleanup, *lookups), lambda: not restart_needed()],
    )
    systemd.service(name="Enable Postfix", service="postfix.service", running=True, enabled=True)
    watch_script = _template("templates/postfix/postyard-postfix-lookups.sh.j2", LOOKUP_WATCH_SCRIPT, mode="755",
                             **lookup_watch_context())
    install_unit(LOOKUP_WATCH_UNIT, "templates/postfix/postyard-postfix-lookups.service.j2", restart_on=[watch_script],
                 label="the Postfix lookup watcher", **lookup_watch_context())
