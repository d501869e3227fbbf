-- 0002_runtime: tables of the shared worker runtime.
--
-- mingus_inbox: one row per job whose effect committed, written in the job's own transaction;
--   a redelivered job whose id is here is acknowledged without running again.
-- mingus_outbox: jobs emitted by handlers, written in the emitting transaction and relayed to
--   the broker with publisher confirms, then deleted.
-- mingus_scheduled_jobs: one-off jobs due at run_at, moved to the outbox exactly once.
-- mingus_periodic_schedules: cron schedules; each due run is moved to the outbox exactly once.

CREATE TABLE mingus_inbox (
    message_id   text        PRIMARY KEY,
    queue        text        NOT NULL,
    type         text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mingus_inbox_processed_at ON mingus_inbox (processed_at);

CREATE TABLE mingus_outbox (
    id          bigserial   PRIMARY KEY,
    message_id  text        NOT NULL UNIQUE,
    exchange    text        NOT NULL,
    routing_key text        NOT NULL,
    type        text        NOT NULL,
    body        bytea       NOT NULL,
    trace_id    text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mingus_scheduled_jobs (
    id          bigserial   PRIMARY KEY,
    message_id  text        NOT NULL UNIQUE,
    run_at      timestamptz NOT NULL,
    routing_key text        NOT NULL,
    type        text        NOT NULL,
    body        bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    fired_at    timestamptz
);
CREATE INDEX mingus_scheduled_jobs_due ON mingus_scheduled_jobs (run_at) WHERE fired_at IS NULL;

CREATE TABLE mingus_periodic_schedules (
    name        text        PRIMARY KEY,
    cron        text        NOT NULL,
    routing_key text        NOT NULL,
    type        text        NOT NULL,
    body        bytea       NOT NULL DEFAULT '\x7b7d', -- {}
    next_run_at timestamptz NOT NULL,
    last_run_at timestamptz,
    enabled     boolean     NOT NULL DEFAULT true
);
