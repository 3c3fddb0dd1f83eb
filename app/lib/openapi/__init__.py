"""The served OpenAPI document and its docs UI: truthful error responses and security, assets from a pinned package."""

from app.lib.openapi.docs import SwaggerUIPlugin
from app.lib.openapi.errors import document_errors

__all__ = ["SwaggerUIPlugin", "document_errors"]
