"""A domain's mail waits after its TLS mode changes, as after a first verification.

Postfix applies a sending domain's enforced TLS through a local map the mail-host sync rewrites within
seconds of the change (app/mailhost/postfix_maps.py). An email claimed before that would go out under the
old mode, so the claim waits `POSTYARD_DKIM_SETTLE_SECONDS` after `domains.tls_mode_changed_at`, as it does
after `verified_at`.
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE domains ADD COLUMN tls_mode_changed_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE domains DROP COLUMN IF EXISTS tls_mode_changed_at")
