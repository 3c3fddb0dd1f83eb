"""Benchmark: the console's pages with 10,000 emails in the team, signed in over HTTP, against the API's list.

    .venv/bin/python bench/console_pages.py [--emails 10000] [--requests 50] [--warm-up 5] [--no-write]
        [--drop-index NAME ...]

Starts its own PostgreSQL 15 and Redis on loopback, migrates, and seeds two teams straight into PostgreSQL
(as the database owner, `INSERT ... SELECT generate_series`): each with `--emails` emails spread over 30
days with about four events each, three webhooks (two with a delivery per delivered or bounced email),
suppressions and audit entries, so that row-level security and the team filters have another team's rows to
leave out; the measured team also has two domains, API keys and SMTP logins, made through the API; five hosts
have reported their status (the operators' status page shows each). Then
`VACUUM ANALYZE`, as autovacuum would have done by then. `--drop-index` measures without an index (e.g. one
of migration 0011's, for the figures before it). It serves the app with granian (one worker), signs in through
`/console/login` as the team's owner and as an operator, and requests each page one after another
(`--requests` times after `--warm-up`). Prints p50/p95 per page and its p95 as a ratio of the baseline's,
`GET /emails?limit=50` of the API with the same session (the same team's newest emails as JSON); `GET
/ping` (no auth, no database) is shown too. Its figures replace its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
from figures import command_line, markdown_table, write_section
from sqlalchemy.ext.asyncio import AsyncSession
from stack import Stack, local_stack, serve

from app.config import Settings
from app.domain.operators.cli import in_owner_transaction
from app.domain.operators.services import Actor, create_operator, invite_team

PASSWORD = "correct horse battery staple"
OWNER, OPERATOR = "owner@bench.test", "operator@bench.test"
BUDGET = "100000000"  # requests per window: the rate limits never interfere
SITE = {"Sec-Fetch-Site": "same-origin"}
LIMIT_P95_MS = 300.0
BASELINE = "API `GET /emails?limit=50`"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# The final event of the seeded emails, by share of every 100: (last_event, state, number of 100).
OUTCOMES = (("delivered", "sent", 85), ("bounced", "sent", 5), ("delivery_delayed", "sent", 3),
            ("complained", "sent", 1), ("sent", "sent", 1), ("failed", "failed", 1), ("queued", "queued", 3),
            ("scheduled", "queued", 1))
TAGS = ("welcome", "receipt", "reset", "digest")


def _outcome_case(column: int) -> str:
    """SQL picking an outcome's field (0 last_event, 1 state) from `n % 100`."""
    branches, upto = [], 0
    for outcome in OUTCOMES:
        upto += outcome[2]
        branches.append(f"WHEN n % 100 < {upto} THEN '{outcome[column]}'")
    return f"CASE {' '.join(branches)} END"


def seed_emails(stack: Stack, team: str, count: int, domains: list[str], label: str) -> None:
    """`count` emails of the team over the last 30 days, newest first by n, with their events."""
    domain = f"(ARRAY[{', '.join(repr(d) for d in domains)}]::uuid[])[n % {len(domains)} + 1]" if domains else "NULL"
    spacing = 30 * 24 * 3600 / count
    stack.owner_sql(f"""
        INSERT INTO emails (id, team_id, mode, domain_id, from_address, to_addresses, cc_addresses, subject, html,
                            text_body, tags, message_id, envelope_from, recipients, mime, size, state, last_event,
                            scheduled_at, sent_at, created_at, updated_at)
        SELECT gen_random_uuid(), '{team}', 'live', {domain}, 'news@{label}.bench.test',
               ARRAY['user' || n || '@customer' || (n % 97) || '.test'],
               CASE WHEN n % 10 = 0 THEN ARRAY['copy' || n || '@customer.test'] ELSE '{{}}'::text[] END,
               'Your {label} message number ' || n, '<p>Hello ' || n || '</p>', 'Hello ' || n,
               jsonb_build_array(jsonb_build_object('name', 'category',
                                                    'value', (ARRAY{list(TAGS)})[n % {len(TAGS)} + 1])),
               '<' || gen_random_uuid() || '@{label}.bench.test>', 'bounces@{label}.bench.test',
               ARRAY['user' || n || '@customer' || (n % 97) || '.test'],
               convert_to('From: news@{label}.bench.test' || chr(13) || chr(10) || 'To: user' || n
                          || '@customer.test' || chr(13) || chr(10) || 'Subject: number ' || n || chr(13) || chr(10)
                          || chr(13) || chr(10) || 'Hello ' || n, 'UTF8'),
               400, {_outcome_case(1)}, {_outcome_case(0)},
               CASE WHEN n % 100 >= 99 THEN now() + interval '2 days' END,
               CASE WHEN {_outcome_case(1)} = 'sent' THEN now() - n * interval '{spacing} seconds' END,
               now() - n * interval '{spacing} seconds', now() - n * interval '{spacing} seconds'
        FROM generate_series(1, {count}) AS n;
        INSERT INTO email_events (id, team_id, email_id, type, recipient, detail, created_at)
        SELECT gen_random_uuid(), e.team_id, e.id, step.type, e.to_addresses[1], step.detail,
               e.created_at + step.after
        FROM emails e CROSS JOIN LATERAL (VALUES
            (1, 'queued', '{{}}'::jsonb, interval '0 seconds'),
            (2, 'sent', '{{"relay": "mx.customer.test"}}'::jsonb, interval '2 seconds'),
            (3, 'delivery_delayed', '{{"status": "4.2.0", "response": "451 try later"}}'::jsonb, interval '5 seconds'),
            (4, e.last_event, '{{"status": "2.0.0", "response": "250 2.0.0 Ok"}}'::jsonb, interval '60 seconds')
        ) AS step(position, type, detail, after)
        WHERE e.team_id = '{team}' AND (e.state = 'sent' OR e.last_event = 'failed' OR step.position = 1)
          AND NOT (step.position = 4 AND e.last_event IN ('delivery_delayed', 'sent', 'failed'))
          AND NOT (e.last_event = 'sent' AND step.position = 3);
    """)


def seed_extras(stack: Stack, team: str) -> None:
    """The team's webhooks (two with a delivery per delivered or bounced email), suppressions and audit entries."""
    stack.owner_sql(f"""
        INSERT INTO webhooks (id, team_id, endpoint, events, key_id, secret_ciphertext, created_at)
        SELECT gen_random_uuid(), '{team}', 'https://hooks' || n || '.customer.test/postyard',
               ARRAY['email.delivered', 'email.bounced'], 'bench', '\\x00'::bytea, now() - n * interval '1 day'
        FROM generate_series(1, 3) AS n;
        INSERT INTO webhook_deliveries (id, team_id, webhook_id, message_id, event_type, payload, state, attempts,
                                        last_status_code, last_error, delivered_at, created_at)
        SELECT gen_random_uuid(), e.team_id, w.id, e.message_id, 'email.' || e.last_event, '{{}}',
               CASE WHEN e.n % 50 = 0 THEN 'failed' WHEN e.n % 97 = 0 THEN 'pending' ELSE 'succeeded' END,
               CASE WHEN e.n % 50 = 0 THEN 8 WHEN e.n % 97 = 0 THEN 2 ELSE 1 END,
               CASE WHEN e.n % 50 = 0 THEN 500 ELSE 204 END,
               CASE WHEN e.n % 50 = 0 THEN 'HTTP 500' END, e.created_at + interval '61 seconds',
               e.created_at + interval '61 seconds'
        FROM (SELECT *, row_number() OVER (ORDER BY created_at) AS n FROM emails WHERE team_id = '{team}'
              AND last_event IN ('delivered', 'bounced')) AS e
        CROSS JOIN (SELECT id FROM webhooks WHERE team_id = '{team}' ORDER BY created_at DESC LIMIT 2) AS w;
        INSERT INTO suppressions (id, team_id, email, reason, created_at)
        SELECT gen_random_uuid(), '{team}', to_addresses[1],
               CASE WHEN last_event = 'complained' THEN 'complaint' ELSE 'hard_bounce' END, created_at
        FROM emails WHERE team_id = '{team}' AND last_event IN ('bounced', 'complained');
        INSERT INTO audit_logs (id, team_id, actor_type, actor_id, action, resource_type, resource_id, ip,
                                created_at)
        SELECT gen_random_uuid(), '{team}', 'user', (SELECT user_id::text FROM memberships WHERE team_id = '{team}'),
               (ARRAY['api_key.created', 'domain.verified', 'webhook.updated'])[n % 3 + 1], 'bench', n::text,
               '127.0.0.1', now() - n * interval '1 hour'
        FROM generate_series(1, 500) AS n;
    """)


def host_report(n: int) -> dict[str, object]:
    """A split deployment's host report as app/host_report.py sends it: 60 units, disks, certificates, and a
    mail host's reverse DNS and queue or a db host's backups."""
    now = datetime.now(UTC)
    report: dict[str, object] = {
        "host": f"host{n}.bench.test", "groups": ["mail" if n == 1 else "db" if n == 2 else "api"],
        "release": "bench", "collected_at": now.isoformat(),
        "units": [{"Id": f"unit{u}.service", "Type": "simple", "ActiveState": "active", "SubState": "running",
                   "UnitFileState": "enabled", "Result": "success", "ConditionResult": "yes"} for u in range(60)],
        "disks": [{"path": "/", "total": 80 * 2**30, "free": 60 * 2**30}],
        "certificates": [{"name": f"internal: service{c}", "path": f"/etc/postyard/tls/service{c}/server.crt",
                          "not_after": (now + timedelta(days=300)).isoformat()} for c in range(4)],
    }
    if n == 1:
        report["reverse_dns"] = [{"address": "203.0.113.1", "expected": "host1.bench.test",
                                  "ptr": "host1.bench.test", "forward_confirmed": True}]
        report["postfix_queue"] = {"maildrop": 0, "incoming": 0, "active": 3, "deferred": 12, "hold": 0}
    if n == 2:
        report["backups"] = {"count": 14, "total_bytes": 14 * 2**30, "remote": "backup.bench.test:postyard",
                             "newest": {"name": "postyard.dump.age", "bytes": 2**30, "at": now.isoformat()},
                             "last_run": {"result": "success", "exit_status": "0", "ended": "today"}}
    return report


def seed_host_reports(stack: Stack, hosts: int = 5) -> None:
    """The reports of a split deployment's hosts, as the status page reads them."""
    values = ", ".join(f"('10.0.0.{n}', 'host{n}.bench.test', '{json.dumps(host_report(n))}', now())"
                       for n in range(1, hosts + 1))
    stack.owner_sql(f"INSERT INTO host_reports (address, host_name, report, reported_at) VALUES {values}")


def sign_in(client: httpx.Client, email: str, password: str) -> dict[str, str]:
    """Sign in through the console's form; returns the session cookie header (it is Secure, so sent by hand)."""
    response = client.post("/console/login", data={"email": email, "password": password, "next": "/console/"},
                           headers=SITE)
    if response.status_code != 303:
        raise RuntimeError(f"sign-in of {email}: {response.status_code} {response.text[:300]}")
    cookie = response.headers["set-cookie"].split(";", 1)[0]
    return {"Cookie": cookie}


def prepare(stack: Stack, env: dict[str, str], base: str, emails: int) -> tuple[dict[str, str], dict[str, str],
                                                                                dict[str, str]]:
    """The seeded teams; returns the owner's and the operator's headers and the ids the page paths need."""
    settings = Settings.from_env(env)

    async def accounts(db: AsyncSession) -> tuple[str, list[str]]:
        _, password = await create_operator(db, OPERATOR)
        return password or "", [(await invite_team(db, Actor(), None, 1))[1] for _ in range(2)]

    operator_password, invites = asyncio.run(in_owner_transaction(settings, accounts))
    with httpx.Client(base_url=base, timeout=30) as client:
        teams = []
        for number, invite in enumerate(invites):
            email = OWNER if number == 0 else f"other{number}@bench.test"
            registered = client.post("/auth/register", json={"email": email, "password": PASSWORD,
                                                              "team_name": f"Bench {number}", "invite": invite})
            registered.raise_for_status()
            teams.append(stack.owner_sql(f"SELECT id FROM teams WHERE name = 'Bench {number}'"))
        stack.owner_sql(f"UPDATE teams SET rate_limit = {BUDGET}, api_key_rate_limit = {BUDGET}")
        owner = sign_in(client, OWNER, PASSWORD)
        csrf = {**owner, "X-CSRF-Token": _CSRF.search(client.get("/console/account", headers=owner).text)[1]}
        domains = [client.post("/domains", json={"name": f"mail{n}.bench.test"}, headers=csrf).json()["id"]
                   for n in range(2)]
        for n in range(3):
            client.post("/api-keys", json={"name": f"key {n}"}, headers=csrf).raise_for_status()
        for n in range(2):
            client.post("/smtp-credentials", json={"name": f"login {n}"}, headers=csrf).raise_for_status()
        operator = sign_in(client, OPERATOR, operator_password)
    seed_emails(stack, teams[0], emails, domains, "bench")
    seed_emails(stack, teams[1], emails, [], "other")
    for team in teams:
        seed_extras(stack, team)
    seed_host_reports(stack)
    stack.owner_sql("VACUUM ANALYZE")  # as autovacuum would have by the time a team has sent this much
    ids = {
        "email": stack.owner_sql(f"SELECT id FROM emails WHERE team_id = '{teams[0]}' AND last_event = 'bounced' "
                                 "ORDER BY created_at DESC LIMIT 1"),
        "older": stack.owner_sql(f"SELECT id FROM emails WHERE team_id = '{teams[0]}' "
                                 "ORDER BY created_at DESC, id DESC OFFSET 49 LIMIT 1"),
        "webhook": stack.owner_sql(f"SELECT id FROM webhooks WHERE team_id = '{teams[0]}' "
                                   "ORDER BY created_at DESC LIMIT 1"),
        "domain": domains[0],
        "team": teams[0],
    }
    return owner, operator, ids


def pages(ids: dict[str, str]) -> list[tuple[str, str, str]]:
    """(label, who, path) of each page measured; `who` is owner or operator."""
    week = (datetime.now(UTC) - timedelta(days=7)).date()
    return [
        ("GET /ping (no auth, no database)", "owner", "/ping"),
        (BASELINE, "owner", "/emails?limit=50"),
        ("overview", "owner", "/console/"),
        ("emails", "owner", "/console/emails"),
        ("emails, older page", "owner", f"/console/emails?after={ids['older']}"),
        ("emails, recipient filter", "owner", "/console/emails?recipient=user4242"),
        ("emails, status filter (bounced)", "owner", "/console/emails?status=bounced"),
        ("emails, status filter (failed)", "owner", "/console/emails?status=failed"),
        ("emails, tag filter", "owner", "/console/emails?tag=category:receipt"),
        ("emails, domain filter", "owner", "/console/emails?domain=mail1.bench.test"),
        ("emails, since and until", "owner", f"/console/emails?since={week}&until={week + timedelta(days=1)}"),
        ("emails, every filter", "owner", f"/console/emails?recipient=customer1&status=delivered&tag=category"
                                          f"&domain=mail0.bench.test&since={week}"),
        ("an email", "owner", f"/console/emails/{ids['email']}"),
        ("domains", "owner", "/console/domains"),
        ("a domain", "owner", f"/console/domains/{ids['domain']}"),
        ("API keys", "owner", "/console/api-keys"),
        ("SMTP", "owner", "/console/smtp"),
        ("webhooks", "owner", "/console/webhooks"),
        ("a webhook", "owner", f"/console/webhooks/{ids['webhook']}"),
        ("suppressions", "owner", "/console/suppressions"),
        ("suppressions, search", "owner", "/console/suppressions?search=user42"),
        ("team", "owner", "/console/team"),
        ("operator: teams", "operator", "/console/operator"),
        ("operator: a team", "operator", f"/console/operator/teams/{ids['team']}"),
        ("operator: system status", "operator", "/console/operator/status"),
    ]


def measure(base: str, headers: dict[str, dict[str, str]], routes: list[tuple[str, str, str]], requests: int,
            warm_up: int) -> dict[str, tuple[float, float]]:
    """{label: (p50 ms, p95 ms)}: each page requested one at a time, after its warm-up."""
    results = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for label, who, path in routes:
            latencies = []
            for attempt in range(warm_up + requests):
                started = time.perf_counter()
                response = client.get(path, headers=headers[who])
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
                if attempt >= warm_up:
                    latencies.append(elapsed)
            cuts = statistics.quantiles(latencies, n=20, method="inclusive")
            results[label] = (statistics.median(latencies), cuts[18])
    return results


def _shown(path: str) -> str:
    """A measured path as the table shows it: ids as `{id}`, a long query string as its fields only."""
    path = _ID.sub("{id}", path)
    if len(path) > 60:
        base, _, query = path.partition("?")
        path = base + "?" + "&".join(f"{field.split('=')[0]}=…" for field in query.split("&"))
    return path


def table(results: dict[str, tuple[float, float]], routes: list[tuple[str, str, str]]) -> str:
    baseline = results[BASELINE][1]
    paths = {label: path for label, _, path in routes}
    rows = [[label, f"`{_shown(paths[label])}`", f"{p50:.1f} ms", f"{p95:.1f} ms", f"{p95 / baseline:.2f}",
             "yes" if p95 < LIMIT_P95_MS else "**no**"] for label, (p50, p95) in results.items()]
    return markdown_table(["page", "path", "p50", "p95", "p95 vs the baseline's p95", "under 300 ms"], rows)


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--emails", type=int, default=10_000, help="emails of each of the two teams")
    options.add_argument("--requests", type=int, default=50, help="measured requests per page")
    options.add_argument("--warm-up", type=int, default=5, help="requests per page before measuring")
    options.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    options.add_argument("--drop-index", action="append", default=[], metavar="NAME",
                         help="measure without this index (implies --no-write)")
    args = options.parse_args()

    with local_stack() as stack:
        env = stack.env(POSTYARD_RATE_LIMIT=BUDGET, POSTYARD_ANONYMOUS_RATE_LIMIT=BUDGET)
        for index in args.drop_index:
            stack.owner_sql(f"DROP INDEX {index}")
        with serve(env, 1) as base:
            owner, operator, ids = prepare(stack, env, base, args.emails)
            routes = pages(ids)
            results = measure(base, {"owner": owner, "operator": operator}, routes, args.requests, args.warm_up)
            counts = stack.owner_sql("SELECT (SELECT count(*) FROM emails), (SELECT count(*) FROM email_events), "
                                     "(SELECT count(*) FROM webhook_deliveries), (SELECT count(*) FROM suppressions)")
    emails, events, deliveries, suppressions = (int(v) for v in counts.split("|"))
    heading = (f"two teams of {args.emails:,} emails each ({emails:,} emails, {events:,} events, "
               f"{deliveries:,} webhook deliveries, {suppressions:,} suppressions in all); granian with one worker, "
               f"the client, PostgreSQL and Redis on the same {os.cpu_count()} cores; each page {args.requests} times "
               f"one after another after {args.warm_up} to warm up"
               + (f"; without {', '.join(args.drop_index)}" if args.drop_index else ""))
    print(heading)
    print(f"{'page':<36} {'p50 ms':>8} {'p95 ms':>8} {'p95 ratio':>10}")
    for label, (p50, p95) in results.items():
        print(f"{label:<36} {p50:>8.1f} {p95:>8.1f} {p95 / results[BASELINE][1]:>10.2f}")
    slow = [label for label, (_, p95) in results.items() if p95 >= LIMIT_P95_MS]
    if not (args.no_write or args.drop_index):
        write_section("console", f"{command_line()}: {heading}\n\n{table(results, routes)}")
    if slow:
        print(f"over {LIMIT_P95_MS:.0f} ms at p95: {', '.join(slow)}", file=sys.stderr)
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
