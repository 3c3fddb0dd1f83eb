"""Bounce and complaint reports that name no email, or no recipient of it, are recorded as ignored."""

from alembic import op
from sqlalchemy.util import await_only

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = """
SELECT 1;
"""

DOWNGRADE = """
SELECT 1;
"""


def upgrade() -> None:
    await_only(op.get_bind().connection.driver_connection.execute(UPGRADE))


def downgrade() -> None:
    await_only(op.get_bind().connection.driver_connection.execute(DOWNGRADE))
