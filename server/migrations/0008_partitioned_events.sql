-- session_events and client_inputs, hash-partitioned by session id (docs/event-store.md).
-- Every query on them names one session, so each lands in one of 16 partitions, on that
-- partition's own primary key index; a partition's index and vacuum are a sixteenth of the
-- whole. Existing rows move here in this transaction (the tables are locked meanwhile: run it
-- in a quiet moment, see docs/event-store.md).
ALTER TABLE session_events RENAME TO session_events_unpartitioned;
ALTER INDEX session_events_pkey RENAME TO session_events_unpartitioned_pkey;
ALTER TABLE client_inputs RENAME TO client_inputs_unpartitioned;
ALTER INDEX client_inputs_pkey RENAME TO client_inputs_unpartitioned_pkey;

CREATE TABLE session_events (
    session_id  text   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    type        text   NOT NULL,
    ts          bigint NOT NULL,
    body        jsonb  NOT NULL,
    PRIMARY KEY (session_id, seq)
) PARTITION BY HASH (session_id);

CREATE TABLE client_inputs (
    session_id  text   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    input_id    text   NOT NULL,
    seq         bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, input_id)
) PARTITION BY HASH (session_id);
CREATE TABLE session_events_p00 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 0);
CREATE TABLE session_events_p01 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 1);
CREATE TABLE session_events_p02 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 2);
CREATE TABLE session_events_p03 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 3);
CREATE TABLE session_events_p04 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 4);
CREATE TABLE session_events_p05 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 5);
CREATE TABLE session_events_p06 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 6);
CREATE TABLE session_events_p07 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 7);
CREATE TABLE session_events_p08 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 8);
CREATE TABLE session_events_p09 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 9);
CREATE TABLE session_events_p10 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 10);
CREATE TABLE session_events_p11 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 11);
CREATE TABLE session_events_p12 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 12);
CREATE TABLE session_events_p13 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 13);
CREATE TABLE session_events_p14 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 14);
CREATE TABLE session_events_p15 PARTITION OF session_events FOR VALUES WITH (MODULUS 16, REMAINDER 15);

CREATE TABLE client_inputs_p00 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 0);
CREATE TABLE client_inputs_p01 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 1);
CREATE TABLE client_inputs_p02 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 2);
CREATE TABLE client_inputs_p03 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 3);
CREATE TABLE client_inputs_p04 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 4);
CREATE TABLE client_inputs_p05 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 5);
CREATE TABLE client_inputs_p06 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 6);
CREATE TABLE client_inputs_p07 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 7);
CREATE TABLE client_inputs_p08 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 8);
CREATE TABLE client_inputs_p09 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 9);
CREATE TABLE client_inputs_p10 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 10);
CREATE TABLE client_inputs_p11 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 11);
CREATE TABLE client_inputs_p12 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 12);
CREATE TABLE client_inputs_p13 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 13);
CREATE TABLE client_inputs_p14 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 14);
CREATE TABLE client_inputs_p15 PARTITION OF client_inputs FOR VALUES WITH (MODULUS 16, REMAINDER 15);

INSERT INTO session_events (session_id, seq, type, ts, body)
    SELECT session_id, seq, type, ts, body FROM session_events_unpartitioned;
INSERT INTO client_inputs (session_id, input_id, seq, created_at)
    SELECT session_id, input_id, seq, created_at FROM client_inputs_unpartitioned;
DROP TABLE session_events_unpartitioned;
DROP TABLE client_inputs_unpartitioned;
