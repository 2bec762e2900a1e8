-- private_key_jwt client authentication (RFC 7523 §2.2): the client's public keys, and the `jti`
-- of every assertion seen, kept until the assertion expires so a replay is refused (RFC 7523 §3).

ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;

CREATE TABLE used_jtis (
    jti_key    TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);
