"""The console's home: the team's activity over 24 hours, 7 and 30 days as bar charts, its queue and webhooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get

from app.console import repository
from app.console.auth import CurrentUser, provide_console_principal
from app.console.render import redirect, render
from app.lib.dependencies import DbSession

__all__ = ["OVERVIEW_HANDLERS", "Bar", "bar_chart"]

CHART_WIDTH, CHART_HEIGHT, LABEL_SPACE = 300, 160, 36
OPERATOR_HOME = "/console/operator"


@dataclass(frozen=True)
class Bar:
    """One bar of a chart, in SVG user units."""

    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


def bar_chart(counts: dict[str, int]) -> list[Bar]:
    """Bars for `counts`, side by side, scaled to the largest (an empty chart keeps a hairline per bar)."""
    top = max(counts.values(), default=0) or 1
    plot = CHART_HEIGHT - 2 * LABEL_SPACE
    slot = CHART_WIDTH / max(len(counts), 1)
    bars = []
    for index, (label, value) in enumerate(counts.items()):
        height = max(plot * value / top, 1.0)
        bars.append(Bar(label=label, value=value, x=round(index * slot + slot * 0.15, 1),
                        y=round(LABEL_SPACE + plot - height, 1), width=round(slot * 0.7, 1), height=round(height, 1)))
    return bars


@get("/", name="console:overview")
async def overview(request: Request[Any, Any, Any], console_user: CurrentUser,
                   db_session: DbSession) -> Response[Any]:
    """Sent, delivered, bounced, complained and deferred over each window, the queue and webhook failures. An
    operator in no team goes to the operator's pages."""
    if console_user.principal is None and console_user.is_operator:
        return await redirect(request, console_user, None, OPERATOR_HOME)
    principal = await provide_console_principal(console_user)
    activity = await repository.activity(db_session, principal.team_id)
    charts = [{"window": window, "counts": counts, "bars": bar_chart(counts)} for window, counts in activity.items()]
    return await render(request, console_user, "overview.html.j2", title="Overview", charts=charts,
                        queue=await repository.queue(db_session, principal.team_id),
                        webhooks=await repository.webhook_failures(db_session, principal.team_id),
                        chart_width=CHART_WIDTH, chart_height=CHART_HEIGHT, label_space=LABEL_SPACE)


OVERVIEW_HANDLERS = [overview]
