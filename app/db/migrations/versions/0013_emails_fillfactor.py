"""`emails` pages keep room for the updates each email gets after it is written.

An email is updated a few times after its INSERT: its claim, its settle (`sent` with its last event) and the
log follower's events. When its page has no room, the new version goes to another page, with every index
entry again and the whole row (the MIME inline) in the WAL; with room, an update that changes no indexed
column stays a HOT update on the page, and any update logs only what changed. bench/settle_cost.py measured
the WAL per email, worker and log follower together: 7,500 bytes with pages filled whole, 3,400 with
fillfactor 70. New pages follow the setting; existing ones keep their layout.
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE emails SET (fillfactor = 70)")


def downgrade() -> None:
    op.execute("ALTER TABLE emails RESET (fillfactor)")
