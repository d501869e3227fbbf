-- 0009_audit_batches: appending several events to one stream at once.
--
-- Each event is chained exactly as mingus_audit_append chains it (same canonical text, same
-- hashes), but the stream's head is locked, read and updated once for the whole batch, and the
-- events are inserted with one statement. The events of one call share their occurred_at.

CREATE FUNCTION mingus_audit_append_all(
    p_stream text, p_actors text[], p_actions text[], p_resources text[], p_outcomes text[], p_origins text[],
    p_details jsonb[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_count  int := cardinality(p_actors);
    v_first  bigint;
    v_seq    bigint;
    v_prev   bytea;
    v_at     timestamptz := date_trunc('microseconds', clock_timestamp());
    v_at_text text := to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    v_prevs  bytea[] := '{}';
    v_hashes bytea[] := '{}';
BEGIN
    IF v_count IS NULL OR v_count = 0 THEN
        RETURN NULL;
    END IF;
    IF cardinality(p_actions) <> v_count OR cardinality(p_resources) <> v_count OR cardinality(p_outcomes) <> v_count
       OR cardinality(p_origins) <> v_count OR cardinality(p_details) <> v_count THEN
        RAISE EXCEPTION 'mingus_audit_append_all: every array must have % elements', v_count;
    END IF;
    INSERT INTO audit_streams (stream, head_seq, head_hash)
    VALUES (p_stream, 0, '\x0000000000000000000000000000000000000000000000000000000000000000')
    ON CONFLICT (stream) DO NOTHING;
    SELECT head_seq, head_hash INTO v_seq, v_prev FROM audit_streams WHERE stream = p_stream FOR UPDATE;
    v_first := v_seq + 1;
    FOR i IN 1..v_count LOOP
        v_seq := v_seq + 1;
        v_prevs := array_append(v_prevs, v_prev);
        v_prev := sha256(v_prev || convert_to(jsonb_build_array(
            p_stream, v_seq, v_at_text, p_actors[i], p_actions[i], p_resources[i], p_outcomes[i], p_origins[i],
            p_details[i])::text, 'UTF8'));
        v_hashes := array_append(v_hashes, v_prev);
    END LOOP;
    INSERT INTO audit_events (stream, seq, occurred_at, actor, action, resource, outcome, origin, details, prev_hash, hash)
    SELECT p_stream, v_first + e.n - 1, v_at, e.actor, e.action, e.resource, e.outcome, e.origin, e.details, e.prev, e.hash
    FROM unnest(p_actors, p_actions, p_resources, p_outcomes, p_origins, p_details, v_prevs, v_hashes)
         WITH ORDINALITY AS e (actor, action, resource, outcome, origin, details, prev, hash, n);
    UPDATE audit_streams SET head_seq = v_seq, head_hash = v_prev WHERE stream = p_stream;
    RETURN v_first;
END
$$;
