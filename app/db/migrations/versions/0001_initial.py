"""Initial schema: tenants, accounts, keys, domains, SMTP credentials, audit log, RLS, mail views."""

from alembic import op
from sqlalchemy.util import await_only

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = ("api_keys", "domains", "dkim_keys", "smtp_credentials", "audit_logs")

SCHEMA = """
CREATE FUNCTION postyard_current_team() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.team_id', true), '')::uuid $$;
CREATE FUNCTION postyard_current_user() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;

CREATE TABLE teams (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    rate_limit integer CHECK (rate_limit > 0),
    api_key_rate_limit integer CHECK (api_key_rate_limit > 0),
    sa_orm_sentinel integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE users (
    id uuid PRIMARY KEY,
    email text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    totp_key_id text,
    totp_secret_ciphertext bytea,
    totp_enabled boolean NOT NULL DEFAULT false,
    sa_orm_sentinel integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE backup_codes (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at timestamptz,
    sa_orm_sentinel integer
);
CREATE INDEX backup_codes_user ON backup_codes(user_id);
CREATE TABLE memberships (
    id uuid PRIMARY KEY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    sa_orm_sentinel integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);
CREATE TABLE sessions (
    id uuid PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    team_id uuid REFERENCES teams(id) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    mfa_pending boolean NOT NULL DEFAULT false,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    sa_orm_sentinel integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE domains (
    id uuid PRIMARY KEY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name text NOT NULL UNIQUE,
    status text NOT NULL DEFAULT 'not_started',
    region text NOT NULL,
    tls_mode text NOT NULL CHECK (tls_mode IN ('opportunistic', 'enforced')),
    return_path text NOT NULL,
    record_status jsonb NOT NULL DEFAULT '{}',
    verified_at timestamptz,
    sa_orm_sentinel integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX domains_team ON domains(team_id);
CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name text NOT NULL,
    mode text NOT NULL CHECK (mode IN ('live', 'test')),
    token_hash bytea NOT NULL UNIQUE,
    permission text NOT NULL CHECK (permission IN ('full_access', 'sending_access')),
    domain_id uuid REFERENCES domains(id) ON DELETE CASCADE,
    allowed_ips text[],
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz,
    sa_orm_sentinel integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_team ON api_keys(team_id);
CREATE TABLE dkim_keys (
    id uuid PRIMARY KEY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    domain_id uuid NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    selector text NOT NULL,
    algorithm text NOT NULL CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),
    public_key text NOT NULL,
    key_id text NOT NULL,
    private_key_ciphertext bytea NOT NULL,
    active boolean NOT NULL DEFAULT false,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verified', 'retired')),
    sa_orm_sentinel integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain_id, selector)
);
CREATE TABLE smtp_credentials (
    id uuid PRIMARY KEY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name text NOT NULL,
    username text NOT NULL UNIQUE,
    password_hash text NOT NULL CHECK (password_hash LIKE '$2y$%'),
    domain_id uuid REFERENCES domains(id) ON DELETE CASCADE,
    revoked_at timestamptz,
    sa_orm_sentinel integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX smtp_credentials_team ON smtp_credentials(team_id);
CREATE TABLE audit_logs (
    id uuid PRIMARY KEY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    actor_type text NOT NULL,
    actor_id text,
    action text NOT NULL,
    resource_type text NOT NULL,
    resource_id text,
    ip text,
    details jsonb NOT NULL DEFAULT '{}',
    sa_orm_sentinel integer,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_team_time ON audit_logs(team_id, created_at DESC, id DESC);
"""

ROW_LEVEL_SECURITY = """
ALTER TABLE teams ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_isolation ON teams
    USING (id = postyard_current_team()) WITH CHECK (id = postyard_current_team());
ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_isolation ON memberships
    USING (team_id = postyard_current_team() OR user_id = postyard_current_user())
    WITH CHECK (team_id = postyard_current_team());
""" + "".join(
    f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_isolation ON {table}
    USING (team_id = postyard_current_team()) WITH CHECK (team_id = postyard_current_team());
"""
    for table in TENANT_TABLES
)

FUNCTIONS = """
CREATE FUNCTION postyard_api_key_lookup(p_hash bytea)
RETURNS TABLE (id uuid, team_id uuid, mode text, permission text, domain_id uuid,
               allowed_ips text[], expires_at timestamptz, revoked_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT id, team_id, mode, permission, domain_id, allowed_ips, expires_at, revoked_at
      FROM api_keys WHERE token_hash = p_hash $$;
REVOKE ALL ON FUNCTION postyard_api_key_lookup(bytea) FROM PUBLIC;

CREATE FUNCTION postyard_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('postyard.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_logs is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION postyard_audit_append_only();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION postyard_audit_append_only();

CREATE FUNCTION postyard_purge_audit_logs(p_days integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE purged bigint;
BEGIN
    PERFORM set_config('postyard.audit_purge', 'on', true);
    DELETE FROM audit_logs WHERE created_at < now() - make_interval(days => greatest(p_days, 1));
    GET DIAGNOSTICS purged = ROW_COUNT;
    PERFORM set_config('postyard.audit_purge', 'off', true);
    RETURN purged;
END $$;
REVOKE ALL ON FUNCTION postyard_purge_audit_logs(integer) FROM PUBLIC;

CREATE FUNCTION postyard_notify_dkim_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mail_dkim_keys_changed', '');
    RETURN NULL;
END $$;
CREATE TRIGGER dkim_keys_changed AFTER INSERT OR UPDATE OR DELETE ON dkim_keys
    FOR EACH STATEMENT EXECUTE FUNCTION postyard_notify_dkim_keys_changed();
CREATE TRIGGER domains_changed_for_dkim AFTER UPDATE OF name, status OR DELETE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION postyard_notify_dkim_keys_changed();
"""

# The views run with their owner's rights (security_invoker off), and the owner is not subject to
# RLS (not FORCEd), so the mail roles read every team's rows through them and nothing else.
MAIL_VIEWS = """
CREATE VIEW mail_sender_logins AS
    SELECT d.name::text AS sender_domain, c.username::text AS username
    FROM smtp_credentials c
    JOIN domains d ON d.team_id = c.team_id AND (c.domain_id IS NULL OR c.domain_id = d.id)
    WHERE c.revoked_at IS NULL AND d.status = 'verified';
CREATE VIEW mail_smtp_credentials AS
    SELECT username::text AS username, password_hash::text AS password_hash
    FROM smtp_credentials WHERE revoked_at IS NULL;
CREATE VIEW mail_dkim_keys AS
    SELECT d.name::text AS domain, k.selector::text AS selector, k.algorithm::text AS algorithm,
           k.key_id::text AS key_id, k.private_key_ciphertext AS private_key_ciphertext,
           k.active AS active
    FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
    WHERE k.status <> 'retired';
CREATE VIEW mail_domain_tls_policy AS
    SELECT name::text AS domain, tls_mode::text AS tls_mode FROM domains;
"""

GRANTS = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_dovecot') THEN
        GRANT SELECT ON mail_smtp_credentials TO postyard_dovecot;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_mail') THEN
        GRANT SELECT ON mail_sender_logins, mail_dkim_keys, mail_domain_tls_policy TO postyard_mail;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON teams, users, backup_codes, memberships, sessions,
            domains, api_keys, dkim_keys, smtp_credentials TO postyard_app;
        GRANT SELECT, INSERT ON audit_logs TO postyard_app;
        GRANT EXECUTE ON FUNCTION postyard_api_key_lookup(bytea), postyard_purge_audit_logs(integer)
            TO postyard_app;
    END IF;
END $$;
"""


def _execute_script(sql: str) -> None:
    """Run several statements at once (asyncpg's simple query protocol)."""
    await_only(op.get_bind().connection.driver_connection.execute(sql))


def upgrade() -> None:
    for block in (SCHEMA, ROW_LEVEL_SECURITY, FUNCTIONS, MAIL_VIEWS, GRANTS):
        _execute_script(block)


def downgrade() -> None:
    _execute_script(
        "DROP VIEW IF EXISTS mail_sender_logins, mail_smtp_credentials, mail_dkim_keys, mail_domain_tls_policy;"
        "DROP TABLE IF EXISTS audit_logs, smtp_credentials, dkim_keys, api_keys, domains, sessions,"
        " memberships, backup_codes, users, teams CASCADE;"
        "DROP FUNCTION IF EXISTS postyard_current_team(), postyard_current_user(),"
        " postyard_api_key_lookup(bytea), postyard_audit_append_only(), postyard_purge_audit_logs(integer),"
        " postyard_notify_dkim_keys_changed();"
    )
