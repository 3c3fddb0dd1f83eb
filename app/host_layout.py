"""Where the deploy and the app meet on a host: the ports, sockets, directories, files and services
both name. The roles (roles/) lay them out; the app's settings (app/config.py) default to them.
"""

from __future__ import annotations

import socket

__all__ = [
    "ACME_STANDALONE_PORT", "API_CERTIFICATE", "API_KEY_FILE", "API_LIVENESS_PATH", "API_PORT",
    "API_PROXY_HEALTH_PATH", "API_PROXY_HEALTH_PORT", "API_PROXY_PORT", "API_PROXY_SERVICE", "API_READINESS_PATH",
    "API_RUNTIME_DIRECTORY", "API_SERVICE",
    "DKIM_DIR", "DKIM_SYNC_SERVICE", "EVENTS_STATE_DIRECTORY",
    "INTAKE_RUNTIME_DIRECTORY",
    "INTAKE_SERVICE", "INTAKE_SOCKET", "INTERNAL_LISTENER", "INTERNAL_SMTP_HOST", "INTERNAL_SMTP_PORT",
    "MILTER_COMMAND_TIMEOUT", "MILTER_CONNECT_TIMEOUT", "MILTER_CONTENT_TIMEOUT",
    "OPENDKIM_PID_FILE", "PGBACKREST_PORT", "POLICY_RUNTIME_DIRECTORY", "POLICY_SERVICE", "POLICY_SOCKET",
    "POSTFIX_EVENTS_SERVICE",
    "POSTFIX_JOURNAL_CURSOR", "POSTFIX_MAPS_DIR", "STATE_DIR", "WEBHOOKS_SERVICE", "WORKER_SERVICE",
    "mail_host_name", "postfix_milter_wait",
]

# Postfix's internal listener: the worker hands mail to it on loopback, OpenDKIM signs what it takes.
INTERNAL_SMTP_HOST = "127.0.0.1"
INTERNAL_SMTP_PORT = 10025
INTERNAL_LISTENER = f"{INTERNAL_SMTP_HOST}:{INTERNAL_SMTP_PORT}"

# Postfix's submission listeners relay each message to the SMTP intake here (smtpd_proxy_filter).
INTAKE_RUNTIME_DIRECTORY = "postyard-intake"
INTAKE_SOCKET = f"/run/{INTAKE_RUNTIME_DIRECTORY}/smtp.sock"

# Postfix asks the per-login rate policy service here (check_policy_service).
POLICY_RUNTIME_DIRECTORY = "postyard-policy"
POLICY_SOCKET = f"/run/{POLICY_RUNTIME_DIRECTORY}/policy.sock"

STATE_DIR = "/var/lib/postyard"
# The DKIM sync writes OpenDKIM's key tables and keys here (a `current` set swapped in whole).
DKIM_DIR = f"{STATE_DIR}/dkim"
# The mail-host sync writes Postfix's routing maps here (cdb; app/mailhost/postfix_maps.py).
POSTFIX_MAPS_DIR = f"{STATE_DIR}/postfix-maps"
# The OpenDKIM process the DKIM sync reloads when no pid files are named.
OPENDKIM_PID_FILE = "/run/opendkim/opendkim.pid"

# The Postfix event follower's state directory (systemd's StateDirectory=) and its journal position.
EVENTS_STATE_DIRECTORY = "postyard-events"
POSTFIX_JOURNAL_CURSOR = f"/var/lib/{EVENTS_STATE_DIRECTORY}/journal.cursor"

# Postfix's milter timeouts in seconds (main.cf). Each bounds one exchange with one milter; the worker's
# SMTP timeout (POSTYARD_SMTP_SUBMISSION_TIMEOUT) must outlast what one of Postfix's replies can wait on
# them (postfix_milter_wait), so that the worker gets Postfix's answer rather than giving up first.
MILTER_CONNECT_TIMEOUT = 10
MILTER_COMMAND_TIMEOUT = 10
MILTER_CONTENT_TIMEOUT = 20


def postfix_milter_wait(milters: int) -> int:
    """The longest one reply of Postfix can wait on `milters` milters, each in turn up to its timeout: the
    greeting on their connect and CONNECT event, a command's reply on the command, the reply to the end
    of DATA on the message's content."""
    return milters * max(MILTER_CONNECT_TIMEOUT + MILTER_COMMAND_TIMEOUT, MILTER_CONTENT_TIMEOUT)


def mail_host_name() -> str:
    """This host's name, as the worker records it on the emails it hands to this host's Postfix and the
    log follower on its position in this host's Postfix log (both run on the mail host)."""
    return socket.gethostname()

# The API serves HTTPS here; its unit counts as started once this path answers on loopback (app/wait_ready.py).
API_PORT = 443
API_LIVENESS_PATH = "/health/live"
# Readiness: the API and the database and cache it needs (the load balancer's health check).
API_READINESS_PATH = "/health/ready"

# systemd services (unit names without `.service`).
API_SERVICE = "postyard-api"
# Behind a load balancer, HAProxy in front of the API on each api host (roles/api_proxy.py).
API_PROXY_SERVICE = "postyard-api-proxy"
# Where the load balancer connects to it, on the private network, with the PROXY protocol.
API_PROXY_PORT = 8443
# The proxy's answer to the load balancer's health check: 200 while the API on this host is alive.
API_PROXY_HEALTH_PORT = 8404
API_PROXY_HEALTH_PATH = "/alive"
# certbot's own listener on an api host behind a load balancer, which every api host's proxy relays ACME's
# HTTP-01 requests to (port 80 is the proxy's there).
ACME_STANDALONE_PORT = 8402
# pgBackRest's TLS server where the database is clustered: on each member, and on the repository host.
PGBACKREST_PORT = 8432
INTAKE_SERVICE = "postyard-smtp-intake"
WORKER_SERVICE = "postyard-worker"
WEBHOOKS_SERVICE = "postyard-webhooks"
POSTFIX_EVENTS_SERVICE = "postyard-postfix-events"
POLICY_SERVICE = "postyard-rate-policy"
DKIM_SYNC_SERVICE = "postyard-dkim-sync"

# The certificate and key the API serves: root copies them from certbot's directory before each start.
API_RUNTIME_DIRECTORY = f"/run/{API_SERVICE}"
API_CERTIFICATE = f"{API_RUNTIME_DIRECTORY}/tls.crt"
API_KEY_FILE = f"{API_RUNTIME_DIRECTORY}/tls.key"
