-- 0011_breach_notifications: the people a breach affected, the runs that notify them by e-mail,
-- and the letters to regulators and the media rendered for review.
--
-- Recipients are uploaded through the gateway (POST /api/financial/breach/{id}/recipients) in
-- batches; their names and addresses are sealed under the `breach-recipients` data key with the
-- row's id as context, and the address is found again by a keyed fingerprint (HMAC-SHA256 under
-- the `breach-fingerprint` key) so one address gets one letter per breach.
--
-- A run (POST .../notifications) is processed by the breach worker in chunks, each one
-- `breach.notify` job: the job locks its run's row for as long as it works, claims recipients
-- in batches (pending -> claimed, committed), marks each `sending` (committed) just before the
-- message's data is written to the SMTP server, and records `sent` or `failed` with the server's
-- reply. A job that finds rows of its run still `claimed` took over from a worker that died:
-- those never reached the server and go again. Rows still `sending` may or may not have been
-- accepted by the server: they are sent again with the same Message-ID and counted in
-- `uncertain_resends`.

CREATE TABLE breach_notification_runs (
    id            uuid        PRIMARY KEY,
    breach_id     uuid        NOT NULL REFERENCES breaches (id),
    status        text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed')),
    -- What the letters say beyond the breach's own facts (what is being done, what people can
    -- do, likely consequences, contacts), as the request gave it.
    letter        jsonb       NOT NULL,
    requested_by  text        NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at   timestamptz,
    -- Jobs (chunks) this run took so far.
    chunks        integer     NOT NULL DEFAULT 0
);
-- One run at a time per breach.
CREATE UNIQUE INDEX breach_notification_runs_live ON breach_notification_runs (breach_id) WHERE status = 'running';
CREATE INDEX breach_notification_runs_breach ON breach_notification_runs (breach_id, started_at DESC);

CREATE TABLE breach_recipients (
    id                  uuid        PRIMARY KEY,
    breach_id           uuid        NOT NULL REFERENCES breaches (id),
    -- The uploader's own identifier for the person (not personal data by itself).
    external_id         text        NOT NULL,
    jurisdiction        text        NOT NULL,
    -- AES-256-GCM under the breach-recipients key (version beside), context `breach-recipient/<id>/name|email`.
    name_sealed         bytea       NOT NULL,
    email_sealed        bytea       NOT NULL,
    key_version         integer     NOT NULL,
    email_fingerprint   bytea       NOT NULL,
    fingerprint_version integer     NOT NULL,
    upload_line         bigint      NOT NULL,
    uploaded_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    state               text        NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'claimed', 'sending', 'sent', 'failed')),
    run_id              uuid        REFERENCES breach_notification_runs (id),
    attempts            integer     NOT NULL DEFAULT 0,
    uncertain_resends   integer     NOT NULL DEFAULT 0,
    -- The SMTP server's last reply (or why nothing was sent).
    smtp_reply          text,
    sent_at             timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- One letter per address and breach.
CREATE UNIQUE INDEX breach_recipients_address ON breach_recipients (breach_id, email_fingerprint);
CREATE INDEX breach_recipients_state ON breach_recipients (breach_id, state);

-- Letters to anyone but the people affected (regulators, attorneys general, card brands, the
-- media), one per open obligation at the run's start, rendered for review and not sent.
CREATE TABLE breach_letters (
    id            uuid        PRIMARY KEY,
    breach_id     uuid        NOT NULL REFERENCES breaches (id),
    run_id        uuid        NOT NULL REFERENCES breach_notification_runs (id),
    obligation_id uuid        NOT NULL REFERENCES breach_obligations (id),
    regime        text        NOT NULL,
    audience      text        NOT NULL,
    subject       text        NOT NULL,
    body          text        NOT NULL,
    rendered_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (run_id, obligation_id)
);
CREATE INDEX breach_letters_breach ON breach_letters (breach_id, rendered_at);
