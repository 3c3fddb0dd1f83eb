"""A message as a customer's correspondent would send it to a domain that receives: a text and an HTML body and a
PDF attached. The API suite pipes it in; the testbed sends it over SMTP to the mail host."""

from __future__ import annotations

import uuid
from email.message import EmailMessage

__all__ = ["ATTACHMENT", "ATTACHMENT_NAME", "inbound_message"]

ATTACHMENT = b"%PDF-1.4 an invoice\n"
ATTACHMENT_NAME = "invoice.pdf"


def inbound_message(sender: str, to: str, subject: str = "Invoice 42") -> bytes:
    """The message from `sender` (an address) to `to`, with CRLF line ends as on the wire."""
    domain = sender.rpartition("@")[2]
    message = EmailMessage()
    message["From"] = f"Alice <{sender}>"
    message["To"] = to
    message["Cc"] = f"carol@{domain}"
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@{domain}>"
    message.set_content("Your invoice is attached.")
    message.add_alternative("<p>Your invoice is <b>attached</b>.</p>", subtype="html")
    message.add_attachment(ATTACHMENT, maintype="application", subtype="pdf", filename=ATTACHMENT_NAME)
    return message.as_bytes().replace(b"\n", b"\r\n")
