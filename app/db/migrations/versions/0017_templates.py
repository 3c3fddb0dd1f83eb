"""Templates (Resend's templates API): a draft that is edited, and the version last published, which sends."""

from alembic import op
from sqlalchemy.util import await_only

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE templates (
    id uuid PRIMARY KEY,
    team_id uuid NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name text NOT NULL,
    alias text,
    draft jsonb NOT NULL,
    draft_version_id uuid NOT NULL,
    published jsonb,
    published_version_id uuid,
    published_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX templates_team_time ON templates(team_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX templates_team_alias ON templates(team_id, alias) WHERE alias IS NOT NULL;
ALTER TABLE templates ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_isolation ON templates
    USING (team_id = postyard_current_team()) WITH CHECK (team_id = postyard_current_team());
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON templates TO postyard_app;
    END IF;
END $$;
"""


def upgrade() -> None:
    await_only(op.get_bind().connection.driver_connection.execute(UPGRADE))


def downgrade() -> None:
    await_only(op.get_bind().connection.driver_connection.execute("DROP TABLE IF EXISTS templates;"))
