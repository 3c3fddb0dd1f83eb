"""Tenant isolation: every route scoped to the caller's team, RLS as the second wall, roles least-privileged."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from conftest import unique_domain, verified_domain

TENANT_TABLES = ["teams", "memberships", "invites", "api_keys", "domains", "dkim_keys", "smtp_credentials",
                 "audit_logs", "emails", "email_events", "idempotency_keys", "suppressions", "webhooks",
                 "webhook_deliveries"]


@pytest.fixture
async def theirs(client, other_team, postgres) -> dict:
    """One resource of each kind belonging to the other team."""
    domain = (await client.post("/domains", json={"name": unique_domain()}, headers=other_team.headers)).json()
    key = (await client.post("/api-keys", json={"name": "theirs"}, headers=other_team.headers)).json()
    cred = (await client.post("/smtp-credentials", json={"name": "theirs"}, headers=other_team.headers)).json()
    sending = await verified_domain(client, other_team, postgres)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    email = (await client.post("/emails", json={"from": f"a@{sending['name']}", "to": "b@example.org", "subject": "s",
                                                "text": "t", "scheduled_at": later},
                               headers={**other_team.headers, "Idempotency-Key": "theirs"})).json()
    suppression = (await client.post("/suppressions", json={"email": "theirs@example.org"},
                                     headers=other_team.headers)).json()
    hook = (await client.post("/webhooks", json={"endpoint": "http://127.0.0.1:9/x", "events": ["email.scheduled"]},
                              headers=other_team.headers)).json()
    invite = (await client.post("/team/invites", json={}, headers=other_team.headers)).json()
    return {"domain": domain["id"], "api_key": key["id"], "smtp": cred["id"], "email": email["id"],
            "suppression": suppression["id"], "webhook": hook["id"], "invite": invite["id"]}


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/domains/{domain}", None),
    ("PATCH", "/domains/{domain}", {"tls": "enforced"}),
    ("POST", "/domains/{domain}/verify", None),
    ("POST", "/domains/{domain}/dkim/rotate", None),
    ("DELETE", "/domains/{domain}", None),
    ("DELETE", "/api-keys/{api_key}", None),
    ("DELETE", "/smtp-credentials/{smtp}", None),
    ("GET", "/emails/{email}", None),
    ("PATCH", "/emails/{email}", {"scheduled_at": "2030-01-01T00:00:00Z"}),
    ("POST", "/emails/{email}/cancel", None),
    ("GET", "/suppressions/{suppression}", None),
    ("GET", "/suppressions/theirs@example.org", None),
    ("DELETE", "/suppressions/{suppression}", None),
    ("GET", "/webhooks/{webhook}", None),
    ("PATCH", "/webhooks/{webhook}", {"status": "disabled"}),
    ("POST", "/webhooks/{webhook}/rotate-secret", None),
    ("GET", "/webhooks/{webhook}/deliveries", None),
    ("DELETE", "/webhooks/{webhook}", None),
    ("DELETE", "/team/invites/{invite}", None),
])
async def test_another_teams_resource_answers_404(client, team, theirs, method, path, body):
    response = await client.request(method, path.format(**theirs), json=body, headers=team.headers)
    assert response.status_code == 404 and response.json()["name"] == "not_found"


async def test_lists_show_only_the_callers_own_resources(client, team, theirs):
    listed = "".join([(await client.get(p, headers=team.headers)).text
                      for p in ("/domains", "/api-keys", "/smtp-credentials", "/audit-logs", "/emails",
                                "/suppressions", "/webhooks", "/team/invites")])
    assert not any(resource_id in listed for resource_id in theirs.values())


async def test_another_teams_member_answers_404(client, team, other_team):
    invite = (await client.post("/team/invites", json={"role": "member"}, headers=other_team.headers)).json()
    email = f"m{uuid.uuid4().hex[:8]}@example.test"
    registered = await client.post("/auth/register", json={"email": email, "password": "x" * 12,
                                                           "invite": invite["token"]})
    client.cookies.clear()
    members = (await client.get("/team/members", headers=other_team.headers)).json()["data"]
    their_member = next(m for m in members if m["email"] == email)
    response = await client.patch(f"/team/members/{their_member['id']}", json={"role": "admin"}, headers=team.headers)
    assert registered.status_code == 201 and response.status_code == 404


async def _app_connection(postgres) -> asyncpg.Connection:
    return await asyncpg.connect(host="127.0.0.1", port=postgres.port, user="postyard_app", database="postyard")


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_an_unscoped_query_as_the_app_role_returns_no_rows(table, postgres, theirs):
    connection = await _app_connection(postgres)
    try:
        count = await connection.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await connection.close()
    assert count == 0


async def test_a_query_scoped_to_one_team_sees_only_that_teams_rows(postgres, team, theirs):
    connection = await _app_connection(postgres)
    try:
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.team_id', $1, true)", str(team.team_id))
            teams = await connection.fetch("SELECT DISTINCT team_id FROM api_keys")
    finally:
        await connection.close()
    assert [r["team_id"] for r in teams] == [team.team_id]


async def test_the_app_role_cannot_write_rows_into_another_team(postgres, team, other_team):
    connection = await _app_connection(postgres)
    try:
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.team_id', $1, true)", str(team.team_id))
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(
                    "INSERT INTO smtp_credentials (id, team_id, name, username, password_hash) "
                    "VALUES ($1, $2, 'x', $3, '$2y$x')", uuid.uuid4(), other_team.team_id, uuid.uuid4().hex)
    finally:
        await connection.close()


@pytest.mark.parametrize("statement", [
    "UPDATE audit_logs SET action = 'forged'",
    "DELETE FROM audit_logs",
])
async def test_the_audit_log_refuses_update_and_delete_for_the_app_role(postgres, team, statement):
    connection = await _app_connection(postgres)
    try:
        await connection.execute("SELECT set_config('app.team_id', $1, false)", str(team.team_id))
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute(statement)
    finally:
        await connection.close()


async def test_the_audit_log_refuses_update_even_for_the_table_owner(postgres, team):
    with pytest.raises(subprocess.CalledProcessError) as refused:
        postgres.psql("UPDATE audit_logs SET action = 'forged'", user="postyard_owner", database="postyard")
    assert "append-only" in refused.value.stderr


async def test_the_retention_purge_deletes_only_entries_older_than_the_period(postgres, team, settings):
    from app.cli import purge_audit_logs

    postgres.psql("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only;"
                  f"UPDATE audit_logs SET created_at = now() - interval '100 days' WHERE team_id = '{team.team_id}';"
                  "ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_append_only;",
                  user="postyard_owner", database="postyard")
    purged = await purge_audit_logs(settings)
    left = postgres.psql(f"SELECT count(*) FROM audit_logs WHERE team_id = '{team.team_id}'",
                         user="postyard_owner", database="postyard").strip()
    assert purged >= 1 and left == "0"


@pytest.mark.parametrize("role,relation", [
    ("postyard_mail", "smtp_credentials"),
    ("postyard_mail", "mail_smtp_credentials"),
    ("postyard_dovecot", "mail_dkim_keys"),
    ("postyard_dovecot", "users"),
])
def test_the_mail_roles_read_only_their_views(postgres, role, relation):
    with pytest.raises(subprocess.CalledProcessError) as refused:
        postgres.psql(f"SELECT 1 FROM {relation} LIMIT 1", user=role, database="postyard")
    assert "permission denied" in refused.value.stderr


async def test_the_mail_role_reads_every_teams_rows_through_the_views(client, team, other_team, postgres):
    names = [(await verified_domain(client, t, postgres))["name"] for t in (team, other_team)]
    visible = postgres.psql(f"SELECT domain FROM mail_domain_tls_policy WHERE domain IN ('{names[0]}', '{names[1]}')",
                            user="postyard_mail", database="postyard").split()
    assert sorted(visible) == sorted(names)


async def test_two_teams_with_the_same_domain_name_see_only_their_own_entry(client, team, other_team):
    name = unique_domain()
    ours, theirs = [(await client.post("/domains", json={"name": name}, headers=t.headers)).json()
                    for t in (team, other_team)]
    listed = (await client.get("/domains", headers=team.headers)).json()["data"]
    assert [d["id"] for d in listed if d["name"] == name] == [ours["id"]]
    assert (await client.get(f"/domains/{theirs['id']}", headers=team.headers)).status_code == 404
    assert (await client.post(f"/domains/{theirs['id']}/verify", headers=team.headers)).status_code == 404


async def test_an_idempotency_key_of_another_team_replays_nothing(client, team, theirs, sender):
    response = await client.post("/emails", json={"from": f"a@{sender}", "to": "b@example.org", "subject": "s",
                                                  "text": "t"}, headers={**team.headers, "Idempotency-Key": "theirs"})
    assert response.status_code == 200 and response.json()["id"] != theirs["email"]
