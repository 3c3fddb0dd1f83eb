"""Each mail-host service does its whole job connected as its own database role (app/db/roles.py), and no
more: an email submitted over SMTP (intake), handed to Postfix (worker), delivered and bounced in Postfix's
log (log follower), bounced again by a DSN (bounce pipe), announced by webhooks (dispatcher), and then
housekeeping (worker). A grant taken away from migration 0008 fails one of these steps."""

from __future__ import annotations

import re
import subprocess
import uuid

import msgspec
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from test_ingestion import LOG, QID, _bounce_pipe, _sample
from test_outbox import db, drain
from test_smtp_intake import _message, _submit, running_intake
from webhook_support import deliver_all

from app.db import roles
from app.domain.emails.outbox import Outbox
from app.domain.emails.retention import purge_old_emails
from app.domain.events.ingest import ingest_lines
from app.domain.webhooks.dispatcher import Dispatcher
from app.lib.crypto import Keyring
from app.mailhost.worker import _purge


@pytest.fixture
async def engines(postgres):
    made = {role: create_async_engine(postgres.url(role)) for role in roles.SERVICE_ROLES}
    yield made
    for engine in made.values():
        await engine.dispose()


async def test_each_service_does_its_job_as_its_own_role(client, team, sender, settings, postgres, env, engines,
                                                         smtp_sink, receiver):  # noqa: F811
    hooked = await client.post("/webhooks", json={"endpoint": receiver.url, "events": ["email.delivered",
                                                                                       "email.bounced"]},
                               headers=team.headers)
    assert hooked.status_code == 201
    as_intake = msgspec.structs.replace(settings, service_database_url=postgres.url(roles.INTAKE))
    rcpt = f"r{uuid.uuid4().hex[:8]}@example.org"
    async with running_intake(as_intake) as path:
        code, reply = await _submit(path, f"orders@{sender}", [rcpt, "bob@example.org"], _message(sender, To=rcpt))
    assert code == 250, reply
    email_id = reply.rsplit(" ", 1)[1]

    await drain(settings, engines[roles.WORKER])
    queue_id = db(postgres, f"SELECT queue_id FROM emails WHERE id = '{email_id}'")
    assert len(smtp_sink.for_message_id(db(postgres, f"SELECT message_id FROM emails WHERE id = '{email_id}'"))) == 1
    assert await Outbox(settings, engines[roles.WORKER]).recover_expired() is not None

    applied = await ingest_lines(engines[roles.LOG_FOLLOWER], [LOG["sent"].replace(QID, queue_id)])
    assert applied == 1
    bounced = _bounce_pipe({**env, "POSTYARD_BOUNCE_DATABASE_URL": postgres.url(roles.BOUNCE)},
                           _sample("dsn_hard_bounce.eml", email_id, sender, rcpt),
                           f"bounce+{uuid.UUID(email_id).hex}@send.{sender}")
    assert bounced == 0
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert [e["type"] for e in fetched["events"]][-2:] == ["delivered", "bounced"]
    assert (await client.get(f"/suppressions/{rcpt}", headers=team.headers)).status_code == 200

    dispatcher = Dispatcher(settings, engines[roles.WEBHOOKS], Keyring(settings.data_keys, settings.active_data_key_id))
    try:
        await deliver_all(dispatcher, rounds=2)
    finally:
        await dispatcher.close()
    assert sorted(b'"email.delivered"' in body for _, body in receiver.requests) == [False, True]

    await _purge(settings, engines[roles.WORKER])
    await purge_old_emails(engines[roles.WORKER], 1)  # the statements run whatever they find


@pytest.mark.parametrize("role", roles.SERVICE_ROLES)
def test_no_service_role_reads_credentials_or_changes_the_schema(postgres, role):
    for sql in ("SELECT count(*) FROM api_keys", "SELECT count(*) FROM smtp_credentials", "DROP TABLE emails",
                "CREATE TABLE intruder (id int)"):
        with pytest.raises(subprocess.CalledProcessError) as refused:
            postgres.psql(sql, user=role, database="postyard")
        assert re.search("permission denied|must be owner", refused.value.stderr), (sql, refused.value.stderr)
