"""Every host's status report, for the operators' status page.

Each host's reporter (roles/host_report.py, app/host_report.py) calls `postyard_report_host(report)` once a
minute as `postyard_reporter`, a role that may do nothing else. The report is keyed by the address the
connection comes from, so a host can only ever replace its own report, never another's. Only an operator's
transaction reads them, through `postyard_host_reports()`. No role is granted the table itself.
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

MAX_REPORT_BYTES = 65536

SCHEMA = f"""
CREATE TABLE host_reports (
    address inet PRIMARY KEY,
    host_name text NOT NULL,
    report jsonb NOT NULL,
    reported_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON host_reports FROM PUBLIC;

CREATE FUNCTION postyard_report_host(report jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(report) IS DISTINCT FROM 'object' OR jsonb_typeof(report -> 'host') IS DISTINCT FROM 'string'
       OR length(report ->> 'host') NOT BETWEEN 1 AND 253 THEN
        RAISE EXCEPTION 'a host report is a JSON object whose "host" names the host' USING ERRCODE = '22023';
    END IF;
    IF octet_length(report::text) > {MAX_REPORT_BYTES} THEN
        RAISE EXCEPTION 'a host report is at most {MAX_REPORT_BYTES} bytes' USING ERRCODE = '54000';
    END IF;
    -- A connection over the Unix socket has no client address: it comes from the database host itself.
    INSERT INTO host_reports (address, host_name, report, reported_at)
    VALUES (coalesce(inet_client_addr(), '127.0.0.1'::inet), report ->> 'host', report, now())
    ON CONFLICT (address) DO UPDATE
        SET host_name = EXCLUDED.host_name, report = EXCLUDED.report, reported_at = EXCLUDED.reported_at;
END $$;
REVOKE ALL ON FUNCTION postyard_report_host(jsonb) FROM PUBLIC;

CREATE FUNCTION postyard_host_reports()
RETURNS TABLE (address inet, host_name text, report jsonb, reported_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT address, host_name, report, reported_at FROM host_reports
      WHERE postyard_is_operator() ORDER BY host_name, address $$;
REVOKE ALL ON FUNCTION postyard_host_reports() FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_reporter') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO postyard_reporter', current_database());
        GRANT EXECUTE ON FUNCTION postyard_report_host(jsonb) TO postyard_reporter;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_app') THEN
        GRANT EXECUTE ON FUNCTION postyard_host_reports() TO postyard_app;
    END IF;
END $$;
"""


def _execute_script(sql: str) -> None:
    """Run several statements at once (asyncpg's simple query protocol)."""
    await_only(op.get_bind().connection.driver_connection.execute(sql))


def upgrade() -> None:
    _execute_script(SCHEMA)


def downgrade() -> None:
    _execute_script("DROP FUNCTION IF EXISTS postyard_host_reports(); "
                    "DROP FUNCTION IF EXISTS postyard_report_host(jsonb); DROP TABLE IF EXISTS host_reports;")
