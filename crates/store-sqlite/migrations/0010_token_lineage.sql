-- Chain of custody: every token mandate issues, with what it came from: the subject and actor
-- tokens of a token exchange (RFC 8693), or the grant of a code or refresh. Kept after expiry, as
-- the audit log is, so a chain can be followed later; tokens themselves are never stored.

CREATE TABLE token_lineage (
    jti        TEXT PRIMARY KEY NOT NULL,
    -- access_token, or the RFC 8693 token type of an assertion issued for another server.
    kind       TEXT NOT NULL,
    parent_jti TEXT,
    actor_jti  TEXT,
    grant_id   TEXT,
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    audience   TEXT NOT NULL,
    scope      TEXT,
    -- The token's `act` claim as JSON text.
    act        TEXT,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX token_lineage_parent_jti ON token_lineage (parent_jti);
CREATE INDEX token_lineage_actor_jti ON token_lineage (actor_jti);
CREATE INDEX token_lineage_grant_id ON token_lineage (grant_id);
