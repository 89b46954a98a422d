-- Sessions that ended and still wait for their report. Set when a session ends (except when
-- it is erased), cleared when its report is stored; the owner writes the report, and any
-- worker writes it for a session left pending too long (server/sessions/report_recovery.py).
ALTER TABLE sessions ADD COLUMN report_pending boolean NOT NULL DEFAULT false;
CREATE INDEX sessions_report_pending ON sessions (ended_at) WHERE report_pending;
