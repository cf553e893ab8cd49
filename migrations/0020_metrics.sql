-- MetricsService (the edge) reads jobs by when they ended, over windows of
-- up to a week: an index on finished_at, partial so a job gains its entry
-- once, when it ends (retried attempts keep finished_at NULL).
--
-- metrics_samples: the active supervisor's reading of the live counts every
-- supervisor.metrics_interval (5 s), kept a week: the history behind
-- MetricsService's series (queue depth over the last hour), which no other
-- table holds. About 17,000 rows a day.
--
-- On a large jobs table the index is built under a lock that holds writes
-- to jobs while it runs (see README, Upgrades).
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE metrics_samples (
  at             timestamptz PRIMARY KEY,
  jobs_pending   bigint NOT NULL,
  jobs_assigned  bigint NOT NULL,
  jobs_running   bigint NOT NULL,
  workers_ready  bigint NOT NULL,
  workers_busy   bigint NOT NULL,
  workers_live   bigint NOT NULL,
  outbox_backlog bigint NOT NULL
);
