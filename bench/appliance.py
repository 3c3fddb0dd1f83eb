"""Benchmark: the appliance on one host, every figure beside a baseline from the same run.

    .venv/bin/python bench/appliance.py [--messages 5000] [--concurrency 16] [--sessions 10]
                                        [--batch 100] [--only submission] [--testbed bnch2]
                                        [--keep] [--no-deploy]

On a testbed of its own (`bnch2` unless --testbed names another, single topology: booted, deployed,
removed at the end unless --keep):

1. pipeline: N emails through `POST /emails` (HTTPS on 443, the team's API key, N concurrent
   clients) until all of them have reached smtp-sink on the internet host (the worker hands them to
   Postfix's internal listener, OpenDKIM signs, Postfix relays); against smtp-source on the mail host
   into the same listener, relayed to the same sink, with the same message (one the API made, taken
   from the remote MX) and count;
2. `POST /emails` latency (p50, p99) during that load; then the same N through `POST /emails/batch`;
3. the fresh deploy against `apt-get install` of the same Debian packages on another fresh host
   (a second testbed, `bnch3`, booted and removed), and the no-op redeploy;
4. memory: the proportional set size (PSS) of the appliance's services just after a warm-up, at rest
   (a quiet minute later: PostgreSQL has closed the pooled connections left unused, Postfix's idle
   daemons have exited), and under the load;
5. SMTP submission: N messages submitted on 587 (STARTTLS, AUTH with the team's SMTP login) through
   the SMTP intake, the outbox and the worker to the sink, against the same client with the same
   login into a bench-only twin of 587 whose mail Postfix queues itself, signs and relays (no intake).
   The client (bench/submission_client.py) runs on the mail host, over loopback like smtp-source;
   the per-login rate limit is raised while it runs. `--only submission` measures this alone.

The bench routes `sink.test` to the sink at runtime (bench/dkim.py's helpers), adds the twin of 587
and raises the per-login limit at runtime, on its own testbed only, and takes the last two away
after. Its figures replace its sections of docs/benchmarks.md (`--only submission`: the submission
section alone).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# bench/dkim.py would shadow dkimpy if bench/ led sys.path: the repository root goes first instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import dkim as mail_bench  # noqa: E402
from bench import submission  # noqa: E402
from bench.dkim import Route, Run  # noqa: E402
from bench.figures import command_line, markdown_table, write_section  # noqa: E402
from postyard.appliance_client import ApiAccess, Team, TestbedAppliance  # noqa: E402
from postyard.deployer import REPO, DeployResult, run_deploy  # noqa: E402
from postyard.testbed import bed, internet  # noqa: E402

NAME = "bnch2"  # unless --testbed names another
APT_NAME = "bnch3"
INVENTORY = REPO / "inventory" / "testbed.py"
SINK_RECIPIENT = f"someone@{mail_bench.SINK_DOMAIN}"
ARRIVAL_TIMEOUT = 900
# Quiet time before the at-rest sample: PostgreSQL's idle_session_timeout for pooled connections
# (Settings.database_idle_session_timeout, 60 s) and Postfix's max_idle (100 s), with a margin.
AT_REST_SECONDS = 110
# systemd units (by name prefix) whose processes make up the appliance on a host.
APPLIANCE_UNITS = ("postgresql", "redis", "postfix", "dovecot", "opendkim", "postyard-", "fail2ban")
# Trace headers the relay and the remote MX added; the rest is the message as the worker submitted it.
TRACE_HEADERS = ("Return-Path", "Delivered-To", "X-Original-To", "Received", "DKIM-Signature")

Log = Callable[[str], None]

# Runs on a host: each process's systemd unit, PSS and RSS (kB), and CPU seconds (its own and its
# reaped children's: Postfix's and PostgreSQL's short-lived processes are counted in their parent).
# Per process, not per cgroup: testbed hosts share one cgroup hierarchy, so a unit's cgroup holds
# the same unit's processes of every host.
PROCESSES = """
import glob, json, os
tick = os.sysconf("SC_CLK_TCK")
found = []
for proc in glob.glob("/proc/[0-9]*"):
    try:
        paths = [line.strip().split(":", 2)[2] for line in open(proc + "/cgroup")]
        sizes = dict(l.split(":")[0:2] for l in open(proc + "/smaps_rollup") if l[:4] in ("Pss:", "Rss:"))
        times = open(proc + "/stat").read().rsplit(")", 1)[1].split()[11:15]
    except (OSError, ValueError, IndexError):
        continue  # gone, or a kernel thread
    units = [part for path in paths for part in path.split("/") if part.endswith(".service")]
    unit = units[0] if units else paths[-1]
    found.append([unit, int(sizes["Pss"].split()[0]), int(sizes["Rss"].split()[0]),
                  sum(int(t) for t in times) / tick])
print(json.dumps(found))
"""


@dataclass(frozen=True)
class Memory:
    """Appliance memory in kB, per unit: (PSS, RSS)."""

    units: dict[str, tuple[int, int]]

    @property
    def pss(self) -> int:
        return sum(p for p, _ in self.units.values())

    @property
    def rss(self) -> int:
        return sum(r for _, r in self.units.values())


@dataclass(frozen=True)
class Pipeline:
    messages: int
    batch: int  # emails per request: 1 is POST /emails, more is POST /emails/batch
    seconds: float  # first request to the last arrival at the sink
    accepted_seconds: float  # first request to the last answer
    latencies_ms: list[float]
    cpu: dict[str, float]  # CPU seconds per unit on the host
    client_cpu: float  # CPU seconds of the bench's HTTPS clients (beside the host, on the same machine)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def percentile(self, cut: int) -> float:
        return statistics.quantiles(self.latencies_ms, n=100)[cut - 1]


@dataclass(frozen=True)
class Submission:
    messages: int
    seconds: float  # the client's first session to the last arrival at the sink
    accepted_seconds: float  # the client's first session to the last answer
    cpu: dict[str, float]  # CPU seconds per unit on the host
    client_cpu: float  # CPU seconds of the submission client (on the mail host, outside the appliance's units)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


@dataclass
class Deploy:
    fresh: DeployResult
    noop: DeployResult
    packages: list[str] = field(default_factory=list)
    apt_update_seconds: float = 0.0
    apt_install_seconds: float = 0.0


def processes(appliance: TestbedAppliance) -> list[tuple[str, int, int, float]]:
    """(unit, PSS kB, RSS kB, CPU seconds) of each process of the appliance's units."""
    found = json.loads(mail_bench.on_mail(appliance, f"python3 - <<'EOF'\n{PROCESSES}\nEOF\n"))
    return [(unit, pss, rss, cpu) for unit, pss, rss, cpu in found if unit.startswith(APPLIANCE_UNITS)]


def memory(appliance: TestbedAppliance) -> Memory:
    units: dict[str, tuple[int, int]] = {}
    for unit, pss, rss, _ in processes(appliance):
        old = units.get(unit, (0, 0))
        units[unit] = (old[0] + pss, old[1] + rss)
    return Memory(units)


def cpu_seconds(appliance: TestbedAppliance) -> dict[str, float]:
    used: dict[str, float] = {}
    for unit, _, _, cpu in processes(appliance):
        used[unit] = used.get(unit, 0.0) + cpu
    return used


def cpu_used(appliance: TestbedAppliance, since: dict[str, float]) -> dict[str, float]:
    """CPU seconds each unit used since the `since` reading (the ones that used any)."""
    now = cpu_seconds(appliance)
    return {u: s - since.get(u, 0.0) for u, s in now.items() if s - since.get(u, 0.0) > 0.0}


class MemorySampler(threading.Thread):
    """Samples memory until stopped; keeps the sample with the largest total PSS."""

    def __init__(self, appliance: TestbedAppliance, every: float = 3.0) -> None:
        super().__init__(daemon=True)
        self.appliance, self.every, self.peak = appliance, every, Memory({})
        self.samples = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            sample = memory(self.appliance)
            self.samples += 1
            if sample.pss > self.peak.pss:
                self.peak = sample


def manual_packages(appliance: TestbedAppliance) -> set[str]:
    return set(mail_bench.on_mail(appliance, "apt-mark showmanual").split())


def deploy_figures(appliance: TestbedAppliance, name: str, log: Log) -> Deploy:
    """Fresh and no-op deploy of testbed `name`, then apt-get of the packages that deploy added, on `bnch3`."""
    fresh = run_deploy(INVENTORY, env={"POSTYARD_TESTBED": name}, echo=False)
    log(f"fresh deploy {fresh.seconds:.1f} s; no-op redeploy")
    noop = run_deploy(INVENTORY, env={"POSTYARD_TESTBED": name}, echo=False)
    figures = Deploy(fresh, noop)
    deployed = manual_packages(appliance)
    log(f"testbed {APT_NAME!r}: booting, for apt-get alone")
    try:
        other = TestbedAppliance(bed.up(APT_NAME, "single", log=lambda _line: None))
        figures.packages = sorted(deployed - manual_packages(other))
        started = time.monotonic()
        mail_bench.on_mail(other, "apt-get update -qq", timeout=600)
        figures.apt_update_seconds = time.monotonic() - started
        started = time.monotonic()
        mail_bench.on_mail(other, "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
                           + " ".join(figures.packages) + " >/dev/null", timeout=600)
        figures.apt_install_seconds = time.monotonic() - started
    finally:
        bed.down(APT_NAME, log=lambda _line: None)
    return figures


def payload(domain: str, recipient: str, subject: str = "Your receipt") -> dict[str, object]:
    body = mail_bench.message(domain, recipient, "bench").split("\n\n", 1)[1]
    return {"from": f"Receipts <app@{domain}>", "to": [recipient], "subject": subject, "text": body}


def sample_message(api: ApiAccess, appliance: TestbedAppliance, domain: str) -> tuple[str, bool]:
    """One email through the API to the remote MX: the message as submitted, and whether its DKIM verifies."""
    subject = f"Your receipt {uuid.uuid4().hex[:12]}"

    async def post() -> None:
        async with api.async_client(1) as client:
            (await client.post("/emails", json=payload(domain, f"inbox@{internet.MX_DOMAIN}", subject))
             ).raise_for_status()

    asyncio.run(post())
    raw = appliance.wait_for(subject, timeout=120)
    parsed = email.message_from_bytes(raw)
    for header in TRACE_HEADERS:
        del parsed[header]
    return parsed.as_string(), appliance.dkim_verifies(raw)


def wait_for_sink(appliance: TestbedAppliance, target: int, poll: float = 0.5) -> float:
    """Poll the sink until it counts `target` messages; returns the monotonic time it was seen."""
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while (count := mail_bench.sink_count(appliance)) < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the sink has {count} of {target} messages after {ARRIVAL_TIMEOUT} s")
        time.sleep(poll)
    return time.monotonic()


async def post_emails(api: ApiAccess, body: dict[str, object], messages: int, concurrency: int,
                      batch: int) -> list[float]:
    """Send `messages` emails, `batch` a request, from `concurrency` clients; latencies in ms."""
    latencies: list[float] = []
    path = "/emails" if batch == 1 else "/emails/batch"
    remaining = iter(range(0, messages, batch))
    async with api.async_client(concurrency) as client:

        async def worker() -> None:
            for first in remaining:
                request = body if batch == 1 else [body] * min(batch, messages - first)
                started = time.perf_counter()
                response = await client.post(path, json=request)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:200]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def pipeline(api: ApiAccess, appliance: TestbedAppliance, domain: str, messages: int, concurrency: int,
             batch: int = 1) -> Pipeline:
    target = mail_bench.sink_count(appliance) + messages
    before, client = cpu_seconds(appliance), time.process_time()
    started = time.monotonic()
    latencies = asyncio.run(post_emails(api, payload(domain, SINK_RECIPIENT), messages, concurrency, batch))
    accepted = time.monotonic()
    arrived = wait_for_sink(appliance, target)
    client_cpu = time.process_time() - client
    if mail_bench.sink_count(appliance) != target:
        raise RuntimeError("the sink received more messages than were sent")
    return Pipeline(messages, batch, arrived - started, accepted - started, latencies,
                    cpu_used(appliance, before), client_cpu)


def submitted(appliance: TestbedAppliance, login: submission.Login, target: str, domain: str, messages: int,
              sessions: int) -> Submission:
    """`messages` submitted by the client into `target` until all of them have reached the sink."""
    expected = mail_bench.sink_count(appliance) + messages
    before = cpu_seconds(appliance)
    sent = submission.submit(appliance, login, target, f"app@{domain}", SINK_RECIPIENT, messages, sessions)
    wait_for_sink(appliance, expected)
    arrived = time.time()  # the client's clock: the testbed's hosts are containers on this machine's kernel
    cpu = cpu_used(appliance, before)
    if mail_bench.sink_count(appliance) != expected:
        raise RuntimeError("the sink received more messages than were sent")
    return Submission(messages, arrived - sent.started, sent.seconds, cpu, sent.client_cpu)


def prepare(appliance: TestbedAppliance, log: Log) -> tuple[ApiAccess, str]:
    """A team whose rate limits never interfere, and a domain it verified; the sink routed."""

    def unlimited(team: Team) -> None:
        limit = 100_000_000
        update = f"UPDATE teams SET rate_limit = {limit}, api_key_rate_limit = {limit} WHERE id = '{team.id}'"
        psql(appliance, update)

    api, _, domain = mail_bench.open_sender(appliance, on_team=unlimited)
    log(f"sender domain {domain} (verified through the API, key synced)")
    mail_bench.start_sink(appliance)
    mail_bench.route_to_sink(appliance)
    return api, domain


@dataclass
class Figures:
    message_bytes: int = 0
    signed: bool = False
    deploy: Deploy | None = None
    warm: Memory = field(default_factory=lambda: Memory({}))  # 5 s after the warm-up
    idle: Memory = field(default_factory=lambda: Memory({}))  # at rest, AT_REST_SECONDS after it
    load: Memory = field(default_factory=lambda: Memory({}))
    load_samples: int = 0
    baseline: Run | None = None
    baseline_cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per unit on the host
    pipeline: Pipeline | None = None
    batched: Pipeline | None = None
    emails_per_commit: float = 0.0  # of POST /emails: how many emails each transaction stored, on average
    direct: Submission | None = None  # the client into 587's twin without the intake: the baseline
    submission: Submission | None = None  # the client into 587, through the intake
    submissions_per_commit: float = 0.0  # of the intake: how many emails each transaction stored, on average


def measure(args: argparse.Namespace, log: Log) -> Figures:
    figures = Figures()
    if not args.no_deploy:
        bed.down(args.testbed, log=lambda _line: None)
    testbed = bed.up(args.testbed, "single", log=lambda _line: None)
    appliance = TestbedAppliance(testbed)
    if not args.no_deploy:
        log(f"testbed {args.testbed!r} booted; fresh deploy")
        if args.only:
            run_deploy(INVENTORY, env={"POSTYARD_TESTBED": args.testbed}, echo=False)
        else:
            figures.deploy = deploy_figures(appliance, args.testbed, log)
    api, domain = prepare(appliance, log)
    message, figures.signed = sample_message(api, appliance, domain)
    figures.message_bytes = len(message.encode())
    mail_bench.upload(appliance, mail_bench.MESSAGE_FILE, message)
    if args.only != "submission":
        measure_api(appliance, api, domain, figures, args, log)
    measure_submission(appliance, api, domain, figures, args, log)
    return figures


def measure_submission(appliance: TestbedAppliance, api: ApiAccess, domain: str, figures: Figures,
                       args: argparse.Namespace, log: Log) -> None:
    """The same client and login into 587's twin without the intake, then into 587 through it."""
    login = submission.smtp_login(api, appliance, domain)
    with submission.raised_limit_and_direct_twin(appliance):
        log(f"SMTP login {login.username}, per-login limit raised; warm-up of {submission.DIRECT} and 587")
        for target in (submission.DIRECT, submission.SUBMISSION):
            submitted(appliance, login, target, domain, min(200, args.messages), args.sessions)
        log(f"baseline: the client into {submission.DIRECT}, queued by Postfix")
        figures.direct = submitted(appliance, login, submission.DIRECT, domain, args.messages, args.sessions)
        log(f"{figures.direct.rate:.0f} msg/s; the client into 587 through the SMTP intake")
        figures.submission = submitted(appliance, login, submission.SUBMISSION, domain, args.messages,
                                       args.sessions)
        figures.submissions_per_commit = emails_per_commit(appliance, args.messages)
        log(f"{figures.submission.rate:.0f} msg/s, {figures.submissions_per_commit:.1f} emails per commit")


def emails_per_commit(appliance: TestbedAppliance, messages: int) -> float:
    """How many of the last `messages` emails each transaction stored, on average (group commit).

    Counted on their first events, which are written with them and never updated (an email's own row
    is updated by the worker, so its xmin no longer names the transaction that stored it)."""
    query = ("SELECT count(*)::float / count(DISTINCT xmin::text) FROM (SELECT xmin FROM email_events "
             f"WHERE type = 'queued' ORDER BY created_at DESC LIMIT {messages}) e")
    return float(psql(appliance, query))


def psql(appliance: TestbedAppliance, sql: str) -> str:
    """One statement on the appliance's database, as its superuser; the rows, unaligned."""
    return mail_bench.on_mail(appliance, f'runuser -u postgres -- psql -qAt -d postyard -c "{sql}"')


def measure_api(appliance: TestbedAppliance, api: ApiAccess, domain: str, figures: Figures,
                args: argparse.Namespace, log: Log) -> None:
    """POST /emails and /emails/batch against smtp-source into the internal listener, with memory."""
    log(f"message of {figures.message_bytes} bytes; warm-up")
    pipeline(api, appliance, domain, min(200, args.messages), args.concurrency)
    mail_bench.send(appliance, Route("warm-up", mail_bench.SIGNING, relayed=True), domain, 200, args.sessions)
    time.sleep(5)
    figures.warm = memory(appliance)
    log(f"{mib(figures.warm.pss)} just after the warm-up; at rest in {AT_REST_SECONDS} s")
    time.sleep(AT_REST_SECONDS - 5)
    figures.idle = memory(appliance)
    log(f"baseline: smtp-source into {mail_bench.SIGNING}")
    before = cpu_seconds(appliance)
    figures.baseline = mail_bench.send(appliance, Route("baseline", mail_bench.SIGNING, relayed=True), domain,
                                       args.messages, args.sessions)
    figures.baseline_cpu = cpu_used(appliance, before)
    log(f"{figures.baseline.rate:.0f} msg/s; pipeline: {args.messages} x POST /emails")
    sampler = MemorySampler(appliance)
    sampler.start()
    try:
        figures.pipeline = pipeline(api, appliance, domain, args.messages, args.concurrency)
        figures.emails_per_commit = emails_per_commit(appliance, args.messages)
        log(f"{figures.pipeline.rate:.0f} msg/s, {figures.emails_per_commit:.1f} emails per commit")
        if args.batch > 1:
            log(f"pipeline: {args.messages} emails by POST /emails/batch, {args.batch} a request")
            figures.batched = pipeline(api, appliance, domain, args.messages, args.concurrency, args.batch)
    finally:
        sampler.stopped.set()
        sampler.join()
    figures.load, figures.load_samples = sampler.peak, sampler.samples


def mib(kb: int) -> str:
    return f"{kb / 1024:.0f} MiB"


def rows(figures: Figures, args: argparse.Namespace) -> list[tuple[str, str]]:
    run, base = figures.pipeline, figures.baseline
    assert run is not None and base is not None
    found = [
        ("pipeline: POST /emails -> worker -> Postfix + OpenDKIM -> sink", f"{run.rate:.0f} msg/s"),
        ("  POST /emails answered (all accepted)", f"{args.messages / run.accepted_seconds:.0f} req/s"),
        (f"baseline: smtp-source -> {mail_bench.SIGNING} (OpenDKIM) -> sink", f"{base.rate:.0f} msg/s"),
        ("pipeline / baseline (aim >= 0.6)", f"{run.rate / base.rate:.2f}"),
        ("POST /emails latency under that load, p50 / p99 (aim p99 <= 250 ms)",
         f"{run.percentile(50):.0f} / {run.percentile(99):.0f} ms"),
        ("  emails stored per commit, mean (group commit)", f"{figures.emails_per_commit:.1f}"),
    ]
    if (batched := figures.batched) is not None:
        found += [
            (f"pipeline by POST /emails/batch ({batched.batch} a request)", f"{batched.rate:.0f} msg/s"),
            ("  batches answered (all accepted)", f"{args.messages / batched.accepted_seconds:.0f} msg/s"),
            ("batch pipeline / baseline (aim >= 0.8)", f"{batched.rate / base.rate:.2f}"),
        ]
    if (deploy := figures.deploy) is not None:
        apt = deploy.apt_update_seconds + deploy.apt_install_seconds
        found += [
            (f"fresh single-host deploy ({deploy.fresh.changed} of {deploy.fresh.operations} changed)",
             f"{deploy.fresh.seconds:.1f} s"),
            (f"apt-get update + install of its {len(deploy.packages)} packages on a fresh host",
             f"{apt:.1f} s ({deploy.apt_update_seconds:.1f} + {deploy.apt_install_seconds:.1f})"),
            ("fresh deploy / apt-get (aim <= 1.3)", f"{deploy.fresh.seconds / apt:.2f}"),
            (f"no-op redeploy ({deploy.noop.changed} of {deploy.noop.operations} changed; aim < 3 s)",
             f"{deploy.noop.seconds:.1f} s"),
        ]
    return found + [
        ("appliance memory 5 s after the warm-up, PSS (RSS)", f"{mib(figures.warm.pss)} ({mib(figures.warm.rss)})"),
        (f"appliance memory at rest ({AT_REST_SECONDS} s later), PSS (RSS) (aim < 600 MiB)",
         f"{mib(figures.idle.pss)} ({mib(figures.idle.rss)})"),
        (f"appliance memory under load, peak of {figures.load_samples} samples, PSS (RSS)",
         f"{mib(figures.load.pss)} ({mib(figures.load.rss)})"),
    ]


def submission_rows(figures: Figures) -> list[tuple[str, str]]:
    through, direct = figures.submission, figures.direct
    assert through is not None and direct is not None
    return [
        ("submission: 587 (STARTTLS, AUTH) -> SMTP intake -> worker -> Postfix + OpenDKIM -> sink",
         f"{through.rate:.0f} msg/s"),
        ("  submissions answered (all accepted)", f"{through.messages / through.accepted_seconds:.0f} msg/s"),
        ("  emails stored per commit, mean (group commit)", f"{figures.submissions_per_commit:.1f}"),
        (f"baseline: the same client and login -> {submission.DIRECT} (587 without the intake; OpenDKIM) -> sink",
         f"{direct.rate:.0f} msg/s"),
        ("  submissions answered (all accepted)", f"{direct.messages / direct.accepted_seconds:.0f} msg/s"),
        ("submission / baseline (aim >= 0.7)", f"{through.rate / direct.rate:.2f}"),
    ]


def cpu_rows(columns: list[dict[str, float]], clients: tuple[str, list[float]],
             messages: int) -> list[tuple[str, list[float]]]:
    """CPU ms per message, one value per column: each unit that used 0.05 ms or more in one, the appliance's
    total, and the bench's own client (beside the appliance, on the same cores)."""
    per_message = [{unit: seconds * 1000 / messages for unit, seconds in c.items()} for c in columns]
    units = sorted(set().union(*per_message), key=lambda u: -per_message[0].get(u, 0.0))
    found = [(unit, [c.get(unit, 0.0) for c in per_message]) for unit in units]
    return [(unit, values) for unit, values in found if max(values) >= 0.05] + [
        ("all of the appliance", [sum(c.values()) for c in per_message]),
        (clients[0], [seconds * 1000 / messages for seconds in clients[1]]),
    ]


def print_cpu(names: list[str], found: list[tuple[str, list[float]]], width: int) -> None:
    print(f"\nCPU ms per message on the host, {' | '.join(names)}:")
    for label, values in found:
        print(f"  {label:<{width - 2}}  " + " | ".join(f"{v:6.2f}" for v in values))


def print_table(table: list[tuple[str, str]], width: int) -> None:
    for label, value in table:
        print(f"{label:<{width}}  {value}")


def report_api(figures: Figures, args: argparse.Namespace, verdict: str) -> None:
    print(f"\n{args.messages} messages of {figures.message_bytes} bytes to smtp-sink, RSA-2048 DKIM, "
          f"{args.concurrency} API clients, {args.sessions} smtp-source sessions")
    table = rows(figures, args)
    width = max(len(label) for label, _ in table)
    print_table(table, width)
    idle, load = figures.idle.units, figures.load.units
    print("\nPSS per unit, at rest -> under load:")
    for unit in sorted(set(idle) | set(load), key=lambda u: -load.get(u, (0, 0))[0]):
        before, after = idle.get(unit, (0, 0))[0], load.get(unit, (0, 0))[0]
        print(f"  {unit:<{width - 2}}  {mib(before):>8} -> {mib(after)}")
    runs = [r for r in (figures.pipeline, figures.batched) if r is not None]
    print_cpu(["POST /emails", "batch"][:len(runs)] + ["baseline"],
              cpu_rows([r.cpu for r in runs] + [figures.baseline_cpu],
                       ("the bench's HTTPS clients (same machine)", [r.client_cpu for r in runs]), args.messages),
              width)
    if figures.deploy is not None:
        print(f"\npackages: {' '.join(figures.deploy.packages)}")
    write_section("appliance", f"{command_line()}: {args.messages} messages of {figures.message_bytes} bytes to "
                               f"smtp-sink, RSA-2048 DKIM, {args.concurrency} API clients, {args.sessions} smtp-source "
                               f"sessions; a sample through the API relayed to the remote MX: its DKIM signature "
                               f"{verdict}.\n\n" + markdown_table(["figure", "measured"], table))


def report_submission(figures: Figures, args: argparse.Namespace) -> None:
    through, direct = figures.submission, figures.direct
    assert through is not None and direct is not None
    setting = (f"{args.messages} messages of {figures.message_bytes} bytes to smtp-sink, RSA-2048 DKIM, "
               f"{args.sessions} sessions of bench/submission_client.py on the mail host over loopback (aiosmtplib: "
               f"STARTTLS, AUTH PLAIN, then one message after another, no pipelining), the per-login limit raised")
    print(f"\n{setting}")
    table = submission_rows(figures)
    width = max(len(label) for label, _ in table)
    print_table(table, width)
    names = ["through the intake", "baseline"]
    found = cpu_rows([through.cpu, direct.cpu],
                     ("the submission client (on the mail host)", [through.client_cpu, direct.client_cpu]),
                     args.messages)
    print_cpu(names, found, width)
    cpu_table = markdown_table(["CPU ms per message", *names],
                               [(label, *(f"{v:.2f}" for v in values)) for label, values in found])
    write_section("submission", f"{command_line()}: {setting}.\n\n" + markdown_table(["figure", "measured"], table)
                  + "\n\n" + cpu_table)


def report(figures: Figures, args: argparse.Namespace) -> None:
    verdict = "verifies" if figures.signed else "DOES NOT verify"
    if figures.pipeline is not None:
        report_api(figures, args, verdict)
    if figures.submission is not None:
        report_submission(figures, args)
    print(f"sample through the API relayed to the remote MX: DKIM signature {verdict}")


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--messages", type=int, default=5000,
                         help="messages through the pipeline and the baseline")
    options.add_argument("--concurrency", type=int, default=16, help="concurrent API clients")
    options.add_argument("--sessions", type=int, default=10,
                         help="concurrent SMTP sessions of smtp-source, and of the submission client")
    options.add_argument("--batch", type=int, default=100,
                         help="then the same through POST /emails/batch, this many a request (1: skip)")
    options.add_argument("--only", choices=["submission"],
                         help="measure this alone: SMTP submission through the intake against its baseline")
    options.add_argument("--testbed", default=NAME, help="the testbed's name (booted unless --no-deploy)")
    options.add_argument("--keep", action="store_true", help="leave the testbed up afterwards")
    options.add_argument("--no-deploy", action="store_true",
                         help="reuse the testbed as it is deployed (no deploy figures)")
    args = options.parse_args()
    log: Log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        figures = measure(args, log)
    finally:
        if not args.keep:
            bed.down(args.testbed, log=lambda _line: None)
    report(figures, args)
    return 0 if figures.signed else 1


if __name__ == "__main__":
    sys.exit(main())
