-- 0017_privacy: GDPR. Processing purposes (data, not an enum), consent and cookie consent as
-- append-only ledgers whose latest entry per subject and purpose is the current state, versioned
-- privacy and cookie policies, data-subject requests with their deadlines and status history,
-- export archives (sealed chunks), erasure progress per data type, and the processing
-- restrictions an erasure leaves where a law requires the data to be kept.

-- What personal data is processed for; consent is asked per purpose.
CREATE TABLE privacy_purposes (
    purpose          text        PRIMARY KEY CHECK (purpose ~ '^[a-z][a-z0-9_]{1,63}$'),
    description      text        NOT NULL,
    -- Art. 6(1) basis of processing for this purpose: consent purposes need a given consent.
    legal_basis      text        NOT NULL DEFAULT 'consent'
                     CHECK (legal_basis IN ('consent', 'contract', 'legal_obligation', 'vital_interests', 'public_task', 'legitimate_interests')),
    data_categories  text[]      NOT NULL DEFAULT '{}',
    recipients       text[]      NOT NULL DEFAULT '{}',
    retention        text        NOT NULL DEFAULT 'until consent is withdrawn',
    created_at       timestamptz NOT NULL DEFAULT now()
);

INSERT INTO privacy_purposes (purpose, description, data_categories, recipients, retention) VALUES
    ('marketing_email', 'Marketing e-mails about products and offers', '{contact_info}', '{e-mail service provider}', 'until consent is withdrawn'),
    ('marketing_sms', 'Marketing text messages', '{contact_info}', '{SMS gateway provider}', 'until consent is withdrawn'),
    ('analytics', 'Usage analytics to improve the application', '{usage_data}', '{analytics processor}', '14 months'),
    ('personalisation', 'Personalised budgeting insights and recommendations', '{financial_records,usage_data}', '{}', 'until consent is withdrawn'),
    ('third_party_sharing', 'Sharing with partner financial institutions', '{contact_info,financial_records}', '{partner institutions}', 'until consent is withdrawn'),
    ('health_tracking', 'Tracking health-related expenses (special category data, Art. 9(2)(a))', '{health_data}', '{}', 'until consent is withdrawn');

-- Privacy and cookie policy texts: draft → published → retired. At most one published version
-- per kind. Publishing a material change makes consents given under older versions need renewal.
CREATE TABLE privacy_policies (
    kind         text        NOT NULL CHECK (kind IN ('privacy', 'cookie')),
    version      int         NOT NULL CHECK (version > 0),
    status       text        NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'retired')),
    title        text        NOT NULL,
    body         text        NOT NULL,
    material     boolean     NOT NULL DEFAULT false,
    summary      text        NOT NULL DEFAULT '',
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    retired_at   timestamptz,
    PRIMARY KEY (kind, version),
    CHECK ((status = 'draft') = (published_at IS NULL))
);
CREATE UNIQUE INDEX privacy_policies_published ON privacy_policies (kind) WHERE status = 'published';

-- Consent given or withdrawn, append-only: the latest row per (subject, purpose) is the state.
CREATE TABLE privacy_consent_events (
    id             bigserial   PRIMARY KEY,
    subject_id     text        NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 128),
    purpose        text        NOT NULL REFERENCES privacy_purposes (purpose),
    granted        boolean     NOT NULL,
    source         text        NOT NULL,
    policy_version int         NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_by    text        NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX privacy_consent_events_subject ON privacy_consent_events (subject_id, purpose, id DESC);
CREATE INDEX privacy_consent_events_purpose ON privacy_consent_events (purpose, subject_id, id DESC);

-- Cookie categories the banner offers; strictly necessary ones cannot be refused.
CREATE TABLE privacy_cookie_categories (
    category    text    PRIMARY KEY CHECK (category ~ '^[a-z][a-z_]{1,31}$'),
    title       text    NOT NULL,
    description text    NOT NULL,
    required    boolean NOT NULL DEFAULT false,
    position    int     NOT NULL
);
INSERT INTO privacy_cookie_categories (category, title, description, required, position) VALUES
    ('strictly_necessary', 'Strictly necessary', 'Sign-in, security and load balancing; the application does not work without them.', true, 1),
    ('functional', 'Functional', 'Remember your preferences such as language and currency.', false, 2),
    ('analytics', 'Analytics', 'Count visits and measure how the application is used.', false, 3),
    ('marketing', 'Marketing', 'Show offers relevant to you on other sites.', false, 4);

-- A visitor's cookie choices, append-only; the latest row per visitor is the state.
CREATE TABLE privacy_cookie_consents (
    id             bigserial   PRIMARY KEY,
    visitor_id     text        NOT NULL CHECK (length(visitor_id) BETWEEN 1 AND 128),
    subject_id     text,
    categories     text[]      NOT NULL,
    policy_version int         NOT NULL,
    source         text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_by    text        NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX privacy_cookie_consents_visitor ON privacy_cookie_consents (visitor_id, id DESC);
CREATE INDEX privacy_cookie_consents_subject ON privacy_cookie_consents (subject_id) WHERE subject_id IS NOT NULL;

-- The ledgers are append-only. An erasure (Art. 17) may only replace a subject's identifiers
-- with a pseudonym, inside a transaction that set mingus.privacy_erasure to the request's id.
CREATE FUNCTION privacy_ledger_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND coalesce(current_setting('mingus.privacy_erasure', true), '') <> '' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'consent records are append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER privacy_consent_events_append_only BEFORE UPDATE OR DELETE ON privacy_consent_events
    FOR EACH ROW EXECUTE FUNCTION privacy_ledger_guard();
CREATE TRIGGER privacy_cookie_consents_append_only BEFORE UPDATE OR DELETE ON privacy_cookie_consents
    FOR EACH ROW EXECUTE FUNCTION privacy_ledger_guard();

-- Data-subject requests (Art. 15-21). The deadline is one month from receipt (Art. 12(3)),
-- extendable once by two further months with a recorded reason.
CREATE TABLE privacy_requests (
    id                  uuid        PRIMARY KEY,
    subject_id          text        NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 128),
    type                text        NOT NULL CHECK (type IN ('access', 'portability', 'erasure', 'rectification', 'restriction', 'objection')),
    status              text        NOT NULL DEFAULT 'received'
                        CHECK (status IN ('received', 'verified', 'in_progress', 'completed', 'rejected')),
    -- What the subject asked, sealed under the subject's own key (crypto-erased with it).
    details_sealed      bytea,
    received_at         timestamptz NOT NULL,
    due_at              timestamptz NOT NULL,
    original_due_at     timestamptz NOT NULL,
    extended_at         timestamptz,
    extension_reason    text,
    verified_at         timestamptz,
    verification_method text,
    verified_by         text,
    completed_at        timestamptz,
    result              jsonb,
    requested_by        text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((extended_at IS NULL) = (extension_reason IS NULL)),
    CHECK (status IN ('received', 'rejected') OR verified_at IS NOT NULL)
);
CREATE INDEX privacy_requests_subject ON privacy_requests (subject_id, received_at);
CREATE INDEX privacy_requests_open ON privacy_requests (due_at) WHERE status NOT IN ('completed', 'rejected');
CREATE INDEX privacy_requests_recent ON privacy_requests (received_at DESC, id DESC);

CREATE TABLE privacy_request_history (
    id         bigserial   PRIMARY KEY,
    request_id uuid        NOT NULL REFERENCES privacy_requests (id),
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor      text        NOT NULL,
    status     text        NOT NULL,
    kind       text        NOT NULL,
    note       text        NOT NULL DEFAULT ''
);
CREATE INDEX privacy_request_history_request ON privacy_request_history (request_id, id);

-- Export archives: one ZIP per access or portability request, stored as AES-256-GCM sealed
-- chunks (data key purpose `privacy-export`), downloadable once before expires_at, then deleted.
CREATE TABLE privacy_exports (
    request_id    uuid        PRIMARY KEY REFERENCES privacy_requests (id),
    status        text        NOT NULL DEFAULT 'building' CHECK (status IN ('building', 'ready', 'downloaded', 'expired')),
    bytes         bigint      NOT NULL DEFAULT 0,
    chunks        int         NOT NULL DEFAULT 0,
    sha256        text,
    counts        jsonb       NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    ready_at      timestamptz,
    expires_at    timestamptz,
    downloaded_at timestamptz
);
CREATE TABLE privacy_export_chunks (
    request_id  uuid  NOT NULL REFERENCES privacy_exports (request_id),
    seq         int   NOT NULL,
    key_version int   NOT NULL,
    sealed      bytea NOT NULL,
    PRIMARY KEY (request_id, seq)
);

-- An erasure's progress and outcome per data type; a step done is never done again, so an
-- erasure job killed midway resumes where it stopped.
CREATE TABLE privacy_erasure_steps (
    request_id  uuid        NOT NULL REFERENCES privacy_requests (id),
    data_type   text        NOT NULL,
    action      text        NOT NULL CHECK (action IN ('deleted', 'anonymised', 'crypto_erased', 'restricted', 'none')),
    rows        bigint      NOT NULL DEFAULT 0,
    legal_basis text,
    done_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (request_id, data_type)
);

-- Data an erasure had to keep because a law requires it: processing is restricted (Art. 18,
-- Art. 17(3)(b)) and the legal basis recorded.
CREATE TABLE privacy_restrictions (
    subject_id  text        NOT NULL,
    data_type   text        NOT NULL,
    legal_basis text        NOT NULL,
    request_id  uuid        NOT NULL REFERENCES privacy_requests (id),
    restricted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_id, data_type)
);

-- A payment names its data subject in metadata.user_id; exports and erasures find them by it.
CREATE INDEX payment_data_subject ON payment_data ((metadata->>'user_id'), transaction_id) WHERE metadata ? 'user_id';
-- Audit events about a subject's financial records carry details.user_id.
CREATE INDEX audit_events_user ON audit_events ((details->>'user_id')) WHERE details ? 'user_id';
-- Alerts naming a subject in their labels.
CREATE INDEX alerts_labels ON alerts USING gin (labels jsonb_path_ops);
