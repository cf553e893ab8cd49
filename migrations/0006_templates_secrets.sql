-- Templates: stored job specs with ${param} placeholders.
CREATE TABLE templates (
  name        text PRIMARY KEY,
  description text NOT NULL DEFAULT '',
  spec        bytea NOT NULL,                -- packed hodei.v1.JobSpec
  parameters  text[] NOT NULL DEFAULT '{}',  -- names that must be given to run it
  version     integer NOT NULL DEFAULT 1,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Secrets: values encrypted with the master key (AEAD); the plain value is
-- never stored, logged or put in an event.
CREATE TABLE secrets (
  name        text PRIMARY KEY,
  value       bytea NOT NULL,                -- ciphertext (with tag)
  nonce       bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
