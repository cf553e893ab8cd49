-- The pending job a freed worker takes next (the edge's hand-off, see
-- docs/architecture.md), locked for the caller's transaction: the best by
-- the scheduler's order (priority, age) that is due, has no label
-- constraints, fits the worker, and is not locked by anyone else (a
-- scheduler's pass, another worker's hand-off): those are skipped, never
-- waited for.
--
-- A function, so that the plan can be pinned: the walk of jobs_pending in
-- its order, which costs the same however many jobs wait. Planned from
-- statistics, the query switched to a bitmap scan and a sort whenever the
-- last ANALYZE saw a short queue, and then cost milliseconds on a long one:
-- queue depth changes faster than statistics do.
CREATE FUNCTION hodei_handoff_take(worker uuid)
  RETURNS TABLE (job_id uuid, job_epoch bigint)
  LANGUAGE plpgsql VOLATILE
  SET enable_bitmapscan = off
  SET enable_sort = off
  SET enable_seqscan = off
AS $$
BEGIN
  RETURN QUERY
  SELECT j.id, j.epoch FROM workers w,
    LATERAL (SELECT jobs.id, jobs.epoch FROM jobs
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
              LIMIT 1 FOR UPDATE OF jobs SKIP LOCKED) j
   WHERE w.id = worker AND w.state = 'READY';
END;
$$;
