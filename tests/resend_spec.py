"""Resend's OpenAPI description (shared/specs/ beside the repository, or where POSTYARD_RESEND_OPENAPI points)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = ["resend_spec", "spec_path", "webhook_event_validator"]

SPEC_VARIABLE = "POSTYARD_RESEND_OPENAPI"
REPO = Path(__file__).resolve().parents[1]
_URI = "urn:resend-openapi"


def spec_path() -> Path:
    """The description beside the repository, or where the variable points."""
    return Path(os.environ.get(SPEC_VARIABLE) or REPO.parent / "shared" / "specs" / "resend-openapi.yaml")


@lru_cache(maxsize=1)
def resend_spec() -> dict[str, Any]:
    """The parsed description."""
    return yaml.safe_load(spec_path().read_text())


def webhook_event_validator(event_type: str) -> Draft202012Validator:
    """A JSON Schema validator of the body Resend sends for `event_type` (e.g. `email.bounced`)."""
    spec = resend_spec()
    schema = spec["webhooks"][event_type]["post"]["requestBody"]["content"]["application/json"]["schema"]
    registry: Registry = Registry().with_resource(_URI, Resource.from_contents(spec, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": _URI + schema["$ref"]}, registry=registry)
