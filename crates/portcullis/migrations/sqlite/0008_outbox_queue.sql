-- The outbox's queue: messages neither sent nor refused, in the order they
-- fall due. Withheld messages (decoys) are stored refused and never sent; a
-- week of them, on the index the queue had, was read at every poll.
CREATE INDEX outbox_queue ON outbox (next_attempt_at, created_at) WHERE sent_at IS NULL AND refused_at IS NULL;
DROP INDEX outbox_due;
