"""Repeated failed logins from one address block it on the mail ports, and the block lifts.

The testbed's ban lasts 30 s (postyard/testbed/inventory.py); production's is an hour.
"""

from __future__ import annotations

import time

from roles.dovecot import DEFAULTS
from tests.testbed.mail_support import MailTestbed

MAXRETRY = DEFAULTS["fail2ban_maxretry"]  # the testbed keeps the default


def test_repeated_auth_failures_block_the_address_for_a_bounded_time(single_testbed):
    mail_bed = MailTestbed(single_testbed)
    address = mail_bed.mail.public_address
    # As many on each listener, fewer than maxretry on either: a listener whose failures fail2ban does not
    # read leaves no ban.
    each = MAXRETRY // 2 + 1
    assert each < MAXRETRY <= 2 * each
    for port, tls in [(587, "starttls"), (465, "implicit")] * each:
        mail_bed.outside.smtp(host=address, port=port, tls=tls, auth=["nobody", "wrong"])

    deadline = time.monotonic() + 30
    while "connect_error" not in (probe := mail_bed.outside.smtp(host=address, port=587, timeout=3)):
        assert time.monotonic() < deadline, "failed logins on 587 and 465 did not block the address"
        time.sleep(1)
    banned = mail_bed.on_mail_host("fail2ban-client status postfix-sasl")
    assert single_testbed.outside_address in banned
    assert mail_bed.outside.smtp(host=address, port=465, tls="implicit", timeout=3).get(
        "connect_error")

    deadline = time.monotonic() + 90
    while "connect_error" in (probe := mail_bed.outside.smtp(host=address, port=587, timeout=3)):
        assert time.monotonic() < deadline, "the block did not lift within 90 s"
        time.sleep(2)
    assert probe["ehlo"] == 250
