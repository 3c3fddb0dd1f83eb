"""The served OpenAPI document and its docs UI: truthful error responses and security, assets from a pinned package."""

from litestar import Litestar

from app.lib.openapi.bodies import document_request_bodies
from app.lib.openapi.docs import SwaggerUIPlugin
from app.lib.openapi.errors import document_errors
from app.lib.openapi.parameters import document_cursors

__all__ = ["SwaggerUIPlugin", "document_api"]


def document_api(app: Litestar) -> None:
    """Make the app's OpenAPI document state what the app does: request bodies as decoded, cursors as
    ids, and each operation's errors and security."""
    document_request_bodies(app)
    document_cursors(app)
    document_errors(app)
