"""Restore target times: an ISO 8601 time with its offset, read as UTC; anything else refused."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from postyard import cli
from postyard.pitr import RestoreError, parse_target_time


@pytest.mark.parametrize("text", ["2026-12-01T14:03:00Z", "2026-12-01 15:03:00+01:00", "2026-12-01T14:03:00+00:00"])
def test_a_time_with_an_offset_is_read_as_utc(text):
    assert parse_target_time(text) == datetime(2026, 12, 1, 14, 3, tzinfo=UTC)


@pytest.mark.parametrize("text, reason", [
    ("2026-12-01T14:03:00", "no UTC offset"),
    ("yesterday", "not an ISO 8601 time"),
    ("2026-13-01T00:00:00Z", "not an ISO 8601 time"),
])
def test_other_times_are_refused_with_the_reason(text, reason):
    with pytest.raises(RestoreError, match=reason):
        parse_target_time(text)


def test_a_point_in_time_restore_of_a_clustered_database_restores_every_member(monkeypatch):
    members = [SimpleNamespace(name=f"db{n}", fqdn=f"db{n}.example.net", groups=("db",)) for n in (1, 2, 3)]
    monkeypatch.setattr(cli, "_target", lambda args: SimpleNamespace(inventory=lambda: "inventory"))
    monkeypatch.setattr(cli, "load_hosts", lambda inventory: members)
    monkeypatch.setattr(cli, "restore_to", lambda *args: pytest.fail("one member was restored alone"))
    asked = []
    monkeypatch.setattr(cli, "restore_cluster_to",
                        lambda hosts, when, log: asked.append((hosts, when)) or {h.name: "/aside" for h in hosts})
    arguments = argparse.Namespace(to="2026-12-01T14:03:00Z", host="db1", database=None, backup="latest")
    assert cli.cmd_restore(arguments) == 0
    assert asked == [(members, parse_target_time("2026-12-01T14:03:00Z"))]
