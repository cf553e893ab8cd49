-- Jobs run in the image they name. A job's image (JobSpec.image, "" = the
-- provider's default worker image) is kept in its own column so the
-- scheduler and the hand-off can match it; a worker's image is the one its
-- provider started it in (set when the scheduler asks for the worker, never
-- changed by the worker itself). A job only runs on a worker of the same
-- image; "" only matches "".
ALTER TABLE jobs ADD COLUMN image text NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN image text NOT NULL DEFAULT '';

-- The hand-off's pick (migration 0014) with the image rule added; the rest
-- is unchanged (same locks, same order, same pinned plan).
CREATE OR REPLACE FUNCTION hodei_handoff_pick(worker uuid, ending uuid)
  RETURNS TABLE (job_id uuid, job_epoch bigint, provider text)
  LANGUAGE plpgsql VOLATILE
  SET enable_bitmapscan = off
  SET enable_sort = off
  SET enable_seqscan = off
AS $$
BEGIN
  PERFORM 1 FROM jobs WHERE id = ending FOR UPDATE;
  PERFORM 1 FROM workers w
   WHERE w.id = worker AND w.state = 'BUSY' AND w.current_job_id = ending
   FOR UPDATE;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  RETURN QUERY
  SELECT j.id, j.epoch, w.provider FROM workers w
    LEFT JOIN LATERAL (SELECT jobs.id, jobs.epoch FROM jobs
              WHERE jobs.state = 'PENDING'
                AND (jobs.not_before IS NULL OR jobs.not_before <= now())
                AND jobs.constraints = '{}'::jsonb
                AND jobs.image = w.image
                AND (jobs.provider = '' OR jobs.provider = w.provider)
                AND (jobs.architecture = '' OR jobs.architecture = w.architecture)
                AND (jobs.cpu_millis <= 0 OR w.cpu_millis >= jobs.cpu_millis)
                AND (jobs.memory_bytes <= 0 OR w.memory_bytes >= jobs.memory_bytes)
                AND (jobs.storage_bytes <= 0 OR w.storage_bytes >= jobs.storage_bytes)
                AND (jobs.gpu_count <= 0 OR w.gpu_count >= jobs.gpu_count)
              ORDER BY jobs.priority DESC, jobs.created_at, jobs.id
              LIMIT 1 FOR UPDATE OF jobs SKIP LOCKED) j ON true
   WHERE w.id = worker;
END;
$$;

-- Provisions that failed (workers TERMINATED without ever registering), so
-- the scheduler backs off a provider or image whose workers keep failing
-- (an engine away, a broken image) instead of asking again at once.
CREATE INDEX workers_failed_recent ON workers (provider, updated_at)
  WHERE state = 'TERMINATED' AND session_token_hash IS NULL;
