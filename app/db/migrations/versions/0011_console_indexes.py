"""Indexes for the console's overview and the operators' status page (bench/console_pages.py measures them).

- `emails_team_waiting`: the team's queued and sending emails (the overview's queue), and every team's for the
  status page's mail queue per host (`postyard_mail_queue()`); only waiting emails are in it, so it stays small.
- `email_events_team_time`: the team's events of the last 30 days by type (the overview's activity), read from
  the index alone instead of every team's events.
- `webhook_deliveries_team_time`: the team's deliveries with their state (the overview's failed and retried
  webhook deliveries), likewise.

Each is built with a plain CREATE INDEX in the migration's transaction: writes to its table wait until it is built.
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

INDEXES = """
CREATE INDEX emails_team_waiting ON emails(team_id, state) WHERE state IN ('queued', 'sending');
CREATE INDEX email_events_team_time ON email_events(team_id, created_at) INCLUDE (type);
CREATE INDEX webhook_deliveries_team_time ON webhook_deliveries(team_id, created_at) INCLUDE (state, attempts);
"""


def _execute_script(sql: str) -> None:
    """Run several statements at once (asyncpg's simple query protocol)."""
    await_only(op.get_bind().connection.driver_connection.execute(sql))


def upgrade() -> None:
    _execute_script(INDEXES)


def downgrade() -> None:
    _execute_script("DROP INDEX IF EXISTS webhook_deliveries_team_time; DROP INDEX IF EXISTS email_events_team_time; "
                    "DROP INDEX IF EXISTS emails_team_waiting;")
