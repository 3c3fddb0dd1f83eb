"""Domain ownership: any team may add a domain name; DNS verification with a per-entry token makes it one team's.

Each domain entry has its own `verification_token`, published as a TXT record at `_postyard.<name>`.
At most one entry per name is `verified` (a partial unique index), and only verified entries reach
the mail tier: the mail views expose nothing of an entry that is not verified, so Postfix, OpenDKIM
and the bounce pipe see one row per name. `postyard_claim_domain` lets a team whose own records all
verify take a name over from another team's verified entry, but only when that entry's ownership
record is no longer published; it runs with its owner's rights because the other entry is outside
the caller's row-level security scope, and it reveals nothing of that entry but the outcome.
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = """
ALTER TABLE domains DROP CONSTRAINT domains_name_key;
ALTER TABLE domains ADD COLUMN verification_token text NOT NULL
    DEFAULT replace(gen_random_uuid()::text, '-', '') CHECK (length(verification_token) BETWEEN 32 AND 64);
ALTER TABLE domains ADD CONSTRAINT domains_name_lowercase CHECK (name = lower(name));
CREATE INDEX domains_name ON domains(name);
CREATE UNIQUE INDEX domains_team_name ON domains(team_id, lower(name));
CREATE UNIQUE INDEX domains_verified_name ON domains(lower(name)) WHERE status = 'verified';
"""

FUNCTIONS = """
-- 'free' (no other team holds the name verified), 'held' (another team does and its ownership record
-- is among p_published, or p_published is NULL: DNS did not say), or 'released' (another team did and
-- its record is gone: that entry is now 'failed', and its team's audit log says why). p_domain must be
-- an entry of the calling team.
CREATE FUNCTION postyard_claim_domain(p_domain uuid, p_published text[]) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    claimant domains%ROWTYPE;
    holder domains%ROWTYPE;
BEGIN
    SELECT * INTO claimant FROM domains WHERE id = p_domain AND team_id = postyard_current_team();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such domain of the current team' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO holder FROM domains
        WHERE lower(name) = lower(claimant.name) AND status = 'verified' AND id <> claimant.id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'free';
    END IF;
    IF p_published IS NULL OR holder.verification_token = ANY(p_published) THEN
        RETURN 'held';
    END IF;
    UPDATE domains SET status = 'failed', record_status = record_status || '{"ownership": "failed"}',
                       updated_at = now()
        WHERE id = holder.id;
    INSERT INTO audit_logs (id, team_id, actor_type, actor_id, action, resource_type, resource_id, ip, details,
                            created_at)
        VALUES (gen_random_uuid(), holder.team_id, 'system', NULL, 'domain.ownership_lost', 'domain',
                holder.id::text, NULL,
                jsonb_build_object('name', holder.name, 'reason',
                    'another team verified this domain with its own ownership record, and this '
                    'domain''s ownership record was no longer published'),
                now());
    RETURN 'released';
END $$;
REVOKE ALL ON FUNCTION postyard_claim_domain(uuid, text[]) FROM PUBLIC;
"""

# CREATE OR REPLACE keeps each view's columns and grants. mail_sender_logins already joins only
# verified domains, and the partial unique index makes that one team's.
VIEWS = """
CREATE OR REPLACE VIEW mail_dkim_keys AS
    SELECT d.name::text AS domain, k.selector::text AS selector, k.algorithm::text AS algorithm,
           k.key_id::text AS key_id, k.private_key_ciphertext AS private_key_ciphertext,
           k.active AS active
    FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
    WHERE k.status <> 'retired' AND d.status = 'verified';
CREATE OR REPLACE VIEW mail_domain_tls_policy AS
    SELECT name::text AS domain, tls_mode::text AS tls_mode FROM domains WHERE status = 'verified';
CREATE OR REPLACE VIEW mail_bounce_domains AS
    SELECT (return_path || '.' || name)::text AS bounce_domain, name::text AS domain, tls_mode::text AS tls_mode
    FROM domains WHERE status = 'verified';
"""

GRANTS = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postyard_app') THEN
        GRANT EXECUTE ON FUNCTION postyard_claim_domain(uuid, text[]) TO postyard_app;
    END IF;
END $$;
"""

DOWNGRADE = """
CREATE OR REPLACE VIEW mail_dkim_keys AS
    SELECT d.name::text AS domain, k.selector::text AS selector, k.algorithm::text AS algorithm,
           k.key_id::text AS key_id, k.private_key_ciphertext AS private_key_ciphertext,
           k.active AS active
    FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
    WHERE k.status <> 'retired';
CREATE OR REPLACE VIEW mail_domain_tls_policy AS
    SELECT name::text AS domain, tls_mode::text AS tls_mode FROM domains;
CREATE OR REPLACE VIEW mail_bounce_domains AS
    SELECT (return_path || '.' || name)::text AS bounce_domain, name::text AS domain, tls_mode::text AS tls_mode
    FROM domains;
DROP FUNCTION IF EXISTS postyard_claim_domain(uuid, text[]);
DROP INDEX IF EXISTS domains_verified_name, domains_team_name, domains_name;
ALTER TABLE domains DROP CONSTRAINT IF EXISTS domains_name_lowercase;
ALTER TABLE domains DROP COLUMN IF EXISTS verification_token;
-- Fails while several teams have an entry of the same name: delete the unverified ones first.
ALTER TABLE domains ADD CONSTRAINT domains_name_key UNIQUE (name);
"""


def _execute_script(sql: str) -> None:
    """Run several statements at once (asyncpg's simple query protocol)."""
    await_only(op.get_bind().connection.driver_connection.execute(sql))


def upgrade() -> None:
    for block in (SCHEMA, FUNCTIONS, VIEWS, GRANTS):
        _execute_script(block)


def downgrade() -> None:
    _execute_script(DOWNGRADE)
