"""How JSON and JSONB columns are written and read: msgspec, as the API's engine always did.

msgspec encodes UUIDs, dates and times, decimals and enums itself; the hook adds what advanced-alchemy's
encoder also wrote as strings (IP addresses and networks, paths). Kept apart from advanced-alchemy, whose
import loads Litestar and pydantic into every mail-host service.
"""

from __future__ import annotations

import ipaddress
from pathlib import PurePath
from typing import Any

import msgspec

__all__ = ["decode_json", "encode_json"]

_AS_TEXT = (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network, ipaddress.IPv6Network,
            ipaddress.IPv4Interface, ipaddress.IPv6Interface, PurePath)
_ENCODER = msgspec.json.Encoder(enc_hook=lambda value: _text(value))


def _text(value: Any) -> str:
    if isinstance(value, _AS_TEXT):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


def encode_json(value: Any) -> str:
    """The JSON text of `value`."""
    return _ENCODER.encode(value).decode()


def decode_json(text: str | bytes) -> Any:
    """The value of a JSON text."""
    return msgspec.json.decode(text)
