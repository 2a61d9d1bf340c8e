-- Relations between stories (views schema 11 of `stories`; the rebuild it brings on fills
-- it), as `relations` in views.db: the relation a story records to another (`StoryLinked`,
-- removed by `StoryUnlinked`), by the event at `position`. A story's related stories are read
-- from both sides, newest first, by the two indexes, at most a few each.
CREATE TABLE view_relations (
    story_id TEXT NOT NULL,
    other_id TEXT NOT NULL,
    relation TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (story_id, other_id)
);
CREATE INDEX view_relations_story ON view_relations (story_id, position);
CREATE INDEX view_relations_other ON view_relations (other_id, position);
