"""Every table that holds a team's rows is bound by row-level security, so a query that forgets its team filter
still sees only the team the request is scoped to."""

from __future__ import annotations

# A user's sign-in: read by its token before any team is known; `team_id` is the team it acts for.
NOT_TEAM_DATA = {"sessions"}
TEAM_TABLES = """
SELECT c.relname, c.relrowsecurity, EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid
                                            AND p.polname = 'team_isolation')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'team_id' AND NOT a.attisdropped)
ORDER BY c.relname
"""


def test_every_table_with_a_team_column_is_bound_by_row_level_security(postgres):
    rows = [line.split("|") for line in postgres.psql(TEAM_TABLES, user="postyard_owner",
                                                      database="postyard").split()]
    unbound = [name for name, enabled, policy in rows
               if name not in NOT_TEAM_DATA and (enabled != "t" or policy != "t")]
    assert "received_emails" in [name for name, _, _ in rows]
    assert unbound == []
