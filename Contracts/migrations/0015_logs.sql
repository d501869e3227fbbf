-- 0015_logs: log lines (partitioned by day of their time), the templates the miner found,
-- per-minute counts per template and service, and the anomalies detected.
--
-- Lines arrive redacted; a line's day partition (log_lines_YYYYMMDD) is made by the first worker
-- that stores a line of that day. Retention drops whole partitions, never deletes rows.

CREATE SEQUENCE log_template_ids;

CREATE TABLE log_templates (
    id         bigint      PRIMARY KEY,
    template   text        NOT NULL,
    line_count bigint      NOT NULL DEFAULT 0,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    example    text        NOT NULL,
    -- A template the miner found to differ from another only in variables: its lines belong to that one.
    merged_into bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX log_templates_recent ON log_templates (last_seen DESC);

CREATE TABLE log_lines (
    at          timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    service     text        NOT NULL,
    level       text        NOT NULL CHECK (level IN ('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'unknown')),
    template_id bigint      NOT NULL,
    variables   text[]      NOT NULL,
    message     text        NOT NULL,
    raw         boolean     NOT NULL,
    -- The job that stored the line and its place in it: the keyset for paging.
    job_id      text        NOT NULL,
    seq         int         NOT NULL
) PARTITION BY RANGE (at);
CREATE INDEX log_lines_at ON log_lines (at DESC, job_id DESC, seq DESC);
CREATE INDEX log_lines_service ON log_lines (service, at DESC);
CREATE INDEX log_lines_template ON log_lines (template_id, at DESC);

CREATE TABLE log_template_minutes (
    template_id bigint      NOT NULL,
    service     text        NOT NULL,
    minute      timestamptz NOT NULL,
    lines       bigint      NOT NULL,
    PRIMARY KEY (template_id, service, minute)
);
CREATE INDEX log_template_minutes_minute ON log_template_minutes (minute);

-- Error and fatal lines per service and minute, for error bursts.
CREATE TABLE log_service_minutes (
    service text        NOT NULL,
    minute  timestamptz NOT NULL,
    errors  bigint      NOT NULL,
    PRIMARY KEY (service, minute)
);

CREATE TABLE log_anomalies (
    id          uuid        PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('new_template', 'error_burst', 'card_number')),
    service     text        NOT NULL,
    template_id bigint,
    minute      timestamptz NOT NULL,
    lines       bigint      NOT NULL,
    summary     text        NOT NULL,
    dedup_key   text        NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (kind, service, minute, template_id)
);
CREATE INDEX log_anomalies_recent ON log_anomalies (detected_at DESC, id DESC);

-- Log lines are kept 90 days by default: whole day partitions are dropped.
INSERT INTO retention_policies (data_type, retention, compliance_standard, legal_basis, action) VALUES
    ('log_line', interval '90 days', 'Operations', 'Application logs for operations and investigations; redacted at intake', 'delete');
INSERT INTO retention_policy_history (data_type, version, retention, compliance_standard, legal_basis, action, changed_by)
SELECT data_type, version, retention, compliance_standard, legal_basis, action, updated_by FROM retention_policies
WHERE data_type = 'log_line';

