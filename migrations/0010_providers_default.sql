-- The embedded default provider, and what the provisioner learns of each
-- provider when it reconciles.

-- `process`: workers are local hodei-worker processes started by the
-- provisioner. Capacity 0 = unknown (the worker reports its own on Register).
INSERT INTO providers (name, type, max_workers, warm_pool_min, warm_pool_max, idle_ttl_ms)
VALUES ('process', 'process', 8, 0, 0, 30000)
ON CONFLICT (name) DO NOTHING;

-- One row per provider, rewritten by the reconciling provisioner each round;
-- GetProviderHealth reads it.
CREATE TABLE provider_health (
  provider          text PRIMARY KEY,      -- providers.name
  healthy           boolean NOT NULL,
  message           text NOT NULL DEFAULT '',
  live_workers      integer NOT NULL DEFAULT 0,   -- what the provider really runs
  orphans_destroyed integer NOT NULL DEFAULT 0,   -- in the last round
  lost_marked       integer NOT NULL DEFAULT 0,   -- in the last round
  checked_by        text NOT NULL DEFAULT '',     -- provisioner instance
  checked_at        timestamptz NOT NULL DEFAULT now()
);

-- A ProvisionRequested seen again (redelivery) finds its saga, finished or
-- not, by worker id.
CREATE INDEX sagas_type_correlation ON sagas (type, correlation_key);
