-- 0018_hipaa: health information under the HIPAA Security and Privacy Rules.
--
-- health_records hold a subject's health expenses and tracking entries; every field but the
-- subject, the kind and when it was recorded is sealed (AES-256-GCM) under the subject's own key
-- (mingus_subject_keys), so a GDPR erasure that destroys the key erases them everywhere, archives
-- included. Reads, writes, exports and disclosures are audit events (component `hipaa`, resource
-- `hipaa/subjects/<subject>`), which the accounting of disclosures (164.528) and the violation
-- rules read.

CREATE TABLE health_records (
    id          uuid        PRIMARY KEY,
    subject_id  text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('expense', 'tracking')),
    -- The record's fields as JSON, sealed under the subject's key with context `health_records/<id>`.
    sealed      bytea       NOT NULL,
    recorded_by text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX health_records_subject ON health_records (subject_id, recorded_at, id);
CREATE INDEX health_records_recorded_at ON health_records (recorded_at);

-- Who has a treatment or billing relationship with a subject: reads without one are findings.
CREATE TABLE health_relationships (
    subject_id   text        NOT NULL,
    actor        text        NOT NULL,
    relationship text        NOT NULL CHECK (relationship IN ('care', 'billing')),
    recorded_by  text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_id, actor)
);

-- Break-glass (emergency) access: one actor, one subject, a reason, until it expires.
CREATE TABLE health_break_glass (
    id          uuid        PRIMARY KEY,
    actor       text        NOT NULL,
    subject_id  text        NOT NULL,
    reason      text        NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    uses        int         NOT NULL DEFAULT 0,
    reviewed_at timestamptz,
    reviewed_by text,
    review_note text,
    CHECK (expires_at > granted_at)
);
CREATE INDEX health_break_glass_active ON health_break_glass (actor, subject_id, expires_at);

-- Findings of the violation rules over the access log, each with its four-factor risk
-- assessment (164.402(2)); one per rule, actor and window, so a scan run again adds nothing.
CREATE TABLE health_violations (
    id             uuid        PRIMARY KEY,
    rule           text        NOT NULL CHECK (rule IN ('no_basis', 'bulk_read', 'break_glass', 'revoked_key', 'after_hours')),
    actor          text        NOT NULL,
    window_start   timestamptz NOT NULL,
    window_end     timestamptz NOT NULL,
    events         int         NOT NULL,
    records        int         NOT NULL,
    subjects       text[]      NOT NULL,
    summary        text        NOT NULL,
    risk           jsonb       NOT NULL,
    risk_level     text        NOT NULL CHECK (risk_level IN ('low', 'medium', 'high')),
    is_breach      boolean     NOT NULL,
    breach_id      uuid,
    status         text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'reviewed')),
    detected_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (rule, actor, window_start)
);
CREATE INDEX health_violations_detected ON health_violations (detected_at DESC);

-- How far the violation rules have read the access log.
CREATE TABLE health_scan_state (
    id         int         PRIMARY KEY CHECK (id = 1),
    scanned_to timestamptz NOT NULL
);
INSERT INTO health_scan_state (id, scanned_to) VALUES (1, now() - interval '1 day');

-- Health records are kept six years (164.316(b)(2)), then archived and deleted by the sweep.
INSERT INTO retention_policies (data_type, retention, compliance_standard, legal_basis) VALUES
    ('health_record', interval '6 years', 'HIPAA', '45 CFR 164.316(b)(2): six years from creation');
INSERT INTO retention_policy_history (data_type, version, retention, compliance_standard, legal_basis, action, changed_by)
SELECT data_type, version, retention, compliance_standard, legal_basis, action, updated_by FROM retention_policies WHERE data_type = 'health_record';

INSERT INTO privacy_purposes (purpose, description, legal_basis, data_categories, recipients, retention) VALUES
    ('health_expenses', 'Recording health expenses the subject pays through the application', 'contract', '{health_data,financial_records}', '{}', 'six years (HIPAA 164.316(b)(2))')
ON CONFLICT (purpose) DO NOTHING;
