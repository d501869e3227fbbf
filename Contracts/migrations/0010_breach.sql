-- 0010_breach: data breaches, what is known about them, their timeline, the notification
-- obligations the deadline engine derives from the rules (Contracts/breach-rules.yaml), and the
-- evidence that each obligation was met.
--
-- A breach is written by the breach worker from the gateway's `breach.report` job; its facts
-- change through `breach.update` jobs, each of which reassesses the obligations in the same
-- transaction. Status changes are the gateway's, under a row lock. Every change leaves a
-- timeline row naming who made it and why.

CREATE TABLE breaches (
    id                       uuid        PRIMARY KEY,
    title                    text        NOT NULL,
    description              text        NOT NULL DEFAULT '',
    severity                 text        NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status                   text        NOT NULL DEFAULT 'detected'
                             CHECK (status IN ('detected', 'investigating', 'contained', 'resolved', 'closed', 'false_positive')),
    discovered_at            timestamptz NOT NULL,
    aware_at                 timestamptz NOT NULL,
    data_categories          text[]      NOT NULL,
    data_encrypted           boolean     NOT NULL,
    key_compromised          boolean     NOT NULL DEFAULT false,
    records_affected         bigint      NOT NULL CHECK (records_affected >= 0),
    persons_affected         bigint      NOT NULL CHECK (persons_affected >= 0),
    -- Country codes (ISO 3166-1 alpha-2) and US states (US-XX).
    jurisdictions            text[]      NOT NULL,
    -- Persons affected per jurisdiction where known ({"US-TX": 300}); a jurisdiction missing
    -- here is assessed as if every affected person lived there.
    persons_by_jurisdiction  jsonb       NOT NULL DEFAULT '{}',
    entity_roles             text[]      NOT NULL,
    reported_by              text        NOT NULL,
    -- When the gateway accepted the report, and when the worker first stored its obligations.
    reported_at              timestamptz NOT NULL,
    assessed_at              timestamptz,
    -- The rule set version of the latest assessment.
    rules_version            text,
    status_changed_at        timestamptz NOT NULL DEFAULT now(),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX breaches_recent ON breaches (reported_at DESC, id DESC);
CREATE INDEX breaches_status ON breaches (status, reported_at DESC);

-- Events that start clocks (materiality determined, PHI discovered, ...) with their own times.
-- A fact recorded again with a new time replaces the old one (the timeline keeps both).
CREATE TABLE breach_facts (
    breach_id   uuid        NOT NULL REFERENCES breaches (id),
    fact        text        NOT NULL CHECK (fact ~ '^[a-z][a-z0-9_]{1,63}$'),
    occurred_at timestamptz NOT NULL,
    recorded_by text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (breach_id, fact)
);

-- Everything that happened to a breach, in order.
CREATE TABLE breach_timeline (
    id        bigserial   PRIMARY KEY,
    breach_id uuid        NOT NULL REFERENCES breaches (id),
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor     text        NOT NULL,
    kind      text        NOT NULL,
    message   text        NOT NULL,
    details   jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX breach_timeline_breach ON breach_timeline (breach_id, id);

-- One duty to notify someone by a deadline, derived from one regime of the rules.
--
-- `deadline` is NULL while the event that starts the clock has not happened (an SEC filing waits
-- for the materiality determination) or when the rule sets none ("without undue delay", which
-- has `target` instead). A deadline is communicated once a reminder about it fired or evidence
-- was recorded; reassessment never moves a communicated deadline: it supersedes the obligation
-- with a new one and says why.
CREATE TABLE breach_obligations (
    id               uuid        PRIMARY KEY,
    breach_id        uuid        NOT NULL REFERENCES breaches (id),
    regime           text        NOT NULL,
    regime_name      text        NOT NULL,
    notify           text        NOT NULL,
    rules_version    text        NOT NULL,
    reason           text        NOT NULL,
    clock            text        NOT NULL,
    clock_started_at timestamptz,
    deadline         timestamptz,
    -- For obligations without a hard deadline: when it should be done by.
    target           timestamptz,
    period           text        NOT NULL,
    status           text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'met', 'superseded', 'withdrawn')),
    communicated     boolean     NOT NULL DEFAULT false,
    superseded_by    uuid        REFERENCES breach_obligations (id),
    met_at           timestamptz,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- At most one live obligation per regime and breach.
CREATE UNIQUE INDEX breach_obligations_live ON breach_obligations (breach_id, regime) WHERE status IN ('open', 'met');
CREATE INDEX breach_obligations_due ON breach_obligations (deadline) WHERE status = 'open';

-- Proof that an obligation was met: what was sent, to whom, when, and a reference.
CREATE TABLE breach_evidence (
    id            uuid        PRIMARY KEY,
    obligation_id uuid        NOT NULL REFERENCES breach_obligations (id),
    breach_id     uuid        NOT NULL REFERENCES breaches (id),
    what          text        NOT NULL,
    sent_to       text        NOT NULL,
    sent_at       timestamptz NOT NULL,
    reference     text        NOT NULL DEFAULT '',
    recorded_by   text        NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX breach_evidence_obligation ON breach_evidence (obligation_id);

-- Data key purposes are declared by the domains (DomainDescription.keyPurposes); the column
-- checks their shape instead of a list every new domain would have to extend.
ALTER TABLE mingus_data_keys DROP CONSTRAINT mingus_data_keys_purpose_check;
ALTER TABLE mingus_data_keys ADD CONSTRAINT mingus_data_keys_purpose_check CHECK (purpose ~ '^[a-z][a-z0-9-]{1,31}$');

-- API key roles likewise: the domains declare them and `mingusctl apikey create` checks names
-- against that list; the column checks their shape (`admin`, `<domain>:<verb>`).
ALTER TABLE mingus_api_keys DROP CONSTRAINT mingus_api_keys_roles_check;
ALTER TABLE mingus_api_keys ADD CONSTRAINT mingus_api_keys_roles_check
    CHECK (array_to_string(roles, ',') ~ '^([a-z]+(:[a-z]+)?(,[a-z]+(:[a-z]+)?)*)?$');
