"""The database roles: one per kind of client, each granted only what that client does (migration 0008).

roles/postgresql.py creates them with their passwords; the migrations grant them tables. The owner runs
migrations and operators' commands only; the services on mail hosts act across teams through row-level
security policies of their own, on exactly the tables they use.
"""

from __future__ import annotations

__all__ = [
    "APP", "BOUNCE", "DOVECOT", "INTAKE", "LOG_FOLLOWER", "MAIL", "OWNER", "REPORTER", "ROLES", "SERVICE_ROLES",
    "WEBHOOKS", "WORKER",
]

OWNER = "postyard_owner"
APP = "postyard_app"  # the API, bound by row-level security to the team of the request
MAIL = "postyard_mail"  # Postfix's lookups and the DKIM sync: read-only views
DOVECOT = "postyard_dovecot"  # Dovecot's passdb: the credentials view
WORKER = "postyard_worker"  # the outbox worker and its housekeeping
LOG_FOLLOWER = "postyard_log_follower"  # Postfix's log becomes events
BOUNCE = "postyard_bounce"  # what Postfix pipes in from port 25: bounces, complaints and received mail
INTAKE = "postyard_intake"  # mail submitted over SMTP becomes emails
WEBHOOKS = "postyard_webhooks"  # the webhook dispatcher
REPORTER = "postyard_reporter"  # every host's status report; may only call postyard_report_host (migration 0012)

SERVICE_ROLES = (WORKER, LOG_FOLLOWER, BOUNCE, INTAKE, WEBHOOKS)
ROLES = (OWNER, APP, MAIL, DOVECOT, *SERVICE_ROLES, REPORTER)
