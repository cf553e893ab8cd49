-- Indexes for the per-job hot paths, found with pg_stat_statements and
-- auto_explain under `make bench`.
--
-- Every lookup of a worker's jobs (edge re-send and Hello, supervisor, the
-- provisioner's destroy) asks only for its live attempts. jobs_worker indexed
-- every job the worker ever ran, so each lookup intersected it with the state
-- index through a bitmap AND; this one holds live attempts only.
DROP INDEX jobs_worker;
CREATE INDEX jobs_worker_active ON jobs (worker_id, created_at)
  WHERE state IN ('ASSIGNED', 'RUNNING');

-- The hot tables change on every job: analyze them often enough that the
-- planner's picture follows a queue that fills and drains quickly.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE workers SET (autovacuum_vacuum_threshold = 200, autovacuum_vacuum_scale_factor = 0);
