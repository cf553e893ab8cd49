-- A provider's numbers within the caps RegisterProvider enforces, one
-- constant each in libs/core/include/hodei/limits.h (HODEI_PROVIDER_WORKERS_MAX,
-- HODEI_PROVIDER_IDLE_TTL_MS_MAX, HODEI_PROVIDER_COST_MAX, HODEI_CPU_MILLIS_MAX,
-- HODEI_RESOURCE_BYTES_MAX, HODEI_GPU_COUNT_MAX; tests/integration/
-- test_provider_limits.c checks both at the exact boundary), so that a row
-- written by hand (compose/providers.sql, a script, psql) cannot make the
-- supervisor's warm pool or the scheduler ask for more than any door accepts.
-- A row already past a cap (only a hand-written one can be) is brought down
-- to it first.
UPDATE providers SET
  max_workers = least(max_workers, 10000),
  warm_pool_min = least(warm_pool_min, 10000),
  warm_pool_max = least(warm_pool_max, 10000),
  idle_ttl_ms = least(idle_ttl_ms, 604800000),
  cost_per_hour = least(cost_per_hour, 1000000),
  worker_cpu_millis = least(greatest(worker_cpu_millis, 0), 1024000),
  worker_memory_bytes = least(greatest(worker_memory_bytes, 0), 1125899906842624),
  worker_storage_bytes = least(greatest(worker_storage_bytes, 0), 1125899906842624),
  worker_gpu_count = least(greatest(worker_gpu_count, 0), 64)
WHERE max_workers > 10000 OR warm_pool_min > 10000 OR warm_pool_max > 10000
   OR idle_ttl_ms > 604800000 OR NOT cost_per_hour <= 1000000
   OR worker_cpu_millis NOT BETWEEN 0 AND 1024000
   OR worker_memory_bytes NOT BETWEEN 0 AND 1125899906842624
   OR worker_storage_bytes NOT BETWEEN 0 AND 1125899906842624
   OR worker_gpu_count NOT BETWEEN 0 AND 64;

ALTER TABLE providers
  ADD CONSTRAINT providers_max_workers_cap CHECK (max_workers <= 10000),
  ADD CONSTRAINT providers_warm_pool_min_cap CHECK (warm_pool_min <= 10000),
  ADD CONSTRAINT providers_warm_pool_max_cap CHECK (warm_pool_max <= 10000),
  ADD CONSTRAINT providers_idle_ttl_ms_cap CHECK (idle_ttl_ms <= 604800000),
  ADD CONSTRAINT providers_cost_per_hour_cap CHECK (cost_per_hour <= 1000000),
  ADD CONSTRAINT providers_worker_cpu_millis_cap CHECK (worker_cpu_millis BETWEEN 0 AND 1024000),
  ADD CONSTRAINT providers_worker_memory_bytes_cap
    CHECK (worker_memory_bytes BETWEEN 0 AND 1125899906842624),
  ADD CONSTRAINT providers_worker_storage_bytes_cap
    CHECK (worker_storage_bytes BETWEEN 0 AND 1125899906842624),
  ADD CONSTRAINT providers_worker_gpu_count_cap CHECK (worker_gpu_count BETWEEN 0 AND 64);
