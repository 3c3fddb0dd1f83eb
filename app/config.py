"""Settings, read once from the environment."""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from app.host_layout import (
    DKIM_DIR,
    INTAKE_SOCKET,
    INTERNAL_SMTP_HOST,
    INTERNAL_SMTP_PORT,
    OPENDKIM_PID_FILE,
    POLICY_SOCKET,
    POSTFIX_JOURNAL_CURSOR,
    POSTFIX_MAPS_DIR,
)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# The DNS-querying terms an SPF record may hold (RFC 7208 4.6.4): a return path's SPF has one per mail host.
SPF_MAX_LOOKUPS = 10

__all__ = ["SPF_MAX_LOOKUPS", "IPNetwork", "Settings", "get_settings", "parse_data_keys"]


def parse_data_keys(text: str) -> dict[str, bytes]:
    """Parse `id:base64key` entries separated by commas or newlines into 32-byte keys."""
    keys: dict[str, bytes] = {}
    for entry in text.replace("\n", ",").split(","):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        key_id, sep, encoded = entry.partition(":")
        key = base64.b64decode(encoded.strip(), validate=True) if sep else b""
        if not key_id.strip() or len(key) != 32:
            raise ValueError("each data key must be 'id:<base64 of 32 bytes>'")
        keys[key_id.strip()] = key
    return keys


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting the API and the mail-host processes read; environment variables are POSTYARD_<NAME>."""

    # Empty only for the processes that use no database of the app's: the rate policy and the DKIM sync.
    database_url: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    migration_database_url: str = ""
    # Bounds on every database connection (app/db/engines.py), in seconds: opening one (and a pooled one's
    # ping), a statement (0: none; housekeeping and migrations have none), a transaction left idle, idle
    # time before TCP keepalive probes, data left unacknowledged (a network that drops packets), the
    # wait for a free pooled connection, and a pooled connection left unused (PostgreSQL closes it, and
    # frees its backend's memory; 0: never).
    database_connect_timeout: Annotated[float, msgspec.Meta(gt=0)] = 3.0
    database_statement_timeout: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    database_idle_in_transaction_timeout: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    database_keepalive_idle: Annotated[int, msgspec.Meta(ge=1)] = 30
    database_tcp_user_timeout: Annotated[float, msgspec.Meta(ge=0)] = 15.0
    database_pool_timeout: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    database_idle_session_timeout: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    data_keys: dict[str, bytes] = msgspec.field(default_factory=dict)
    active_data_key_id: str = ""
    dns_nameserver: str = ""
    dns_port: int = 53
    dns_timeout: float = 3.0
    # This host's own name (the SMTP intake's greeting; on an API host, the first mail host's), and every mail
    # host's name, comma-separated: customers' return-path MX records and SPF name each (empty: mail_hostname).
    mail_hostname: str = "mail.postyard.test"
    mail_hostnames: str = ""
    rate_limit: int = 600
    api_key_rate_limit: int = 300
    rate_limit_window: int = 60
    anonymous_rate_limit: int = 30
    login_max_failures_account: int = 5
    login_max_failures_ip: int = 20
    login_failure_window: int = 900
    credential_limit_timeout: float = 5.0
    session_ttl: int = 86400
    # How long an API process keeps an API key or a team's sending policy it read; a change drops it at once
    # (NOTIFY api_lookups_changed), and nothing is kept while that notification cannot be heard.
    lookup_cache_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    # Who may create an account: `invite` (with a one-time invite), `open` (anyone; new teams send only
    # once an operator approves them) or `closed` (nobody; operators make teams with the CLI).
    signup: Literal["invite", "open", "closed"] = "invite"
    invite_ttl_hours: Annotated[int, msgspec.Meta(ge=1, le=720)] = 168
    # The instance's own mail (password resets), e.g. `no-reply@ops.example.com` or `Postyard <no-reply@...>`: its
    # domain must be a verified domain of some team, which sends it (docs/operators.md). Empty: no password reset.
    system_sender: str = ""
    # The host names users reach the console at, comma-separated: a reset link carries the request's host, so
    # a request naming another host is refused (a forged Host would send the victim a link to the forger's
    # site). Empty: any host (a deployment sets the API host's TLS names).
    console_hosts: str = ""
    cookie_secure: bool = True
    audit_retention_days: int = 90
    # Days settled emails, their events and settled webhook deliveries are kept (0: forever); the worker
    # deletes older ones hourly (app/domain/emails/retention.py).
    email_retention_days: Annotated[int, msgspec.Meta(ge=0)] = 0
    max_body_bytes: int = 1_048_576
    log_level: str = "INFO"
    debug: bool = False
    max_message_bytes: int = 10_485_760
    max_recipients: int = 50
    smtp_submission_host: str = INTERNAL_SMTP_HOST
    smtp_submission_port: int = INTERNAL_SMTP_PORT
    # Per SMTP step; above what Postfix can wait on its milters (app/host_layout.py postfix_milter_wait).
    smtp_submission_timeout: float = 60.0
    smtp_submission_starttls: bool = False
    smtp_session_max_seconds: float = 5.0
    smtp_intake_socket: str = INTAKE_SOCKET
    # The role a mail-host service connects as (app/db/roles.py): each service's unit names its own.
    service_database_url: str = ""
    # The bounce pipe's role: Postfix's pipe runs it through the launcher, which reads the shared settings.
    bounce_database_url: str = ""
    worker_concurrency: int = 4
    worker_batch_size: int = 20
    worker_lease_seconds: int = 120
    worker_max_attempts: int = 12
    # How far past an email's unanswered DATA the log follower must have read Postfix's log, without seeing it
    # accepted, before the email is sent again (docs/sending.md#when-postfixs-answer-is-lost).
    worker_outcome_grace_seconds: float = 120.0
    worker_poll_interval: float = 1.0
    # How long a claim waits for more mail when the last one found less than a batch (app/mailhost/drains.py).
    worker_gather_seconds: Annotated[float, msgspec.Meta(ge=0)] = 0.05
    dkim_settle_seconds: float = 5.0
    postfix_journal_cursor: str = POSTFIX_JOURNAL_CURSOR
    # The per-login submission rate policy (app/mailhost/rate_policy.py): its socket and its limit.
    policy_socket: str = POLICY_SOCKET
    submission_messages_per_minute: int = 600
    # The mail-host sync (app/mailhost/dkim_sync.py): its database role (postyard_mail), the directory of
    # OpenDKIM's keys and that of Postfix's maps (empty: no maps), the pid files of the OpenDKIM instances it
    # reloads (comma-separated), how often it re-reads.
    dkim_database_url: str = ""
    dkim_dir: str = DKIM_DIR
    postfix_maps_dir: str = POSTFIX_MAPS_DIR
    opendkim_pid: str = OPENDKIM_PID_FILE
    dkim_poll_seconds: float = 60.0
    webhook_allowed_networks: str = ""
    webhook_retry_schedule: str = "5,300,1800,7200,18000,36000,36000"
    # The webhook dispatcher (app/mailhost/webhooks.py): the deadline of one attempt (resolve, connect, send,
    # read; below the dispatcher's 120 s lease), how much of an answer it reads, and how many deliveries it
    # has in flight overall, per team and per endpoint.
    webhook_timeout: Annotated[float, msgspec.Meta(gt=0, le=60)] = 10.0
    webhook_max_response_bytes: Annotated[int, msgspec.Meta(ge=1)] = 65_536
    webhook_concurrency: Annotated[int, msgspec.Meta(ge=1)] = 32
    webhook_team_concurrency: Annotated[int, msgspec.Meta(ge=1)] = 8
    webhook_endpoint_concurrency: Annotated[int, msgspec.Meta(ge=1)] = 4
    webhook_secret_grace_hours: int = 24
    # HTTP surface: HSTS preload (only once the domain is meant for browsers' preload lists), the
    # security.txt contact (RFC 9116; empty: no security.txt), how far ahead its Expires lies, and the
    # bearer token /metrics asks for (empty: /metrics answers 404).
    hsts_preload: bool = False
    security_contact: str = ""
    security_txt_days: Annotated[int, msgspec.Meta(ge=1, le=364)] = 180
    metrics_token: str = ""
    # The API's public base URL for the links it hands out (attachment downloads, shared emails), e.g.
    # https://api.example.com; empty: https on the host name the request was made to.
    public_url: str = ""

    @property
    def system_database_url(self) -> str:
        """The URL of the mail-host services, which act across teams (the owner's where none is set)."""
        return self.service_database_url or self.owner_database_url

    @property
    def command_database_url(self) -> str:
        """The URL of the command line's team commands: the app's role where the host has it, else the owner's."""
        return self.database_url or self.migration_database_url

    @property
    def webhook_exempt_networks(self) -> tuple[IPNetwork, ...]:
        """Networks webhook endpoints may reach although not public (a test setup's own receivers)."""
        return tuple(ipaddress.ip_network(v.strip(), strict=False)
                     for v in self.webhook_allowed_networks.split(",") if v.strip())

    @property
    def console_host_names(self) -> frozenset[str]:
        """The host names a password-reset link may carry (empty: any)."""
        return frozenset(v.strip().lower() for v in self.console_hosts.split(",") if v.strip())

    @property
    def mail_host_names(self) -> tuple[str, ...]:
        """Every mail host of the deployment, sorted, so every host names them in one order (else mail_hostname)."""
        names = {v.strip() for v in self.mail_hostnames.split(",") if v.strip()}
        return tuple(sorted(names)) or (self.mail_hostname,)

    @property
    def webhook_retry_delays(self) -> list[float]:
        """Seconds to wait before each retry of a webhook delivery."""
        return [float(v) for v in self.webhook_retry_schedule.split(",") if v.strip()]

    @property
    def owner_database_url(self) -> str:
        """The URL migrations and admin commands use (the database owner role)."""
        return self.migration_database_url or self.database_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `POSTYARD_*` variables (data keys from a variable or a file)."""
        env = os.environ if env is None else env
        raw = {k[len("POSTYARD_"):].lower(): v for k, v in env.items() if k.startswith("POSTYARD_")}
        key_text = raw.pop("data_keys", "")
        key_file = raw.pop("data_key_file", "")
        if key_file:
            key_text = key_text + "\n" + Path(key_file).read_text()
        keys = parse_data_keys(key_text)
        fields = set(cls.__struct_fields__) - {"data_keys"}
        values = {k: v for k, v in raw.items() if k in fields}
        settings = msgspec.convert(values, cls, strict=False)
        active = settings.active_data_key_id or (list(keys)[-1] if keys else "")
        if keys and active not in keys:
            raise ValueError("POSTYARD_ACTIVE_DATA_KEY_ID names no configured data key")
        if len(settings.mail_host_names) > SPF_MAX_LOOKUPS:
            raise ValueError(f"POSTYARD_MAIL_HOSTNAMES names more than {SPF_MAX_LOOKUPS} mail hosts, more `a:` "
                             "terms than an SPF record may look up (RFC 7208 4.6.4)")
        return msgspec.structs.replace(settings, data_keys=keys, active_data_key_id=active)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings.from_env()
