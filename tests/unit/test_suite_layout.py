"""The suites' layout: pytest imports test modules by their basename, so two of the same name collide."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def test_no_two_test_modules_share_a_basename():
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert {name: count for name, count in names.items() if count > 1} == {}
