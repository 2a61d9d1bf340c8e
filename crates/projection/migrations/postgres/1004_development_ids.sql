-- The projector reads a story's newest times and the developments an event changes by index,
-- not the whole story (views schema 7 of `stories`; the rebuild it brings on fills the columns).
ALTER TABLE view_developments
    ADD COLUMN id TEXT NOT NULL DEFAULT '',
    ADD COLUMN published_at TEXT COLLATE "C";
CREATE INDEX view_developments_id ON view_developments (story_id, id);
CREATE INDEX view_developments_published ON view_developments (story_id, published_at)
    WHERE state = 'published';
