-- One-time bootstrap tokens: random, stored only as a hash, bound to one
-- worker id and provider, short-lived, consumed at most once:
--   UPDATE bootstrap_tokens SET used_at = now()
--    WHERE token_hash = $1 AND worker_id = $2 AND used_at IS NULL AND expires_at > now()
CREATE TABLE bootstrap_tokens (
  token_hash  bytea PRIMARY KEY,           -- SHA-256 of the token
  worker_id   uuid NOT NULL,
  provider    text NOT NULL,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  revoked_at  timestamptz,                 -- set by saga compensation
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bootstrap_tokens_worker ON bootstrap_tokens (worker_id);
CREATE INDEX bootstrap_tokens_expires ON bootstrap_tokens (expires_at) WHERE used_at IS NULL;
