"""Receiving: a verified domain may take mail on port 25 (Resend's `capabilities.receiving`); each message
received is stored with its SPF, DKIM and DMARC verdicts until the team's retention ends.

Postfix's maps (app/mailhost/postfix_maps.py) route the names of `mail_receiving_domains` to the receive pipe,
which connects as postyard_bounce, the role of the port-25 pipes; the worker's retention deletes old messages.
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# role: {table: privileges}, with a permissive row-level security policy for the role, as in 0008.
GRANTS: dict[str, dict[str, str]] = {
    "postyard_bounce": {"domains": "SELECT", "received_emails": "INSERT"},
    "postyard_worker": {"received_emails": "SELECT, DELETE"},
}

UPGRADE = """
ALTER TABLE domains ADD COLUMN receiving boolean NOT NULL DEFAULT false;
CREATE TABLE received_emails (
    id uuid PRIMARY KEY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    domain_id uuid REFERENCES domains(id) ON DELETE SET NULL,
    envelope_from text NOT NULL,
    envelope_recipients text[] NOT NULL,
    client_address text NOT NULL,
    helo text NOT NULL,
    from_address text NOT NULL,
    to_addresses text[] NOT NULL,
    cc_addresses text[] NOT NULL,
    bcc_addresses text[] NOT NULL,
    reply_to text[] NOT NULL,
    subject text NOT NULL,
    message_id text NOT NULL,
    spf text NOT NULL,
    dkim text NOT NULL,
    dmarc text NOT NULL,
    authentication_results text NOT NULL,
    mime bytea NOT NULL,
    size integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX received_emails_team_time ON received_emails(team_id, created_at DESC, id DESC);
CREATE INDEX received_emails_time ON received_emails(created_at);
ALTER TABLE received_emails ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_isolation ON received_emails
    USING (team_id = postyard_current_team()) WITH CHECK (team_id = postyard_current_team());
CREATE VIEW mail_receiving_domains AS
    SELECT name::text AS domain FROM domains WHERE receiving AND status = 'verified';
DROP TRIGGER domains_changed_for_mail_routes ON domains;
CREATE TRIGGER domains_changed_for_mail_routes
    AFTER INSERT OR UPDATE OF name, status, return_path, tls_mode, team_id, receiving OR DELETE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION postyard_notify_mail_routes_changed();
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_app') THEN
        GRANT SELECT, DELETE ON received_emails TO postyard_app;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_mail') THEN
        GRANT SELECT ON mail_receiving_domains TO postyard_mail;
    END IF;{grants}
END $$;
"""

DOWNGRADE = """
DROP VIEW IF EXISTS mail_receiving_domains;
DROP TABLE IF EXISTS received_emails;
DROP TRIGGER domains_changed_for_mail_routes ON domains;
CREATE TRIGGER domains_changed_for_mail_routes
    AFTER INSERT OR UPDATE OF name, status, return_path, tls_mode, team_id OR DELETE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION postyard_notify_mail_routes_changed();
DROP POLICY IF EXISTS postyard_bounce ON domains;
ALTER TABLE domains DROP COLUMN receiving;
"""


def _grants() -> str:
    blocks = []
    for role, tables in GRANTS.items():
        statements = []
        for table, privileges in tables.items():
            statements += [f"GRANT {privileges} ON {table} TO {role};", f"DROP POLICY IF EXISTS {role} ON {table};",
                           f"CREATE POLICY {role} ON {table} TO {role} USING (true) WITH CHECK (true);"]
        body = "\n        ".join(statements)
        blocks.append(f"""
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
        {body}
    END IF;""")
    return "".join(blocks)


def upgrade() -> None:
    await_only(op.get_bind().connection.driver_connection.execute(UPGRADE.replace("{grants}", _grants())))


def downgrade() -> None:
    await_only(op.get_bind().connection.driver_connection.execute(DOWNGRADE))
