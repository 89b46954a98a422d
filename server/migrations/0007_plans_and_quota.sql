-- Interviews started per user and calendar month (UTC), the quota session.start checks and
-- counts in one conditional UPDATE, in the transaction that creates the session
-- (server/quota.py): concurrent starts of one user, on any worker, queue on this row.
-- `granted` is what an admin added for the month on top of the plan's allowance.
CREATE TABLE interview_usage (
    user_id       text    NOT NULL,
    period_start  date    NOT NULL,   -- the first day of the month, UTC
    used          integer NOT NULL DEFAULT 0 CHECK (used >= 0),
    granted       integer NOT NULL DEFAULT 0 CHECK (granted >= 0),
    PRIMARY KEY (user_id, period_start)
);

-- Every admin grant of extra interviews (POST /v1/admin/users/{user_id}/grants): who, when, why.
CREATE TABLE quota_grants (
    id            bigserial   PRIMARY KEY,
    user_id       text        NOT NULL,
    period_start  date        NOT NULL,
    interviews    integer     NOT NULL CHECK (interviews > 0),
    granted_by    text        NOT NULL,
    reason        text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quota_grants_by_user ON quota_grants (user_id, created_at);

-- Refunds and transfers end access at once (server/subscriptions.py): the row says why.
ALTER TABLE subscriptions ADD COLUMN cancel_reason text;
