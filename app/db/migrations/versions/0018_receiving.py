"""Receiving: a domain may take mail on port 25 (Resend's `capabilities.receiving`); each message received is
stored with its SPF, DKIM and DMARC verdicts until the team's retention ends.

`mail_receiving_domains` holds the one rule of who receives: receiving on, the domain verified (its ownership
proven), and its MX found pointing at a mail host when it was last verified. Postfix routes every message to such
a name to the receive pipe, the platform's own outbound mail included, so without the MX rule a team could catch
mail for a name whose mail goes elsewhere. Postfix's maps (app/mailhost/postfix_maps.py, as postyard_mail) and
the receive pipe (as postyard_bounce, the role of the port-25 pipes) both read the view; neither reads `domains`.
A message Postfix delivers again after a lost exit status is stored once: (team, Postfix queue id) is unique.
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# role: {table: privileges}, with a permissive row-level security policy for the role, as in 0008.
GRANTS: dict[str, dict[str, str]] = {
    "postyard_bounce": {"received_emails": "SELECT (id, team_id, queue_id), INSERT"},  # ON CONFLICT reads the key
    "postyard_worker": {"received_emails": "SELECT, DELETE"},
}

UPGRADE = """
ALTER TABLE domains ADD COLUMN receiving boolean NOT NULL DEFAULT false;
CREATE TABLE received_emails (
    id uuid PRIMARY KEY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    domain_id uuid REFERENCES domains(id) ON DELETE SET NULL,
    queue_id text NOT NULL,
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
    attachments jsonb NOT NULL,
    mime bytea NOT NULL,
    size integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX received_emails_team_time ON received_emails(team_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX received_emails_team_queue_id ON received_emails(team_id, queue_id);
CREATE INDEX received_emails_time ON received_emails(created_at);
ALTER TABLE received_emails ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_isolation ON received_emails
    USING (team_id = postyard_current_team()) WITH CHECK (team_id = postyard_current_team());
CREATE VIEW mail_receiving_domains AS
    SELECT lower(name)::text AS domain, id, team_id FROM domains
    WHERE receiving AND status = 'verified'
      AND EXISTS (SELECT 1 FROM jsonb_each_text(record_status) AS r
                  WHERE r.key LIKE 'receiving_mx%' AND r.value = 'verified');
DROP TRIGGER domains_changed_for_mail_routes ON domains;
CREATE TRIGGER domains_changed_for_mail_routes
    AFTER INSERT OR UPDATE OF name, status, return_path, tls_mode, team_id, receiving, record_status
        OR DELETE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION postyard_notify_mail_routes_changed();
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_app') THEN
        GRANT SELECT, DELETE ON received_emails TO postyard_app;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_mail') THEN
        GRANT SELECT ON mail_receiving_domains TO postyard_mail;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_bounce') THEN
        GRANT SELECT ON mail_receiving_domains TO postyard_bounce;
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
