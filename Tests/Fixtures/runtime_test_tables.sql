-- Tables of mingus-test-worker (runtime tests and benchmarks only; never in production).
CREATE TABLE IF NOT EXISTS runtime_test_effects (
    worker text NOT NULL,
    key text NOT NULL,
    value bigint NOT NULL,
    job_id text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS runtime_test_effects_worker ON runtime_test_effects (worker);
CREATE TABLE IF NOT EXISTS runtime_test_attempts (
    worker text NOT NULL,
    key text NOT NULL,
    attempt int NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
