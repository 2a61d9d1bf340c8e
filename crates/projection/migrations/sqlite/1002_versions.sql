-- What `as_of` reads (the `stories` view's history); see 1000_views.sql for how these files
-- are applied.

-- A story's front-page line right after each of its events, keyed by the event's position (a
-- rebuild appends them in key order): `as_of` reads a story's fields and the front page as they
-- stood from here. `recorded_at` with nanoseconds; `occurred_until`: no development readers saw
-- then had happened later ('' while there was none). `sort_key`: the story's place on the front
-- page then (`marks.rs`).
CREATE TABLE story_versions (
    position       INTEGER PRIMARY KEY,
    story_id       TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,
    occurred_until TEXT NOT NULL,
    sort_key       TEXT NOT NULL,
    entry          TEXT NOT NULL
);
CREATE INDEX story_versions_story ON story_versions (story_id, recorded_at, position);
-- The lines recorded after a front-page mark.
CREATE INDEX story_versions_recorded ON story_versions (recorded_at);

-- A development's document (recorded at `position`) as it stood until the event at `until`
-- changed it; the `developments` row holds the latest. `moved`: that event changed when it
-- happened, so the row's place in the timeline's index is not where it stood before.
CREATE TABLE development_versions (
    until    INTEGER PRIMARY KEY,
    position INTEGER NOT NULL,
    story_id TEXT NOT NULL,
    moved    INTEGER NOT NULL,
    doc      TEXT NOT NULL
);
CREATE INDEX development_versions_of ON development_versions (position, until);
CREATE INDEX development_versions_moved ON development_versions (story_id, until) WHERE moved = 1;
