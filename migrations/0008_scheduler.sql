-- Scheduler: the strategy chosen at run time (ConfigureScheduler), shared by
-- every scheduler replica, which re-read it on each pass.
CREATE TABLE scheduler_settings (
  id          boolean PRIMARY KEY DEFAULT true CHECK (id),   -- exactly one row
  strategy    text CHECK (strategy IN ('round-robin','least-loaded','priority',
                                       'resource-aware','cost-optimized')),  -- NULL = scheduler.strategy
  updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO scheduler_settings (id) VALUES (true);

-- Least-loaded scheduling: recent assignments per worker as a decaying count,
-- updated with each assignment (assign_load * exp(-age / tau) + 1).
ALTER TABLE workers
  ADD COLUMN assign_load      double precision NOT NULL DEFAULT 0,
  ADD COLUMN last_assigned_at timestamptz;
