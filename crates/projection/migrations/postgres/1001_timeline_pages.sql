-- A page of a story's timeline and its claims ledger are read by index, not from the whole
-- story (views schema 4 of `stories`; the projector's rebuild fills the new columns).
ALTER TABLE view_developments
    ADD COLUMN occurred_at TEXT COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN ledger BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX view_developments_timeline ON view_developments (story_id, occurred_at, position)
    WHERE state IN ('published', 'retracted');
CREATE INDEX view_developments_ledger ON view_developments (story_id, position)
    WHERE ledger AND state IN ('published', 'retracted');
