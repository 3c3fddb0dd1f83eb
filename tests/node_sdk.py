"""Running Resend's official Node SDK (tests/node, installed by `make deps` with `npm ci`) against an API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["NODE_DIR", "run_node_sdk"]

NODE_DIR = Path(__file__).resolve().parent / "node"


def run_node_sdk(base_url: str, api_key: str, *args: str, stdin: Any = None,
                 extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """`node flows.mjs <args>` with the SDK pointed at `base_url`; its printed JSON. Fails with the SDK's error."""
    node = shutil.which("node")
    assert node is not None, "node is not installed: run `make deps`"
    assert (NODE_DIR / "node_modules" / "resend").is_dir(), "the Node SDK is not installed: run `make deps`"
    env = {**os.environ, "RESEND_BASE_URL": base_url, "RESEND_API_KEY": api_key, **(extra_env or {})}
    done = subprocess.run([node, str(NODE_DIR / "flows.mjs"), *args], cwd=NODE_DIR, env=env, capture_output=True,
                          text=True, timeout=300, input=json.dumps(stdin) if stdin is not None else None)
    assert done.returncode == 0, f"the Node SDK failed: {done.stderr.strip()}"
    return json.loads(done.stdout.strip().splitlines()[-1])
