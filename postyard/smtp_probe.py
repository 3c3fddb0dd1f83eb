"""One SMTP session, run wherever the caller's vantage point is (a network namespace), reported as JSON.

    python -m postyard.smtp_probe '{"host": "...", "port": 587, "tls": "starttls", ...}'

Steps, each optional: STARTTLS (or implicit TLS), AUTH PLAIN, then `count` times MAIL FROM, RCPT TO
(one address, or a list), DATA. The report
has every reply code and text, so a test asserts on what the server said, not on an exception.
Certificates are not verified here; the TLS tests check the chain.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import sys
from typing import Any

__all__ = ["run_session"]


def _context(spec: dict[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if spec.get("max_tls"):
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = getattr(ssl.TLSVersion, spec["max_tls"])
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def _transaction(client: smtplib.SMTP, spec: dict[str, Any]) -> dict[str, Any]:
    """MAIL, RCPT and (with a message) DATA; every reply, and RSET after a refusal."""
    found: dict[str, Any] = {}
    code, text = client.mail(spec["mail_from"])
    found["mail"] = [code, text.decode()]
    if code == 250:
        recipients = spec["rcpt_to"] if isinstance(spec["rcpt_to"], list) else [spec["rcpt_to"]]
        replies = [[code, text.decode()] for code, text in map(client.rcpt, recipients)]
        # "rcpt": the first refusal, else the last reply; "rcpts": every reply, for a list of recipients.
        found["rcpt"] = next((r for r in replies if r[0] >= 400), replies[-1])
        if len(recipients) > 1:
            found["rcpts"] = replies
        if any(r[0] in (250, 251) for r in replies) and "message" in spec:
            try:
                code, text = client.data(spec["message"].encode())
            except smtplib.SMTPDataError as refused:
                code, text = refused.smtp_code, refused.smtp_error
            found["data"] = [code, text.decode() if isinstance(text, bytes) else str(text)]
    if found.get("data", found.get("rcpt", found["mail"]))[0] >= 400:
        client.rset()
    return found


def run_session(spec: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    timeout = spec.get("timeout", 20)
    try:
        if spec.get("tls") == "implicit":
            client: smtplib.SMTP = smtplib.SMTP_SSL(spec["host"], spec["port"], timeout=timeout,
                                                    context=_context(spec))
        else:
            client = smtplib.SMTP(spec["host"], spec["port"], timeout=timeout)
    except (OSError, smtplib.SMTPException) as error:
        return {"connect_error": f"{type(error).__name__}: {error}"}
    try:
        report["ehlo"] = list(client.ehlo("client.test"))[0]
        report["features"] = sorted(client.esmtp_features)
        if spec.get("tls") == "implicit":
            report["tls_version"] = client.sock.version()  # type: ignore[union-attr]
        if spec.get("tls") == "starttls":
            try:
                code, text = client.starttls(context=_context(spec))
                report["starttls"] = [code, text.decode()]
                report["tls_version"] = client.sock.version()  # type: ignore[union-attr]
                client.ehlo("client.test")
                report["features_after_tls"] = sorted(client.esmtp_features)
            except (ssl.SSLError, OSError) as error:
                report["tls_error"] = f"{type(error).__name__}: {error}"
                return report
        if "auth" in spec:
            import base64
            token = base64.b64encode(f"\0{spec['auth'][0]}\0{spec['auth'][1]}".encode()).decode()
            code, text = client.docmd("AUTH", f"PLAIN {token}")
            report["auth"] = [code, text.decode()]
        if "mail_from" in spec:
            transactions = [_transaction(client, spec) for _ in range(spec.get("count", 1))]
            report.update(transactions[0])
            if len(transactions) > 1:
                report["transactions"] = transactions
        client.quit()
    except (OSError, smtplib.SMTPException) as error:
        report["error"] = f"{type(error).__name__}: {error}"
    return report


if __name__ == "__main__":
    print(json.dumps(run_session(json.loads(sys.argv[1]))))
