-- 0013_retention_history: retention of the audit trail, of alert history and of idempotency keys.
--
-- The audit trail stays verifiable when its oldest events go: a stream is cut only at an entry a
-- signed checkpoint names. audit_stream_bases records, per stream, the entry the remaining chain
-- starts after (its seq and hash) and the checkpoint that vouches for it; `mingusctl audit verify`
-- checks that checkpoint's signature and the remaining chain from there. Events at or below a
-- stream's base (already archived) are the only ones DELETE accepts; every other change is still
-- refused. A base only moves forward.

CREATE TABLE audit_stream_bases (
    stream        text        PRIMARY KEY REFERENCES audit_streams (stream),
    base_seq      bigint      NOT NULL CHECK (base_seq > 0),
    base_hash     bytea       NOT NULL,
    checkpoint_id bigint      NOT NULL REFERENCES audit_checkpoints (id),
    moved_at      timestamptz NOT NULL DEFAULT now()
);

-- Moves a stream's base to entry p_seq, which checkpoint p_checkpoint must name with the entry's
-- hash. Returns false (and changes nothing) when the base is already there or beyond.
CREATE FUNCTION mingus_audit_rebase(p_stream text, p_seq bigint, p_checkpoint bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_hash bytea;
    v_base bigint;
BEGIN
    SELECT hash INTO v_hash FROM audit_events WHERE stream = p_stream AND seq = p_seq;
    IF v_hash IS NULL THEN
        RAISE EXCEPTION 'audit stream % has no entry %', p_stream, p_seq;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM audit_checkpoints c, regexp_split_to_table(c.heads, E'\n') AS line
                   WHERE c.id = p_checkpoint AND line = p_stream || ' ' || p_seq || ' ' || encode(v_hash, 'hex')) THEN
        RAISE EXCEPTION 'checkpoint % does not name entry % of audit stream %', p_checkpoint, p_seq, p_stream;
    END IF;
    SELECT base_seq INTO v_base FROM audit_stream_bases WHERE stream = p_stream FOR UPDATE;
    IF v_base >= p_seq THEN
        RETURN false;
    END IF;
    INSERT INTO audit_stream_bases (stream, base_seq, base_hash, checkpoint_id) VALUES (p_stream, p_seq, v_hash, p_checkpoint)
    ON CONFLICT (stream) DO UPDATE SET base_seq = EXCLUDED.base_seq, base_hash = EXCLUDED.base_hash,
                                       checkpoint_id = EXCLUDED.checkpoint_id, moved_at = now();
    RETURN true;
END
$$;

-- Events: UPDATE refused; DELETE only at or below the stream's base.
CREATE FUNCTION mingus_audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq <= (SELECT base_seq FROM audit_stream_bases WHERE stream = OLD.stream) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER audit_events_append_only ON audit_events;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION mingus_audit_events_guard();

CREATE TRIGGER audit_stream_bases_no_delete BEFORE DELETE ON audit_stream_bases
    FOR EACH ROW EXECUTE FUNCTION mingus_audit_refuse_change();
CREATE TRIGGER audit_stream_bases_no_truncate BEFORE TRUNCATE ON audit_stream_bases
    FOR EACH STATEMENT EXECUTE FUNCTION mingus_audit_refuse_change();

-- The policies of the new data types. The audit trail is kept as long as the records it documents
-- (SOX); alert history and delivery records one year; idempotency keys are only deleted.
INSERT INTO retention_policies (data_type, retention, compliance_standard, legal_basis, action) VALUES
    ('audit_event',     interval '7 years', 'SOX',        'SEC 17 CFR 210.2-06 and PCI DSS 10.5.1: audit trail kept as long as the records it documents, at least 12 months', 'archive_then_delete'),
    ('alert',           interval '1 year',  'Operations', 'Alert history for incident review; no legal minimum',                'archive_then_delete'),
    ('alert_delivery',  interval '1 year',  'Operations', 'Delivery records and attempts for incident review; no legal minimum', 'archive_then_delete'),
    ('idempotency_key', interval '1 day',   'Operations', 'Idempotency keys answer retries for 24 hours, then serve no purpose',  'delete');
INSERT INTO retention_policy_history (data_type, version, retention, compliance_standard, legal_basis, action, changed_by)
SELECT data_type, version, retention, compliance_standard, legal_basis, action, updated_by FROM retention_policies
WHERE data_type IN ('audit_event', 'alert', 'alert_delivery', 'idempotency_key');

CREATE INDEX alert_deliveries_fallback_of ON alert_deliveries (fallback_of) WHERE fallback_of IS NOT NULL;
CREATE INDEX alert_deliveries_created ON alert_deliveries (created_at);
CREATE INDEX alerts_resolved_ends ON alerts (ends_at) WHERE status = 'resolved';

-- A cut of one audit stream by a sweep: events after the stream's base up to seq (named by
-- checkpoint_id) are claimed in archive batches, archived, then the base moves to seq ('rebased'),
-- then the batches' events are deleted ('deleted'). A sweep that dies resumes its open cut.
CREATE TABLE retention_audit_cuts (
    stream        text        NOT NULL,
    seq           bigint      NOT NULL,
    checkpoint_id bigint      NOT NULL REFERENCES audit_checkpoints (id),
    sweep_id      uuid        NOT NULL REFERENCES retention_sweeps (id),
    status        text        NOT NULL DEFAULT 'claimed' CHECK (status IN ('claimed', 'rebased', 'deleted')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, seq)
);
CREATE INDEX retention_audit_cuts_open ON retention_audit_cuts (stream) WHERE status <> 'deleted';
ALTER TABLE retention_archive_batches ADD COLUMN cut_stream text, ADD COLUMN cut_seq bigint;
