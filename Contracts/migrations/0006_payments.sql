-- 0006_payments: the token vault, card payments, financial records and their retention policies,
-- and the gateway's idempotency keys.
--
-- Card numbers are stored only as AES-256-GCM ciphertext under a versioned `pan` data key (the
-- row's token is the authenticated context), as a keyed HMAC fingerprint under a versioned
-- `fingerprint` key, and as a masked form with the last four digits (PCI DSS 3.4.1, 3.5.1,
-- 3.5.1.1). CVVs are never stored (3.3.1). Amounts are integer minor units.

-- What each kind of financial record must be kept for, and under which rule.
CREATE TABLE retention_policies (
    data_type           text     PRIMARY KEY,
    retention           interval NOT NULL CHECK (retention > interval '0'),
    compliance_standard text     NOT NULL,
    legal_basis         text     NOT NULL
);

INSERT INTO retention_policies (data_type, retention, compliance_standard, legal_basis) VALUES
    ('payment',         interval '7 years', 'SOX',   'SEC 17 CFR 210.2-06: records relevant to audits and reviews, 7 years'),
    ('transaction',     interval '7 years', 'SOX',   'SEC 17 CFR 210.2-06: records relevant to audits and reviews, 7 years'),
    ('statement',       interval '7 years', 'SOX',   'SEC 17 CFR 210.2-06: records relevant to audits and reviews, 7 years'),
    ('tax_document',    interval '7 years', 'SOX',   'SEC 17 CFR 210.2-06: records relevant to audits and reviews, 7 years'),
    ('loan',            interval '7 years', 'SOX',   'SEC 17 CFR 210.2-06: records relevant to audits and reviews, 7 years'),
    ('investment',      interval '7 years', 'SOX',   'SEC 17 CFR 210.2-06: records relevant to audits and reviews, 7 years'),
    ('account_profile', interval '2 years', 'GLBA',  'GLBA Safeguards Rule 314.4(c)(6): dispose within 2 years of last use'),
    ('health_expense',  interval '6 years', 'HIPAA', 'HIPAA 164.316(b)(2): documentation kept 6 years');

-- The token vault: one row per distinct card.
CREATE TABLE card_tokens (
    token               text        PRIMARY KEY CHECK (token ~ '^tok_[0-9a-f]{32}$'),
    fingerprint         bytea       NOT NULL,
    fingerprint_version int         NOT NULL CHECK (fingerprint_version > 0),
    pan_ciphertext      bytea       NOT NULL,
    pan_key_version     int         NOT NULL CHECK (pan_key_version > 0),
    card_brand          text        NOT NULL CHECK (card_brand IN ('visa', 'mastercard', 'amex', 'discover', 'jcb', 'diners', 'unionpay')),
    masked_pan          text        NOT NULL CHECK (masked_pan ~ '^\*+[0-9]{4}$'),
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (fingerprint_version, fingerprint)
);
CREATE INDEX card_tokens_pan_key_version ON card_tokens (pan_key_version);

-- Card payments. The gateway writes the pending row; the payments worker decides it.
CREATE TABLE payment_data (
    transaction_id     uuid        PRIMARY KEY,
    merchant_id        text        NOT NULL,
    status             text        NOT NULL CHECK (status IN ('pending', 'authorized', 'declined', 'failed')),
    amount             bigint      NOT NULL CHECK (amount > 0),
    currency           char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    card_token         text        REFERENCES card_tokens (token),
    card_brand         text,
    masked_pan         text        CHECK (masked_pan ~ '^\*+[0-9]{4}$'),
    expiry_month       smallint    CHECK (expiry_month BETWEEN 1 AND 12),
    expiry_year        smallint    CHECK (expiry_year BETWEEN 2000 AND 2099),
    authorization_code text,
    decline_code       text,
    failure_reason     text,
    processor          text,
    metadata           jsonb       NOT NULL DEFAULT '{}',
    callback_url       text,
    requested_by       text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    authorized_at      timestamptz,
    retention_until    timestamptz
);
CREATE INDEX payment_data_merchant ON payment_data (merchant_id, created_at);
CREATE INDEX payment_data_retention ON payment_data (retention_until);

-- Financial records, contents encrypted at rest under a versioned `records` data key (the
-- record id is the authenticated context).
CREATE TABLE financial_records (
    record_id           uuid        PRIMARY KEY,
    user_id             text        NOT NULL,
    record_type         text        NOT NULL REFERENCES retention_policies (data_type),
    classification      text        NOT NULL CHECK (classification IN
                                        ('public', 'internal', 'confidential', 'restricted', 'highly_restricted')),
    compliance_standard text        NOT NULL,
    content_ciphertext  bytea       NOT NULL,
    content_key_version int         NOT NULL CHECK (content_key_version > 0),
    requested_by        text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    retention_until     timestamptz NOT NULL,
    legal_hold          boolean     NOT NULL DEFAULT false
);
CREATE INDEX financial_records_user ON financial_records (user_id, created_at, record_id);
CREATE INDEX financial_records_key_version ON financial_records (content_key_version);
CREATE INDEX financial_records_retention ON financial_records (retention_until);

-- Idempotency keys of POST requests, per API key, kept 24 hours. A row without a response belongs
-- to a request being handled until locked_until; after that (the gateway died, or the broker
-- refused the job) a retry with the same key takes it over and reuses resource_id, so the job
-- keeps its id and the worker's inbox applies it at most once.
CREATE TABLE gateway_idempotency_keys (
    api_key_id      text        NOT NULL,
    idempotency_key text        NOT NULL,
    request_hash    bytea       NOT NULL,
    resource_id     uuid        NOT NULL,
    response_status int,
    response_body   bytea,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (api_key_id, idempotency_key)
);
CREATE INDEX gateway_idempotency_keys_expiry ON gateway_idempotency_keys (expires_at);
