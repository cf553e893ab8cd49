-- jobs_state_created (ListJobs by state) held an entry for every version of
-- every job row: a job left one as PENDING, ASSIGNED, RUNNING and again at
-- its end, since none of those updates can be HOT (state is indexed). It
-- now holds ended jobs only, the bulk of any listing: one entry per job.
-- Listing live states walks jobs_created newest first, where live jobs sit.
--
-- It also took PENDING lookups by id: with no statistics yet (a new
-- database), the planner could pick it for "id = $1 AND state = 'PENDING'"
-- and walk every pending entry instead of the primary key.
--
-- On a large jobs table this builds the index anew, under a lock that holds
-- writes to jobs while it runs (see README, Upgrades).
DROP INDEX jobs_state_created;
CREATE INDEX jobs_state_created ON jobs (state, created_at DESC, id DESC)
  WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMEOUT');
