-- The front page's first stories every so many positions (`marks.rs`); see 1000_views.sql for
-- how these files are applied.
CREATE TABLE front_page_marks (
    position INTEGER PRIMARY KEY,
    high     TEXT NOT NULL,
    low      TEXT NOT NULL,
    stories  TEXT NOT NULL,
    cut      INTEGER NOT NULL
);
CREATE INDEX front_page_marks_high ON front_page_marks (high, position);
CREATE INDEX front_page_marks_low ON front_page_marks (low);
