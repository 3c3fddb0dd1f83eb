"""Bounce and complaint reports that name no email, or no recipient of it, are recorded as ignored.

`ignored_reports` keeps what such a report claimed and why it changed nothing (its team and email
when it named one; NULL otherwise, seen by operators only). `ignored_report_totals` counts them by
reason for `/metrics`, and keeps counting when old rows are purged.
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE ignored_reports (
    id uuid PRIMARY KEY,
    team_id uuid REFERENCES teams(id) ON DELETE CASCADE,
    email_id uuid REFERENCES emails(id) ON DELETE SET NULL,
    kind text NOT NULL CHECK (kind IN ('bounce', 'delay', 'other', 'complaint', 'unknown')),
    reason text NOT NULL CHECK (length(reason) <= 64),
    reported_addresses text[] NOT NULL DEFAULT '{}',
    sent_to text CHECK (length(sent_to) <= 320),
    returned_message_id text CHECK (length(returned_message_id) <= 998),
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ignored_reports_team_time ON ignored_reports(team_id, received_at DESC);
CREATE INDEX ignored_reports_email ON ignored_reports(email_id) WHERE email_id IS NOT NULL;
CREATE INDEX ignored_reports_time ON ignored_reports(received_at);

CREATE TABLE ignored_report_totals (
    reason text PRIMARY KEY CHECK (length(reason) <= 64),
    count bigint NOT NULL DEFAULT 0
);
"""

ROW_LEVEL_SECURITY = """
ALTER TABLE ignored_reports ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_isolation ON ignored_reports
    USING (team_id = postyard_current_team()) WITH CHECK (team_id = postyard_current_team());
CREATE POLICY operator_access ON ignored_reports FOR SELECT USING (postyard_is_operator());
"""

# The bounce pipe connects as the owner (it acts across teams); the API only reads.
GRANTS = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_app') THEN
        GRANT SELECT ON ignored_reports, ignored_report_totals TO postyard_app;
    END IF;
END $$;
"""


def _execute_script(sql: str) -> None:
    """Run several statements at once (asyncpg's simple query protocol)."""
    await_only(op.get_bind().connection.driver_connection.execute(sql))


def upgrade() -> None:
    for block in (SCHEMA, ROW_LEVEL_SECURITY, GRANTS):
        _execute_script(block)


def downgrade() -> None:
    _execute_script("DROP TABLE IF EXISTS ignored_report_totals, ignored_reports;")
