"""The hcloud client from the environment, API errors in plain words, and bounded waits on actions."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from hcloud import APIException, Client
from hcloud.actions import BoundAction

__all__ = ["ProvisionError", "TOKEN_VARIABLE", "ENDPOINT_VARIABLE", "api_errors", "delete_load_balancer", "make_client",
           "wait_for"]

TOKEN_VARIABLE = "HCLOUD_TOKEN"
ENDPOINT_VARIABLE = "HCLOUD_ENDPOINT"  # only for tests against a fake API
DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"


class ProvisionError(RuntimeError):
    """Hetzner refused or failed a step; the message says which and what to do."""


def make_client(env: Mapping[str, str] | None = None, poll_interval: float = 1.0) -> Client:
    """A client with the token from HCLOUD_TOKEN (never from a file, never logged)."""
    env = os.environ if env is None else env
    token = env.get(TOKEN_VARIABLE, "")
    if not token:
        raise ProvisionError(f"set {TOKEN_VARIABLE} to a read/write API token of the Hetzner Cloud project")
    return Client(
        token=token, api_endpoint=env.get(ENDPOINT_VARIABLE, DEFAULT_ENDPOINT),
        application_name="postyard", poll_interval=poll_interval, timeout=30,
    )


def explain(error: APIException, what: str) -> str:
    """A message for an API error: the step, the API's code, and the remedy for the usual ones."""
    code = error.code
    if code == "unauthorized":
        return f"{what}: the API refused {TOKEN_VARIABLE} (unauthorized); create a read/write token in the project"
    if code == "forbidden":
        return f"{what}: the token is read-only or lacks access (forbidden); use a read/write token"
    if code == "resource_limit_exceeded":
        return (f"{what}: the Hetzner project's resource limit is reached ({error.message}); "
                "remove unused resources or ask Hetzner to raise the limit")
    if code == "rate_limit_exceeded":
        return f"{what}: the API's rate limit is exhausted; wait a minute and run the command again"
    if code == "uniqueness_error":
        return (f"{what}: a resource with that name exists without this deployment's labels "
                f"({error.message}); rename or remove it")
    return f"{what}: {code}: {error.message}"


@contextmanager
def api_errors(what: str) -> Iterator[None]:
    """Turn hcloud's APIException into a ProvisionError naming the step."""
    try:
        yield
    except APIException as error:
        raise ProvisionError(explain(error, what)) from None


def wait_for(client: Client, actions: Iterable[BoundAction | None], what: str,
             timeout: float, interval: float = 1.0) -> None:
    """Wait until every action succeeded; raise on an action error or after timeout seconds."""
    pending = [action for action in actions if action is not None]
    deadline = time.monotonic() + timeout
    while pending:
        still = []
        for action in pending:
            with api_errors(f"{what} (waiting on action {action.id})"):
                current = client.actions.get_by_id(action.id)
            if current.status == "error":
                error = current.error or {}
                raise ProvisionError(
                    f"{what}: action {current.command} failed: {error.get('code')}: {error.get('message')}")
            if current.status != "success":
                still.append(current)
        pending = still
        if pending:
            if time.monotonic() >= deadline:
                commands = ", ".join(sorted({a.command or "?" for a in pending}))
                raise ProvisionError(f"{what}: still running after {timeout:.0f} s ({commands})")
            time.sleep(interval)


def delete_load_balancer(client: Client, balancer_id: int) -> BoundAction | None:
    """Delete a load balancer: the published API answers 204 with no body, which hcloud's own `delete` cannot
    read (it expects an action); an action, where one comes back, is returned to wait on."""
    answer = client.request(method="DELETE", url=f"/load_balancers/{balancer_id}")
    action = (answer or {}).get("action")
    return client.actions.get_by_id(action["id"]) if action else None
