-- The front page as it stood, read from marks (views schema 8 of `stories`; the rebuild it
-- brings on fills the new column and table): each line's place on the front page, an index of
-- lines by recording time, and every so many positions the front page's first stories.
ALTER TABLE view_story_versions ADD COLUMN sort_key TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX view_story_versions_recorded ON view_story_versions (recorded_at);

CREATE TABLE view_front_page_marks (
    position BIGINT PRIMARY KEY,
    high     TEXT COLLATE "C" NOT NULL,
    low      TEXT COLLATE "C" NOT NULL,
    stories  TEXT NOT NULL,
    cut      BOOLEAN NOT NULL
);
CREATE INDEX view_front_page_marks_high ON view_front_page_marks (high, position);
CREATE INDEX view_front_page_marks_low ON view_front_page_marks (low);
