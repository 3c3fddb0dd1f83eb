"""The mail-host processes' commands: each parses its arguments here and runs its module.

`postyard-api` offers them among its own commands; the units and Postfix's bounce pipe run them as
`python -m app.mailhost`, which loads only the process's own modules, not the whole command line's (the
ORM, the admin commands), so that each service holds a fraction of the memory and starts faster.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.config import Settings, get_settings
from app.lib.logs import configure_logging

__all__ = ["COMMANDS", "add_mailhost_commands", "main", "run_mailhost"]

COMMANDS = ("worker", "webhooks", "follow-postfix-log", "bounce", "receive", "smtp-intake", "rate-policy",
            "dkim-sync")


def add_mailhost_commands(sub: Any) -> None:
    """Add one command per mail-host process to the CLI's subparsers."""
    sub.add_parser("worker", help="run the outbox worker (SMTP submission, retention) until SIGTERM")
    sub.add_parser("webhooks", help="deliver webhook events to the teams' endpoints until SIGTERM")
    follow = sub.add_parser("follow-postfix-log", help="apply Postfix log lines from stdin (or the journal)")
    follow.add_argument("--journal", action="store_true", help="run journalctl -f -u postfix@- itself")
    bounce = sub.add_parser("bounce", help="read one DSN or ARF message on stdin (Postfix pipe transport)")
    bounce.add_argument("recipient", nargs="?", default=None, help="the envelope recipient (${recipient})")
    receive = sub.add_parser("receive", help="store one message for a receiving domain from stdin (Postfix pipe)")
    receive.add_argument("--queue-id", required=True, help="Postfix's queue id of the message (${queue_id})")
    receive.add_argument("--client", required=True, help="the SMTP client's address (${client_address})")
    receive.add_argument("--helo", default="", help="the client's HELO name (${client_helo})")
    receive.add_argument("--sender", default="", help="the envelope sender (${sender}; empty for a bounce)")
    receive.add_argument("recipients", nargs="+", help="the envelope recipients (${recipient})")
    sub.add_parser("smtp-intake", help="store mail submitted on 465/587 (Postfix's before-queue proxy filter)")
    sub.add_parser("rate-policy", help="limit messages per minute per SMTP login (Postfix policy service)")
    sync = sub.add_parser("dkim-sync", help="write OpenDKIM's keys and Postfix's maps from the database on each change")
    sync.add_argument("--once", action="store_true", help="one round, then exit (nonzero if a write failed)")


def run_mailhost(args: argparse.Namespace, settings: Settings) -> int:
    """Run the process `args.command` names (one of COMMANDS) until it ends or is stopped; its exit status."""
    configure_logging(settings.log_level)
    # Each process imports only its own module: the bounce pipe starts once per report.
    if args.command == "worker":
        from app.mailhost import worker

        worker.main(settings)
    elif args.command == "webhooks":
        from app.mailhost import webhooks

        webhooks.main(settings)
    elif args.command == "follow-postfix-log":
        from app.mailhost import log_follower

        log_follower.follow_log(settings, args.journal)
    elif args.command == "bounce":
        from app.mailhost import bounce_pipe

        return bounce_pipe.bounce_pipe(settings, sys.stdin.buffer, args.recipient)
    elif args.command == "receive":
        from app.domain.receiving.intake import Envelope
        from app.domain.receiving.message_fields import storable
        from app.mailhost import receive_pipe

        envelope = Envelope(*map(storable, (args.queue_id, args.client, args.helo, args.sender)),
                            [storable(r) for r in args.recipients])
        return receive_pipe.receive_pipe(settings, sys.stdin.buffer, envelope)
    elif args.command == "smtp-intake":
        from app.mailhost import smtp_intake

        smtp_intake.main(settings)
    elif args.command == "rate-policy":
        from app.mailhost import rate_policy

        rate_policy.main(settings)
    else:
        from app.mailhost import dkim_sync

        return dkim_sync.main(settings, once=args.once)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m app.mailhost COMMAND`."""
    parser = argparse.ArgumentParser(prog="python -m app.mailhost", description="A mail-host process of Postyard.")
    add_mailhost_commands(parser.add_subparsers(dest="command", required=True))
    return run_mailhost(parser.parse_args(argv), get_settings())
