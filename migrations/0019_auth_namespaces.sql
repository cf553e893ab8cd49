-- Who may do what (issue 12): API keys with owners, namespaces, expiry and
-- an optional client-certificate name; jobs, templates and secrets belong to
-- a namespace; audit rows name their actor's key and peer; secret values say
-- which master key sealed them. Every new column has a constant default, so
-- PostgreSQL adds it without rewriting the table.

ALTER TABLE api_keys
  ADD COLUMN owner       text NOT NULL DEFAULT '',
  ADD COLUMN namespaces  text[] NOT NULL DEFAULT '{default}',  -- [0] = where its jobs go
  ADD COLUMN expires_at  timestamptz,                          -- NULL = never
  ADD COLUMN cert_san    text,                                 -- a client certificate acting as it
  ADD COLUMN created_by  text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX api_keys_cert_san_active ON api_keys (cert_san)
  WHERE cert_san IS NOT NULL AND revoked_at IS NULL;

ALTER TABLE jobs
  ADD COLUMN namespace    text NOT NULL DEFAULT 'default',
  ADD COLUMN owner_key_id uuid,                                -- the key that queued it
  ADD COLUMN owner        text NOT NULL DEFAULT '';            -- that key's name then

ALTER TABLE templates ADD COLUMN namespace text NOT NULL DEFAULT 'default';
ALTER TABLE templates DROP CONSTRAINT templates_pkey, ADD PRIMARY KEY (namespace, name);

-- key_id: the master key that sealed value ('' = sealed before key ids, with
-- the name alone as authenticated data; re-sealed in the background).
ALTER TABLE secrets
  ADD COLUMN namespace   text NOT NULL DEFAULT 'default',
  ADD COLUMN shared_with text[] NOT NULL DEFAULT '{}',         -- other namespaces whose jobs may use it
  ADD COLUMN key_id      text NOT NULL DEFAULT '';
ALTER TABLE secrets DROP CONSTRAINT secrets_pkey, ADD PRIMARY KEY (namespace, name);
CREATE INDEX secrets_key_id ON secrets (key_id);

-- actor stays the readable name (a key's name, "cert:<name>", "system");
-- actor_id is the key's id. use_key makes a secret's use by one attempt one
-- row however often its RunJob is re-sent.
ALTER TABLE audit_log
  ADD COLUMN actor_id  text NOT NULL DEFAULT '',
  ADD COLUMN namespace text NOT NULL DEFAULT '',
  ADD COLUMN peer      text NOT NULL DEFAULT '',
  ADD COLUMN use_key   text;
CREATE UNIQUE INDEX audit_log_use_key ON audit_log (use_key) WHERE use_key IS NOT NULL;

-- An idempotency key is a namespace's own: another namespace's equal key
-- must neither collide with it nor reveal its job. Rebuilding this index
-- holds writes to jobs while it runs (about a second per million jobs).
DROP INDEX jobs_idempotency_key;
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (namespace, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
