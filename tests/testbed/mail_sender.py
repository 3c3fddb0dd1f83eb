"""Make a sender on a deployed testbed, as a customer would through the API: a team, a domain whose
records are published in the testbed's DNS and verified, and an SMTP credential.

Run inside a host's network namespace (the database answers only there), with the settings in
the environment; prints the sender as JSON. The app runs in-process (Litestar's test client) on the
deployed database, so what it writes is exactly what the API would write.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.cli import create_team
from app.config import Settings
from postyard.appliance_client import publish_records


async def make_sender(settings: Settings, dns_address: str, tsig: str, domain_name: str, algorithm: str) -> dict:
    _, key = await create_team(settings, f"mail-{uuid.uuid4().hex[:6]}")
    headers = {"Authorization": f"Bearer {key}"}
    async with AsyncTestClient(app=create_app(settings), base_url="https://testserver.local") as client:
        created = await client.post("/domains", json={"name": domain_name, "dkim_algorithm": algorithm},
                                    headers=headers)
        created.raise_for_status()
        domain = created.json()
        publish_records(dns_address, tsig, domain["records"])
        verified = (await client.post(f"/domains/{domain['id']}/verify", headers=headers)).json()
        credential = (await client.post("/smtp-credentials", json={"name": "tests"}, headers=headers)).json()
    return {"domain": domain_name, "status": verified["status"], "records": domain["records"],
            "username": credential["username"], "password": credential["password"], "api_key": key}


def main() -> None:
    domain_name, algorithm = sys.argv[1], sys.argv[2]
    sender = asyncio.run(make_sender(
        Settings.from_env(), os.environ["POSTYARD_DNS_NAMESERVER"], os.environ["TESTBED_TSIG"], domain_name, algorithm,
    ))
    print(json.dumps(sender))


if __name__ == "__main__":
    main()
