"""Parsing Postfix log lines (syslog or `journalctl` output) into acceptance and delivery records, and the time
a line was logged."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

__all__ = ["DELIVERY_AGENTS", "Accepted", "Delivery", "MessageIdSeen", "logged_at", "parse_line"]

# The Postfix programs whose delivery lines become events.
DELIVERY_AGENTS = ("smtp", "lmtp", "local", "virtual", "error", "pipe", "discard")
_PREFIX = r"postfix(?:/[\w.-]+)*/(?P<daemon>[\w.-]+)\[\d+\]: (?P<qid>[0-9A-Za-z]{6,20}): "
_DELIVERY = re.compile(
    _PREFIX + r"to=<(?P<to>[^>]*)>,(?: orig_to=<[^>]*>,)? relay=(?P<relay>[^,]+), (?:conn_use=\d+, )?"
    r"delay=[\d.]+, delays=[\d./]+, dsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3}), "
    r"status=(?P<status>sent|deferred|bounced|expired|undeliverable|deliverable)(?: \((?P<reply>.*)\))?\s*$")
_MESSAGE_ID = re.compile(_PREFIX + r"message-id=(?P<mid><[^>]*>|\S+)\s*$")
_QUEUED = re.compile(_PREFIX + r"from=<(?P<from>[^>]*)>, size=\d+, nrcpt=\d+ \(queue active\)\s*$")


@dataclass(frozen=True)
class MessageIdSeen:
    """`cleanup`: the queue id Postfix gave the message with this Message-ID."""

    queue_id: str
    message_id: str


@dataclass(frozen=True)
class Accepted:
    """`qmgr`: the queue file is committed and the message entered the active queue."""

    queue_id: str
    sender: str


@dataclass(frozen=True)
class Delivery:
    """A delivery attempt's result for one recipient."""

    queue_id: str
    recipient: str
    status: str
    dsn: str
    relay: str
    reply: str

    @property
    def event(self) -> str:
        """The email event this result is: delivered, delivery_delayed or bounced."""
        return {"sent": "delivered", "deferred": "delivery_delayed"}.get(self.status, "bounced")

    @property
    def hard_bounce(self) -> bool:
        """A permanent failure (5.x.x) that puts the recipient on the suppression list."""
        return self.status == "bounced" and self.dsn.startswith("5.")


def logged_at(line: str) -> datetime | None:
    """When the line was logged, if it starts with an ISO 8601 time with its offset (`journalctl -o short-iso`,
    RFC 5424 syslog, and the lines the journal follower writes); None for other lines."""
    stamp = line.split(" ", 1)[0]
    if not stamp[:4].isdigit():
        return None
    try:
        logged = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return logged if logged.tzinfo is not None else None


def parse_line(line: str) -> MessageIdSeen | Accepted | Delivery | None:
    """The record one log line carries, or None for lines that are not about a message's fate."""
    if "postfix" not in line:
        return None
    match = _DELIVERY.search(line)
    if match and match.group("daemon") in DELIVERY_AGENTS:
        return Delivery(queue_id=match.group("qid"), recipient=match.group("to").lower(),
                        status=match.group("status"), dsn=match.group("dsn"), relay=match.group("relay"),
                        reply=(match.group("reply") or "")[:1000])
    match = _MESSAGE_ID.search(line)
    if match and match.group("daemon") == "cleanup":
        return MessageIdSeen(queue_id=match.group("qid"), message_id=match.group("mid"))
    match = _QUEUED.search(line)
    if match and match.group("daemon") == "qmgr":
        return Accepted(queue_id=match.group("qid"), sender=match.group("from"))
    return None
