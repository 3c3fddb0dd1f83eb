"""Every test process waits for the session deploy through its result file."""

import json
import subprocess
import sys

from postyard.testbed.session_deploy import wait_for_outcome


def _process(seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"], start_new_session=True)


def test_a_written_result_is_read_whole(tmp_path):
    result = tmp_path / "deploy.result"
    result.write_text(json.dumps({"ok": True, "changed": 930, "operations": 1015, "seconds": 447.25}))
    process = _process(30)
    try:
        outcome = wait_for_outcome(result, process.pid, timeout=5)
    finally:
        process.kill()
        process.wait()
    assert outcome.ok
    assert outcome.summary == "930 of 1015 operations changed in 447.2 s"


def test_a_failed_deploy_brings_its_error(tmp_path):
    result = tmp_path / "deploy.result"
    result.write_text(json.dumps({"ok": False, "error": "db1: apt failed"}))
    outcome = wait_for_outcome(result, 1, timeout=5)
    assert not outcome.ok
    assert outcome.summary == "db1: apt failed"


def test_a_deploy_that_ended_without_a_result_failed_even_before_it_is_reaped(tmp_path):
    process = _process(0)
    while subprocess.run(["ps", "-o", "stat=", "-p", str(process.pid)], capture_output=True,
                         text=True).stdout.strip() not in ("Z", "Z+", "Zs"):
        pass  # a zombie now: its parent (this test) has not waited for it
    outcome = wait_for_outcome(tmp_path / "deploy.result", process.pid, timeout=30)
    process.wait()
    assert not outcome.ok
    assert "without a result" in outcome.summary


def test_a_deploy_past_the_timeout_is_stopped(tmp_path):
    process = _process(60)
    outcome = wait_for_outcome(tmp_path / "deploy.result", process.pid, timeout=0.1)
    assert process.wait(timeout=10) != 0
    assert not outcome.ok
    assert "more than" in outcome.summary
