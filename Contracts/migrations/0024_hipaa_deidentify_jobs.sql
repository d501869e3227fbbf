-- 0024_hipaa_deidentify_jobs: de-identification of sets too large for POST /api/hipaa/deidentify.
--
-- POST /api/hipaa/deidentify/jobs streams a JSON-lines upload into sealed blocks of rows
-- (health_deidentify_blocks, stage `input`); the privacy worker's `privacy.hipaa.deidentify`
-- chunks turn input blocks into output blocks of the same number, one transaction per chunk
-- (the input block deleted as its output is written), so a chunk killed midway is redone whole
-- and a finished one is never repeated. `aggregated` jobs add their counts per group to
-- health_deidentify_cells instead of writing output blocks. Blocks are sealed (AES-256-GCM) under
-- the `privacy-export` data key, the key of the GDPR export archives; the de-identified result
-- may be read until expires_at, then privacy.cleanup deletes the blocks and cells.

CREATE TABLE health_deidentify_jobs (
    id                uuid        PRIMARY KEY,
    status            text        NOT NULL DEFAULT 'uploading'
                                  CHECK (status IN ('uploading', 'queued', 'running', 'completed', 'failed', 'expired')),
    level             text        NOT NULL CHECK (level IN ('none', 'pseudonymized', 'anonymized', 'aggregated')),
    -- Column name to identifier kind, as the request classified them.
    columns           jsonb       NOT NULL,
    group_by          text[]      NOT NULL DEFAULT '{}',
    minimum_cell      int         NOT NULL,
    reference_year    int         NOT NULL,
    purpose           text        NOT NULL,
    requested_by      text        NOT NULL,
    lines             bigint      NOT NULL DEFAULT 0,
    rows_in           bigint      NOT NULL DEFAULT 0,
    rows_rejected     bigint      NOT NULL DEFAULT 0,
    rows_done         bigint      NOT NULL DEFAULT 0,
    blocks            int         NOT NULL DEFAULT 0,
    blocks_done       int         NOT NULL DEFAULT 0,
    groups            int,
    suppressed_groups int,
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    completed_at      timestamptz,
    expires_at        timestamptz
);
CREATE INDEX health_deidentify_jobs_expiry ON health_deidentify_jobs (status, expires_at);

CREATE TABLE health_deidentify_blocks (
    job_id      uuid  NOT NULL REFERENCES health_deidentify_jobs (id) ON DELETE CASCADE,
    stage       text  NOT NULL CHECK (stage IN ('input', 'output')),
    seq         int   NOT NULL,
    rows        int   NOT NULL,
    key_version int   NOT NULL,
    -- JSON lines, one row each, sealed with context `hipaa-deidentify/<job>/<stage>/<seq>`.
    sealed      bytea NOT NULL,
    PRIMARY KEY (job_id, stage, seq)
);

-- Counts per group of an `aggregated` job; `group_key` is the group's values as a JSON object
-- with sorted keys, after Safe Harbor (no identifier survives into it).
CREATE TABLE health_deidentify_cells (
    job_id    uuid   NOT NULL REFERENCES health_deidentify_jobs (id) ON DELETE CASCADE,
    group_key text   NOT NULL,
    count     bigint NOT NULL,
    PRIMARY KEY (job_id, group_key)
);
