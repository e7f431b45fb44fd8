-- Times are Unix seconds; flags are 0/1 integers (the same in both backends).
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    username      TEXT UNIQUE,
    name          TEXT,
    password_hash TEXT,
    verified      INTEGER NOT NULL DEFAULT 0,
    disabled      INTEGER NOT NULL DEFAULT 0,
    totp_enabled  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- One emailed code each; user_id is NULL for the decoys that keep answers
-- for unknown addresses identical to answers for known ones.
CREATE TABLE email_keys (
    email_key  TEXT PRIMARY KEY,
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    resends    INTEGER NOT NULL DEFAULT 0,
    sent_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    device     TEXT,
    -- A registration's password: set on the account only when this key's
    -- code proves the address, so re-registering cannot plant a password.
    password_hash TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX email_keys_by_user ON email_keys (user_id, created_at);

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_id        TEXT NOT NULL,
    device_name      TEXT,
    platform         TEXT,
    operating_system TEXT,
    location         TEXT,
    latitude         REAL,
    longitude        REAL,
    fcm_token        TEXT,
    ip               TEXT,
    user_agent       TEXT,
    created_at       INTEGER NOT NULL,
    last_seen_at     INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    revoked_at       INTEGER,
    revoked_reason   TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id, device_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);

-- Messages are encrypted with the master key: they carry codes.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    recipient       TEXT NOT NULL,
    template        TEXT NOT NULL,
    message         TEXT,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    -- The server refused the message for good (SMTP 5xx): no more retries.
    refused_at      INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (sent_at, next_attempt_at);

-- Security events (SPEC §6): written beside the change they record.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    event      TEXT NOT NULL,
    user_id    TEXT,
    session_id TEXT,
    ip         TEXT,
    detail     TEXT
);
CREATE INDEX audit_log_by_user ON audit_log (user_id, at);
