CREATE TABLE subscribers (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    email             TEXT,
    token_hash        BLOB NOT NULL UNIQUE,
    unsubscribe_token TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at        TEXT NOT NULL
);
CREATE TABLE endpoints (
    id                 TEXT PRIMARY KEY,
    subscriber_id      TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    kind               TEXT NOT NULL CHECK (kind IN ('webhook', 'email', 'nats')),
    target             TEXT NOT NULL,
    -- Webhook signing keys must be usable for HMAC, so they are stored as they are.
    secret             TEXT,
    previous_secret    TEXT,
    previous_expires   TEXT,
    status             TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    disabled_reason    TEXT,
    failing_since      TEXT,
    created_at         TEXT NOT NULL
);
CREATE INDEX endpoints_subscriber ON endpoints (subscriber_id);
CREATE TABLE subscriptions (
    id             TEXT PRIMARY KEY,
    subscriber_id  TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    story_id       TEXT,
    actor_key      TEXT,
    kind           TEXT,
    tag            TEXT,
    min_urgency    TEXT NOT NULL,
    delivery       TEXT NOT NULL CHECK (delivery IN ('immediate', 'digest')),
    digest_minutes INTEGER,
    created_at     TEXT NOT NULL
);
CREATE INDEX subscriptions_subscriber ON subscriptions (subscriber_id);
-- Every change to subscriptions or subscribers, in order: matchers in any process
-- refresh their index from it.
CREATE TABLE subscription_changes (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id TEXT,
    subscriber_id   TEXT
);
-- Who was alerted to which development: corrections and retractions go to them.
CREATE TABLE alerted (
    development_id TEXT NOT NULL,
    subscriber_id  TEXT NOT NULL,
    PRIMARY KEY (development_id, subscriber_id)
);
CREATE TABLE alerts (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    subscriber_id  TEXT NOT NULL,
    -- The event's position; NULL for digests, which gather many events.
    position       INTEGER,
    story_id       TEXT NOT NULL,
    development_id TEXT,
    type           TEXT NOT NULL,
    payload        TEXT NOT NULL,
    mode           TEXT NOT NULL CHECK (mode IN ('immediate', 'digest', 'digested')),
    digest_due_at  TEXT,
    created_at     TEXT NOT NULL,
    UNIQUE (subscriber_id, position)
);
CREATE INDEX alerts_subscriber ON alerts (subscriber_id, seq);
CREATE INDEX alerts_digest ON alerts (mode, digest_due_at);
CREATE TABLE deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id        TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL,
    story_id        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    leased_until    TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (alert_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_order ON deliveries (endpoint_id, story_id, status, seq);
-- Every state change of every delivery.
CREATE TABLE delivery_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_seq INTEGER NOT NULL,
    at           TEXT NOT NULL,
    status       TEXT NOT NULL,
    http_status  INTEGER,
    detail       TEXT
);
CREATE INDEX delivery_log_delivery ON delivery_log (delivery_seq);
CREATE TABLE checkpoints (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
