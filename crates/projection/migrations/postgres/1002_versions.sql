-- What `as_of` reads (views schema 5 of `stories`), as in views.db: a story's front-page line
-- right after each of its events, and the documents of developments that a later event changed.
CREATE TABLE view_story_versions (
    position       BIGINT PRIMARY KEY,
    story_id       TEXT NOT NULL,
    recorded_at    TEXT COLLATE "C" NOT NULL,
    occurred_until TEXT COLLATE "C" NOT NULL,
    entry          TEXT NOT NULL
);
CREATE INDEX view_story_versions_story ON view_story_versions (story_id, recorded_at, position);

CREATE TABLE view_development_versions (
    until    BIGINT PRIMARY KEY,
    position BIGINT NOT NULL,
    story_id TEXT NOT NULL,
    moved    BOOLEAN NOT NULL,
    doc      TEXT NOT NULL
);
CREATE INDEX view_development_versions_of ON view_development_versions (position, until);
CREATE INDEX view_development_versions_moved ON view_development_versions (story_id, until)
    WHERE moved;
