-- The delegation path: a person authorizes a client through the browser. Times are Unix seconds;
-- codes, refresh tokens, sessions and request handles are stored only as SHA-256 digests.

ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN application_type TEXT NOT NULL DEFAULT 'web';
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE authorization_requests (
    handle_hash    TEXT PRIMARY KEY NOT NULL,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    resources      TEXT NOT NULL,
    state          TEXT,
    nonce          TEXT,
    code_challenge TEXT NOT NULL,
    prompt         TEXT,
    max_age        BIGINT,
    pushed         BOOLEAN NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX authorization_requests_expires_at ON authorization_requests (expires_at);

CREATE TABLE grants (
    grant_id   TEXT PRIMARY KEY NOT NULL,
    client_id  TEXT NOT NULL,
    username   TEXT NOT NULL,
    scope      TEXT NOT NULL,
    resources  TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_username_client_id ON grants (username, client_id);

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY NOT NULL,
    grant_id       TEXT NOT NULL REFERENCES grants (grant_id),
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce          TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE INDEX authorization_codes_grant_id ON authorization_codes (grant_id);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    grant_id    TEXT NOT NULL REFERENCES grants (grant_id),
    client_id   TEXT NOT NULL,
    -- No foreign key: a parent is purged when it expires, its successor lives on.
    parent_hash TEXT,
    scope       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- Access tokens issued from a grant, so that revoking the grant revokes them (they are JWTs).
CREATE TABLE issued_access_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    grant_id   TEXT NOT NULL REFERENCES grants (grant_id),
    expires_at BIGINT NOT NULL
);
CREATE INDEX issued_access_tokens_grant_id ON issued_access_tokens (grant_id);
CREATE INDEX issued_access_tokens_expires_at ON issued_access_tokens (expires_at);

CREATE TABLE consents (
    username   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    resources  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (username, client_id, resources)
);

CREATE TABLE browser_sessions (
    session_hash TEXT PRIMARY KEY NOT NULL,
    username     TEXT NOT NULL,
    auth_time    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX browser_sessions_expires_at ON browser_sessions (expires_at);

-- One row per failed sign-in: an exact sliding window, correct with several instances writing.
CREATE TABLE login_failures (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    throttle_key TEXT NOT NULL,
    failed_at    BIGINT NOT NULL
);
CREATE INDEX login_failures_key_failed_at ON login_failures (throttle_key, failed_at);
CREATE INDEX login_failures_failed_at ON login_failures (failed_at);
