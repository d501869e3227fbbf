-- 0022_compliance: evidence-based compliance. The compliance checks (run as `compliance.check`
-- jobs by the security worker) store what they found with the evidence; people record manual
-- assessments of PCI DSS requirements; a daily snapshot of the compliance score keeps its trend.
-- Readers (the polled status, report and dashboard endpoints) read only these tables.

-- One run of the automated checks (all of them, or the ones its job names).
CREATE TABLE compliance_check_runs (
    id           uuid        PRIMARY KEY,
    requested_by text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    checks       int         NOT NULL DEFAULT 0,
    failed       int         NOT NULL DEFAULT 0
);
CREATE INDEX compliance_check_runs_recent ON compliance_check_runs (started_at DESC);

-- Every result of every run, with its evidence (never card data: locations and counts only).
CREATE TABLE compliance_check_results (
    run_id       uuid        NOT NULL REFERENCES compliance_check_runs (id),
    check_name   text        NOT NULL,
    passed       boolean     NOT NULL,
    summary      text        NOT NULL,
    evidence     jsonb       NOT NULL DEFAULT '{}',
    checked_at   timestamptz NOT NULL,
    -- After this the result no longer counts (the check must run again).
    valid_until  timestamptz NOT NULL,
    duration_ms  bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, check_name)
);
CREATE INDEX compliance_check_results_latest ON compliance_check_results (check_name, checked_at DESC);

-- The latest result of each check: what readers use (one small row per check).
CREATE TABLE compliance_check_latest (
    check_name   text        PRIMARY KEY,
    run_id       uuid        NOT NULL REFERENCES compliance_check_runs (id),
    passed       boolean     NOT NULL,
    summary      text        NOT NULL,
    evidence     jsonb       NOT NULL DEFAULT '{}',
    checked_at   timestamptz NOT NULL,
    valid_until  timestamptz NOT NULL
);

-- The current manual assessment of a PCI DSS requirement by a named assessor; earlier ones stay
-- in the audit trail (action compliance.requirement.assess).
CREATE TABLE compliance_assessments (
    requirement_id text        PRIMARY KEY CHECK (requirement_id ~ '^[0-9]+(\.[0-9]+)*$'),
    status         text        NOT NULL CHECK (status IN ('compliant', 'non_compliant', 'not_assessed', 'not_applicable')),
    assessor       text        NOT NULL,
    notes          text        NOT NULL DEFAULT '',
    evidence       text        NOT NULL DEFAULT '',
    recorded_by    text        NOT NULL,
    assessed_at    timestamptz NOT NULL DEFAULT now()
);

-- The compliance score of each day (the day's latest computation), for the trend.
CREATE TABLE compliance_score_snapshots (
    day          date        PRIMARY KEY,
    score        double precision CHECK (score IS NULL OR score BETWEEN 0 AND 100),
    assessed_weight int      NOT NULL CHECK (assessed_weight BETWEEN 0 AND 100),
    parts        jsonb       NOT NULL,
    taken_at     timestamptz NOT NULL DEFAULT now()
);
