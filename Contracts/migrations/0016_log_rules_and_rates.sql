-- 0016_log_rules_and_rates: template ids shared by every logs worker, security rules over log
-- lines, and each template's rate against its recent baseline.

-- One live template per text: a worker that finds a template another worker saved first takes
-- that one's id. (md5 keeps the index entries small for long templates.)
UPDATE log_templates t SET merged_into = d.keep
FROM (SELECT id, min(id) OVER (PARTITION BY template) AS keep FROM log_templates WHERE merged_into IS NULL) d
WHERE t.id = d.id AND d.id <> d.keep;
CREATE UNIQUE INDEX log_templates_text ON log_templates (md5(template)) WHERE merged_into IS NULL;
-- A template saved after the warm-up that no stored anomaly announced yet.
ALTER TABLE log_templates ADD COLUMN announce boolean NOT NULL DEFAULT false;

-- Lines that matched a security rule, per rule, service, source and minute; a rule fires when
-- its window's sum reaches the rule's threshold.
CREATE TABLE log_rule_minutes (
    rule    text        NOT NULL,
    service text        NOT NULL,
    source  text        NOT NULL,
    minute  timestamptz NOT NULL,
    lines   bigint      NOT NULL,
    PRIMARY KEY (rule, service, source, minute)
);
CREATE INDEX log_rule_minutes_minute ON log_rule_minutes (minute);

-- Each template's per-minute rate per service as an exponentially weighted mean and variance,
-- brought forward one closed minute at a time by `logs.rates`.
CREATE TABLE log_template_rates (
    template_id bigint           NOT NULL,
    service     text             NOT NULL,
    mean        double precision NOT NULL,
    variance    double precision NOT NULL,
    minutes     int              NOT NULL,
    last_minute timestamptz      NOT NULL,
    PRIMARY KEY (template_id, service)
);

-- The last minute `logs.rates` evaluated (one row).
CREATE TABLE log_rate_cursor (
    only_row boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    minute   timestamptz NOT NULL
);

ALTER TABLE log_anomalies DROP CONSTRAINT log_anomalies_kind_check;
ALTER TABLE log_anomalies ADD CONSTRAINT log_anomalies_kind_check
    CHECK (kind IN ('new_template', 'error_burst', 'card_number', 'template_rate', 'security_rule'));
-- A security rule's name and the source it counted (an address, a user), when it has one.
ALTER TABLE log_anomalies ADD COLUMN rule text, ADD COLUMN source text;
ALTER TABLE log_anomalies DROP CONSTRAINT log_anomalies_kind_service_minute_template_id_key;
ALTER TABLE log_anomalies ADD CONSTRAINT log_anomalies_once
    UNIQUE NULLS NOT DISTINCT (kind, service, minute, template_id, rule, source);
