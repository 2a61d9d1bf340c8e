-- Undo windows (issue 18): whether a development's embargo is the undo window of its filing or
-- approval, in the index of developments (an approval's may be undone). No event logged before
-- had one.
ALTER TABLE story_developments ADD COLUMN undo_window BOOLEAN NOT NULL DEFAULT false;
