"""A deployed appliance as its operator, the tests and the benchmarks reach it: commands on its hosts,
a new team, domains published in the testbed's DNS and verified through the API, and what reached
the testbed's remote MX."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dns.resolver

from app.host_layout import DKIM_DIR
from postyard.hetzner.dns import txt_value
from postyard.probe import Vantage
from postyard.secrets import SecretStore
from postyard.ssh import HasSshTarget, SshTarget, ssh_run
from postyard.testbed import internet
from postyard.testbed.state import HostRecord, TestbedState

if TYPE_CHECKING:
    import httpx

__all__ = ["ApiAccess", "Team", "TestbedAppliance", "create_team", "name_resolver", "publish_records", "record_rdata"]

# Runs on the internet host: every message in a Maildir, oldest first, as base64 in a JSON list.
READ_MAILDIR = """
import base64, json, pathlib, sys
files = [p for d in ("new", "cur") for p in pathlib.Path(sys.argv[1], d).glob("*") if p.is_file()]
files.sort(key=lambda p: p.stat().st_mtime)
print(json.dumps([base64.b64encode(p.read_bytes()).decode() for p in files]))
"""


@dataclass(frozen=True)
class Team:
    """A team `postyard-api create-team` made: its full-access API key and, if asked for, an SMTP login."""

    id: str
    api_key: str
    smtp_login: tuple[str, str] | None
    printed: str  # what the command printed, secrets included (shown once)


def create_team(host: SshTarget | HasSshTarget, name: str, smtp_credential: bool = False) -> Team:
    """A new team made on a mail host with `postyard-api create-team`."""
    printed = ssh_run(host, ["postyard-api", "create-team", name, *(["--smtp-credential"] if smtp_credential else [])],
                      timeout=120)
    fields = dict(line.split(": ", 1) for line in printed.splitlines() if ": " in line)
    login = (fields["smtp username"], fields["smtp password (shown once)"]) if smtp_credential else None
    return Team(printed.split("team ", 1)[1].split()[0], fields["api key (shown once)"], login, printed)


def record_rdata(record: Mapping[str, Any]) -> str:
    """A DNS record the API lists for a domain, as zone-file record data."""
    if record["type"] == "TXT":
        return txt_value(record["value"])
    if record["type"] == "MX":
        return f"{record.get('priority') or 10} {record['value']}."
    return record["value"] + "."


def publish_records(dns_address: str, tsig: str, records: Iterable[Mapping[str, Any]]) -> None:
    """A domain's records in the testbed's DNS, as a DNS provider's API would publish them: each name and type
    once, with all its values (with several mail hosts, a return-path name has an MX for each)."""
    rrsets: dict[tuple[str, str], list[str]] = {}
    for record in records:
        rrsets.setdefault((record["name"] + ".", record["type"]), []).append(record_rdata(record))
    for (name, rdtype), values in rrsets.items():
        internet.update(dns_address, tsig, name, rdtype, values)


def name_resolver(names: Mapping[str, str]) -> Callable[..., Any]:
    """socket.getaddrinfo that answers `names` ({host name: address}) itself and asks the real one for the rest."""
    real = socket.getaddrinfo

    def resolve(host: str | bytes | None, *rest: Any, **kw: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host  # anyio passes IDNA-encoded bytes
        return real(names.get(name, host) if name else host, *rest, **kw)

    return resolve


@dataclass(frozen=True)
class ApiAccess:
    """The deployed API as one team calls it: its URL, the team's key, and the root its certificate chains to."""

    url: str
    key: str
    root_pem: str

    def _options(self) -> dict[str, Any]:
        return {"base_url": self.url, "headers": {"Authorization": f"Bearer {self.key}"}, "timeout": 60,
                "verify": ssl.create_default_context(cadata=self.root_pem)}

    def client(self) -> httpx.Client:
        import httpx  # the test extras: the CLI imports this module without them

        return httpx.Client(**self._options())

    def async_client(self, concurrency: int) -> httpx.AsyncClient:
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        return httpx.AsyncClient(limits=limits, **self._options())


class TestbedAppliance:
    """One deployed testbed from this machine: its hosts over SSH, its DNS, and its remote MX's mailbox."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, bed: TestbedState) -> None:
        self.bed = bed
        self.mail = self._first("mail")
        self.db = self._first("db")
        self.api = self._first("api")
        self.store = SecretStore(bed.directory / "secrets")
        self.outside = Vantage(bed.outside_netns)
        if bed.internet_host is None:
            raise ValueError(f"testbed {bed.name} has no internet host")
        self.internet = bed.internet_host
        self.dns = self.internet.public_address

    def _first(self, group: str) -> HostRecord:
        return self.hosts_in(group)[0]

    def hosts_in(self, group: str) -> list[HostRecord]:
        """The testbed's hosts of one group (mail, db, api...), in inventory order."""
        return [h for h in self.bed.platform_hosts if group in h.groups]

    def target(self, host: HostRecord) -> SshTarget:
        return SshTarget(host.fqdn, host.public_address, "root", str(self.bed.ssh_key), str(self.bed.known_hosts))

    def on_mail_host(self, command: str | Sequence[str], *, input: str | None = None, timeout: float = 60) -> str:
        return ssh_run(self.target(self.mail), command, input=input, timeout=timeout)

    def on_internet_host(self, command: str | Sequence[str], *, input: str | None = None,
                         timeout: float = 60) -> str:
        return ssh_run(self.target(self.internet), command, input=input, timeout=timeout)

    # -- the API, as a customer reaches it

    @property
    def api_url(self) -> str:
        return f"https://{self.api.fqdn}"

    def host_names(self) -> dict[str, str]:
        """{host name: address}: the API's certificate names the host (and the API's name, at the load balancer,
        where there is one), and no resolver here knows them."""
        names = {h.fqdn: h.public_address for h in self.bed.platform_hosts}
        if self.bed.api_name and self.bed.load_balancer:
            names[self.bed.api_name] = self.bed.load_balancer.public_address
        return names

    def acme_root_pem(self) -> str:
        return internet.acme_root_pem(self.bed)

    def create_team(self, name: str, smtp_credential: bool = False) -> Team:
        return create_team(self.target(self.mail), name, smtp_credential)

    def open_team(self, name: str, smtp_credential: bool = False) -> tuple[Team, ApiAccess]:
        """A new team, and the API as it calls it from here (once `name_resolver` answers the host names)."""
        team = self.create_team(name, smtp_credential)
        return team, ApiAccess(self.api_url, team.api_key, self.acme_root_pem())

    def publish(self, records: list[dict[str, Any]]) -> None:
        """The records the API lists for a domain, in the testbed's DNS (as a DNS provider's API would)."""
        publish_records(self.dns, internet.tsig_secret(self.store), records)

    def verified_domain(self, api: ApiAccess, prefix: str = "d", key_timeout: float = 30) -> str:
        """A new domain made, published and verified through the API, once its key signs on the mail host."""
        name = f"{prefix}{uuid.uuid4().hex[:10]}.test"
        with api.client() as client:
            created = client.post("/domains", json={"name": name}).raise_for_status().json()
            self.publish(created["records"])
            verified = client.post(f"/domains/{created['id']}/verify").raise_for_status().json()
        if verified["status"] != "verified":
            raise RuntimeError(f"{name} is {verified['status']}, not verified")
        self.wait_for_key(name, key_timeout)
        return name

    def wait_for_key(self, domain: str, timeout: float = 30) -> None:
        """Wait until the DKIM sync has put the domain in OpenDKIM's signing table on every mail host: any of them
        may send its mail."""
        deadline = time.monotonic() + timeout
        for mail in self.hosts_in("mail"):
            while domain not in ssh_run(self.target(mail), f"cat {DKIM_DIR}/current/SigningTable*"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the DKIM key of {domain} did not reach {mail.fqdn} within {timeout:.0f} s")
                time.sleep(0.5)

    # -- the remote MX and the testbed's DNS, as a recipient sees them

    def received_messages(self) -> list[bytes]:
        """Every message the remote MX kept, oldest first."""
        listing = self.on_internet_host(["python3", "-c", READ_MAILDIR, internet.MAILDIR])
        return [base64.b64decode(item) for item in json.loads(listing)]

    def wait_for(self, marker: str, timeout: float = 60) -> bytes:
        """The first message the remote MX kept that carries `marker` (a Message-ID, a subject)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for raw in self.received_messages():
                if marker.encode() in raw:
                    return raw
            time.sleep(1)
        raise AssertionError(f"{marker} did not arrive at the remote MX within {timeout:.0f} s")

    def dns_txt(self, name: bytes, timeout: int = 5) -> bytes:
        """A TXT record from the testbed's DNS (dkimpy's dnsfunc)."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [self.dns]
        answer = resolver.resolve(name.decode(), "TXT", lifetime=timeout)
        return b"".join(b"".join(r.strings) for r in answer)

    def dkim_verifies(self, raw: bytes) -> bool:
        """Whether a received message's DKIM signature verifies against the testbed's DNS."""
        import dkim  # dkimpy, of the test extras

        return bool(dkim.verify(raw, dnsfunc=self.dns_txt))
