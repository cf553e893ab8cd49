-- Log archives in an S3-compatible store (logs.archive_store: s3). Such a
-- row keeps its sizes here and its compressed bytes in the object named by
-- location ("s3://bucket/key"); data is then empty. When a row goes (its
-- job deleted by retention, ON DELETE CASCADE), its object is queued in
-- log_archive_deletions, which the edge drains (the edge holds the store's
-- credentials): nothing is left behind in the bucket, even when the row was
-- deleted by a process that cannot reach the store.
ALTER TABLE job_log_archives ADD COLUMN location text;

CREATE TABLE log_archive_deletions (
    location  text        PRIMARY KEY,
    queued_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION log_archive_queue_deletion() RETURNS trigger AS $$
BEGIN
    INSERT INTO log_archive_deletions (location) VALUES (OLD.location)
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER job_log_archives_queue_deletion
    AFTER DELETE ON job_log_archives
    FOR EACH ROW WHEN (OLD.location IS NOT NULL)
    EXECUTE FUNCTION log_archive_queue_deletion();
