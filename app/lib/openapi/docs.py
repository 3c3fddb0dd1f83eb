"""The docs UI (Swagger UI) served from this origin, from the pinned swagger-ui-bundle-v2 package."""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.params import FromPath
from litestar.router import Router
from swagger_ui_bundle import swagger_ui_path

__all__ = ["ASSETS", "SwaggerUIPlugin"]

# The only files served: the bundle's script and styles and an icon, and our own start-up script (a page
# under a CSP without 'unsafe-inline' cannot run an inline one).
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (Path(str(swagger_ui_path)) / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (Path(str(swagger_ui_path)) / "swagger-ui.css", "text/css"),
    "favicon-32x32.png": (Path(str(swagger_ui_path)) / "favicon-32x32.png", "image/png"),
    "start.js": (Path(__file__).with_name("docs-start.js"), "text/javascript"),
}
ASSET_CACHE_SECONDS = 3600

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{schema}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/start.js"></script>
</body>
</html>
"""


@cache
def _asset(name: str) -> bytes:
    return ASSETS[name][0].read_bytes()


@get("/assets/{asset:str}", include_in_schema=False, sync_to_thread=False, name="docs-asset")
def docs_asset(asset: FromPath[str]) -> Response[bytes]:
    """One file of the docs UI."""
    if asset not in ASSETS:
        raise NotFoundException()
    return Response(_asset(asset), media_type=ASSETS[asset][1],
                    headers={"Cache-Control": f"public, max-age={ASSET_CACHE_SECONDS}"})


class SwaggerUIPlugin(OpenAPIRenderPlugin):
    """Swagger UI at the docs path, with every asset from this origin."""

    def __init__(self, path: str = "/", **kwargs: Any) -> None:
        super().__init__(path=path, **kwargs)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        schema_url = self.get_openapi_json_route(request)
        assets = request.app.route_reverse("docs-asset", asset="x").rsplit("/", 1)[0]
        title = str(openapi_schema.get("info", {}).get("title", "API"))
        return _PAGE.format(title=html.escape(title), assets=html.escape(assets),
                            schema=html.escape(schema_url)).encode()

    def receive_router(self, router: Router) -> None:
        router.register(docs_asset)
