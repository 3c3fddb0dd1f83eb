"""The fake's state: resources in the API's shapes, actions that finish after a poll, label selectors."""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ApiError", "State", "matches_selector", "NOW"]

NOW = "2026-01-01T00:00:00Z"


class ApiError(Exception):
    """An error response: HTTP status, the API's error code, a message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


_TERM = re.compile(r"^\s*(!?)([\w./-]+)\s*(?:(==|!=|=)\s*([\w./-]*))?\s*$")


def matches_selector(labels: dict[str, str], selector: str) -> bool:
    """Hetzner label selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`, joined by commas (all must hold)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        found = _TERM.match(term)
        if not found:
            raise ApiError(400, "invalid_input", f"invalid label selector {selector!r}")
        negated, key, operator, value = found.groups()
        if operator in ("=", "=="):
            ok = labels.get(key) == value
        elif operator == "!=":
            ok = labels.get(key) != value
        else:
            ok = key in labels
        if ok == bool(negated):
            return False
    return True


@dataclass
class State:
    """Every resource by kind and id, plus actions."""

    resources: dict[str, dict[int, dict[str, Any]]] = field(default_factory=lambda: {
        kind: {} for kind in ("servers", "networks", "firewalls", "primary_ips", "volumes",
                              "load_balancers", "ssh_keys", "zones", "placement_groups")})
    rrsets: dict[int, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    actions: dict[int, dict[str, Any]] = field(default_factory=dict)
    action_polls: int = 1  # reads of an action before it reports success
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))
    _addresses: itertools.count = field(default_factory=lambda: itertools.count(10))

    def next_id(self) -> int:
        return next(self._ids)

    def next_address(self) -> int:
        return next(self._addresses)

    def action(self, command: str, *resources: tuple[int, str]) -> dict[str, Any]:
        action = {"id": self.next_id(), "command": command, "status": "running", "progress": 0,
                  "started": NOW, "finished": None, "error": None,
                  "resources": [{"id": rid, "type": kind} for rid, kind in resources], "_reads": 0}
        self.actions[action["id"]] = action
        return public(action)

    def read_action(self, action_id: int) -> dict[str, Any]:
        action = self.actions.get(action_id)
        if action is None:
            raise ApiError(404, "not_found", f"action {action_id} not found")
        action["_reads"] += 1
        if action["_reads"] >= self.action_polls and action["status"] == "running":
            action.update(status="success", progress=100, finished=NOW)
        return public(action)

    def unique(self, kind: str, name: str, field_name: str = "name") -> None:
        if any(item.get(field_name) == name for item in self.resources[kind].values()):
            raise ApiError(409, "uniqueness_error", f"{field_name} is already used")

    def get(self, kind: str, rid: int) -> dict[str, Any]:
        item = self.resources[kind].get(rid)
        if item is None:
            raise ApiError(404, "not_found", f"{kind[:-1]} with ID {rid} not found")
        return item

    def count(self, kind: str) -> int:
        return len(self.resources[kind])


def public(item: dict[str, Any]) -> dict[str, Any]:
    """A copy without the fake's own bookkeeping keys (those starting with _)."""
    return {key: value for key, value in item.items() if not key.startswith("_")}


def fingerprint(public_key: str) -> str:
    digest = hashlib.md5(public_key.encode()).hexdigest()  # noqa: S324 - the API shows MD5 fingerprints
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))
