"""Domains of the caller's team: creation with a DKIM key, DNS verification, rotation, deletion.

Any number of teams may add the same name; each entry has its own ownership token, and verification
(every required record, the `_postyard.<name>` ownership record among them) makes it the team's
sending domain. At most one entry per name is verified: a team whose records verify takes the name
over from another team only once that team's ownership record is gone from DNS.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime

import anyio
from dns.asyncresolver import Resolver
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.models import DkimKey, Domain
from app.domain.domains import dkim
from app.domain.domains.dns import (
    OWNERSHIP_PREFIX,
    ExpectedRecord,
    check_record,
    make_resolver,
    ownership_name,
    published_tokens,
)
from app.domain.domains.schemas import CapabilitiesOut, DomainCreate, DomainOut, RecordOut
from app.lib.api_error import ApiError
from app.lib.crypto import Keyring, dkim_associated_data
from app.lib.response_body import unless_none
from app.lib.timefmt import iso

__all__ = ["capabilities_of", "create_domain", "delete_domain", "expected_records", "get_domain", "list_domains",
           "normalise_domain", "rotate_dkim", "to_out", "verify_domain"]

OWNERSHIP_KEY = "ownership"  # the ownership record in record_status (also set by postyard_claim_domain)


def normalise_domain(name: str) -> str:
    """Lowercase IDNA form of a sending domain, or a 422."""
    candidate = name.strip().rstrip(".").lower()
    try:
        ascii_name = candidate.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = ""
    labels = ascii_name.split(".")
    valid = (
        3 <= len(ascii_name) <= 253 and len(labels) >= 2 and not labels[-1].isdigit()
        and all(0 < len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
                and not label.startswith("-") and not label.endswith("-") for label in labels)
    )
    if not valid:
        raise ApiError(422, "validation_error", "name must be a valid domain name")
    return ascii_name


async def _new_key(domain: Domain, kind: str, keyring: Keyring, active: bool) -> DkimKey:
    pair = await anyio.to_thread.run_sync(dkim.generate_key_pair, kind)
    selector = dkim.new_selector()
    key_id, ciphertext = keyring.encrypt(pair.private_pem, dkim_associated_data(domain.name, selector))
    return DkimKey(
        id=uuid.uuid4(), team_id=domain.team_id, domain_id=domain.id, selector=selector, algorithm=pair.algorithm,
        public_key=pair.public_value, key_id=key_id, private_key_ciphertext=ciphertext, active=active,
        status="pending",
    )


async def create_domain(
    db: AsyncSession, team_id: uuid.UUID, data: DomainCreate, keyring: Keyring
) -> tuple[Domain, list[DkimKey]]:
    """Create a domain entry, its ownership token and its first DKIM key (encrypted under the active data key)."""
    name = normalise_domain(data.name)
    if (await db.execute(select(Domain.id).where(Domain.team_id == team_id, Domain.name == name))).first():
        raise ApiError(409, "conflict", f"This team already has the domain {name}")
    domain = Domain(
        id=uuid.uuid4(), team_id=team_id, name=name, status="not_started", verification_token=secrets.token_hex(16),
        region=data.region, tls_mode=data.tls, return_path=data.custom_return_path, record_status={},
        receiving=data.capabilities.receiving == "enabled", open_tracking=data.open_tracking,
        click_tracking=data.click_tracking,
    )
    key = await _new_key(domain, data.dkim_algorithm, keyring, active=True)
    db.add(domain)
    await db.flush()
    db.add(key)
    await db.flush()
    return domain, [key]


async def list_domains(db: AsyncSession, team_id: uuid.UUID) -> list[Domain]:
    """The team's domains, newest first."""
    query = select(Domain).where(Domain.team_id == team_id).order_by(Domain.created_at.desc(), Domain.id.desc())
    return list((await db.execute(query)).scalars())


async def get_domain(db: AsyncSession, team_id: uuid.UUID, domain_id: uuid.UUID) -> tuple[Domain, list[DkimKey]]:
    """A domain of the team and its current DKIM keys, or 404."""
    domain = (await db.execute(select(Domain).where(Domain.id == domain_id, Domain.team_id == team_id))
              ).scalar_one_or_none()
    if domain is None:
        raise ApiError(404, "not_found", "Domain not found")
    keys = (await db.execute(select(DkimKey).where(
        DkimKey.domain_id == domain.id, DkimKey.team_id == team_id, DkimKey.status != "retired"
    ).order_by(DkimKey.created_at))).scalars()
    return domain, list(keys)


def expected_records(domain: Domain, keys: list[DkimKey], settings: Settings) -> list[ExpectedRecord]:
    """Ownership, DKIM (one per current key), SPF and an MX per mail host of the return path, DMARC, MTA-STS
    and TLS-RPT, and for a domain that receives an MX per mail host of its own.

    With one mail host the MX record's key and the SPF value are those of a single-host deployment, so the
    statuses stored for them stay theirs; with several, each MX record is keyed by its host.
    """
    rp = f"{domain.return_path}.{domain.name}"
    hosts = settings.mail_host_names
    records = [ExpectedRecord(OWNERSHIP_KEY, "Ownership", ownership_name(domain.name), "TXT",
                              f"{OWNERSHIP_PREFIX}{domain.verification_token}")]
    records += [
        ExpectedRecord(f"dkim:{k.selector}", "DKIM", f"{k.selector}._domainkey.{domain.name}", "TXT",
                       dkim.txt_value(k.algorithm, k.public_key), required=k.active)
        for k in keys
    ]
    records += [
        ExpectedRecord("spf_mx" if len(hosts) == 1 else f"spf_mx:{mx}", "SPF", rp, "MX", mx, priority=10)
        for mx in hosts
    ]
    records += [
        ExpectedRecord("spf_txt", "SPF", rp, "TXT", f"v=spf1 {' '.join(f'a:{mx}' for mx in hosts)} -all"),
        ExpectedRecord("dmarc", "DMARC", f"_dmarc.{domain.name}", "TXT",
                       f"v=DMARC1; p=none; rua=mailto:dmarc@{domain.name}", required=False),
        ExpectedRecord("mta_sts", "MTA-STS", f"_mta-sts.{domain.name}", "TXT",
                       f"v=STSv1; id={domain.created_at:%Y%m%d%H%M%S}", required=False),
        ExpectedRecord("mta_sts_host", "MTA-STS", f"mta-sts.{domain.name}", "CNAME", hosts[0], required=False),
        ExpectedRecord("tls_rpt", "TLS-RPT", f"_smtp._tls.{domain.name}", "TXT",
                       f"v=TLSRPTv1; rua=mailto:tls-reports@{domain.name}", required=False),
    ]
    if domain.receiving:  # the domain's own MX: not needed to send, so it does not hold up verification
        records += [ExpectedRecord("receiving_mx" if len(hosts) == 1 else f"receiving_mx:{mx}", "Receiving",
                                   domain.name, "MX", mx, priority=10, required=False) for mx in hosts]
    return records


def _overall(statuses: dict[str, str], required: list[str]) -> str:
    wanted = [statuses.get(k, "not_started") for k in required]
    if all(s == "verified" for s in wanted):
        return "verified"
    if any(s == "verified" for s in wanted):
        return "partially_verified"
    if any(s == "temporary_failure" for s in wanted):
        return "pending"
    return "failed"


async def _claim(db: AsyncSession, domain: Domain, resolver: Resolver) -> bool:
    """Make sure no other team holds the name verified; True when one did and has lost it to this entry."""
    tokens = await published_tokens(resolver, domain.name)
    outcome = (await db.execute(text("SELECT postyard_claim_domain(:d, :p)"),
                                {"d": domain.id, "p": tokens})).scalar_one()
    if outcome == "held":
        why = ("its ownership record is still published at" if tokens is not None
               else "DNS did not answer in time to tell whether its ownership record is still published at")
        raise ApiError(409, "domain_claimed",
                       f"Another team holds {domain.name} verified, and {why} {ownership_name(domain.name)}; "
                       "the name passes to this team once only this team's ownership record is published")
    return outcome == "released"


async def verify_domain(
    db: AsyncSession, team_id: uuid.UUID, domain_id: uuid.UUID, settings: Settings
) -> tuple[Domain, list[DkimKey], bool]:
    """Look every record up, store a status per record, and promote a rotated DKIM key once published.

    The third value is True when the name was taken over from another team's verified entry.
    """
    domain, keys = await get_domain(db, team_id, domain_id)
    records = expected_records(domain, keys, settings)
    resolver = make_resolver(settings)
    results = await asyncio.gather(*(check_record(resolver, r) for r in records))
    statuses = {r.key: s for r, s in zip(records, results, strict=True)}
    pending = [k for k in keys if not k.active and statuses.get(f"dkim:{k.selector}") == "verified"]
    if pending:
        newest = pending[-1]
        for key in keys:
            if key.active:
                key.active, key.status = False, "retired"
        newest.active = True
    for key in keys:
        if key.active and statuses.get(f"dkim:{key.selector}") == "verified":
            key.status = "verified"
    keys = [k for k in keys if k.status != "retired"]
    required = [r.key for r in expected_records(domain, keys, settings) if r.required]
    status = _overall(statuses, required)
    took_over = status == "verified" and await _claim(db, domain, resolver)
    domain.record_status = statuses
    domain.status = status
    if domain.status == "verified" and domain.verified_at is None:
        domain.verified_at = datetime.now(UTC)
    name = domain.name  # a failed flush expires the instance
    try:
        await db.flush()
    except IntegrityError as error:  # the partial unique index: another team verified it concurrently
        raise ApiError(409, "domain_claimed", f"Another team verified {name} at the same moment; "
                                              "at most one team holds a domain verified") from error
    return domain, keys, took_over


async def rotate_dkim(
    db: AsyncSession, team_id: uuid.UUID, domain_id: uuid.UUID, keyring: Keyring, kind: str | None
) -> tuple[Domain, list[DkimKey]]:
    """Add a new DKIM key beside the active one; it takes over when verify finds it published."""
    domain, keys = await get_domain(db, team_id, domain_id)
    for key in keys:
        if not key.active:
            key.status = "retired"
    current = next((k for k in keys if k.active), None)
    algorithm = kind or ("ed25519" if current and current.algorithm.startswith("ed25519") else "rsa")
    new_key = await _new_key(domain, algorithm, keyring, active=False)
    db.add(new_key)
    await db.flush()
    return domain, [k for k in keys if k.status != "retired"] + [new_key]


async def delete_domain(db: AsyncSession, team_id: uuid.UUID, domain_id: uuid.UUID) -> Domain:
    """Delete a domain with its keys (the mail tier is notified through the DKIM trigger)."""
    domain, _ = await get_domain(db, team_id, domain_id)
    await db.delete(domain)
    await db.flush()
    return domain


def capabilities_of(domain: Domain) -> CapabilitiesOut:
    """What the domain does, as Resend shows it."""
    return CapabilitiesOut(sending="enabled", receiving="enabled" if domain.receiving else "disabled")


def to_out(domain: Domain, keys: list[DkimKey], settings: Settings) -> DomainOut:
    """The response form of a domain, with each record's last known status."""
    statuses = domain.record_status or {}
    return DomainOut(
        id=str(domain.id), name=domain.name, status=domain.status, created_at=iso(domain.created_at) or "",
        region=domain.region, tls=domain.tls_mode, capabilities=capabilities_of(domain),
        open_tracking=domain.open_tracking, click_tracking=domain.click_tracking,
        records=[
            RecordOut(record=r.record, name=r.name, type=r.type, ttl=r.ttl, value=r.value,
                      priority=unless_none(r.priority), status=statuses.get(r.key, "not_started"))
            for r in expected_records(domain, keys, settings)
        ],
    )
