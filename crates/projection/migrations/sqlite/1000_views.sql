-- The reader views in views.db, the same views as PostgreSQL's `view_…` tables (their
-- namesakes in ../postgres). These files are not applied one after another as PostgreSQL's
-- are: a view whose shape changes gets a new schema version (`ViewName::schema_version`) and is
-- rebuilt from the log, so each file holds the current shape of the tables its PostgreSQL
-- namesake created, with the columns PostgreSQL's later migrations added to them; the indexes
-- those added are in the SQLite files of the same names. A new views.db gets
-- `checkpoints` as its one migration and every view's tables that it lacks, in this order; a
-- rebuild creates the same tables under `_next` names and swaps them in (`schema.rs`).
-- Each statement stands alone: `CREATE TABLE name …`, `CREATE VIRTUAL TABLE name …` or
-- `CREATE INDEX name ON table …`, comments outside the statements.

-- Per view: the position of the last event it applied, written in the same transaction as its
-- rows, and the schema version of the code that wrote them.
CREATE TABLE checkpoints (
    view           TEXT PRIMARY KEY,
    position       INTEGER NOT NULL,
    schema_version INTEGER NOT NULL
);

-- One row per story: its front-page line (`entry`) and its own fields (`head`: a `StoryView`
-- without its developments).
CREATE TABLE stories (
    id       TEXT PRIMARY KEY,
    slug     TEXT NOT NULL UNIQUE,
    headline TEXT NOT NULL,
    position INTEGER NOT NULL,
    sort_key TEXT NOT NULL,
    review_required INTEGER NOT NULL,
    entry    TEXT NOT NULL,
    head     TEXT NOT NULL
);
CREATE INDEX stories_front ON stories (sort_key DESC, position DESC);

-- One row per development, keyed by the position of the event that recorded it: a rebuild
-- appends rows in key order, and a story's developments come out of the `story_id` index in
-- recording order. `occurred_at` in RFC 3339 with microseconds (sorts as it reads); `claim`: a
-- claim of attribution; `answers`: the development a response answers, and its `stance`
-- (`Side`): the claims ledger's rows. `id`: the development's; `published_at` with
-- nanoseconds, while it is published (the newest of a story's are its front-page time).
CREATE TABLE developments (
    position     INTEGER PRIMARY KEY,
    story_id     TEXT NOT NULL,
    id           TEXT NOT NULL,
    state        TEXT NOT NULL,
    filed_by     TEXT,
    occurred_at  TEXT NOT NULL,
    published_at TEXT,
    claim        INTEGER NOT NULL,
    answers      TEXT,
    stance       TEXT,
    doc          TEXT NOT NULL
);
CREATE INDEX developments_story ON developments (story_id);
CREATE INDEX developments_pending ON developments (story_id) WHERE state = 'pending_review';

-- The `actors` view: one row per actor × visible development, a reference to the development
-- (`developments.position`), not a copy.
CREATE TABLE actor_entries (
    position    INTEGER NOT NULL,
    actor_key   TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (position, actor_key)
) WITHOUT ROWID;
CREATE INDEX actor_entries_newest ON actor_entries (actor_key, occurred_at DESC, position DESC);
