"""`GET /emails/metrics`, shaped like Resend's."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter

from app.domain.emails.metrics import count_metrics, parse_query
from app.domain.emails.schemas import MetricsOut
from app.lib.auth import Principal, provide_principal
from app.lib.dependencies import DbSession

__all__ = ["EmailMetricsController"]

Granularity = Literal["hourly", "daily", "weekly", "monthly"]
Listed = Annotated[list[str] | None, QueryParameter(description="Comma-separated, the parameter repeated, or both.")]


class EmailMetricsController(Controller):
    """The team's sending metrics."""

    path = "/emails/metrics"
    tags = ["Emails"]
    dependencies = {"principal": Provide(provide_principal)}

    @get("/", operation_id="emails/metrics")
    async def metrics(
        self, principal: NamedDependency[Principal], db_session: DbSession,
        start_date: FromQuery[str | None] = None, end_date: FromQuery[str | None] = None,
        timezone: FromQuery[str] = "UTC", granularity: FromQuery[Granularity] = "daily", metrics: Listed = None,
        dimensions: Listed = None, domain_id: Listed = None, email_id: Listed = None,
    ) -> MetricsOut:
        """Counts of the team's email events over a date range (the 6 days before now by default), in total and
        broken down by `period`, `domain` or `email`; rates are shares of `sent`."""
        query = parse_query(start_date, end_date, timezone, granularity, metrics, dimensions, domain_id, email_id)
        return await count_metrics(db_session, principal.team_id, query)
