"""SMTP credentials and the views the mail tier reads."""

from __future__ import annotations

import os
import subprocess
import sys

import bcrypt
from conftest import unique_domain


async def _verified_domain(client, team, dns_zone) -> dict:
    domain = (await client.post("/domains", json={"name": unique_domain()}, headers=team.headers)).json()
    for record in domain["records"]:
        dns_zone.publish(record)
    return (await client.post(f"/domains/{domain['id']}/verify", headers=team.headers)).json()


def _view(postgres, sql: str, user: str = "postyard_mail") -> list[str]:
    return postgres.psql(sql, user=user, database="postyard").split()


async def test_a_credential_shows_its_password_once_and_stores_a_2y_bcrypt_hash(client, team, postgres):
    created = (await client.post("/smtp-credentials", json={"name": "app"}, headers=team.headers)).json()
    [row] = _view(postgres, f"SELECT username || ' ' || password_hash FROM mail_smtp_credentials "
                            f"WHERE username = '{created['username']}'", user="postyard_dovecot")[1:] or [""]
    listing = await client.get("/smtp-credentials", headers=team.headers)
    assert row.startswith("$2y$") and bcrypt.checkpw(created["password"].encode(), ("$2b$" + row[4:]).encode())
    assert created["password"] not in listing.text and created["username"] in listing.text


async def test_a_revoked_credential_leaves_the_dovecot_view(client, team, postgres):
    created = (await client.post("/smtp-credentials", json={"name": "app"}, headers=team.headers)).json()
    query = f"SELECT count(*) FROM mail_smtp_credentials WHERE username = '{created['username']}'"
    before = _view(postgres, query, user="postyard_dovecot")
    await client.delete(f"/smtp-credentials/{created['id']}", headers=team.headers)
    assert before == ["1"] and _view(postgres, query, user="postyard_dovecot") == ["0"]


async def test_sender_logins_list_each_verified_domain_of_the_credentials_team(client, team, other_team, dns_zone,
                                                                                postgres):
    ours = await _verified_domain(client, team, dns_zone)
    unverified = (await client.post("/domains", json={"name": unique_domain()}, headers=team.headers)).json()
    await _verified_domain(client, other_team, dns_zone)
    created = (await client.post("/smtp-credentials", json={"name": "app"}, headers=team.headers)).json()
    domains = _view(postgres, f"SELECT sender_domain FROM mail_sender_logins WHERE username = '{created['username']}'")
    assert domains == [ours["name"]] and unverified["name"] not in domains


async def test_a_credential_scoped_to_one_domain_may_send_only_from_it(client, team, dns_zone, postgres):
    first = await _verified_domain(client, team, dns_zone)
    await _verified_domain(client, team, dns_zone)
    created = (await client.post("/smtp-credentials", json={"name": "one", "domain_id": first["id"]},
                                 headers=team.headers)).json()
    domains = _view(postgres, f"SELECT sender_domain FROM mail_sender_logins WHERE username = '{created['username']}'")
    assert domains == [first["name"]]


async def test_a_credential_cannot_be_scoped_to_another_teams_domain(client, team, other_team):
    theirs = (await client.post("/domains", json={"name": unique_domain()}, headers=other_team.headers)).json()
    response = await client.post("/smtp-credentials", json={"name": "x", "domain_id": theirs["id"]},
                                 headers=team.headers)
    assert response.status_code == 422


async def test_the_mail_views_have_exactly_the_contracted_columns(postgres):
    columns = postgres.psql(
        "SELECT table_name || '.' || column_name || ':' || data_type FROM information_schema.columns "
        "WHERE table_name LIKE 'mail_%' ORDER BY table_name, ordinal_position", user="postyard_owner",
        database="postyard").split()
    assert columns == [
        "mail_bounce_domains.bounce_domain:text", "mail_bounce_domains.domain:text",
        "mail_bounce_domains.tls_mode:text",
        "mail_dkim_keys.domain:text", "mail_dkim_keys.selector:text", "mail_dkim_keys.algorithm:text",
        "mail_dkim_keys.key_id:text", "mail_dkim_keys.private_key_ciphertext:bytea", "mail_dkim_keys.active:boolean",
        "mail_domain_tls_policy.domain:text", "mail_domain_tls_policy.tls_mode:text",
        "mail_receiving_domains.domain:text", "mail_receiving_domains.id:uuid", "mail_receiving_domains.team_id:uuid",
        "mail_sender_logins.sender_domain:text", "mail_sender_logins.username:text",
        "mail_smtp_credentials.username:text", "mail_smtp_credentials.password_hash:text",
    ]


def test_the_cli_makes_a_team_with_a_key_and_an_smtp_credential(env, postgres):
    made = subprocess.run([sys.executable, "-m", "app.cli", "create-team", "from-cli", "--smtp-credential"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    lines = dict(line.split(": ", 1) for line in made.stdout.splitlines() if ": " in line)
    username, password = lines["smtp username"], lines["smtp password (shown once)"]
    [stored] = _view(postgres, f"SELECT password_hash FROM mail_smtp_credentials WHERE username = '{username}'",
                     user="postyard_dovecot")
    assert lines["api key (shown once)"].startswith("sk_live_")
    assert bcrypt.checkpw(password.encode(), ("$2b$" + stored[4:]).encode())
