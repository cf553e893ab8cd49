-- The dev stack's providers (mounted into the `providers` step of
-- docker-compose.yml). Every job runs in a Docker container on the stack's
-- network (hodei): its own image, or hodei-worker for jobs that name none;
-- the agent comes from the volume hodei-agent. Edit and run
-- `docker-compose up -d providers` to change them.
INSERT INTO providers (name, type, config, max_workers, warm_pool_min, warm_pool_max, idle_ttl_ms)
VALUES ('docker', 'docker',
        '{"host": "unix:///var/run/docker.sock",
          "network": "hodei",
          "worker_image": "hodei-worker:latest",
          "agent_volume": "hodei-agent",
          "labels": "com.docker.compose.project=compose,com.docker.compose.service=worker,com.docker.compose.oneoff=False"}',
        8, 0, 0, 60000)
ON CONFLICT (name) DO UPDATE SET type = EXCLUDED.type, config = EXCLUDED.config,
  max_workers = EXCLUDED.max_workers, idle_ttl_ms = EXCLUDED.idle_ttl_ms;
