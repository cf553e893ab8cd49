-- Audit log: who did what to which object. Append-only.
CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  actor       text NOT NULL,                 -- api key name, worker id, 'system'
  action      text NOT NULL,                 -- 'job.queue', 'job.cancel', ...
  object_type text NOT NULL,
  object_id   text NOT NULL,
  detail      jsonb NOT NULL DEFAULT '{}'    -- never a secret
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
CREATE INDEX audit_log_object ON audit_log (object_type, object_id, at DESC);

-- API keys for clients: only a hash of the key is stored; lookups go by hash.
CREATE TABLE api_keys (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  key_hash    bytea NOT NULL UNIQUE,         -- SHA-256 of the key
  scopes      text[] NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);
-- a name is reusable once its key is revoked
CREATE UNIQUE INDEX api_keys_name_active ON api_keys (name) WHERE revoked_at IS NULL;
