"""Sending: emails (the outbox), their events, idempotency keys, suppressions, webhooks and deliveries."""

from alembic import op
from sqlalchemy.util import await_only

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT_TABLES = ("emails", "email_events", "idempotency_keys", "suppressions", "webhooks", "webhook_deliveries")

SCHEMA = """
ALTER TABLE teams ADD COLUMN retention_days integer NOT NULL DEFAULT 30 CHECK (retention_days BETWEEN 1 AND 3650);

CREATE TABLE emails (
    id uuid PRIMARY KEY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    api_key_id uuid,
    mode text NOT NULL CHECK (mode IN ('live', 'test')),
    domain_id uuid REFERENCES domains(id) ON DELETE SET NULL,
    from_address text NOT NULL,
    to_addresses text[] NOT NULL,
    cc_addresses text[] NOT NULL DEFAULT '{}',
    bcc_addresses text[] NOT NULL DEFAULT '{}',
    reply_to text[] NOT NULL DEFAULT '{}',
    subject text NOT NULL,
    html text,
    text_body text,
    tags jsonb NOT NULL DEFAULT '[]',
    message_id text NOT NULL,
    envelope_from text NOT NULL,
    recipients text[] NOT NULL,
    mime bytea,
    size integer NOT NULL,
    state text NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'canceled', 'suppressed')),
    last_event text NOT NULL,
    scheduled_at timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    queue_id text,
    mta_accepted boolean NOT NULL DEFAULT false,
    sent_at timestamptz,
    purged_at timestamptz,
    sa_orm_sentinel integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX emails_team_time ON emails(team_id, created_at DESC, id DESC);
CREATE INDEX emails_due ON emails(next_attempt_at) WHERE state = 'queued';
CREATE INDEX emails_leased ON emails(lease_until) WHERE state = 'sending';
CREATE INDEX emails_queue_id ON emails(queue_id) WHERE queue_id IS NOT NULL;
CREATE UNIQUE INDEX emails_message_id ON emails(message_id);
CREATE INDEX emails_unpurged ON emails(created_at) WHERE purged_at IS NULL;

CREATE TABLE email_events (
    id uuid PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    email_id uuid NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
    type text NOT NULL CHECK (type IN ('queued', 'sent', 'delivered', 'delivery_delayed', 'bounced', 'complained',
                                       'failed', 'suppressed', 'scheduled', 'canceled')),
    recipient text,
    detail jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX email_events_email ON email_events(email_id, seq);

CREATE TABLE idempotency_keys (
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 256),
    request_hash bytea NOT NULL,
    response jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, key)
);
CREATE INDEX idempotency_keys_time ON idempotency_keys(created_at);

CREATE TABLE suppressions (
    id uuid PRIMARY KEY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    email text NOT NULL,
    reason text NOT NULL CHECK (reason IN ('hard_bounce', 'complaint', 'unsubscribe', 'manual')),
    source_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, email)
);
CREATE INDEX suppressions_team_time ON suppressions(team_id, created_at DESC, id DESC);

CREATE TABLE webhooks (
    id uuid PRIMARY KEY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    endpoint text NOT NULL,
    events text[] NOT NULL,
    status text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    key_id text NOT NULL,
    secret_ciphertext bytea NOT NULL,
    previous_key_id text,
    previous_secret_ciphertext bytea,
    previous_secret_expires_at timestamptz,
    disabled_reason text,
    sa_orm_sentinel integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_team ON webhooks(team_id, created_at DESC, id DESC);

CREATE TABLE webhook_deliveries (
    id uuid PRIMARY KEY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    webhook_id uuid NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    message_id text NOT NULL,
    event_type text NOT NULL,
    payload text NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivering', 'succeeded', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz,
    last_status_code integer,
    last_error text,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries(lease_until) WHERE state = 'delivering';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id, created_at DESC);
"""

OUTBOX_NOTIFY = """
CREATE FUNCTION postyard_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('postyard_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER emails_outbox_notify AFTER INSERT OR UPDATE OF next_attempt_at ON emails
    FOR EACH STATEMENT EXECUTE FUNCTION postyard_notify_outbox();
"""

ROW_LEVEL_SECURITY = "".join(
    f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_isolation ON {table}
    USING (team_id = postyard_current_team()) WITH CHECK (team_id = postyard_current_team());
"""
    for table in TENANT_TABLES
)

GRANTS = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON emails, email_events, idempotency_keys, suppressions, webhooks,
            webhook_deliveries TO postyard_app;
    END IF;
END $$;
"""


def _execute_script(sql: str) -> None:
    """Run several statements at once (asyncpg's simple query protocol)."""
    await_only(op.get_bind().connection.driver_connection.execute(sql))


def upgrade() -> None:
    for block in (SCHEMA, OUTBOX_NOTIFY, ROW_LEVEL_SECURITY, GRANTS):
        _execute_script(block)


def downgrade() -> None:
    _execute_script(
        "DROP TABLE IF EXISTS webhook_deliveries, webhooks, suppressions, idempotency_keys, email_events, emails;"
        "DROP FUNCTION IF EXISTS postyard_notify_outbox();"
        "ALTER TABLE teams DROP COLUMN IF EXISTS retention_days;"
    )
