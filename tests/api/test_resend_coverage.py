"""Every operation of Resend's transactional groups, on the API served by granian, against Resend's OpenAPI
description (openapi-core); the figures per group are printed for the docs."""

from __future__ import annotations

import httpx
from conftest import unique_domain
from test_receiving import mark_receiving, pipe_in

from tests.inbound_mail import inbound_message
from tests.resend_coverage import EXCLUDED, NOT_SERVED, CoverageRun


def _piped_in(env, postgres, domain_id: str, address: str) -> None:
    mark_receiving(postgres, domain_id)
    assert pipe_in(env, postgres, inbound_message("alice@sender.example.test", address), [address]) == 0


def test_every_served_resend_operation_matches_resends_description(server, server_team, postgres, env):
    domain = unique_domain()
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {server_team.key}"}) as client:
        created = client.post("/domains", json={"name": domain}).json()
        postgres.psql(f"UPDATE domains SET status = 'verified' WHERE id = '{created['id']}'",
                      user="postyard_owner", database="postyard")
        run = CoverageRun(client, domain)
        run.run(webhook_endpoint="http://127.0.0.1:9/hook", deliver_inbound=lambda address: _piped_in(
            env, postgres, created["id"], address))
    counts, problems = run.report()
    print("\n".join(f"{group}: {ok} of {total}" for group, (ok, total) in counts.items()))
    print(f"excluded: {len(EXCLUDED)}; not served yet: {len(NOT_SERVED)}")
    assert problems == [], "\n".join(problems)
