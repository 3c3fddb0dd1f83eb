"""Request and response bodies of /domains."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.lib.request_body import RequestBody, StrictBool
from app.lib.response_body import ABSENT, Absent

__all__ = ["Capabilities", "CapabilitiesChange", "CapabilitiesOut", "DomainCreate", "DomainDeleted", "DomainList",
           "DomainListItem", "DomainOut", "DomainRef", "DomainUpdate", "RecordOut"]

DomainName = Annotated[str, msgspec.Meta(min_length=3, max_length=253, extra_json_schema={
    "pattern": r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$"})]
Label = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]


Capability = Literal["enabled", "disabled"]


class Capabilities(RequestBody):
    """What the domain does: it always sends; it receives on port 25 once verified, if enabled."""

    sending: Literal["enabled"] = "enabled"
    receiving: Capability = "disabled"


class CapabilitiesChange(RequestBody):
    """A change of what the domain does; what is left out stays as it is."""

    sending: Literal["enabled"] | None = None
    receiving: Capability | None = None


class CapabilitiesOut(msgspec.Struct):
    """What the domain does."""

    sending: str
    receiving: str


class DomainCreate(RequestBody):
    """A new sending domain."""

    name: DomainName
    region: Literal["us-east-1", "eu-west-1", "sa-east-1", "ap-northeast-1"] = "eu-west-1"
    custom_return_path: Label = "send"
    tls: Literal["opportunistic", "enforced"] = "opportunistic"
    dkim_algorithm: Literal["rsa", "ed25519"] = "rsa"
    capabilities: Capabilities = msgspec.field(default_factory=Capabilities)
    open_tracking: StrictBool = False
    click_tracking: StrictBool = False


class DomainUpdate(RequestBody):
    """Changeable settings of a domain."""

    tls: Literal["opportunistic", "enforced"] | None = None
    capabilities: CapabilitiesChange | None = None
    open_tracking: StrictBool | None = None
    click_tracking: StrictBool | None = None
    id: str | None = None  # the path's id, as the Python SDK repeats it


class RecordOut(msgspec.Struct):
    """One DNS record and its verification status."""

    record: str
    name: str
    type: str
    ttl: str
    status: str
    value: str
    priority: int | Absent = ABSENT


class DomainOut(msgspec.Struct):
    """A domain with the records to publish."""

    id: str
    name: str
    status: str
    created_at: str
    region: str
    tls: str
    capabilities: CapabilitiesOut
    open_tracking: bool
    click_tracking: bool
    records: list[RecordOut]
    object: str = "domain"


class DomainListItem(msgspec.Struct):
    """A domain as listed."""

    id: str
    name: str
    status: str
    created_at: str
    region: str
    capabilities: CapabilitiesOut
    open_tracking: bool
    click_tracking: bool


class DomainList(msgspec.Struct):
    """A page of domains."""

    data: list[DomainListItem]
    has_more: bool = False
    object: str = "list"


class DomainRef(msgspec.Struct):
    """Acknowledges an update."""

    id: str
    object: str = "domain"


class DomainDeleted(msgspec.Struct):
    """Acknowledges a deletion."""

    id: str
    deleted: bool = True
    object: str = "domain"
