-- Relations between stories, part of the `stories` view; see 1000_views.sql for how these files
-- are applied. The relation a story records to another (`StoryLinked`), by the event at
-- `position`; a story's related stories are read from both sides, newest first, by index
-- (`load_relations`).
CREATE TABLE relations (
    story_id TEXT NOT NULL,
    other_id TEXT NOT NULL,
    relation TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (story_id, other_id)
) WITHOUT ROWID;
CREATE INDEX relations_story ON relations (story_id, position);
CREATE INDEX relations_other ON relations (other_id, position);
