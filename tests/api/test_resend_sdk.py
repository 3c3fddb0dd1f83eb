"""The official `resend` Python SDK works against the API served by granian."""

from __future__ import annotations

import pytest
import resend

from conftest import unique_domain


@pytest.fixture
def sdk(server, server_team):
    """The SDK pointed at our server with the team's key."""
    resend.api_url, resend.api_key = server, server_team.key
    return resend


def test_the_sdk_creates_lists_and_removes_api_keys(sdk):
    created = sdk.ApiKeys.create({"name": "from the sdk"})
    listed = sdk.ApiKeys.list()
    removed = sdk.ApiKeys.remove(created["id"])
    assert created["token"].startswith("sk_live_")
    assert created["id"] in [k["id"] for k in listed["data"]] and removed["deleted"] is True


def test_the_sdk_creates_gets_verifies_updates_lists_and_removes_domains(sdk):
    name = unique_domain()
    created = sdk.Domains.create({"name": name})
    fetched = sdk.Domains.get(created["id"])
    verified = sdk.Domains.verify(created["id"])
    updated = sdk.Domains.update({"id": created["id"], "tls": "enforced"})
    listed = sdk.Domains.list()
    removed = sdk.Domains.remove(created["id"])
    assert fetched["name"] == name and {r["record"] for r in fetched["records"]} >= {"DKIM", "SPF"}
    assert verified["id"] == created["id"] and updated["id"] == created["id"]
    assert name in [d["name"] for d in listed["data"]] and removed["deleted"] is True


def test_the_sdk_raises_resends_error_for_another_teams_domain(sdk, server_team, settings):
    import asyncio

    from app.cli import create_team

    _, other_key = asyncio.run(create_team(settings, "sdk-other"))
    resend.api_key = other_key
    theirs = sdk.Domains.create({"name": unique_domain()})
    resend.api_key = server_team.key
    with pytest.raises(resend.exceptions.ResendError) as error:
        sdk.Domains.get(theirs["id"])
    assert "not found" in str(error.value).lower()
