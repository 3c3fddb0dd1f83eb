"""Mail routing view: each sending domain's bounce (return-path) domain and outbound TLS mode.

Postfix accepts mail on port 25 for the bounce domains and picks the enforced-TLS transport for
mail whose envelope sender is in a domain that asked for it.
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

VIEWS = """
CREATE VIEW mail_bounce_domains AS
    SELECT (return_path || '.' || name)::text AS bounce_domain, name::text AS domain, tls_mode::text AS tls_mode
    FROM domains;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_mail') THEN
        GRANT SELECT ON mail_bounce_domains TO postyard_mail;
    END IF;
END $$;
"""


def upgrade() -> None:
    await_only(op.get_bind().connection.driver_connection.execute(VIEWS))


def downgrade() -> None:
    await_only(op.get_bind().connection.driver_connection.execute("DROP VIEW IF EXISTS mail_bounce_domains;"))
