"""Benchmark: DKIM signing throughput of the mail tier, against Postfix alone and the raw tools.

    .venv/bin/python bench/dkim.py [--messages 3000] [--sessions 10] [--rounds 3] [--keep]

On a testbed of its own (`bnch`, single topology: booted, deployed, removed at the end unless
--keep), with a sender made as a customer makes one (a team, a domain verified through the API, its
DKIM key synced to OpenDKIM), Postfix's smtp-source on the mail host sends to smtp-sink on the
internet host:

    a. smtp-source -> smtp-sink                                          (the tools' ceiling)
    b. smtp-source -> Postfix, a bench-only loopback listener without the milter -> smtp-sink
    c. smtp-source -> Postfix's internal listener (app.host_layout.INTERNAL_LISTENER, OpenDKIM signing) -> smtp-sink

A message counts once it has left the mail host's queue (relayed to the sink), and every run checks
that the sink received exactly as many messages as were sent. One message through path c is also
relayed to the remote MX, where its DKIM signature must verify against the testbed's DNS. The bench
routes the domain `sink.test` to the sink and adds its listener at runtime, on its own testbed only.
Its figures replace its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import re
import shlex
import socket
import statistics
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# This file's folder would shadow dkimpy (this file is dkim.py): import from the repository root instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from app.host_layout import INTERNAL_LISTENER  # noqa: E402
from bench.figures import command_line, markdown_table, write_section  # noqa: E402
from postyard.appliance_client import ApiAccess, Team, TestbedAppliance, name_resolver  # noqa: E402
from postyard.deployer import REPO, run_deploy  # noqa: E402
from postyard.testbed import bed, internet  # noqa: E402

NAME = "bnch"
SINK_PORT = 2525
SINK_DOMAIN = "sink.test"
SINK_COUNTS = "/tmp/bench-sink.count"
MESSAGE_FILE = "/tmp/bench-message.eml"
SIGNING = INTERNAL_LISTENER  # the internal listener the app's worker uses (roles/postfix.py)
UNSIGNED = "127.0.0.1:10026"  # added by the bench: the internal listener's options without the milter
QUEUE_TIMEOUT = 300


@dataclass(frozen=True)
class Route:
    label: str
    target: str  # host:port smtp-source connects to
    relayed: bool  # whether Postfix sits in between (then the queue must drain)


@dataclass(frozen=True)
class Run:
    messages: int
    accepted_seconds: float
    total_seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.total_seconds


def on_mail(appliance: TestbedAppliance, script: str, timeout: float = 60) -> str:
    """A bash script on the mail host, stopping at the first failure."""
    return appliance.on_mail_host("bash -s", input="set -euo pipefail\n" + script, timeout=timeout)


def on_internet(appliance: TestbedAppliance, script: str, timeout: float = 60) -> str:
    return appliance.on_internet_host("bash -s", input="set -euo pipefail\n" + script, timeout=timeout)


def open_sender(appliance: TestbedAppliance,
                on_team: Callable[[Team], object] | None = None) -> tuple[ApiAccess, Team, str]:
    """A new team and a domain it verified through the API (an RSA-2048 key), its key signing on the mail host.

    `on_team` runs once the team exists and before the API first sees it (the API caches a team's limits).
    """
    socket.getaddrinfo = name_resolver(appliance.host_names())  # type: ignore[assignment]
    team, api = appliance.open_team(f"bench-{uuid.uuid4().hex[:6]}")
    if on_team is not None:
        on_team(team)
    return api, team, appliance.verified_domain(api, prefix="b")


def message(domain: str, recipient: str, message_id: str, body_lines: int = 30) -> str:
    """A plain-text transactional message of about 3 KB, headers like the app's worker sends."""
    line = "Your order has shipped; the receipt and the tracking link are below, thank you for your order."
    headers = [
        f"From: Receipts <app@{domain}>", f"To: Someone <{recipient}>", "Subject: Your receipt",
        "Date: Fri, 21 Nov 2025 10:00:00 +0000", f"Message-ID: <{message_id}@{domain}>", "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 7bit",
    ]
    return "\n".join(headers) + "\n\n" + "\n".join([line] * body_lines) + "\n"


def upload(appliance: TestbedAppliance, path: str, content: str) -> None:
    encoded = base64.b64encode(content.encode()).decode()
    on_mail(appliance, f"echo {encoded} | base64 -d > {path}")


def start_sink(appliance: TestbedAppliance) -> None:
    """smtp-sink on the internet host, counting messages into a file (it discards them)."""
    address = appliance.internet.public_address
    on_internet(
        appliance,
        f"pkill -x smtp-sink || true\n"
        f"setsid nohup /usr/sbin/smtp-sink -c -u nobody {address}:{SINK_PORT} 1024 "
        f"> {SINK_COUNTS} 2>&1 < /dev/null &\n"
        f"for _ in $(seq 50); do ss -ltn | grep -q ':{SINK_PORT} ' && exit 0; sleep 0.1; done; exit 1\n"
    )


def sink_count(appliance: TestbedAppliance) -> int:
    """Messages the sink has received (smtp-sink -c rewrites a `mesg=N` counter line)."""
    counts = re.findall(r"mesg=(\d+)", on_internet(appliance, f"cat {SINK_COUNTS}"))
    return int(counts[-1]) if counts else 0


def route_to_sink(appliance: TestbedAppliance) -> None:
    """sink.test to the sink, and the internal listener's twin without the milter (runtime only)."""
    sink = f"smtp:[{appliance.internet.public_address}]:{SINK_PORT}"
    on_mail(appliance, f"""
echo '{SINK_DOMAIN} {sink}' > /etc/postfix/bench_transport
maps=$(postconf -h transport_maps)
case "$maps" in
  *bench_transport*) ;;
  *) postconf -e "transport_maps = texthash:/etc/postfix/bench_transport, $maps";;
esac
postconf -M '{UNSIGNED}/inet={UNSIGNED} inet n - n - - smtpd'
postconf -P | grep '^{SIGNING}/inet/' | grep -v -e '/smtpd_milters' -e '/syslog_name' \\
  | sed -e 's#^{SIGNING}/inet/##' -e 's# = \\?#=#' | while IFS= read -r setting; do
    postconf -P "{UNSIGNED}/inet/$setting"
  done
postconf -P '{UNSIGNED}/inet/syslog_name=postfix/bench' '{UNSIGNED}/inet/smtpd_milters='
postfix check
postfix reload >/dev/null 2>&1
""")


# Runs on the mail host: send, then wait until the queue is empty; prints nanosecond timestamps.
SEND = """
queue=/var/spool/postfix
queued() {{ find $queue/{{maildrop,incoming,active,deferred,hold}} -type f -print -quit; }}
start=$(date +%s%N)
smtp-source -d -s {sessions} -m {messages} -f {sender} -t {recipient} -F {file} {target}
accepted=$(date +%s%N)
deadline=$(( $(date +%s) + {timeout} ))
while [ {relayed} = 1 ] && [ -n "$(queued)" ]; do
  [ $(date +%s) -lt $deadline ] || {{ echo "queue not empty after {timeout} s" >&2; exit 1; }}
  sleep 0.02
done
echo $start $accepted $(date +%s%N) $(find $queue/deferred -type f | wc -l)
"""


def send(appliance: TestbedAppliance, path: Route, domain: str, messages: int, sessions: int) -> Run:
    before = sink_count(appliance)
    script = SEND.format(
        sessions=sessions, messages=messages, sender=shlex.quote(f"app@{domain}"),
        recipient=f"someone@{SINK_DOMAIN}", file=MESSAGE_FILE, target=path.target, timeout=QUEUE_TIMEOUT,
        relayed=int(path.relayed),
    )
    output = on_mail(appliance, script, timeout=QUEUE_TIMEOUT + 120)
    start, accepted, end, deferred = (int(v) for v in output.split())
    received = sink_count(appliance) - before
    if deferred or received != messages:
        raise RuntimeError(f"{path.label}: {received} of {messages} reached the sink, {deferred} deferred")
    return Run(messages, (accepted - start) / 1e9, (end - start) / 1e9)


def check_signature(appliance: TestbedAppliance, domain: str) -> bool:
    """One message through the signing path to the remote MX; its DKIM signature must verify."""
    message_id = f"bench-{uuid.uuid4().hex[:12]}"
    upload(appliance, "/tmp/bench-sample.eml", message(domain, f"inbox@{internet.MX_DOMAIN}", message_id))
    on_mail(appliance, f"smtp-source -f app@{domain} -t inbox@{internet.MX_DOMAIN} "
                       f"-F /tmp/bench-sample.eml {SIGNING}")
    raw = appliance.wait_for(f"{message_id}@{domain}", timeout=60)
    return b"DKIM-Signature:" in raw and appliance.dkim_verifies(raw)


def prepare(args: argparse.Namespace, log) -> tuple[TestbedAppliance, str]:
    log(f"testbed {NAME!r}: booting")
    testbed = bed.up(NAME, "single", log=lambda _line: None)
    if not args.no_deploy:
        log("deploying")
        run_deploy(REPO / "inventory" / "testbed.py", env={"POSTYARD_TESTBED": NAME}, echo=False)
    appliance = TestbedAppliance(testbed)
    _, _, domain = open_sender(appliance)
    log(f"sender domain {domain} (RSA-2048 key)")
    start_sink(appliance)
    route_to_sink(appliance)
    upload(appliance, MESSAGE_FILE, message(domain, f"someone@{SINK_DOMAIN}", "bench"))
    return appliance, domain


def measure(appliance: TestbedAppliance, domain: str, args: argparse.Namespace, log) -> dict[str, list[Run]]:
    internet_address = appliance.internet.public_address
    routes = [
        Route("a. smtp-source -> smtp-sink", f"{internet_address}:{SINK_PORT}", relayed=False),
        Route("b. -> Postfix (no milter) -> smtp-sink", UNSIGNED, relayed=True),
        Route("c. -> Postfix + OpenDKIM signing -> smtp-sink", SIGNING, relayed=True),
    ]
    for path in routes:  # warm up: processes started, caches filled
        send(appliance, path, domain, min(200, args.messages), args.sessions)
    runs: dict[str, list[Run]] = {p.label: [] for p in routes}
    for round_number in range(1, args.rounds + 1):
        for path in routes:
            run = send(appliance, path, domain, args.messages, args.sessions)
            runs[path.label].append(run)
            log(f"round {round_number}: {path.label}: {run.rate:.0f} msg/s")
    return runs


def report(runs: dict[str, list[Run]], args: argparse.Namespace, signed: bool) -> None:
    medians = {label: statistics.median(r.rate for r in found) for label, found in runs.items()}
    width = max(len(label) for label in medians)
    print(f"\n{args.messages} messages of about 3 KB per run, {args.sessions} sessions, "
          f"{args.rounds} round(s), RSA-2048 key; median (min to max) msg/s, until relayed:")
    for label, found in runs.items():
        rates = [r.rate for r in found]
        print(f"{label:<{width}}  {medians[label]:7.0f}  ({min(rates):.0f} to {max(rates):.0f})")
    a, b, c = medians.values()
    # b and c of one round ran back to back, under about the same load from anything else on the machine.
    per_round = " ".join(f"{rc.rate / rb.rate:.2f}" for rb, rc in zip(*list(runs.values())[1:], strict=False))
    print(f"c/b (signing against Postfix alone): {c / b:.2f} (per round: {per_round})")
    print(f"b/a (Postfix against the tools' ceiling): {b / a:.3f}")
    verdict = "verifies" if signed else "DOES NOT verify"
    print(f"sample through c relayed to the remote MX: DKIM signature {verdict}")
    baselines = ["", f"b/a {b / a:.3f}", f"c/b {c / b:.2f} (per round: {per_round})"]
    rows = [[label, f"{medians[label]:,.0f} ({min(r.rate for r in found):,.0f} to {max(r.rate for r in found):,.0f})",
             baseline] for (label, found), baseline in zip(runs.items(), baselines, strict=True)]
    write_section("dkim", f"{command_line()}: {args.messages} messages of about 3 KB per run and path, "
                          f"{args.sessions} sessions, {args.rounds} round(s), an RSA-2048 key; a message through c "
                          f"relayed to the remote MX: its DKIM signature {verdict}.\n\n"
                  + markdown_table(["path", "msg/s, median (min to max)", "baseline"], rows))


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--messages", type=int, default=3000, help="messages per run and path")
    options.add_argument("--sessions", type=int, default=10, help="concurrent SMTP sessions of smtp-source")
    options.add_argument("--rounds", type=int, default=3,
                         help="runs per path, interleaved; the median is reported")
    options.add_argument("--keep", action="store_true", help="leave the testbed up afterwards")
    options.add_argument("--no-deploy", action="store_true", help="reuse the testbed as it is deployed")
    args = options.parse_args()
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        appliance, domain = prepare(args, log)
        runs = measure(appliance, domain, args, log)
        signed = check_signature(appliance, domain)
    finally:
        if not args.keep:
            bed.down(NAME, log=lambda _line: None)
    report(runs, args, signed)
    return 0 if signed else 1


if __name__ == "__main__":
    sys.exit(main())
