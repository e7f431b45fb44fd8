-- What ended someone's access: a session revoked (a user's or a machine
-- client's), an API key revoked, an account disabled. Every instance keeps
-- these in memory and reads the rows added since its last look, so that no
-- request needs a database read to know a token or key is still good.
-- Triggers write the rows, so every writer (the server, the CLI) is covered.
-- SQLite has one writer at a time: seq grows in commit order.
CREATE TABLE revocations (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,      -- session | api_key | user
    subject TEXT NOT NULL,      -- its id
    at      INTEGER NOT NULL,   -- when access ended
    until   INTEGER NOT NULL    -- after this, nothing it covers can still be valid
);
CREATE INDEX revocations_by_until ON revocations (until);

CREATE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at ON sessions
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO revocations (kind, subject, at, until)
    VALUES ('session', NEW.id, NEW.revoked_at, NEW.expires_at);
END;

CREATE TRIGGER client_sessions_revoked AFTER UPDATE OF revoked_at ON client_sessions
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO revocations (kind, subject, at, until)
    VALUES ('session', NEW.id, NEW.revoked_at, NEW.expires_at);
END;

CREATE TRIGGER api_keys_revoked AFTER UPDATE OF revoked_at ON api_keys
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO revocations (kind, subject, at, until)
    VALUES ('api_key', NEW.id, NEW.revoked_at, NEW.revoked_at);
END;

CREATE TRIGGER users_disabled AFTER UPDATE OF disabled ON users
WHEN OLD.disabled = 0 AND NEW.disabled = 1
BEGIN
    INSERT INTO revocations (kind, subject, at, until)
    VALUES ('user', NEW.id, NEW.updated_at, NEW.updated_at);
END;

-- Sessions revoked before this version whose tokens may still be in use.
INSERT INTO revocations (kind, subject, at, until)
SELECT 'session', id, revoked_at, expires_at FROM sessions
WHERE revoked_at IS NOT NULL AND expires_at > CAST(strftime('%s', 'now') AS INTEGER);
INSERT INTO revocations (kind, subject, at, until)
SELECT 'session', id, revoked_at, expires_at FROM client_sessions
WHERE revoked_at IS NOT NULL AND expires_at > CAST(strftime('%s', 'now') AS INTEGER);
