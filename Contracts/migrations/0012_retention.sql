-- 0012_retention: versioned retention policies, legal holds, sweeps and the ledger of archive
-- batches that lets a sweep resume after a crash without deleting anything not archived or
-- archiving anything twice.

ALTER TABLE retention_policies
    ADD COLUMN action     text        NOT NULL DEFAULT 'archive_then_delete'
                          CHECK (action IN ('archive_then_delete', 'delete', 'anonymize', 'crypto_erase')),
    ADD COLUMN version    int         NOT NULL DEFAULT 1 CHECK (version > 0),
    ADD COLUMN updated_by text        NOT NULL DEFAULT 'migration',
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- Card tokens that no payment references any more are kept 90 days after they were created.
INSERT INTO retention_policies (data_type, retention, compliance_standard, legal_basis) VALUES
    ('card_token', interval '90 days', 'PCI DSS', 'PCI DSS 3.2.1: account data kept only as long as needed; tokens no payment references');

-- Every version of every policy, the current one included.
CREATE TABLE retention_policy_history (
    data_type           text        NOT NULL REFERENCES retention_policies (data_type),
    version             int         NOT NULL,
    retention           interval    NOT NULL,
    compliance_standard text        NOT NULL,
    legal_basis         text        NOT NULL,
    action              text        NOT NULL,
    changed_by          text        NOT NULL,
    changed_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (data_type, version)
);
INSERT INTO retention_policy_history (data_type, version, retention, compliance_standard, legal_basis, action, changed_by)
SELECT data_type, version, retention, compliance_standard, legal_basis, action, updated_by FROM retention_policies;

-- A legal hold keeps rows from being archived away or deleted while it is not released: rows of
-- one subject (a user id), one record or payment (resource id), or one data type created in a
-- time range.
CREATE TABLE retention_legal_holds (
    id             uuid        PRIMARY KEY,
    scope          text        NOT NULL CHECK (scope IN ('subject', 'resource', 'data_type')),
    subject_id     text,
    resource_id    text,
    data_type      text        REFERENCES retention_policies (data_type),
    created_from   timestamptz,
    created_to     timestamptz,
    reason         text        NOT NULL,
    placed_by      text        NOT NULL,
    placed_at      timestamptz NOT NULL DEFAULT now(),
    released_at    timestamptz,
    released_by    text,
    release_reason text,
    CHECK ((scope = 'subject') = (subject_id IS NOT NULL)),
    CHECK ((scope = 'resource') = (resource_id IS NOT NULL)),
    CHECK (scope <> 'data_type' OR data_type IS NOT NULL)
);
CREATE INDEX retention_legal_holds_active ON retention_legal_holds (scope) WHERE released_at IS NULL;

-- A sweep: all policies or some, for real or counting only.
CREATE TABLE retention_sweeps (
    id           uuid        PRIMARY KEY,
    data_types   text[],
    dry_run      boolean     NOT NULL,
    requested_by text        NOT NULL,
    status       text        NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);
CREATE INDEX retention_sweeps_recent ON retention_sweeps (created_at DESC);

-- What a sweep did per data type.
CREATE TABLE retention_sweep_results (
    sweep_id    uuid        NOT NULL REFERENCES retention_sweeps (id),
    data_type   text        NOT NULL,
    action      text        NOT NULL,
    eligible    bigint      NOT NULL DEFAULT 0,
    held        bigint      NOT NULL DEFAULT 0,
    archived    bigint      NOT NULL DEFAULT 0,
    deleted     bigint      NOT NULL DEFAULT 0,
    bytes       bigint      NOT NULL DEFAULT 0,
    duration_ms bigint      NOT NULL DEFAULT 0,
    finished    boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (sweep_id, data_type)
);

-- One archive batch: the keys it claimed, then its file (written, synced, read back against its
-- digest), then the deletion. A key is in at most one unfinished batch, so a sweep that resumes
-- finishes the batches it left and archives nothing twice.
CREATE TABLE retention_archive_batches (
    id          uuid        PRIMARY KEY,
    sweep_id    uuid        NOT NULL REFERENCES retention_sweeps (id),
    data_type   text        NOT NULL,
    keys        text[]      NOT NULL,
    status      text        NOT NULL DEFAULT 'claimed' CHECK (status IN ('claimed', 'archived', 'deleted')),
    file        text,
    sha256      bytea,
    rows        int,
    bytes       bigint,
    key_from    text,
    key_to      text,
    deleted     int,
    created_at  timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz,
    deleted_at  timestamptz
);
CREATE INDEX retention_archive_batches_open ON retention_archive_batches (data_type) WHERE status <> 'deleted';
CREATE INDEX retention_archive_batches_sweep ON retention_archive_batches (sweep_id, data_type);
