-- 0019_security: security monitoring. Detections (from the logs worker and other domains),
-- incidents with their NIST SP 800-61 lifecycle, timeline and playbook steps, the gateway's deny
-- list of client addresses, DigitalOcean droplets with their metric samples and rule states, and
-- the processes' heartbeats that the status view reads.

-- Incidents: one per ongoing attack (one open incident per dedup key).
CREATE TABLE security_incidents (
    id               uuid        PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{1,63}$'),
    dedup_key        text        NOT NULL CHECK (length(dedup_key) BETWEEN 1 AND 512),
    title            text        NOT NULL,
    summary          text        NOT NULL DEFAULT '',
    severity         text        NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status           text        NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'triaged', 'contained', 'eradicated', 'recovered', 'closed')),
    assignee         text,
    -- The client address the detections name, when they name one.
    source_address   text,
    -- The API key (id or name) the detections name, when they name one.
    api_key          text,
    service          text,
    playbook         text,
    detections       bigint      NOT NULL DEFAULT 0,
    opened_by        text        NOT NULL,
    opened_at        timestamptz NOT NULL DEFAULT now(),
    last_detected_at timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    contained_at     timestamptz,
    closed_at        timestamptz,
    -- Escalations already sent for a missed target ('acknowledge', 'contain').
    escalated        text[]      NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX security_incidents_ongoing ON security_incidents (dedup_key) WHERE status <> 'closed';
CREATE INDEX security_incidents_recent ON security_incidents (opened_at DESC, id DESC);
CREATE INDEX security_incidents_unfinished ON security_incidents (status, opened_at) WHERE status IN ('open', 'triaged');

-- Every change and action of an incident, in order.
CREATE TABLE security_incident_events (
    id          bigserial   PRIMARY KEY,
    incident_id uuid        NOT NULL REFERENCES security_incidents (id),
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('opened', 'detection', 'status', 'assigned', 'severity', 'action', 'approval',
                                                      'escalation', 'note')),
    detail      text        NOT NULL
);
CREATE INDEX security_incident_events_by_incident ON security_incident_events (incident_id, id);

-- The playbook steps of an incident, copied from its playbook when it opened.
CREATE TABLE security_incident_steps (
    incident_id       uuid        NOT NULL REFERENCES security_incidents (id),
    position          int         NOT NULL CHECK (position >= 1),
    name              text        NOT NULL,
    action            text        NOT NULL CHECK (action IN ('manual', 'block_address', 'revoke_api_key', 'rotate_data_keys',
                                                             'page_oncall', 'open_breach')),
    requires_approval boolean     NOT NULL DEFAULT false,
    status            text        NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'awaiting_approval', 'approved', 'done', 'failed', 'skipped')),
    approved_by       text,
    approved_at       timestamptz,
    done_at           timestamptz,
    result            text,
    parameters        jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (incident_id, position)
);

-- Every detection taken, by kind, and the incident it went to.
CREATE TABLE security_detections (
    id          text        PRIMARY KEY,
    kind        text        NOT NULL,
    severity    text        NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    dedup_key   text        NOT NULL,
    incident_id uuid        REFERENCES security_incidents (id),
    detected_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX security_detections_recent ON security_detections (received_at DESC);

-- Client addresses every gateway process refuses (403) until `expires_at` (a platform table:
-- the gateway reads it, the security worker's playbooks and operators write it).
CREATE TABLE gateway_blocked_addresses (
    address     inet        PRIMARY KEY,
    reason      text        NOT NULL,
    incident_id uuid        REFERENCES security_incidents (id),
    blocked_by  text        NOT NULL,
    blocked_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz
);

-- Droplets as the last poll listed them.
CREATE TABLE do_droplets (
    id            bigint      PRIMARY KEY,
    name          text        NOT NULL,
    status        text        NOT NULL,
    region        text,
    tags          text[]      NOT NULL DEFAULT '{}',
    listed_at     timestamptz NOT NULL,
    -- The newest sample of any metric.
    last_sample_at timestamptz
);

-- Metric samples, one row per droplet, metric and time (metric: a small code, see DropletMetric).
CREATE TABLE do_samples (
    droplet_id bigint      NOT NULL,
    metric     smallint    NOT NULL,
    at         timestamptz NOT NULL,
    value      real        NOT NULL,
    PRIMARY KEY (droplet_id, metric, at)
);
CREATE INDEX do_samples_by_time ON do_samples (at);

-- The firing rules of droplets: a row while a rule's condition holds.
CREATE TABLE do_rule_states (
    rule       text        NOT NULL,
    droplet_id bigint      NOT NULL,
    since      timestamptz NOT NULL DEFAULT now(),
    alert_id   uuid        NOT NULL,
    summary    text        NOT NULL,
    PRIMARY KEY (rule, droplet_id)
);

-- How the DigitalOcean polling went, one row per poller.
CREATE TABLE do_poll_health (
    name             text        PRIMARY KEY,
    last_run_at      timestamptz,
    last_success_at  timestamptz,
    last_error       text,
    last_error_at    timestamptz,
    droplets         int         NOT NULL DEFAULT 0,
    samples          int         NOT NULL DEFAULT 0,
    duration_ms      bigint      NOT NULL DEFAULT 0
);

-- Each running process's heartbeat: kind, instance, readiness, last seen.
CREATE TABLE mingus_processes (
    instance    text        PRIMARY KEY,
    kind        text        NOT NULL,
    host        text        NOT NULL,
    pid         int         NOT NULL,
    started_at  timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    ready       boolean     NOT NULL,
    problems    text[]      NOT NULL DEFAULT '{}',
    stopped_at  timestamptz
);

-- Droplet samples are kept 30 days by default.
INSERT INTO retention_policies (data_type, retention, compliance_standard, legal_basis, action) VALUES
    ('droplet_sample', interval '30 days', 'Operations', 'Infrastructure metrics for monitoring and investigations', 'delete');
INSERT INTO retention_policy_history (data_type, version, retention, compliance_standard, legal_basis, action, changed_by)
SELECT data_type, version, retention, compliance_standard, legal_basis, action, updated_by FROM retention_policies
WHERE data_type = 'droplet_sample';
