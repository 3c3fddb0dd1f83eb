"""Retention: bodies and attachments go after the team's period; metadata, events and suppressions stay."""

from __future__ import annotations

from test_emails import message
from test_outbox import db, drain

from app.domain.emails.retention import purge_expired_bodies


async def test_bodies_older_than_the_retention_period_are_purged_and_metadata_kept(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    old = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    recent = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    await drain(settings, owner_engine)
    db(postgres, f"UPDATE emails SET created_at = now() - interval '31 days' WHERE id = '{old}'")
    await purge_expired_bodies(owner_engine)
    purged = (await client.get(f"/emails/{old}", headers=team.headers)).json()
    kept = (await client.get(f"/emails/{recent}", headers=team.headers)).json()
    mime = db(postgres, f"SELECT mime IS NULL FROM emails WHERE id = '{old}'")
    assert "html" not in purged and "text" not in purged and mime == "t"
    assert purged["subject"] == "Hi" and [e["type"] for e in purged["events"]] == ["queued", "sent"]
    assert kept["html"] == "<p>rich</p>"


async def test_a_team_may_keep_bodies_longer(client, team, sender, settings, owner_engine, smtp_sink, postgres):
    changed = (await client.patch("/team", json={"retention_days": 90}, headers=team.headers)).json()
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    await drain(settings, owner_engine)
    db(postgres, f"UPDATE emails SET created_at = now() - interval '31 days' WHERE id = '{email_id}'")
    await purge_expired_bodies(owner_engine)
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert changed["retention_days"] == 90 and fetched["html"] == "<p>rich</p>"


async def test_an_unsent_email_keeps_its_body_whatever_its_age(client, team, sender, owner_engine, postgres):
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    db(postgres, f"UPDATE emails SET created_at = now() - interval '40 days', next_attempt_at = now() + "
                 f"interval '1 hour' WHERE id = '{email_id}'")
    await purge_expired_bodies(owner_engine)
    assert db(postgres, f"SELECT mime IS NOT NULL FROM emails WHERE id = '{email_id}'") == "t"
