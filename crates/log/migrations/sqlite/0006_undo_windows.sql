-- Undo windows: whether a development's embargo is the undo window of its filing or
-- approval (an approval's may be undone). No event logged before had one.
ALTER TABLE story_developments ADD COLUMN undo_window INTEGER NOT NULL DEFAULT 0;
