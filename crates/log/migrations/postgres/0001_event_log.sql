-- The event log on PostgreSQL. `position` is assigned under a transaction-scoped advisory lock
-- (see pg.rs), so positions are gap-free and in commit order.
CREATE TABLE events (
    position       BIGINT PRIMARY KEY,
    aggregate_type TEXT        NOT NULL,
    aggregate_id   TEXT        NOT NULL,
    sequence       BIGINT      NOT NULL CHECK (sequence > 0),
    event_type     TEXT        NOT NULL,
    event_version  TEXT        NOT NULL,
    payload        JSONB       NOT NULL,
    metadata       JSONB       NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
);

CREATE TABLE snapshots (
    aggregate_type   TEXT   NOT NULL,
    aggregate_id     TEXT   NOT NULL,
    last_sequence    BIGINT NOT NULL,
    snapshot_version BIGINT NOT NULL,
    payload          TEXT   NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

CREATE TABLE story_slugs (
    slug     TEXT PRIMARY KEY,
    story_id TEXT NOT NULL UNIQUE
);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    hash       BYTEA NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
