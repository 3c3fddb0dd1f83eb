"""Runs this suite in its own process when pyinfra's gevent patching reached the current one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from api_support import gevent_patched


def test_the_api_suite_passes_in_a_clean_process_when_gevent_patched_this_one():
    if not gevent_patched():
        pytest.skip("this process is clean; the suite ran in it")
    here = Path(__file__).resolve().parent
    result = subprocess.run([sys.executable, "-m", "pytest", str(here), "-q", "-p", "no:cacheprovider"],
                            cwd=here.parent.parent, capture_output=True, text=True, timeout=540)
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
