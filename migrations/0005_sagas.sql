-- Sagas (e.g. provisioning): the current step of a multi-step operation and
-- its data, leased by one replica at a time. A replica that dies leaves an
-- expired lease; another takes it over and resumes or compensates.
CREATE TABLE sagas (
  id               uuid PRIMARY KEY,
  type             text NOT NULL,          -- 'provision', 'destroy', ...
  state            text NOT NULL CHECK (state IN ('RUNNING','COMPENSATING','SUCCEEDED','FAILED','COMPENSATED')),
  step             text NOT NULL DEFAULT '',
  data             jsonb NOT NULL DEFAULT '{}',
  error            text,
  attempt          integer NOT NULL DEFAULT 0,
  correlation_key  text,                   -- e.g. one in-flight provision per need
  lease_owner      text,                   -- replica id holding it
  lease_expires_at timestamptz,
  deadline_at      timestamptz,            -- give up (compensate) after this
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz
);
-- unfinished sagas, for resumption by lease expiry
CREATE INDEX sagas_active ON sagas (lease_expires_at NULLS FIRST, created_at)
  WHERE state IN ('RUNNING','COMPENSATING');
-- at most one unfinished saga per (type, correlation key)
CREATE UNIQUE INDEX sagas_correlation ON sagas (type, correlation_key)
  WHERE correlation_key IS NOT NULL AND state IN ('RUNNING','COMPENSATING');
CREATE INDEX sagas_type_created ON sagas (type, created_at DESC);
