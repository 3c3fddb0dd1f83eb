"""Labels that mark this project's Hetzner resources, and the selectors that find them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "PROJECT", "ENVIRONMENT", "ROLE", "HOST", "GROUP_PREFIX",
    "base_labels", "resource_labels", "selector", "is_ours", "groups_from_labels",
]

PROJECT = "postyard-project"
ENVIRONMENT = "postyard-environment"
ROLE = "postyard-role"
HOST = "postyard-host"
GROUP_PREFIX = "postyard-group-"


def base_labels(project: str, environment: str) -> dict[str, str]:
    """The two labels every resource of one deployment carries."""
    return {PROJECT: project, ENVIRONMENT: environment}


def resource_labels(
    project: str, environment: str, role: str, host: str | None = None, groups: Iterable[str] = ()
) -> dict[str, str]:
    """Labels of one resource: deployment, role, host (if any) and one label per inventory group."""
    labels = {**base_labels(project, environment), ROLE: role}
    if host:
        labels[HOST] = host
    labels.update({f"{GROUP_PREFIX}{group}": "yes" for group in groups})
    return labels


def selector(labels: Mapping[str, str]) -> str:
    """A Hetzner label selector matching every one of these labels."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def is_ours(labels: Mapping[str, str] | None, project: str, environment: str) -> bool:
    """True only when both deployment labels are present and match."""
    labels = labels or {}
    return labels.get(PROJECT) == project and labels.get(ENVIRONMENT) == environment


def groups_from_labels(labels: Mapping[str, str], known: Iterable[str]) -> tuple[str, ...]:
    """The inventory groups a server's labels name, in the order of `known`."""
    return tuple(group for group in known if labels.get(f"{GROUP_PREFIX}{group}") == "yes")
