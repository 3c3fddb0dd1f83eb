"""The fault test's load: emails sent through `POST /emails/batch` and submitted on port 587 (STARTTLS, AUTH)
from threads until told to stop, every attempt kept with its answer, its Message-ID when known and the
wall-clock time it was answered."""

from __future__ import annotations

import smtplib
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage

import httpx

from postyard.testbed import internet

__all__ = ["ACCEPTED", "NO_ANSWER", "ApiLoad", "Attempt", "Ledger", "SmtpLoad"]

ACCEPTED = "accepted"
NO_ANSWER = "no answer"
RECIPIENT = f"inbox@{internet.MX_DOMAIN}"


@dataclass(frozen=True)
class Attempt:
    """One email sent (or a batch of `count` whose answer names none of them): how it was answered."""

    channel: str  # "api" or "smtp"
    answer: str  # ACCEPTED, NO_ANSWER, or the status code / SMTP reply code
    at: float  # wall-clock time of the answer
    message_id: str | None = None  # as it arrives at the remote MX, when known
    email_id: str | None = None
    count: int = 1
    sent: float | None = None  # wall-clock time it was sent, when known


@dataclass
class Ledger:
    """Every attempt of every load thread (list.append is atomic), and the event that stops them."""

    attempts: list[Attempt] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def accepted(self, before: float | None = None) -> dict[str, Attempt]:
        """Accepted emails by Message-ID (those answered before `before`, if given)."""
        return {a.message_id: a for a in list(self.attempts)
                if a.answer == ACCEPTED and a.message_id and (before is None or a.at < before)}

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for attempt in list(self.attempts):
            name = f"{attempt.channel} {attempt.answer}"
            counts[name] = counts.get(name, 0) + attempt.count
        return counts


@dataclass
class ApiLoad:
    """Batches of `batch` emails from `sender`, one every `pace` seconds."""

    ledger: Ledger
    client: httpx.Client
    sender: str
    domain: str
    batch: int
    pace: float
    statuses: set[int] = field(default_factory=set)

    def run(self) -> None:
        while not self.ledger.stop.is_set():
            self.post(self.batch)
            self.ledger.stop.wait(self.pace)

    def post(self, count: int) -> None:
        """One batch of `count` emails (also from another thread: httpx's client is thread-safe)."""
        emails = [{"from": self.sender, "to": [RECIPIENT], "subject": f"fault load {uuid.uuid4().hex[:8]}",
                   "text": "A message sent while things break."} for _ in range(count)]
        sent = time.time()
        try:
            response = self.client.post("/emails/batch", json=emails)
        except httpx.TransportError:
            self.ledger.attempts.append(Attempt("api", NO_ANSWER, time.time(), count=len(emails), sent=sent))
            return
        self.statuses.add(response.status_code)
        if response.status_code != 200:
            self.ledger.attempts.append(Attempt("api", str(response.status_code), time.time(), count=len(emails),
                                                sent=sent))
            return
        now = time.time()
        for item in response.json()["data"]:
            self.ledger.attempts.append(Attempt("api", ACCEPTED, now, f"<{item['id']}@{self.domain}>", item["id"]))


@dataclass
class SmtpLoad:
    """Messages submitted on 587, one every `pace` seconds, several to a session: STARTTLS, AUTH with one of the
    team's SMTP credentials, then MAIL/RCPT/DATA. Each carries a Message-ID of its own, which the intake
    keeps, so that one left unanswered can still be told apart at the remote MX."""

    ledger: Ledger
    host: str  # the mail host's name, as its certificate names it
    logins: list[tuple[str, str]]  # taken in turn, a session each: the rate policy counts per login
    context: ssl.SSLContext
    sender: str
    domain: str
    pace: float
    per_session: int = 10
    _session: smtplib.SMTP | None = None
    _sessions: int = 0

    def run(self) -> None:
        sent = 0
        while not self.ledger.stop.is_set():
            self._submit(sent)
            sent += 1
            self.ledger.stop.wait(self.pace)
        self._close()

    def _open(self) -> smtplib.SMTP:
        session = smtplib.SMTP(self.host, 587, timeout=30)
        try:
            session.starttls(context=self.context)
            session.login(*self.logins[self._sessions % len(self.logins)])
        except BaseException:
            session.close()
            raise
        finally:
            self._sessions += 1
        return session

    def _close(self) -> None:
        if self._session is not None:
            try:
                self._session.quit()
            except (smtplib.SMTPException, OSError):
                self._session.close()
        self._session = None

    def _message(self, number: int) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = RECIPIENT
        message["Subject"] = f"fault load over smtp {number}"
        message["Message-ID"] = f"<smtp-{number}-{uuid.uuid4().hex[:12]}@{self.domain}>"
        message.set_content("A message submitted while things break.\n")
        return message

    def _submit(self, number: int) -> None:
        message = self._message(number)
        message_id = message["Message-ID"]
        try:
            if self._session is None:
                self._session = self._open()
            code, reply = self._session.mail(self.sender.split("<")[-1].rstrip(">"))
            if code == 250:
                code, reply = self._session.rcpt(RECIPIENT)
            if code == 250:
                code, reply = self._session.data(message.as_bytes())
        except smtplib.SMTPDataError as refused:  # DATA itself refused: nothing was sent
            code, reply = refused.smtp_code, refused.smtp_error
        except (smtplib.SMTPException, OSError):
            # No answer to DATA (or no session): the message may or may not have been stored.
            self.ledger.attempts.append(Attempt("smtp", NO_ANSWER, time.time(), message_id))
            self._close()
            return
        if code == 250:
            email_id = reply.decode().rsplit(" ", 1)[1]
            self.ledger.attempts.append(Attempt("smtp", ACCEPTED, time.time(), message_id, email_id))
        else:
            self.ledger.attempts.append(Attempt("smtp", str(code), time.time(), message_id))
            try:
                self._session.rset()
            except (smtplib.SMTPException, OSError):
                self._close()
        if number % self.per_session == self.per_session - 1:
            self._close()
