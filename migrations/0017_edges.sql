-- Edge presence. Each job-api process (edge) writes its row once per worker
-- heartbeat interval, with the same statement that records its workers'
-- heartbeats. up_since is when it last came up or came back after a gap.
--
-- The supervisor reads this before it calls a silent worker LOST: a worker
-- only goes silent for good when an edge has been there to take its
-- reconnection for a whole heartbeat timeout. While every edge is away (an
-- edge restart, a rolling upgrade), no worker is LOST for its silence, so
-- the attempts it runs are not run a second time elsewhere.
CREATE TABLE edges (
  instance  text PRIMARY KEY,
  up_since  timestamptz NOT NULL DEFAULT now(),
  seen_at   timestamptz NOT NULL DEFAULT now()
);
