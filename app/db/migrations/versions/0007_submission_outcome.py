"""Submissions whose outcome is unknown wait for Postfix's log instead of being sent again.

`emails.submitted_on` names the mail host whose Postfix the worker handed the email to (set at each
claim); `emails.outcome_unknown_since` is set when DATA went out and no final reply came (a timeout, a
lost connection, or a worker that died after Postfix logged the Message-ID): the email stays `sending`,
without a lease, until the log follower of that host shows Postfix accepted it (`sent`) or has read its
log past that time plus a grace period without an acceptance (`queued` again). `postfix_log_positions`
holds, per mail host, the time up to which its log follower has applied Postfix's log.
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = """
ALTER TABLE emails ADD COLUMN submitted_on text CHECK (length(submitted_on) <= 255),
                   ADD COLUMN outcome_unknown_since timestamptz;
CREATE INDEX emails_outcome_unknown ON emails(outcome_unknown_since) WHERE outcome_unknown_since IS NOT NULL;
CREATE INDEX emails_queued_accepted ON emails(id) WHERE state = 'queued' AND mta_accepted;

CREATE TABLE postfix_log_positions (
    mail_host text PRIMARY KEY CHECK (length(mail_host) <= 255),
    logged_through timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


def _execute_script(sql: str) -> None:
    """Run several statements at once (asyncpg's simple query protocol)."""
    await_only(op.get_bind().connection.driver_connection.execute(sql))


def upgrade() -> None:
    _execute_script(SCHEMA)


def downgrade() -> None:
    _execute_script("DROP TABLE IF EXISTS postfix_log_positions; DROP INDEX IF EXISTS emails_queued_accepted; "
                    "ALTER TABLE emails DROP COLUMN IF EXISTS outcome_unknown_since, "
                    "DROP COLUMN IF EXISTS submitted_on;")
