-- Times are Unix seconds (BIGINT) in both backends.
CREATE TABLE clients (
    client_id                  TEXT PRIMARY KEY NOT NULL,
    client_name                TEXT,
    secret_digest              TEXT,
    token_endpoint_auth_method TEXT NOT NULL,
    grant_types                TEXT NOT NULL,
    scopes                     TEXT NOT NULL,
    resources                  TEXT,
    disabled                   BOOLEAN NOT NULL DEFAULT FALSE,
    source                     TEXT NOT NULL,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);

CREATE TABLE resources (
    uri        TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE users (
    username      TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    email         TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY NOT NULL,
    alg           TEXT NOT NULL,
    private_key   BLOB NOT NULL,
    created_at    BIGINT NOT NULL,
    retired_at    BIGINT,
    publish_until BIGINT
);

CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         BIGINT NOT NULL,
    event      TEXT NOT NULL,
    grant_type TEXT,
    client_id  TEXT,
    subject    TEXT,
    resource   TEXT,
    scope      TEXT,
    outcome    TEXT NOT NULL,
    jti        TEXT,
    parent_jti TEXT,
    detail     TEXT
);
CREATE INDEX audit_log_jti ON audit_log (jti);
CREATE INDEX audit_log_parent_jti ON audit_log (parent_jti);
