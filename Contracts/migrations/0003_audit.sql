-- 0003_audit: the tamper-evident audit trail shared by every process.
--
-- Events are appended to streams; each stream is a hash chain: an event's hash is
-- sha256(previous hash || canonical text of the event), the first event's previous hash 32 zero
-- bytes. Writers of different streams never wait on each other (a writer locks only its stream's
-- head row), so there is no lock every worker must take. audit_streams keeps each stream's head;
-- audit_checkpoints holds Ed25519-signed snapshots of every head, made by `mingusctl audit
-- checkpoint`, which reveal a chain cut back or rewritten as a whole. Triggers refuse UPDATE,
-- DELETE and TRUNCATE of events and checkpoints. `mingusctl audit verify` recomputes everything.
--
-- The canonical text is jsonb_build_array(stream, seq, occurred_at as UTC text with microseconds,
-- actor, action, resource, outcome, origin, details)::text — the verifier builds the same text
-- with its own copy of this expression.

CREATE TABLE audit_streams (
    stream    text   PRIMARY KEY,
    head_seq  bigint NOT NULL,
    head_hash bytea  NOT NULL
);

CREATE TABLE audit_events (
    stream      text        NOT NULL,
    seq         bigint      NOT NULL,
    occurred_at timestamptz NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    resource    text        NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    origin      text        NOT NULL DEFAULT '',
    details     jsonb       NOT NULL DEFAULT '{}',
    prev_hash   bytea       NOT NULL,
    hash        bytea       NOT NULL,
    PRIMARY KEY (stream, seq)
);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_actor ON audit_events (actor, occurred_at);
CREATE INDEX audit_events_resource ON audit_events (resource, occurred_at);

CREATE TABLE audit_checkpoints (
    id         bigserial   PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    heads      text        NOT NULL,  -- the signed text: one line per stream, "stream seq hash-hex"
    key_id     text        NOT NULL,
    signature  bytea       NOT NULL
);

CREATE FUNCTION mingus_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION mingus_audit_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION mingus_audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION mingus_audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION mingus_audit_refuse_change();

-- Appends one event to a stream inside the caller's transaction; returns its sequence number.
CREATE FUNCTION mingus_audit_append(
    p_stream text, p_actor text, p_action text, p_resource text, p_outcome text, p_origin text, p_details jsonb
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_seq  bigint;
    v_prev bytea;
    v_at   timestamptz := date_trunc('microseconds', clock_timestamp());
    v_hash bytea;
BEGIN
    INSERT INTO audit_streams (stream, head_seq, head_hash)
    VALUES (p_stream, 0, '\x0000000000000000000000000000000000000000000000000000000000000000')
    ON CONFLICT (stream) DO NOTHING;
    SELECT head_seq + 1, head_hash INTO v_seq, v_prev FROM audit_streams WHERE stream = p_stream FOR UPDATE;
    v_hash := sha256(v_prev || convert_to(jsonb_build_array(
        p_stream, v_seq, to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        p_actor, p_action, p_resource, p_outcome, p_origin, p_details)::text, 'UTF8'));
    INSERT INTO audit_events (stream, seq, occurred_at, actor, action, resource, outcome, origin, details, prev_hash, hash)
    VALUES (p_stream, v_seq, v_at, p_actor, p_action, p_resource, p_outcome, p_origin, p_details, v_prev, v_hash);
    UPDATE audit_streams SET head_seq = v_seq, head_hash = v_hash WHERE stream = p_stream;
    RETURN v_seq;
END
$$;
