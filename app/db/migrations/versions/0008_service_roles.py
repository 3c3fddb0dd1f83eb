"""Each mail-host service connects as a role of its own, granted exactly the tables it uses.

Until now the outbox worker, the log follower, the bounce pipe, the SMTP intake and the webhook dispatcher
connected as the database owner, which row-level security does not bind and which may drop tables. Each
now has a role (roles/postgresql.py creates them) with table grants for what its statements do, and a
permissive row-level security policy on exactly those tables, since each acts across teams. A role that
does not exist yet (a database set up by hand) is skipped, like the earlier grants.
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# role: {table: privileges}; a column list in the privileges limits them to those columns.
GRANTS: dict[str, dict[str, str]] = {
    "postyard_worker": {
        "emails": "SELECT, UPDATE, DELETE",
        "email_events": "SELECT, INSERT",
        "webhooks": "SELECT",
        "webhook_deliveries": "SELECT, INSERT, DELETE",
        "teams": "SELECT",
        "domains": "SELECT",
        "postfix_log_positions": "SELECT",
        "ignored_reports": "SELECT, DELETE",
        "sessions": "SELECT, DELETE",
    },
    "postyard_log_follower": {
        "emails": "SELECT, UPDATE (queue_id, mta_accepted, last_event, updated_at)",
        "email_events": "SELECT, INSERT",
        "webhooks": "SELECT",
        "webhook_deliveries": "INSERT",
        "suppressions": "SELECT, INSERT, UPDATE (email)",
        "postfix_log_positions": "SELECT, INSERT, UPDATE (logged_through, updated_at)",
    },
    "postyard_bounce": {
        "emails": "SELECT, UPDATE (last_event, updated_at)",
        "email_events": "SELECT, INSERT",
        "webhooks": "SELECT",
        "webhook_deliveries": "INSERT",
        "suppressions": "SELECT, INSERT, UPDATE (email)",
        "ignored_reports": "INSERT",
        "ignored_report_totals": "SELECT, INSERT, UPDATE (count)",
    },
    "postyard_intake": {
        "emails": "SELECT (id, message_id, last_event), INSERT, UPDATE (last_event, updated_at)",
        "email_events": "SELECT, INSERT",
        "webhooks": "SELECT",
        "webhook_deliveries": "INSERT",
        "domains": "SELECT",
        "suppressions": "SELECT",
        "teams": "SELECT",
        "team_send_counters": "SELECT, INSERT, UPDATE (sent)",
    },
    "postyard_webhooks": {
        "webhooks": "SELECT, UPDATE (status, updated_at, disabled_reason)",
        "webhook_deliveries": "SELECT, UPDATE",
    },
}
FUNCTIONS: dict[str, tuple[str, ...]] = {"postyard_worker": ("postyard_purge_audit_logs(integer)",)}


def _grants(role: str) -> str:
    tables = GRANTS[role]
    statements = [f"GRANT CONNECT ON DATABASE {{database}} TO {role};"]
    for table, privileges in tables.items():
        statements.append(f"GRANT {privileges} ON {table} TO {role};")
        statements.append(f"DROP POLICY IF EXISTS {role} ON {table};")
        statements.append(f"CREATE POLICY {role} ON {table} TO {role} USING (true) WITH CHECK (true);")
    statements += [f"GRANT EXECUTE ON FUNCTION {function} TO {role};" for function in FUNCTIONS.get(role, ())]
    body = "\n        ".join(statements)
    return f"""
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
        {body}
    END IF;"""


def _execute_script(sql: str) -> None:
    """Run several statements at once (asyncpg's simple query protocol)."""
    await_only(op.get_bind().connection.driver_connection.execute(sql))


def upgrade() -> None:
    database = op.get_bind().exec_driver_sql("SELECT current_database()").scalar_one()
    blocks = "".join(_grants(role) for role in GRANTS).replace("{database}", f'"{database}"')
    _execute_script(f"DO $$\nBEGIN{blocks}\nEND $$;")


def downgrade() -> None:
    statements = []
    for role, tables in GRANTS.items():
        for table in tables:
            statements.append(f"DROP POLICY IF EXISTS {role} ON {table};")
        statements.append(f"""
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
        REVOKE ALL ON {", ".join(tables)} FROM {role};
    END IF;
END $$;""")
    _execute_script("\n".join(statements))
