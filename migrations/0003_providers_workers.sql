-- Providers: where workers are created (process, docker, kubernetes, firecracker).
CREATE TABLE providers (
  name                 text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  type                 text NOT NULL CHECK (type IN ('process','docker','kubernetes','firecracker')),
  config               jsonb NOT NULL DEFAULT '{}',   -- driver settings (string map)
  max_workers          integer NOT NULL DEFAULT 0 CHECK (max_workers >= 0),  -- 0 = no limit
  warm_pool_min        integer NOT NULL DEFAULT 0 CHECK (warm_pool_min >= 0),
  warm_pool_max        integer NOT NULL DEFAULT 0 CHECK (warm_pool_max >= warm_pool_min),
  idle_ttl_ms          bigint NOT NULL DEFAULT 300000 CHECK (idle_ttl_ms >= 0),
  cost_per_hour        double precision NOT NULL DEFAULT 0 CHECK (cost_per_hour >= 0),
  enabled              boolean NOT NULL DEFAULT true,
  -- the capacity of each worker this provider creates
  worker_cpu_millis    integer NOT NULL DEFAULT 0,
  worker_memory_bytes  bigint NOT NULL DEFAULT 0,
  worker_storage_bytes bigint NOT NULL DEFAULT 0,
  worker_gpu_count     integer NOT NULL DEFAULT 0,
  worker_architecture  text NOT NULL DEFAULT '',
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Workers: the registry. A worker row exists from CREATING (the provisioner
-- asked a provider for it) until it is TERMINATED.
CREATE TABLE workers (
  id                 uuid PRIMARY KEY,
  provider           text NOT NULL,        -- providers.name (kept after a provider is removed)
  state              text NOT NULL CHECK (state IN ('CREATING','CONNECTING','READY','BUSY',
                                                    'DRAINING','TERMINATING','TERMINATED','LOST')),
  cpu_millis         integer NOT NULL DEFAULT 0,
  memory_bytes       bigint NOT NULL DEFAULT 0,
  storage_bytes      bigint NOT NULL DEFAULT 0,
  gpu_count          integer NOT NULL DEFAULT 0,
  architecture       text NOT NULL DEFAULT '',
  labels             jsonb NOT NULL DEFAULT '{}',
  hostname           text NOT NULL DEFAULT '',
  agent_version      text NOT NULL DEFAULT '',
  provider_ref       text,                 -- the provider's own handle (pid, container id, pod name)
  session_token_hash bytea,                -- SHA-256 of the session token; NULL until registered
  current_job_id     uuid,
  last_heartbeat_at  timestamptz,
  idle_since         timestamptz,          -- set when it becomes READY with no job
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
-- scheduler: ready workers per provider
CREATE INDEX workers_ready ON workers (provider, created_at) WHERE state = 'READY';
-- supervisor: live workers by heartbeat age, and listings by state
CREATE INDEX workers_live ON workers (last_heartbeat_at) WHERE state IN ('READY','BUSY','DRAINING');
CREATE INDEX workers_state ON workers (state, provider);
CREATE INDEX workers_current_job ON workers (current_job_id) WHERE current_job_id IS NOT NULL;
CREATE UNIQUE INDEX workers_session_token_hash ON workers (session_token_hash)
  WHERE session_token_hash IS NOT NULL;
