"""Deploy to the session's testbeds in a process of its own, for `pytest --testbed`: the suites that need no host
run meanwhile, and whatever they change in their own process (PATH, settings in the environment) cannot reach
the deploy. Every test process (pytest's own, or each of its workers) waits for the result file it writes last.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from postyard.deployer import DeployError
from postyard.inventory_hosts import load_hosts
from postyard.testbed.cgroup_quirk import deploy_past_the_cgroup_quirk

__all__ = ["DeployOutcome", "main", "read_outcome", "wait_for_outcome"]

POLL_SECONDS = 2.0


@dataclass(frozen=True)
class DeployOutcome:
    """What the session deploy left in its result file."""

    ok: bool
    summary: str


def _write(result_path: Path, payload: dict[str, object]) -> None:
    partial = result_path.with_suffix(".partial")
    partial.write_text(json.dumps(payload))
    os.replace(partial, result_path)  # readers see the whole file or none


def read_outcome(result_path: Path) -> DeployOutcome | None:
    if not result_path.exists():
        return None
    payload = json.loads(result_path.read_text())
    if not payload["ok"]:
        return DeployOutcome(False, payload["error"])
    return DeployOutcome(True, f"{payload['changed']} of {payload['operations']} operations changed "
                               f"in {payload['seconds']:.1f} s")


def _running(pid: int) -> bool:
    """Whether the process lives: an exited child its parent has not reaped yet (a zombie) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_outcome(result_path: Path, pid: int, timeout: float) -> DeployOutcome:
    """Wait until the deploy (process `pid`, leading its process group) has written its result; a deploy that
    died without one failed, and one that outlasts the timeout is stopped."""
    deadline = time.monotonic() + timeout
    while True:
        if (outcome := read_outcome(result_path)) is not None:
            return outcome
        if not _running(pid):
            printed = result_path.parent / "deploy.output"
            return read_outcome(result_path) or DeployOutcome(
                False, f"the deploy ended without a result; what it printed is in {printed}")
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            return DeployOutcome(False, f"the deploy took more than {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def main(argv: list[str]) -> int:
    inventory, names, log_path, result_path = Path(argv[0]), argv[1], Path(argv[2]), Path(argv[3])
    try:
        result = deploy_past_the_cgroup_quirk(inventory, {"POSTYARD_TESTBED": names}, load_hosts(inventory),
                                              log_path=log_path)
    except DeployError as error:
        _write(result_path, {"ok": False, "error": f"{error} (log: {log_path})"})
        return 1
    except BaseException as error:
        _write(result_path, {"ok": False, "error": f"{type(error).__name__}: {error} (log: {log_path})"})
        raise
    _write(result_path, {"ok": True, **asdict(result)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
