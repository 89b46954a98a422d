-- Transcripts by turn, and code snapshots versioned (a buffer identical to the latest
-- version, by sha256, is not stored again).
CREATE TABLE transcript_turns (
    session_id   text   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    turn_id      text   NOT NULL,
    role         text   NOT NULL CHECK (role IN ('candidate', 'interviewer')),
    text         text   NOT NULL,
    seq          bigint NOT NULL,          -- the event that opened the turn
    end_seq      bigint,                   -- interviewer turns: the turn.end event
    stop_reason  text,
    PRIMARY KEY (session_id, turn_id)
);

CREATE TABLE code_snapshots (
    session_id  text    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    version     integer NOT NULL,
    language    text    NOT NULL,
    sha256      text    NOT NULL,
    source      text    NOT NULL,
    seq         bigint  NOT NULL,
    PRIMARY KEY (session_id, version)
);

ALTER TABLE sessions ADD COLUMN question jsonb;
ALTER TABLE sessions ADD COLUMN deadline_ts bigint;
