-- 0004_data_keys: versioned data keys, stored only wrapped (AES-256-GCM) by the key-encrypting
-- key, which lives in a file outside the database (MINGUS_FINANCIAL_KEY_PATH).
--
-- purpose: what a key protects (pan, records, transit, fingerprint). The newest version of a
-- purpose encrypts; every version still decrypts, so old ciphertext stays readable after a
-- rotation until a rewrap moves it. retired_at marks versions no longer allowed to decrypt.

CREATE TABLE mingus_data_keys (
    purpose    text        NOT NULL CHECK (purpose IN ('pan', 'records', 'transit', 'fingerprint')),
    version    int         NOT NULL CHECK (version > 0),
    wrapped    bytea       NOT NULL,
    kek_id     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz,
    PRIMARY KEY (purpose, version)
);
