-- The key that signs is marked (signer = 1); the unique index allows one, so
-- instances starting together on an empty database create one between them,
-- and a rotation swaps the mark in one transaction. A superseded key keeps
-- verifying until its retired_at, when the last token it signed has expired.
ALTER TABLE signing_keys ADD COLUMN signer BIGINT;
UPDATE signing_keys SET signer = 1 WHERE kid = (
    SELECT kid FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid LIMIT 1
);
CREATE UNIQUE INDEX signing_keys_signer ON signing_keys (signer);
