"""Postfix role: the inbound MX for bounce domains (25), authenticated submission (465, 587), and the
outbound path for the app's worker (loopback), with DKIM signing by OpenDKIM.

main.cf and master.cf are owned whole, rendered to a staging directory and checked with
`postfix -c <dir> check` (no warnings allowed) before they replace the live files. The routing tables
(relay and transport of the return-path domains, sender logins, enforced TLS) are local cdb maps the
mail-host sync writes from the database (app/mailhost/postfix_maps.py); Postfix never connects to PostgreSQL.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from app import tls_policy
from app.host_layout import (
    INTAKE_SOCKET,
    INTERNAL_LISTENER,
    MILTER_COMMAND_TIMEOUT,
    MILTER_CONNECT_TIMEOUT,
    MILTER_CONTENT_TIMEOUT,
    POLICY_RUNTIME_DIRECTORY,
    POLICY_SERVICE,
    POLICY_SOCKET,
    POSTFIX_MAPS_DIR,
)
from app.mailhost import postfix_maps
from roles import app_runtime
from roles.opendkim import MILTER_SOCKETS, SYNC_ENV, SYNC_USER
from roles.support.inventory_secrets import install_internal_ca
from roles.support.mail_certificate import certificate_paths
from roles.support.staging import STAGING_DIR, jinja_options
from roles.support.systemd_units import UNIT_DIR, enabled_and_running, install_unit, reload_units

__all__ = [
    "DEFAULTS", "INSTANCE_UNIT", "MAPS_PATH_UNIT", "MAPS_RELOAD_UNIT", "MAP_PARAMETERS", "MASTER_PID_FILE",
    "POLICY_UNIT", "RESTART_DROP_IN", "RETIRED_WATCH_UNIT", "SUBMISSION_SYSLOG_NAMES",
    "main_context", "map_path", "maps_path_context", "maps_reload_context", "master_context", "packages",
    "policy_context", "restart_context", "deploy_postfix",
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
# Postfix's routing maps are written by the mail-host sync (app/mailhost/postfix_maps.py).
MAP_PARAMETERS = postfix_maps.MAP_PARAMETERS
# `postfix reload` whenever the sync rewrites its swap stamp: trivial-rewrite would otherwise notice a
# replaced map only within 10 s (app/mailhost/postfix_maps.py).
MAPS_RELOAD_UNIT = "postyard-postfix-maps.service"
MAPS_PATH_UNIT = "postyard-postfix-maps.path"
# What earlier releases installed for Postfix's PostgreSQL lookups, removed from existing hosts.
RETIRED_LOOKUP_DIR = "/etc/postfix/pgsql"
RETIRED_WATCH_UNIT = "postyard-postfix-lookups.service"
RETIRED_WATCH_SCRIPT = "/usr/local/sbin/postyard-postfix-lookups"


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    mta_sts = data.get("postfix_mta_sts", DEFAULTS["postfix_mta_sts"])
    return ("postfix", "postfix-cdb") + (("postfix-mta-sts-resolver",) if mta_sts else ())


def map_path(name: str) -> str:
    """A map's text source; Postfix opens `cdb:<path>`, that is <path>.cdb."""
    return f"{POSTFIX_MAPS_DIR}/{name}"


def main_context(data: Any, hostname: str, certificate: str, private_key: str) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "inet_protocols": data.postfix_inet_protocols,
        "message_size_limit": data.postfix_message_size_limit,
        "certificate": certificate,
        "private_key": private_key,
        "tls_policy": tls_policy.POSTFIX,
        "maps": {parameter: f"cdb:{map_path(name)}" for parameter, name in MAP_PARAMETERS.items()},
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


# The submission listeners' names in the journal (SYSLOG_IDENTIFIER), where fail2ban reads their failed logins.
SUBMISSION_SYSLOG_NAMES = {"submission": "postfix/submission", "submissions": "postfix/submissions"}


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
        "syslog_names": SUBMISSION_SYSLOG_NAMES,
        "hide_submission_client": hide,
        "internal_listener": INTERNAL_LISTENER,
        "milters": MILTER_SOCKETS,
        "launcher": app_runtime.LAUNCHER,
    }


def policy_context(data: Any, release: str) -> dict[str, Any]:
    return {
        "source": app_runtime.SOURCE,
        "mailhost": app_runtime.MAILHOST_PROCESS,
        "socket": POLICY_SOCKET,
        "runtime_directory": POLICY_RUNTIME_DIRECTORY,
        "messages_per_minute": data.postfix_user_message_rate,
        "release": release,
    }


def restart_context() -> dict[str, Any]:
    return {"pid_file": MASTER_PID_FILE, "restart_seconds": 2}


def _or_show_journal(command: str) -> str:
    """The command, printing the Postfix instance's status and recent journal if it fails."""
    return (f"{{ {command}; }} || {{ status=$?; systemctl status --no-pager {INSTANCE_UNIT} >&2; "
            f"journalctl --no-pager -n 40 -u {INSTANCE_UNIT} >&2; exit $status; }}")


def _template(src: str, dest: str, mode: str = "644", group: str = "root", **context: Any) -> OperationMeta:
    return files.template(name=f"Upload {dest}", src=src, dest=dest, user="root", group=group, mode=mode,
                          jinja_env_kwargs=jinja_options(), **context)


def _maps_if_absent() -> None:
    """Where a map Postfix opens is missing (a fresh host, one that used the PostgreSQL lookups, or one whose
    first round failed), one round of the mail-host sync writes them all from the database before Postfix
    reads them; a failed round fails the deploy, and the next deploy tries again. Maps in place are the
    sync's to keep."""
    if all(host.get_fact(File, path=f"{map_path(name)}.cdb") for name in MAP_PARAMETERS.values()):
        return
    server.shell(
        name="Write Postfix's maps from the database",
        commands=[f"systemd-run --wait --pipe --quiet --collect --uid={SYNC_USER} --gid={SYNC_USER} "
                  f"-p EnvironmentFile={SYNC_ENV} -E PYTHONPATH={app_runtime.SOURCE} "
                  f"{app_runtime.MAILHOST_PROCESS} dkim-sync --once"],
    )


def maps_reload_context() -> dict[str, Any]:
    return {"path_unit": MAPS_PATH_UNIT, "postfix_unit": INSTANCE_UNIT}


def maps_path_context() -> dict[str, Any]:
    return {"stamp": map_path(postfix_maps.SWAP_STAMP), "service": MAPS_RELOAD_UNIT}


def _reload_on_swapped_maps() -> None:
    service = _template("templates/postfix/postyard-postfix-maps.service.j2", f"{UNIT_DIR}/{MAPS_RELOAD_UNIT}",
                        **maps_reload_context())
    reload_units(service)
    install_unit(MAPS_PATH_UNIT, "templates/postfix/postyard-postfix-maps.path.j2", label="the map reload trigger",
                 **maps_path_context())


def _retire_database_lookups() -> None:
    """Remove the PostgreSQL lookups and their watcher that earlier releases installed."""
    systemd.service(name="Stop the retired Postfix lookup watcher", service=RETIRED_WATCH_UNIT, running=False,
                    enabled=False)
    unit = files.file(name=f"Remove {RETIRED_WATCH_UNIT}", path=f"{UNIT_DIR}/{RETIRED_WATCH_UNIT}", present=False)
    reload_units(unit)
    files.file(name=f"Remove {RETIRED_WATCH_SCRIPT}", path=RETIRED_WATCH_SCRIPT, present=False)
    files.directory(name=f"Remove {RETIRED_LOOKUP_DIR}", path=RETIRED_LOOKUP_DIR, present=False)
    apt.packages(name="Remove postfix-pgsql", packages=["postfix-pgsql"], present=False)


@deploy("Postfix", data_defaults=DEFAULTS)
def deploy_postfix() -> None:
    restart_drop_in = _template("templates/postfix/postyard-restart.conf.j2", RESTART_DROP_IN, **restart_context())
    reload_units(restart_drop_in)
    ca = install_internal_ca()
    certificate, private_key = certificate_paths()
    _maps_if_absent()
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
        enabled_and_running(name="Enable the MTA-STS resolver", service="postfix-mta-sts-resolver.service")
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
    # The master rereads main.cf on SIGHUP, which `postfix reload` sends it directly; a restart above already
    # read it. A master found stopped is started instead. A new map needs neither: the path unit reloads.
    server.shell(
        name="Reload Postfix",
        commands=[_or_show_journal(
            f"if {MASTER_ANSWERS}; then postfix reload; else systemctl restart postfix.service && "
            f"timeout 60 sh -c 'until {MASTER_ANSWERS}; do sleep 0.2; done'; fi"
        )],
        _if=[any_changed(live_main, header_cleanup), lambda: not restart_needed()],
    )
    enabled_and_running(name="Enable Postfix", service="postfix.service")
    _reload_on_swapped_maps()
    _retire_database_lookups()  # once Postfix reads the maps instead
