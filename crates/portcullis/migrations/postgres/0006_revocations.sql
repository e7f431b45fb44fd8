-- What ended someone's access: a session revoked (a user's or a machine
-- client's), an API key revoked, an account disabled. Every instance keeps
-- these in memory and reads the rows added since its last look, so that no
-- request needs a database read to know a token or key is still good.
-- Triggers write the rows, so every writer (the server, the CLI) is covered,
-- and notify the instances listening on `portcullis_revocations`.
-- Transactions commit out of seq order here, so readers track the writing
-- transaction's id (txid) against the oldest transaction still running.
CREATE TABLE revocations (
    seq     BIGSERIAL PRIMARY KEY,
    kind    TEXT NOT NULL,      -- session | api_key | user
    subject TEXT NOT NULL,      -- its id
    at      BIGINT NOT NULL,    -- when access ended
    until   BIGINT NOT NULL,    -- after this, nothing it covers can still be valid
    txid    BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint)
);
CREATE INDEX revocations_by_txid ON revocations (txid);
CREATE INDEX revocations_by_until ON revocations (until);

CREATE FUNCTION record_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        INSERT INTO revocations (kind, subject, at, until)
        VALUES ('user', NEW.id, NEW.updated_at, NEW.updated_at);
    ELSIF TG_TABLE_NAME = 'api_keys' THEN
        INSERT INTO revocations (kind, subject, at, until)
        VALUES ('api_key', NEW.id, NEW.revoked_at, NEW.revoked_at);
    ELSE
        INSERT INTO revocations (kind, subject, at, until)
        VALUES ('session', NEW.id, NEW.revoked_at, NEW.expires_at);
    END IF;
    PERFORM pg_notify('portcullis_revocations', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at ON sessions FOR EACH ROW
WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
EXECUTE FUNCTION record_revocation();

CREATE TRIGGER client_sessions_revoked AFTER UPDATE OF revoked_at ON client_sessions FOR EACH ROW
WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
EXECUTE FUNCTION record_revocation();

CREATE TRIGGER api_keys_revoked AFTER UPDATE OF revoked_at ON api_keys FOR EACH ROW
WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
EXECUTE FUNCTION record_revocation();

CREATE TRIGGER users_disabled AFTER UPDATE OF disabled ON users FOR EACH ROW
WHEN (OLD.disabled = 0 AND NEW.disabled = 1)
EXECUTE FUNCTION record_revocation();

-- Sessions revoked before this version whose tokens may still be in use.
INSERT INTO revocations (kind, subject, at, until)
SELECT 'session', id, revoked_at, expires_at FROM sessions
WHERE revoked_at IS NOT NULL AND expires_at > EXTRACT(EPOCH FROM now())::bigint;
INSERT INTO revocations (kind, subject, at, until)
SELECT 'session', id, revoked_at, expires_at FROM client_sessions
WHERE revoked_at IS NOT NULL AND expires_at > EXTRACT(EPOCH FROM now())::bigint;
