"""The mail hosts hear of every change to the rows behind Postfix's maps.

The mail-host sync (app/mailhost/dkim_sync.py) writes Postfix's routing maps from `mail_bounce_domains`
(domains) and `mail_sender_logins` (domains joined with smtp_credentials). A statement on either table that
can change those views notifies `mail_routes_changed` when it commits, and the sync rewrites the maps within
seconds; its poll stays the safety net for a missed notification.
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE FUNCTION postyard_notify_mail_routes_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mail_routes_changed', '');
    RETURN NULL;
END $$;
CREATE TRIGGER domains_changed_for_mail_routes
    AFTER INSERT OR UPDATE OF name, status, return_path, tls_mode, team_id OR DELETE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION postyard_notify_mail_routes_changed();
CREATE TRIGGER smtp_credentials_changed_for_mail_routes
    AFTER INSERT OR UPDATE OF username, revoked_at, domain_id, team_id OR DELETE ON smtp_credentials
    FOR EACH STATEMENT EXECUTE FUNCTION postyard_notify_mail_routes_changed();
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS domains_changed_for_mail_routes ON domains;
DROP TRIGGER IF EXISTS smtp_credentials_changed_for_mail_routes ON smtp_credentials;
DROP FUNCTION IF EXISTS postyard_notify_mail_routes_changed();
"""


def upgrade() -> None:
    await_only(op.get_bind().connection.driver_connection.execute(UPGRADE))


def downgrade() -> None:
    await_only(op.get_bind().connection.driver_connection.execute(DOWNGRADE))
