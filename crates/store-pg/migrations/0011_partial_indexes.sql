-- Index only the rows that have the key: most tokens have no parent, actor or grant (client
-- credentials) and refusals have no jti, and an index entry for NULL is an index write per
-- issuance that no lookup ever reads. Every lookup is `column = value`, which implies NOT NULL,
-- so the partial indexes serve them all. Nothing looks audit rows up by parent_jti: that index goes.
DROP INDEX audit_log_jti;
DROP INDEX audit_log_parent_jti;
DROP INDEX token_lineage_parent_jti;
DROP INDEX token_lineage_actor_jti;
DROP INDEX token_lineage_grant_id;
CREATE INDEX audit_log_jti ON audit_log (jti) WHERE jti IS NOT NULL;
CREATE INDEX token_lineage_parent_jti ON token_lineage (parent_jti) WHERE parent_jti IS NOT NULL;
CREATE INDEX token_lineage_actor_jti ON token_lineage (actor_jti) WHERE actor_jti IS NOT NULL;
CREATE INDEX token_lineage_grant_id ON token_lineage (grant_id) WHERE grant_id IS NOT NULL;
