-- The index of developments (`developments.rs`), filled from the events already logged.
CREATE TABLE story_developments (
    story_id       TEXT    NOT NULL,
    development_id TEXT    NOT NULL,
    fingerprint    TEXT    NOT NULL,
    recorded_in    INTEGER NOT NULL,
    recorded_as    TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    PRIMARY KEY (story_id, development_id)
) WITHOUT ROWID;
