-- Sessions and their event log: the source of truth behind Redis (ARCHITECTURE.md).
CREATE TABLE sessions (
    id              text PRIMARY KEY,
    user_id         text        NOT NULL,
    track           text        NOT NULL,
    language        text,
    question_id     text        NOT NULL,
    status          text        NOT NULL DEFAULT 'active',
    end_reason      text,
    start_input_id  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at DESC);
CREATE UNIQUE INDEX sessions_start_input ON sessions (user_id, start_input_id);

-- Every session event, as sent on the wire (seq is gap-free per session).
CREATE TABLE session_events (
    session_id  text   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    type        text   NOT NULL,
    ts          bigint NOT NULL,
    body        jsonb  NOT NULL,
    PRIMARY KEY (session_id, seq)
);

-- Client inputs already applied, for idempotency by `id` (PROTOCOL.md §2).
CREATE TABLE client_inputs (
    session_id  text   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    input_id    text   NOT NULL,
    seq         bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, input_id)
);
