"""The API processes hear of every change to API keys and teams' sending policy.

Each API process keeps the API-key rows and the teams' sending policy (approval, suspension, quotas, rate
limits) it reads on every request for a few seconds (app/lib/notified_cache.py). A statement that can change
them notifies `api_lookups_changed` when it commits, and every process drops what it kept, so a revoked key
or a suspended team is refused at once.
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE FUNCTION postyard_notify_api_lookups_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('api_lookups_changed', '');
    RETURN NULL;
END $$;
CREATE TRIGGER api_keys_changed_for_lookups
    AFTER UPDATE OF team_id, mode, token_hash, permission, domain_id, allowed_ips, expires_at, revoked_at
    OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION postyard_notify_api_lookups_changed();
CREATE TRIGGER teams_changed_for_lookups
    AFTER UPDATE OF rate_limit, api_key_rate_limit, approved_at, suspended_at, suspension_reason, daily_quota,
    monthly_quota OR DELETE ON teams
    FOR EACH STATEMENT EXECUTE FUNCTION postyard_notify_api_lookups_changed();
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS api_keys_changed_for_lookups ON api_keys;
DROP TRIGGER IF EXISTS teams_changed_for_lookups ON teams;
DROP FUNCTION IF EXISTS postyard_notify_api_lookups_changed();
"""


def upgrade() -> None:
    await_only(op.get_bind().connection.driver_connection.execute(UPGRADE))


def downgrade() -> None:
    await_only(op.get_bind().connection.driver_connection.execute(DOWNGRADE))
