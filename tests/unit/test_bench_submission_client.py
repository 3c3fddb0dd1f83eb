"""The submission benchmark's client: STARTTLS, AUTH, then its share of the messages on each session, every
message with a Message-ID of its own."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.submission_client import Target, submit, with_message_id
from postyard.local_stack.postgres import free_port

MESSAGE = b"From: Receipts <app@example.test>\nMessage-ID: <old@example.test>\nSubject: Hi\n\nHello\n"


def _server_context(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


class Recorder:
    def __init__(self) -> None:
        self.sessions: set[int] = set()
        self.received: list[tuple[str | None, bool, bytes]] = []  # login, over TLS, content

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.sessions.add(id(session))
        self.received.append((session.auth_data, session.ssl is not None, envelope.original_content or b""))
        return "250 2.0.0 Ok"


def _authenticate(server: object, session: Session, envelope: Envelope, mechanism: str, data: object) -> AuthResult:
    good = isinstance(data, LoginPassword) and (data.login, data.password) == (b"bench", b"secret")
    return AuthResult(success=good, auth_data="bench" if good else None)


def test_each_session_starts_tls_and_logs_in_and_the_sessions_share_the_messages(tmp_path: Path):
    recorder, port = Recorder(), free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, tls_context=_server_context(tmp_path),
                            require_starttls=True, auth_require_tls=True, authenticator=_authenticate)
    controller.start()
    try:
        asyncio.run(submit(Target("127.0.0.1", port, "bench", "secret"), "app@example.test", "to@sink.test",
                           MESSAGE, messages=25, sessions=4))
    finally:
        controller.stop()
    assert len(recorder.received) == 25 and len(recorder.sessions) == 4
    assert {(login, tls) for login, tls, _ in recorder.received} == {("bench", True)}
    message_ids = {content.split(b"\r\n", 1)[0] for _, _, content in recorder.received}
    assert len(message_ids) == 25 and all(m.endswith(b"@example.test>") for m in message_ids)
    assert not any(b"<old@example.test>" in content for _, _, content in recorder.received)


def test_a_message_keeps_its_headers_and_body_with_its_message_id_replaced():
    folded = b"Message-ID:\n <old@example.test>\nSubject: Hi\n\nMessage-ID: in the body\n"
    assert with_message_id(folded, "<new@example.test>") == (
        b"Message-ID: <new@example.test>\r\nSubject: Hi\r\n\r\nMessage-ID: in the body\r\n")
