"""Mail host services, as hardened systemd units (roles/support/app_units.py): the SMTP intake (mail
submitted on 465/587 becomes an email before Postfix answers the client), the outbox worker (hands
mail to Postfix on loopback), the webhook dispatcher (in a unit of its own, with its own memory limit,
so no tenant's endpoint can stall or starve the worker) and the Postfix event follower (delivery
results from the journal become events).
"""

from __future__ import annotations

from pyinfra.api import deploy

from app.db import roles as db_roles
from app.host_layout import (
    EVENTS_STATE_DIRECTORY,
    INTAKE_RUNTIME_DIRECTORY,
    INTAKE_SERVICE,
    INTAKE_SOCKET,
    POSTFIX_EVENTS_SERVICE,
    POSTFIX_JOURNAL_CURSOR,
    WEBHOOKS_SERVICE,
    WORKER_SERVICE,
)
from roles.app_runtime import MAILHOST_PROCESS
from roles.support.app_units import SOURCE_ENV, AppUnit, install_app_units

__all__ = ["WEBHOOKS_MEMORY_MAX", "deploy_mail_services", "mail_units"]

# The webhook dispatcher's ceiling: it runs in about 110 MB (150 MB at its start-up peak); a leak ends it,
# never the worker.
WEBHOOKS_MEMORY_MAX = "256M"


def mail_units() -> tuple[AppUnit, ...]:
    return (
        # Group postfix: Postfix's smtpd (user postfix) connects to the socket in its runtime directory.
        AppUnit(INTAKE_SERVICE, "Postyard SMTP intake: mail submitted on 465/587 becomes an email",
                f"{MAILHOST_PROCESS} smtp-intake", group="postfix", runtime_directory=INTAKE_RUNTIME_DIRECTORY,
                runtime_directory_mode="0750", database_role=db_roles.INTAKE,
                environment=(SOURCE_ENV, f"POSTYARD_SMTP_INTAKE_SOCKET={INTAKE_SOCKET}")),
        AppUnit(WORKER_SERVICE, "Postyard outbox worker: hands mail to Postfix",
                f"{MAILHOST_PROCESS} worker", after=("postfix.service",), database_role=db_roles.WORKER),
        AppUnit(WEBHOOKS_SERVICE, "Postyard webhooks: signed deliveries to the teams' endpoints",
                f"{MAILHOST_PROCESS} webhooks", memory_max=WEBHOOKS_MEMORY_MAX, database_role=db_roles.WEBHOOKS),
        AppUnit(POSTFIX_EVENTS_SERVICE, "Postyard: Postfix delivery results from the journal become events",
                f"{MAILHOST_PROCESS} follow-postfix-log --journal", after=("postfix.service",),
                supplementary_groups=("systemd-journal",), state_directory=EVENTS_STATE_DIRECTORY,
                restart="always", proc_subset_pid=False, protect_kernel_views=False,
                database_role=db_roles.LOG_FOLLOWER,
                environment=(SOURCE_ENV, f"POSTYARD_POSTFIX_JOURNAL_CURSOR={POSTFIX_JOURNAL_CURSOR}")),
    )


@deploy("Mail host services")
def deploy_mail_services() -> None:
    install_app_units(mail_units())
