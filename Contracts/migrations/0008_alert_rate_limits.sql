-- Rate limits of alert channel targets, shared by every alerts worker process (GCRA): one row
-- per target with its theoretical arrival time, the moment its bucket would be full again were
-- nothing more sent. A request may go at tat - burst / rate; each request moves tat on by 1 / rate.
CREATE TABLE alert_rate_limits (
    target text        PRIMARY KEY,
    tat    timestamptz NOT NULL
);
