"""Deploy to the session's testbeds in a process of its own, for `pytest --testbed`: the suites that need no host
run meanwhile, and whatever they change in their own process (PATH, settings in the environment) cannot reach
the deploy. Prints the result as JSON; exits 1 with the error on stderr."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from postyard.deployer import DeployError
from postyard.inventory_hosts import load_hosts
from postyard.testbed.cgroup_quirk import deploy_past_the_cgroup_quirk

__all__ = ["main"]


def main(argv: list[str]) -> int:
    inventory, names, log_path = Path(argv[0]), argv[1], Path(argv[2])
    try:
        result = deploy_past_the_cgroup_quirk(inventory, {"POSTYARD_TESTBED": names}, load_hosts(inventory),
                                              log_path=log_path)
    except DeployError as error:
        print(f"{error} (log: {log_path})", file=sys.stderr)
        return 1
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
