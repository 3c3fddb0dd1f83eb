"""The operations of the served OpenAPI document, each with the route handler that serves it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Operation
from litestar.routes import HTTPRoute

__all__ = ["Served", "operations"]


class Served(NamedTuple):
    """One documented operation and what serves it."""

    handler: HTTPRouteHandler
    route: HTTPRoute
    method: str
    operation: Operation


def operations(app: Litestar) -> Iterator[Served]:
    """Every documented operation of the app's OpenAPI document."""
    paths = app.openapi_schema.paths or {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in paths:
            continue
        item = paths[route.path_format]
        for method, (handler, _) in route.route_handler_map.items():
            operation = getattr(item, method.lower(), None)
            if operation is not None and handler.include_in_schema:
                yield Served(handler, route, method, operation)
