"""The Postfix lookup watcher, run with stand-ins for journalctl, postmap and systemctl: a failed PostgreSQL
lookup in Postfix's log reloads Postfix as soon as a fresh lookup answers again, once per failure."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from roles import postfix
from roles.support.staging import JINJA_OPTIONS

REPO = Path(__file__).resolve().parents[2]
CONNECT_FAILED = ("postfix/proxymap[812]: warning: connect to pgsql server postgresql://10.0.1.2:5432/postyard: "
                  "connection to server at \"10.0.1.2\", port 5432 failed: Connection refused")
QUERY_FAILED = ("postfix/proxymap[812]: warning: pgsql query failed: fatal error from host "
                "postgresql://10.0.1.2:5432/postyard: server closed the connection unexpectedly")
DELIVERED = "postfix/smtp[901]: 4XyZ1: to=<a@example.org>, status=sent (250 2.0.0 Ok)"


def _render(name: str) -> str:
    environment = Environment(loader=FileSystemLoader(REPO / "templates"), undefined=StrictUndefined,
                              keep_trailing_newline=True, **JINJA_OPTIONS)
    return environment.get_template(name).render(postfix.lookup_watch_context())


def _stand_in(bin_dir: Path, name: str, body: str) -> None:
    (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
    (bin_dir / name).chmod(0o755)


def _watch(tmp_path: Path, lines: list[tuple[float, str]], failing_probes: int) -> tuple[list[str], int]:
    """Run the watcher over these journal lines (epoch, message) with PostgreSQL answering after
    `failing_probes` failed probes; the systemctl commands it ran, and how many probes it made (the
    pauses it took are in tmp_path/sleeps)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    journal = tmp_path / "journal"
    journal.write_text("".join(f"{stamp:.6f} mail1 {message}\n" for stamp, message in lines))
    _stand_in(bin_dir, "journalctl", f'cat "{journal}"')
    _stand_in(bin_dir, "postmap", f'echo x >> "{tmp_path}/probes"\n'
                                  f'[ "$(wc -l < "{tmp_path}/probes")" -gt {failing_probes} ] && echo ok || exit 1')
    _stand_in(bin_dir, "systemctl", f'echo "$*" >> "{tmp_path}/systemctl"')
    _stand_in(bin_dir, "sleep", f'echo "$1" >> "{tmp_path}/sleeps"')  # pauses are recorded, not slept
    script = tmp_path / "watch"
    script.write_text(_render("postfix/postyard-postfix-lookups.sh.j2"))
    done = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    probes = (tmp_path / "probes").read_text().count("x") if (tmp_path / "probes").exists() else 0
    ran = (tmp_path / "systemctl").read_text().splitlines() if (tmp_path / "systemctl").exists() else []
    return ran, probes


def test_a_failed_lookup_reloads_postfix_as_soon_as_postgresql_answers_again(tmp_path):
    ran, probes = _watch(tmp_path, [(time.time(), CONNECT_FAILED)], failing_probes=3)
    assert ran == [f"reload {postfix.INSTANCE_UNIT}"] and probes == 4


def test_failures_logged_before_the_reload_do_not_reload_again(tmp_path):
    during_the_outage = time.time() - 5
    lines = [(during_the_outage, QUERY_FAILED), (during_the_outage + 1, CONNECT_FAILED),
             (during_the_outage + 2, CONNECT_FAILED)]
    ran, _ = _watch(tmp_path, lines, failing_probes=0)
    assert ran == [f"reload {postfix.INSTANCE_UNIT}"]


def test_a_failure_after_the_reload_reloads_again_but_not_within_ten_seconds_of_it(tmp_path):
    lines = [(time.time() - 5, QUERY_FAILED), (time.time() + 2, CONNECT_FAILED)]
    ran, _ = _watch(tmp_path, lines, failing_probes=0)
    pauses = [int(p) for p in (tmp_path / "sleeps").read_text().split()]
    assert ran == [f"reload {postfix.INSTANCE_UNIT}"] * 2 and len(pauses) == 1 and 8 <= pauses[0] <= 10


def test_other_postfix_lines_reload_nothing_and_probe_nothing(tmp_path):
    ran, probes = _watch(tmp_path, [(time.time(), DELIVERED)], failing_probes=0)
    assert ran == [] and probes == 0


def test_the_watcher_follows_the_postfix_instance_and_probes_postgresql_with_a_fresh_lookup():
    script = _render("postfix/postyard-postfix-lookups.sh.j2")
    assert f"--unit={postfix.INSTANCE_UNIT}" in script and "--follow --lines=0" in script
    assert f"postmap -q probe pgsql:{postfix.PGSQL_DIR}/{postfix.REACHABLE.name}.cf" in script
    assert "proxy:" not in script  # a fresh connection of its own, not a proxymap process that marked it down
    assert postfix.REACHABLE.query == "SELECT 'ok'"
