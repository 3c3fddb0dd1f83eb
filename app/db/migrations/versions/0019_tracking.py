"""Open and click tracking (Resend's `open_tracking` and `click_tracking` on a domain), off by default.

A tracked email's opens and clicks are `opened` and `clicked` events; their detail keeps the reader's IP address
and User-Agent until the team's retention ends, when the worker removes them from the events and from the
webhook bodies that carried them (it may change those two columns only).
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE domains ADD COLUMN open_tracking boolean NOT NULL DEFAULT false,
                    ADD COLUMN click_tracking boolean NOT NULL DEFAULT false;
ALTER TABLE email_events DROP CONSTRAINT email_events_type_check;
ALTER TABLE email_events ADD CONSTRAINT email_events_type_check CHECK (type IN (
    'queued', 'sent', 'delivered', 'delivery_delayed', 'bounced', 'complained', 'failed', 'suppressed', 'scheduled',
    'canceled', 'opened', 'clicked'));
{worker}
"""

DOWNGRADE = """
{worker}
DELETE FROM email_events WHERE type IN ('opened', 'clicked');
ALTER TABLE email_events DROP CONSTRAINT email_events_type_check;
ALTER TABLE email_events ADD CONSTRAINT email_events_type_check CHECK (type IN (
    'queued', 'sent', 'delivered', 'delivery_delayed', 'bounced', 'complained', 'failed', 'suppressed', 'scheduled',
    'canceled'));
ALTER TABLE domains DROP COLUMN open_tracking, DROP COLUMN click_tracking;
"""


# What the worker may change, to forget readers' details: (table, column).
WORKER_UPDATES = (("email_events", "detail"), ("webhook_deliveries", "payload"))


def _worker(verb: str, direction: str) -> str:
    statements = " ".join(f"{verb} UPDATE ({column}) ON {table} {direction} postyard_worker;"
                          for table, column in WORKER_UPDATES)
    return (f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_worker') THEN {statements} "
            "END IF; END $$;")


def upgrade() -> None:
    sql = UPGRADE.replace("{worker}", _worker("GRANT", "TO"))
    await_only(op.get_bind().connection.driver_connection.execute(sql))


def downgrade() -> None:
    sql = DOWNGRADE.replace("{worker}", _worker("REVOKE", "FROM"))
    await_only(op.get_bind().connection.driver_connection.execute(sql))
