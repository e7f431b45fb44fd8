-- Machine clients (SPEC §3.2): an API key (the public username), a secret
-- stored as a keyed hash, a status, scopes and an IP allowlist (both
-- space-separated; an empty allowlist allows every address).
CREATE TABLE clients (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    api_key     TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    scopes      TEXT NOT NULL DEFAULT '',
    allowed_ips TEXT NOT NULL DEFAULT '',
    active      BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- A client's login: its refresh tokens rotate within it, and its access
-- tokens name it (`sid`), so that revoking it ends them all.
CREATE TABLE client_sessions (
    id         TEXT PRIMARY KEY,
    client_id  BIGINT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    ip         TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX client_sessions_by_client ON client_sessions (client_id);

CREATE TABLE client_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES client_sessions(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT
);
CREATE INDEX client_refresh_tokens_by_session ON client_refresh_tokens (session_id);

-- Security events about a client name it.
ALTER TABLE audit_log ADD COLUMN client_id BIGINT;
