-- The end-of-interview report, and push notifications for it.
CREATE TABLE reports (
    session_id  text PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    report_id   text        NOT NULL UNIQUE,
    overall     real        NOT NULL,
    band        text        NOT NULL,
    body        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE push_tokens (
    user_id     text        NOT NULL,
    token       text        NOT NULL,
    platform    text        NOT NULL CHECK (platform IN ('ios', 'android', 'web')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, token)
);

-- One row per (report, device) to notify; drained by the push sender.
CREATE TABLE push_outbox (
    id          bigserial   PRIMARY KEY,
    user_id     text        NOT NULL,
    token       text        NOT NULL,
    platform    text        NOT NULL,
    payload     jsonb       NOT NULL,
    attempts    integer     NOT NULL DEFAULT 0,
    next_try_at timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    last_error  text
);
CREATE INDEX push_outbox_due ON push_outbox (next_try_at) WHERE sent_at IS NULL;
