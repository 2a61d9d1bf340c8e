-- The reader views, when the log is in PostgreSQL: every projector and reader process shares
-- them. The same two views as views.db (see crates/projection/src/store.rs), with the same
-- rows; `view_` keeps their names apart from the log's tables in the same database.
-- Sort columns use the "C" collation: byte order, as in SQLite, whatever the database's locale.
CREATE TABLE view_checkpoints (
    view           TEXT PRIMARY KEY,
    position       BIGINT NOT NULL,
    schema_version BIGINT NOT NULL
);

CREATE TABLE view_stories (
    id              TEXT PRIMARY KEY,
    slug            TEXT NOT NULL UNIQUE,
    headline        TEXT NOT NULL,
    position        BIGINT NOT NULL,
    sort_key        TEXT COLLATE "C" NOT NULL,
    review_required BOOLEAN NOT NULL,
    entry           TEXT NOT NULL,
    head            TEXT NOT NULL
);
CREATE INDEX view_stories_front ON view_stories (sort_key DESC, position DESC);

-- Keyed by the position of the event that recorded the development.
CREATE TABLE view_developments (
    position BIGINT PRIMARY KEY,
    story_id TEXT NOT NULL,
    state    TEXT NOT NULL,
    filed_by TEXT,
    doc      TEXT NOT NULL
);
CREATE INDEX view_developments_story ON view_developments (story_id, position);
CREATE INDEX view_developments_pending ON view_developments (position)
    WHERE state = 'pending_review';

-- A reference to the development (`view_developments.position`), not a copy.
CREATE TABLE view_actor_entries (
    position    BIGINT NOT NULL,
    actor_key   TEXT COLLATE "C" NOT NULL,
    occurred_at TEXT COLLATE "C" NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (position, actor_key)
);
CREATE INDEX view_actor_entries_newest
    ON view_actor_entries (actor_key, occurred_at DESC, position DESC);
