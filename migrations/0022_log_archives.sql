-- Logs that outlive the stream (issue 16): once a job has finished, each of
-- its attempts' lines is kept here, zlib-compressed (a packed
-- hodei.v1.GetLogsResponse holding the attempt's lines with their epoch and
-- sequence), and GetLogs / SubscribeLogs read from here, so a job's output
-- is still whole after JetStream has dropped it (age, size, purge). Deleted
-- with its job.
CREATE TABLE job_log_archives (
    job_id     uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    epoch      bigint      NOT NULL,
    lines      bigint      NOT NULL,
    raw_bytes  bigint      NOT NULL,        -- the packed lines before compression
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, epoch)
);
