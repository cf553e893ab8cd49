-- Worker resource usage as its last heartbeat reported it. The edge writes
-- these with last_heartbeat_at, grouped: one UPDATE per heartbeat interval
-- for every worker that beat.
ALTER TABLE workers
  ADD COLUMN usage_cpu_cores    double precision NOT NULL DEFAULT 0,
  ADD COLUMN usage_memory_bytes bigint NOT NULL DEFAULT 0,
  ADD COLUMN usage_memory_total bigint NOT NULL DEFAULT 0,
  ADD COLUMN usage_running_jobs integer NOT NULL DEFAULT 0;
