"""What the operators' status page reads: the schema's revision and the mail queue per mail host.

The API's role sees emails only of the request's team and cannot read `postfix_log_positions` or
`alembic_version`; these two functions give it exactly the figures the status page shows, the queue only
to an operator's transaction (`postyard_is_operator()`).
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FUNCTIONS = """
CREATE FUNCTION postyard_schema_revision() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT string_agg(version_num, ',' ORDER BY version_num) FROM alembic_version $$;
REVOKE ALL ON FUNCTION postyard_schema_revision() FROM PUBLIC;

-- Per mail host (NULL: emails no host has taken yet): emails waiting, being sent, and with an unknown
-- outcome (waiting for the host's log), and how far and when that host's log follower last recorded.
CREATE FUNCTION postyard_mail_queue()
RETURNS TABLE (mail_host text, queued bigint, sending bigint, outcome_unknown bigint,
               logged_through timestamptz, updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ WITH queue AS (
          SELECT submitted_on AS host, count(*) FILTER (WHERE state = 'queued') AS queued,
                 count(*) FILTER (WHERE state = 'sending') AS sending,
                 count(*) FILTER (WHERE state = 'sending' AND outcome_unknown_since IS NOT NULL) AS unknown
          FROM emails WHERE state IN ('queued', 'sending') GROUP BY submitted_on)
      SELECT coalesce(q.host, p.mail_host), coalesce(q.queued, 0), coalesce(q.sending, 0), coalesce(q.unknown, 0),
             p.logged_through, p.updated_at
      FROM queue q FULL JOIN postfix_log_positions p ON p.mail_host = q.host
      WHERE postyard_is_operator()
      ORDER BY 1 NULLS FIRST $$;
REVOKE ALL ON FUNCTION postyard_mail_queue() FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_app') THEN
        GRANT EXECUTE ON FUNCTION postyard_schema_revision(), postyard_mail_queue() TO postyard_app;
    END IF;
END $$;
"""


def _execute_script(sql: str) -> None:
    """Run several statements at once (asyncpg's simple query protocol)."""
    await_only(op.get_bind().connection.driver_connection.execute(sql))


def upgrade() -> None:
    _execute_script(FUNCTIONS)


def downgrade() -> None:
    _execute_script("DROP FUNCTION IF EXISTS postyard_mail_queue(); "
                    "DROP FUNCTION IF EXISTS postyard_schema_revision();")
