-- Output artifacts of a job's attempts (issue 16): one row per file the
-- worker collected, written in the same transaction as the attempt's end.
-- GetJobStatus lists the rows of the job's latest attempt that has any;
-- they go with the job (ON DELETE CASCADE) when retention deletes it.
CREATE TABLE job_artifacts (
    job_id      uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    epoch       bigint      NOT NULL,
    idx         integer     NOT NULL,        -- order within the attempt's result
    source      text        NOT NULL,        -- path in the workspace
    destination text        NOT NULL,        -- final location (no query string)
    size_bytes  bigint      NOT NULL,
    checksum    text        NOT NULL,        -- "sha256:<hex>" or ""
    state       text        NOT NULL CHECK (state IN ('UPLOADED', 'FAILED')),
    error       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, epoch, idx)
);
