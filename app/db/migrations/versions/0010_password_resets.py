"""Password resets by email: single-use tokens (only their SHA-256 stored) and the sender team's lookup.

The table is not team-scoped and the API's role gets no privilege on it: row-level security is on with no
policy, and three functions that run with their owner's rights are all the role may do with it. It issues a
token for a user (dropping that user's tokens that ended more than a day ago), claims one atomically (of
concurrent claims one gets it; every other open token of the user is used up with it), and asks why a token
cannot be claimed. A fourth function names the team holding a verified domain, the instance's own sender
(`POSTYARD_SYSTEM_SENDER`), since that domain is outside the request's team scope.
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE password_resets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    ip text,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_resets_user ON password_resets(user_id);
ALTER TABLE password_resets ENABLE ROW LEVEL SECURITY;
"""

FUNCTIONS = """
CREATE FUNCTION postyard_password_reset_issue(p_user uuid, p_hash bytea, p_ip text, p_seconds integer)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ DELETE FROM password_resets WHERE user_id = p_user
          AND coalesce(used_at, expires_at) < now() - interval '1 day';
      INSERT INTO password_resets (user_id, token_hash, ip, expires_at)
          VALUES (p_user, p_hash, p_ip, now() + make_interval(secs => least(greatest(p_seconds, 1), 3600))) $$;
REVOKE ALL ON FUNCTION postyard_password_reset_issue(uuid, bytea, text, integer) FROM PUBLIC;

CREATE FUNCTION postyard_password_reset_claim(p_hash bytea) RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ WITH claimed AS (
          UPDATE password_resets SET used_at = now()
          WHERE token_hash = p_hash AND used_at IS NULL AND expires_at > now()
          RETURNING id, user_id),
      others AS (
          UPDATE password_resets r SET used_at = now() FROM claimed c
          WHERE r.user_id = c.user_id AND r.id <> c.id AND r.used_at IS NULL)
      SELECT user_id FROM claimed $$;
REVOKE ALL ON FUNCTION postyard_password_reset_claim(bytea) FROM PUBLIC;

-- Why a token cannot be claimed: unknown, used or expired (NULL: it can).
CREATE FUNCTION postyard_password_reset_refusal(p_hash bytea) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT CASE WHEN r.id IS NULL THEN 'unknown' WHEN r.used_at IS NOT NULL THEN 'used'
                  WHEN r.expires_at <= now() THEN 'expired' END
      FROM (SELECT 1) AS one LEFT JOIN password_resets r ON r.token_hash = p_hash $$;
REVOKE ALL ON FUNCTION postyard_password_reset_refusal(bytea) FROM PUBLIC;

-- The team holding p_name as a verified domain (at most one does: domains_verified_name).
CREATE FUNCTION postyard_verified_domain_team(p_name text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT team_id FROM domains WHERE lower(name) = lower(p_name) AND status = 'verified' $$;
REVOKE ALL ON FUNCTION postyard_verified_domain_team(text) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_app') THEN
        GRANT EXECUTE ON FUNCTION postyard_password_reset_issue(uuid, bytea, text, integer),
            postyard_password_reset_claim(bytea), postyard_password_reset_refusal(bytea),
            postyard_verified_domain_team(text) TO postyard_app;
    END IF;
END $$;
"""


def _execute_script(sql: str) -> None:
    """Run several statements at once (asyncpg's simple query protocol)."""
    await_only(op.get_bind().connection.driver_connection.execute(sql))


def upgrade() -> None:
    for block in (SCHEMA, FUNCTIONS):
        _execute_script(block)


def downgrade() -> None:
    _execute_script(
        "DROP FUNCTION IF EXISTS postyard_verified_domain_team(text);"
        "DROP FUNCTION IF EXISTS postyard_password_reset_refusal(bytea);"
        "DROP FUNCTION IF EXISTS postyard_password_reset_claim(bytea);"
        "DROP FUNCTION IF EXISTS postyard_password_reset_issue(uuid, bytea, text, integer);"
        "DROP TABLE IF EXISTS password_resets;"
    )
