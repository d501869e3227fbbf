-- 0007_alerts: alerts, their routing groups and notifications, every delivery and every attempt,
-- and silences.
--
-- An alert is identified by its fingerprint (its dedup_key, or a hash of its title and labels):
-- while one is firing, a repeat of it updates that row instead of making another. The routing
-- groups carry Alertmanager's timing (group_wait, group_interval, repeat_interval) in
-- `next_flush_at` and `last_notified_at`; a flush job sends what changed as one notification per
-- group, and each notification becomes one delivery per channel target of its receiver.

CREATE TABLE alerts (
    id               uuid        PRIMARY KEY,
    fingerprint      text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity         text        NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info')),
    title            text        NOT NULL,
    description      text        NOT NULL DEFAULT '',
    -- The labels routes, silences and inhibition rules match: the alert's own plus
    -- `alertname` (its title), `severity` and `source`.
    labels           jsonb       NOT NULL,
    source           text        NOT NULL,
    dedup_key        text,
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz,
    received_count   int         NOT NULL DEFAULT 1,
    last_received_at timestamptz NOT NULL,
    -- Why it was not routed when it arrived, if it was not.
    suppressed_by    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alerts_one_firing_per_fingerprint ON alerts (fingerprint) WHERE status = 'firing';
CREATE INDEX alerts_recent ON alerts (created_at DESC, id DESC);
CREATE INDEX alerts_firing_labels ON alerts USING gin (labels) WHERE status = 'firing';

-- Every alert received (by the gateway or from another worker), and what became of it.
CREATE TABLE alert_events (
    id          uuid        PRIMARY KEY,
    alert_id    uuid        REFERENCES alerts (id),
    status      text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    outcome     text        NOT NULL CHECK (outcome IN ('new', 'deduplicated', 'resolved', 'not_firing')),
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_events_alert ON alert_events (alert_id);

-- Silences mute the alerts their matchers all match between starts_at and ends_at.
CREATE TABLE alert_silences (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    matchers   jsonb       NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL CHECK (ends_at > starts_at),
    comment    text        NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expired_at timestamptz
);
CREATE INDEX alert_silences_active ON alert_silences (ends_at);

-- A routing group: the alerts one route sends together to one receiver.
CREATE TABLE alert_groups (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    route            text        NOT NULL,
    group_key        text        NOT NULL,
    receiver         text        NOT NULL,
    group_labels     jsonb       NOT NULL,
    next_flush_at    timestamptz,
    last_notified_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (route, group_key)
);

-- The alerts of a group, and what its receiver was last told about each.
CREATE TABLE alert_group_members (
    group_id        uuid NOT NULL REFERENCES alert_groups (id) ON DELETE CASCADE,
    alert_id        uuid NOT NULL REFERENCES alerts (id),
    notified_status text CHECK (notified_status IN ('firing', 'resolved')),
    PRIMARY KEY (group_id, alert_id)
);
CREATE INDEX alert_group_members_alert ON alert_group_members (alert_id);

-- One delivery per notification and channel target; a fallback delivery names the one it replaces.
CREATE TABLE alert_deliveries (
    id           uuid        PRIMARY KEY,
    group_id     uuid        NOT NULL,
    alert_ids    uuid[]      NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('firing', 'resolved')),
    receiver     text        NOT NULL,
    target       text        NOT NULL,
    channel      text        NOT NULL CHECK (channel IN ('email', 'sms', 'slack', 'discord', 'teams', 'webhook', 'pagerduty', 'opsgenie', 'telegram')),
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     int         NOT NULL DEFAULT 0,
    last_error   text,
    provider_id  text,
    fallback_of  uuid        REFERENCES alert_deliveries (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX alert_deliveries_alerts ON alert_deliveries USING gin (alert_ids);
CREATE INDEX alert_deliveries_pending ON alert_deliveries (channel, created_at) WHERE status = 'pending';

-- Every attempt at a delivery, written as it ends (also when the job is retried later).
CREATE TABLE alert_delivery_attempts (
    delivery_id uuid        NOT NULL REFERENCES alert_deliveries (id),
    attempt     int         NOT NULL CHECK (attempt > 0),
    started_at  timestamptz NOT NULL,
    duration_ms double precision NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('delivered', 'throttled', 'retryable', 'permanent')),
    http_status int,
    error       text,
    PRIMARY KEY (delivery_id, attempt)
);

-- API keys may now hold the alert roles.
ALTER TABLE mingus_api_keys DROP CONSTRAINT mingus_api_keys_roles_check;
ALTER TABLE mingus_api_keys ADD CONSTRAINT mingus_api_keys_roles_check
    CHECK (roles <@ ARRAY['payments:write', 'payments:read', 'records:write', 'records:read', 'audit:read',
                          'alerts:write', 'alerts:read', 'admin']::text[]);
