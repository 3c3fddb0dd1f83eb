"""Deploys are idempotent: the second run against the same hosts changes nothing."""

from __future__ import annotations

from postyard.deployer import REPO, run_deploy


def test_second_deploy_changes_nothing(session_testbed):
    result = run_deploy(REPO / "inventory" / "testbed.py", env={"POSTYARD_TESTBED": session_testbed.name})
    print(f"no-op redeploy: {result.operations} operations in {result.seconds:.1f} s")
    assert result.operations > 0
    assert result.changed == 0
