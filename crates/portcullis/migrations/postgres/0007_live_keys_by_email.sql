-- Live keys are capped per address: the cap's query reads only the keys not
-- yet used, so only those are indexed. Kept for a day after they end, used
-- keys would otherwise make every new key's cap read all of an address's.
CREATE INDEX email_keys_live_by_email ON email_keys (email, created_at) WHERE used_at IS NULL;
DROP INDEX email_keys_by_email;
