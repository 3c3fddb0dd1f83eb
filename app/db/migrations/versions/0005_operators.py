"""Instance operators, invites, sign-up approval, team suspension and sending quotas.

Operators act across teams: `postyard_is_operator()` is true when the transaction's `app.user_id`
names a user with `is_operator`, and an extra permissive policy on the team-level tables lets such a
transaction see and change every team's rows. Invites are claimed anonymously through a
SECURITY DEFINER function that marks them used in the same statement, so a token works once.
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OPERATOR_TABLES = ("teams", "memberships", "invites", "team_send_counters", "audit_logs")

SCHEMA = """
ALTER TABLE users
    ADD COLUMN is_operator boolean NOT NULL DEFAULT false,
    ADD COLUMN totp_last_step bigint;

-- approved_at NULL: the team waits for an operator's approval (open sign-up) and cannot send.
ALTER TABLE teams
    ADD COLUMN approved_at timestamptz,
    ADD COLUMN suspended_at timestamptz,
    ADD COLUMN suspension_reason text CHECK (length(suspension_reason) <= 500),
    ADD COLUMN daily_quota integer CHECK (daily_quota >= 0),
    ADD COLUMN monthly_quota integer CHECK (monthly_quota >= 0);
UPDATE teams SET approved_at = created_at;

CREATE TABLE invites (
    id uuid PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    team_id uuid REFERENCES teams(id) ON DELETE CASCADE,  -- NULL: an invite to start a new team
    email text CHECK (length(email) <= 320),                -- when set, only this address may accept it
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_by uuid REFERENCES users(id) ON DELETE SET NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    used_by uuid,
    revoked_at timestamptz,
    sa_orm_sentinel integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invites_team ON invites(team_id, created_at DESC);

CREATE TABLE team_send_counters (
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    period text NOT NULL CHECK (period IN ('day', 'month')),
    period_start date NOT NULL,
    sent integer NOT NULL DEFAULT 0 CHECK (sent >= 0),
    PRIMARY KEY (team_id, period, period_start)
);
"""

FUNCTIONS = """
CREATE FUNCTION postyard_is_operator() RETURNS boolean LANGUAGE sql STABLE SET search_path = public, pg_temp
    AS $$ SELECT coalesce((SELECT is_operator FROM users WHERE id = postyard_current_user()), false) $$;

-- Claims the invite for p_user (signing up or joining as p_email); no row when it cannot be used.
-- Whether the invite's maker may still grant its role: an operator's (or the CLI's) invite to start a
-- team; for a team, an owner (any role) or an admin (not owner) who is still a member. A key's
-- invite (no maker) grants at most admin.
CREATE FUNCTION postyard_inviter_may_grant(p_team uuid, p_maker uuid, p_role text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT CASE
    WHEN p_team IS NULL THEN p_maker IS NULL OR EXISTS (SELECT 1 FROM users u WHERE u.id = p_maker AND u.is_operator)
    WHEN p_maker IS NULL THEN p_role <> 'owner'
    ELSE EXISTS (SELECT 1 FROM memberships m WHERE m.team_id = p_team AND m.user_id = p_maker
                 AND (m.role = 'owner' OR (m.role = 'admin' AND p_role <> 'owner'))) END $$;
REVOKE ALL ON FUNCTION postyard_inviter_may_grant(uuid, uuid, text) FROM PUBLIC;

CREATE FUNCTION postyard_invite_claim(p_hash bytea, p_user uuid, p_email text)
RETURNS TABLE (id uuid, team_id uuid, email text, role text, created_by uuid)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ UPDATE invites SET used_at = now(), used_by = p_user, updated_at = now()
      WHERE token_hash = p_hash AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
        AND (invites.email IS NULL OR invites.email = p_email)
        AND postyard_inviter_may_grant(invites.team_id, invites.created_by, invites.role)
      RETURNING id, team_id, email, role, created_by $$;
REVOKE ALL ON FUNCTION postyard_invite_claim(bytea, uuid, text) FROM PUBLIC;

-- Why an invite cannot be claimed by p_email: unknown, revoked, used, expired, other_email or
-- inviter_gone (NULL: it can).
CREATE FUNCTION postyard_invite_refusal(p_hash bytea, p_email text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT CASE WHEN i.id IS NULL THEN 'unknown' WHEN i.revoked_at IS NOT NULL THEN 'revoked'
                  WHEN i.used_at IS NOT NULL THEN 'used' WHEN i.expires_at <= now() THEN 'expired'
                  WHEN i.email IS NOT NULL AND i.email <> p_email THEN 'other_email'
                  WHEN NOT postyard_inviter_may_grant(i.team_id, i.created_by, i.role) THEN 'inviter_gone' END
      FROM (SELECT 1) AS one LEFT JOIN invites i ON i.token_hash = p_hash $$;
REVOKE ALL ON FUNCTION postyard_invite_refusal(bytea, text) FROM PUBLIC;
"""

ROW_LEVEL_SECURITY = """
ALTER TABLE invites ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_isolation ON invites
    USING (team_id = postyard_current_team()) WITH CHECK (team_id = postyard_current_team());
ALTER TABLE team_send_counters ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_isolation ON team_send_counters
    USING (team_id = postyard_current_team()) WITH CHECK (team_id = postyard_current_team());
""" + "".join(
    f"""
CREATE POLICY operator_access ON {table} USING (postyard_is_operator()) WITH CHECK (postyard_is_operator());
"""
    for table in OPERATOR_TABLES
)

GRANTS = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON invites, team_send_counters TO postyard_app;
        -- The API never makes operators (only a host's shell does): it may not write that column.
        REVOKE UPDATE ON users FROM postyard_app;
        GRANT UPDATE (email, password_hash, totp_key_id, totp_secret_ciphertext, totp_enabled, totp_last_step,
                      updated_at, sa_orm_sentinel) ON users TO postyard_app;
        GRANT EXECUTE ON FUNCTION postyard_invite_claim(bytea, uuid, text),
            postyard_invite_refusal(bytea, text) TO postyard_app;
    END IF;
END $$;
"""


def _execute_script(sql: str) -> None:
    """Run several statements at once (asyncpg's simple query protocol)."""
    await_only(op.get_bind().connection.driver_connection.execute(sql))


def upgrade() -> None:
    for block in (SCHEMA, FUNCTIONS, ROW_LEVEL_SECURITY, GRANTS):
        _execute_script(block)


def downgrade() -> None:
    _execute_script(
        "".join(f"DROP POLICY IF EXISTS operator_access ON {t};" for t in ("teams", "memberships", "audit_logs"))
        + "DROP TABLE IF EXISTS team_send_counters, invites;"
        "DROP FUNCTION IF EXISTS postyard_invite_claim(bytea, uuid, text);"
        "DROP FUNCTION IF EXISTS postyard_inviter_may_grant(uuid, uuid, text);"
        "DROP FUNCTION IF EXISTS postyard_invite_refusal(bytea, text);"
        "DROP FUNCTION IF EXISTS postyard_is_operator();"
        "ALTER TABLE teams DROP COLUMN IF EXISTS approved_at, DROP COLUMN IF EXISTS suspended_at,"
        " DROP COLUMN IF EXISTS suspension_reason, DROP COLUMN IF EXISTS daily_quota,"
        " DROP COLUMN IF EXISTS monthly_quota;"
        "ALTER TABLE users DROP COLUMN IF EXISTS is_operator, DROP COLUMN IF EXISTS totp_last_step;"
    )
