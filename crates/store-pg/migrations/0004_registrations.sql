-- Dynamic client registration (RFC 7591): the registration of each self-registered client, kept
-- apart from `clients` so config clients carry no registration state. The access token of RFC 7592
-- is stored only as its SHA-256 digest.

CREATE TABLE client_registrations (
    client_id         TEXT PRIMARY KEY NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    access_token_hash TEXT NOT NULL,
    -- Digest of a public client's canonical metadata: identical registrations share one client.
    metadata_hash     TEXT,
    created_at        BIGINT NOT NULL,
    last_used_at      BIGINT NOT NULL
);
CREATE INDEX client_registrations_metadata_hash ON client_registrations (metadata_hash);
CREATE INDEX client_registrations_last_used_at ON client_registrations (last_used_at);
