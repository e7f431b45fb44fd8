-- The second factor (SPEC §3.1): the TOTP secret once enabled and the one set
-- up but not yet confirmed, both encrypted with the master key, and the last
-- time step accepted, so that a code is accepted once.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_pending TEXT;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;

-- Single-use recovery codes, accepted in place of a TOTP code; stored as keyed hashes.
CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- A login key issued after its TOTP step (1) needs no second factor at verify.
ALTER TABLE email_keys ADD COLUMN second_factor BIGINT NOT NULL DEFAULT 0;

-- User API keys: the key is shown once and stored as a keyed hash.
-- Scopes are space-separated names.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_by_user ON api_keys (user_id, created_at);
