-- The hand-off's pick, now the first statement of a worker's result
-- transaction, so that the result's one statement can end the attempt and
-- give the worker its next job together (one worker row update instead of
-- BUSY -> READY -> BUSY, one round trip less).
--
-- Locks in the order every attempt end takes them, one statement each: the
-- ending job, then the worker, then the next job (skipping one another
-- transaction holds, never waiting for it). One row when the worker is BUSY with `ending`: the job it
-- fits best (NULLs when none waits) and the worker's provider (for its
-- WorkerReady when none does). No row: the result goes the general way.
--
-- Same choice and same pinned plan as hodei_handoff_take (migration 0013),
-- which the general way still uses.
CREATE FUNCTION hodei_handoff_pick(worker uuid, ending uuid)
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
