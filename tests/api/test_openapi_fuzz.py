"""Schemathesis against the app's own OpenAPI: no 5xx, no response that violates the schema."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

EXAMPLES_PER_OPERATION = 25


def test_generated_requests_get_no_5xx_and_schema_conforming_responses(server, server_team):
    schema = schemathesis.openapi.from_url(f"{server}/docs/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def exercise(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server, headers=server_team.headers,
                                   checks=[not_a_server_error, response_schema_conformance])

        try:
            exercise()
        except Exception as failure:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{operation.label}: {str(failure)[:600]}")
    assert len(operations) >= 20
    assert not failures, "\n\n".join(failures)
