-- RevenueCat subscription state, one row per user (POST /v1/webhooks/revenuecat). The row
-- follows the newest event by event_timestamp_ms, so a late or retried older event never
-- rolls it back.
CREATE TABLE subscriptions (
    user_id             text        PRIMARY KEY,
    status              text        NOT NULL,   -- active, cancelled, billing_issue, paused, expired
    product_id          text,
    entitlement_ids     text[]      NOT NULL DEFAULT '{}',
    expiration_at_ms    bigint,
    store               text,
    environment         text,
    last_event_id       text        NOT NULL,
    last_event_type     text        NOT NULL,
    event_timestamp_ms  bigint      NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Every webhook event applied, by RevenueCat's event id: a redelivery is recognised and
-- not applied twice. Only the fields the state needs are kept, not the raw payload.
CREATE TABLE subscription_events (
    event_id            text        PRIMARY KEY,
    user_id             text        NOT NULL,
    type                text        NOT NULL,
    product_id          text,
    event_timestamp_ms  bigint      NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_events_by_user ON subscription_events (user_id, event_timestamp_ms);
