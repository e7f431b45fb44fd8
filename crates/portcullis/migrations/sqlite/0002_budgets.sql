-- Attempt budgets (SPEC §6), shared by every instance on this database: a
-- number of tries per window for one bucket (an account, an address, an IP),
-- and for emailed codes the run of consecutive failures that locks them.
CREATE TABLE budgets (
    bucket       TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    spent        INTEGER NOT NULL,
    streak       INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER
);

-- Who and what each security event came from.
ALTER TABLE audit_log ADD COLUMN user_agent TEXT;
ALTER TABLE audit_log ADD COLUMN device_id TEXT;
ALTER TABLE audit_log ADD COLUMN trace_id TEXT;

-- Failures for addresses with no account are counted per hour instead of
-- logged one by one, so a flood of them cannot grow the audit log without bound.
CREATE TABLE audit_tally (
    event TEXT NOT NULL,
    hour  INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (event, hour)
);

-- A registration's username, set on the account when the code is verified
-- if it is still free: register itself never tells whether one is taken.
ALTER TABLE email_keys ADD COLUMN username TEXT;

-- Live keys are capped per address, decoys included.
CREATE INDEX email_keys_by_email ON email_keys (email, created_at);
