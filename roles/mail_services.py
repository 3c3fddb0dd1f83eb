"""Mail host services, as hardened systemd units (roles/support/app_units.py): the SMTP intake (mail
submitted on 465/587 becomes an email before Postfix answers the client), the outbox worker (hands
mail to Postfix on loopback, sends webhooks) and the Postfix event follower (delivery results from
the journal become events).
"""

from __future__ import annotations

from pyinfra.api import deploy

from roles.support.app_units import PYTHON, SOURCE_ENV, AppUnit, install_app_units

__all__ = ["INTAKE_SOCKET", "deploy_mail_services", "mail_units"]

INTAKE_RUNTIME = "postyard-intake"
# Postfix's submission listeners relay each message here (smtpd_proxy_filter).
INTAKE_SOCKET = f"/run/{INTAKE_RUNTIME}/smtp.sock"


def mail_units() -> tuple[AppUnit, ...]:
    return (
        # Group postfix: Postfix's smtpd (user postfix) connects to the socket in its runtime directory.
        AppUnit("postyard-smtp-intake", "Postyard SMTP intake: mail submitted on 465/587 becomes an email",
                f"{PYTHON} -m app.cli smtp-intake", group="postfix", runtime_directory=INTAKE_RUNTIME,
                runtime_directory_mode="0750",
                environment=(SOURCE_ENV, f"POSTYARD_SMTP_INTAKE_SOCKET={INTAKE_SOCKET}")),
        AppUnit("postyard-worker", "Postyard outbox worker: hands mail to Postfix, sends webhooks",
                f"{PYTHON} -m app.cli worker", after=("postfix.service",)),
        AppUnit("postyard-postfix-events", "Postyard: Postfix delivery results from the journal become events",
                f"{PYTHON} -m app.cli follow-postfix-log --journal", after=("postfix.service",),
                supplementary_groups=("systemd-journal",), state_directory="postyard-events",
                restart="always", proc_subset_pid=False, protect_kernel_views=False,
                environment=(SOURCE_ENV, "POSTYARD_POSTFIX_JOURNAL_CURSOR=/var/lib/postyard-events/journal.cursor")),
    )


@deploy("Mail host services")
def deploy_mail_services() -> None:
    install_app_units(mail_units())
