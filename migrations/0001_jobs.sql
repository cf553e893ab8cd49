-- Jobs: one row per job, the single source of truth for its state.
-- Column names are a contract with services/job-api, scheduler and supervisor.
CREATE TABLE jobs (
  id               uuid PRIMARY KEY,
  name             text NOT NULL DEFAULT '',
  state            text NOT NULL CHECK (state IN ('PENDING','ASSIGNED','RUNNING','SUCCEEDED','FAILED','CANCELLED','TIMEOUT')),
  spec             bytea NOT NULL,                 -- packed hodei.v1.JobSpec
  priority         integer NOT NULL DEFAULT 0,
  attempt          integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL DEFAULT 1,
  timeout_ms       bigint NOT NULL,
  cpu_millis       integer NOT NULL DEFAULT 0,
  memory_bytes     bigint NOT NULL DEFAULT 0,
  storage_bytes    bigint NOT NULL DEFAULT 0,
  gpu_count        integer NOT NULL DEFAULT 0,
  architecture     text NOT NULL DEFAULT '',
  provider         text NOT NULL DEFAULT '',
  constraints      jsonb NOT NULL DEFAULT '{}',
  labels           jsonb NOT NULL DEFAULT '{}',
  idempotency_key  text,                            -- NULL = none
  worker_id        uuid,
  epoch            bigint NOT NULL DEFAULT 0,
  cancel_requested boolean NOT NULL DEFAULT false,
  cancel_reason    text,
  exit_code        integer,
  error            text,
  not_before       timestamptz,                     -- retry backoff: not schedulable before
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz
);
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_pending ON jobs (priority DESC, created_at, id) WHERE state = 'PENDING';
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_state_created ON jobs (state, created_at DESC, id DESC);
CREATE INDEX jobs_worker ON jobs (worker_id) WHERE worker_id IS NOT NULL;
