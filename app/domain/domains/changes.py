"""Changes to a team's domains on behalf of a principal, shared by `/domains` and the console: each needs the
write role and is recorded in the team's audit log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.models import DkimKey, Domain
from app.domain.domains import services
from app.domain.domains.schemas import DomainCreate
from app.lib.api_error import ApiError
from app.lib.audit import record
from app.lib.auth import Principal
from app.lib.crypto import Keyring

__all__ = ["add_domain", "check_domain", "remove_domain", "rotate_domain_dkim", "set_receiving", "set_tls_mode",
           "set_tracking"]


async def _audit(db: AsyncSession, principal: Principal, action: str, domain_id: uuid.UUID,
                 details: dict[str, object] | None = None) -> None:
    await record(db, team_id=principal.team_id, actor=principal.actor, action=action, resource_type="domain",
                 resource_id=domain_id, ip=principal.ip, details=details)


def _require_public_url(settings: Settings, turned_on: bool) -> None:
    """Tracking links point at the API's public URL: refuse to turn tracking on where the operator set none."""
    if turned_on and not settings.public_url:
        raise ApiError(422, "validation_error", "Open and click tracking need the API's public URL, which the "
                                                "operator has not set (POSTYARD_PUBLIC_URL)")


async def add_domain(db: AsyncSession, principal: Principal, data: DomainCreate, keyring: Keyring,
                     settings: Settings) -> tuple[Domain, list[DkimKey]]:
    """Create a domain entry with its DKIM key and ownership token."""
    principal.require_write()
    _require_public_url(settings, data.open_tracking or data.click_tracking)
    domain, keys = await services.create_domain(db, principal.team_id, data, keyring)
    await _audit(db, principal, "domain.created", domain.id, {"name": domain.name})
    return domain, keys


async def check_domain(db: AsyncSession, principal: Principal, domain_id: uuid.UUID,
                       settings: Settings) -> tuple[Domain, list[DkimKey]]:
    """Look every record of the domain up in DNS and store the result of each."""
    principal.require_write()
    domain, keys, took_over = await services.verify_domain(db, principal.team_id, domain_id, settings)
    await _audit(db, principal, "domain.verified", domain.id,
                 {"status": domain.status, **({"taken_over": True} if took_over else {})})
    return domain, keys


async def rotate_domain_dkim(db: AsyncSession, principal: Principal, domain_id: uuid.UUID, keyring: Keyring,
                             algorithm: str | None) -> tuple[Domain, list[DkimKey]]:
    """Add a new DKIM key beside the current one (`algorithm` None keeps the current key's type)."""
    principal.require_write()
    domain, keys = await services.rotate_dkim(db, principal.team_id, domain_id, keyring, algorithm)
    await _audit(db, principal, "domain.dkim_rotated", domain.id, {"selector": keys[-1].selector})
    return domain, keys


async def set_tls_mode(db: AsyncSession, principal: Principal, domain_id: uuid.UUID, tls: str | None) -> Domain:
    """Change the domain's TLS mode (opportunistic or enforced); recorded only when it changes."""
    principal.require_write()
    domain, _ = await services.get_domain(db, principal.team_id, domain_id)
    if tls is not None and tls != domain.tls_mode:
        await _audit(db, principal, "domain.updated", domain.id, {"tls": tls, "was": domain.tls_mode})
        domain.tls_mode = tls
        domain.tls_mode_changed_at = datetime.now(UTC)  # its mail waits for Postfix's maps
    return domain


async def set_receiving(db: AsyncSession, principal: Principal, domain_id: uuid.UUID,
                        receiving: bool | None) -> Domain:
    """Turn receiving on or off; recorded only when it changes. Port 25 takes the domain's mail only while it is
    also verified, so a team cannot take in mail for a name it has not proven it holds."""
    principal.require_write()
    domain, _ = await services.get_domain(db, principal.team_id, domain_id)
    if receiving is not None and receiving != domain.receiving:
        await _audit(db, principal, "domain.updated", domain.id, {"receiving": receiving, "was": domain.receiving})
        domain.receiving = receiving
    return domain


async def set_tracking(db: AsyncSession, principal: Principal, domain_id: uuid.UUID, opens: bool | None,
                       clicks: bool | None, settings: Settings) -> Domain:
    """Turn open or click tracking on or off (None: as it is); recorded only when it changes. It applies to the
    HTML of emails accepted from then on."""
    principal.require_write()
    _require_public_url(settings, bool(opens) or bool(clicks))
    domain, _ = await services.get_domain(db, principal.team_id, domain_id)
    changed = {name: value for name, value, was in (("open_tracking", opens, domain.open_tracking),
                                                     ("click_tracking", clicks, domain.click_tracking))
               if value is not None and value != was}
    if changed:
        await _audit(db, principal, "domain.updated", domain.id, changed)
        for name, value in changed.items():
            setattr(domain, name, value)
    return domain


async def remove_domain(db: AsyncSession, principal: Principal, domain_id: uuid.UUID) -> Domain:
    """Delete the domain and its DKIM keys."""
    principal.require_write()
    domain = await services.delete_domain(db, principal.team_id, domain_id)
    await _audit(db, principal, "domain.deleted", domain.id, {"name": domain.name})
    return domain
