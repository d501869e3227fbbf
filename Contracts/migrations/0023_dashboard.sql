-- 0023_dashboard: dashboard users (password, TOTP, recovery codes, lockout), their server-side
-- sessions, and the running aggregates that keep the dashboard's reads cheap while it is polled.
--
-- Passwords are scrypt hashes with their parameters (`scrypt$N$r$p$salt$hash`, base64). TOTP
-- secrets are AES-256-GCM ciphertext under the `dashboard-totp` data key (the user id is the
-- authenticated context). Recovery codes and session tokens are stored only as SHA-256 hashes
-- (each is 50+ random bits or more, so a fast hash is enough). Times that decide sign-in
-- (lockout, idle and absolute expiry) are compared with the gateway's clock, passed as
-- parameters.

CREATE TABLE dashboard_users (
    id               uuid        PRIMARY KEY,
    username         text        NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    roles            text[]      NOT NULL CHECK (array_to_string(roles, ',') ~ '^([a-z]+(:[a-z]+)?(,[a-z]+(:[a-z]+)?)*)?$'),
    password_hash    text        NOT NULL CHECK (password_hash LIKE 'scrypt$%'),
    totp_secret      bytea       NOT NULL,
    totp_key_version int         NOT NULL CHECK (totp_key_version > 0),
    -- The last 30-second step a code was accepted for: a step is never accepted twice.
    totp_last_step   bigint      NOT NULL DEFAULT 0,
    failed_attempts  int         NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    locked_until     timestamptz,
    disabled_at      timestamptz,
    created_by       text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at  timestamptz
);

CREATE TABLE dashboard_recovery_codes (
    user_id   uuid        NOT NULL REFERENCES dashboard_users (id) ON DELETE CASCADE,
    code_hash bytea       NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE dashboard_sessions (
    token_hash   bytea       PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES dashboard_users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    -- The absolute limit: created_at plus the configured lifetime.
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    -- Why it ended: logout, idle, absolute, disabled, mfa_reset.
    end_reason   text        CHECK (end_reason IN ('logout', 'idle', 'absolute', 'disabled', 'mfa_reset')),
    origin       text        NOT NULL DEFAULT ''
);
CREATE INDEX dashboard_sessions_user ON dashboard_sessions (user_id) WHERE ended_at IS NULL;
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

-- Payments decided per hour (of the request), status, currency and latency bucket, in shards
-- chosen by the writing session (as the audit trail's streams are) so concurrent writers seldom
-- meet on a row. Latency is decided − requested, in milliseconds; the bucket is the number of
-- bounds in mingus_payment_latency_bounds() it reaches (0: under 50 ms, 10: 60 s or more).
-- Maintained by the trigger below in the writing transaction, whoever writes payment_data;
-- rows removed by retention are not subtracted (this is the history of decisions).
CREATE TABLE payment_hourly_rollups (
    hour           timestamptz NOT NULL,
    shard          smallint    NOT NULL,
    status         text        NOT NULL CHECK (status IN ('authorized', 'declined', 'failed')),
    currency       char(3)     NOT NULL,
    latency_bucket smallint    NOT NULL CHECK (latency_bucket BETWEEN 0 AND 10),
    payments       bigint      NOT NULL,
    amount         bigint      NOT NULL,
    latency_ms_sum bigint      NOT NULL,
    latency_ms_max bigint      NOT NULL,
    PRIMARY KEY (hour, shard, status, currency, latency_bucket)
);

CREATE FUNCTION mingus_payment_latency_bounds() RETURNS bigint[] LANGUAGE sql IMMUTABLE AS
$$ SELECT ARRAY[50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]::bigint[] $$;

-- Adds the decided rows of `decided` (transaction_id, status, amount, currency, created_at,
-- decided_at) to the rollups, in key order so that two writers lock shared rows in one order.
CREATE FUNCTION mingus_payment_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO payment_hourly_rollups AS r (hour, shard, status, currency, latency_bucket, payments, amount, latency_ms_sum, latency_ms_max)
        SELECT hour, (pg_backend_pid() % 16)::smallint, status, currency, bucket, count(*), sum(amount), sum(ms), max(ms)
        FROM (SELECT date_trunc('hour', n.created_at) AS hour, n.status, n.currency, n.amount,
                     greatest(0, (extract(epoch FROM n.updated_at - n.created_at) * 1000)::bigint) AS ms
              FROM new_rows n WHERE n.status <> 'pending') d
        CROSS JOIN LATERAL (SELECT width_bucket(d.ms, mingus_payment_latency_bounds())::smallint AS bucket) b
        GROUP BY hour, status, currency, bucket
        ORDER BY hour, status, currency, bucket
        ON CONFLICT (hour, shard, status, currency, latency_bucket) DO UPDATE SET
            payments = r.payments + EXCLUDED.payments, amount = r.amount + EXCLUDED.amount,
            latency_ms_sum = r.latency_ms_sum + EXCLUDED.latency_ms_sum,
            latency_ms_max = greatest(r.latency_ms_max, EXCLUDED.latency_ms_max);
    ELSE
        INSERT INTO payment_hourly_rollups AS r (hour, shard, status, currency, latency_bucket, payments, amount, latency_ms_sum, latency_ms_max)
        SELECT hour, (pg_backend_pid() % 16)::smallint, status, currency, bucket, count(*), sum(amount), sum(ms), max(ms)
        FROM (SELECT date_trunc('hour', n.created_at) AS hour, n.status, n.currency, n.amount,
                     greatest(0, (extract(epoch FROM n.updated_at - n.created_at) * 1000)::bigint) AS ms
              FROM new_rows n JOIN old_rows o ON o.transaction_id = n.transaction_id
              WHERE o.status = 'pending' AND n.status <> 'pending') d
        CROSS JOIN LATERAL (SELECT width_bucket(d.ms, mingus_payment_latency_bounds())::smallint AS bucket) b
        GROUP BY hour, status, currency, bucket
        ORDER BY hour, status, currency, bucket
        ON CONFLICT (hour, shard, status, currency, latency_bucket) DO UPDATE SET
            payments = r.payments + EXCLUDED.payments, amount = r.amount + EXCLUDED.amount,
            latency_ms_sum = r.latency_ms_sum + EXCLUDED.latency_ms_sum,
            latency_ms_max = greatest(r.latency_ms_max, EXCLUDED.latency_ms_max);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER payment_data_rollup_insert AFTER INSERT ON payment_data
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mingus_payment_rollup_add();
CREATE TRIGGER payment_data_rollup_update AFTER UPDATE ON payment_data
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mingus_payment_rollup_add();

-- The rollups from the payments already decided.
INSERT INTO payment_hourly_rollups (hour, shard, status, currency, latency_bucket, payments, amount, latency_ms_sum, latency_ms_max)
SELECT hour, 0, status, currency, bucket, count(*), sum(amount), sum(ms), max(ms)
FROM (SELECT date_trunc('hour', created_at) AS hour, status, currency, amount,
             greatest(0, (extract(epoch FROM updated_at - created_at) * 1000)::bigint) AS ms
      FROM payment_data WHERE status <> 'pending') d
CROSS JOIN LATERAL (SELECT width_bucket(d.ms, mingus_payment_latency_bounds())::smallint AS bucket) b
GROUP BY hour, status, currency, bucket;

-- Payments still pending, counted without a scan.
CREATE INDEX payment_data_pending ON payment_data (created_at) WHERE status = 'pending';

-- Recent activity: the audit trail without read requests (every GET is audited too, and the
-- dashboard itself polls), newest first without a scan.
CREATE INDEX audit_events_activity ON audit_events (occurred_at DESC) WHERE action <> 'http.get';
