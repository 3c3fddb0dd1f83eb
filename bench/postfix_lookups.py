"""Benchmark: what Postfix asks PostgreSQL while it takes mail with a distinct VERP sender per message.

    .venv/bin/python bench/postfix_lookups.py --testbed NAME [--messages 200]

On a deployed single-host testbed (the API, PostgreSQL and Postfix on one host): a new verified
sending domain, then N messages into Postfix's internal listener (127.0.0.1:10025) on the mail host,
each with its own `bounce+<hex>@<return-path domain>` sender, as the worker sends them, relayed to the
testbed's remote MX. It reads PostgreSQL's transactions (`pg_stat_database`) and the scans of `domains`
(`pg_stat_user_tables`) before the first message and after Postfix's queue is empty, and over an idle
interval as long, which is what the other services do meanwhile. Its figures replace its section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.figures import command_line, markdown_table, write_section  # noqa: E402
from postyard.testbed import internet, state  # noqa: E402
from tests.testbed.mail_support import MailTestbed  # noqa: E402

STATS = ("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'postyard' "
         "UNION ALL SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
         "WHERE relname = 'domains'")
SEND = """
import smtplib, sys, uuid
bounce_domain, recipient, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with smtplib.SMTP("127.0.0.1", 10025) as smtp:
    for n in range(count):
        sender = f"bounce+{uuid.uuid4().hex}@{bounce_domain}"
        message = f"From: <{sender}>\\r\\nTo: <{recipient}>\\r\\nSubject: {n}\\r\\n\\r\\nhi\\r\\n"
        smtp.sendmail(sender, [recipient], message)
"""


def stats(bed: MailTestbed) -> tuple[int, int]:
    """Transactions in the app's database, scans of `domains`; after PostgreSQL has published its counters."""
    time.sleep(1.5)
    out = bed.on_mail_host(["runuser", "-u", "postgres", "--", "psql", "-d", "postyard", "-XAtc", STATS])
    transactions, scans = (int(line) for line in out.split())
    return transactions, scans


def queue_empty(bed: MailTestbed, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while bed.on_mail_host("postqueue -j | wc -l").strip() != "0":
        if time.monotonic() > deadline:
            raise SystemExit("Postfix's queue did not empty")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--testbed", required=True, help="a deployed single-host testbed")
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    loaded = state.load(args.testbed)
    if loaded is None:
        raise SystemExit(f"no testbed {args.testbed}")
    bed = MailTestbed(loaded)
    sender = bed.new_sender()
    bounce_domain = next(r["name"] for r in sender.records if r["type"] == "MX")
    queue_empty(bed)

    before = stats(bed)
    started = time.monotonic()
    bed.on_mail_host(["/opt/postyard/venv/bin/python", "-c", SEND, bounce_domain, f"inbox@{internet.MX_DOMAIN}",
                      str(args.messages)], timeout=600)
    queue_empty(bed)
    after = stats(bed)
    took = time.monotonic() - started
    time.sleep(took)
    idle = stats(bed)

    run = [after[0] - before[0], after[1] - before[1]]
    quiet = [idle[0] - after[0], idle[1] - after[1]]
    rows = [(figure, f"{run[n]:,}", f"{run[n] / args.messages:.2f}", f"{quiet[n]:,}")
            for n, figure in enumerate(("PostgreSQL transactions", "scans of `domains`"))]
    table = markdown_table(("figure", f"{args.messages} messages ({took:.1f} s)", "per message",
                            "idle, as long"), rows)
    print(table)
    write_section("postfix-lookups", f"{command_line()}: {args.messages} messages into 127.0.0.1:10025, each "
                                     f"from its own `bounce+<hex>@` sender, relayed to the testbed's MX; the whole "
                                     f"appliance on one host, its other services included\n\n{table}")


if __name__ == "__main__":
    main()
