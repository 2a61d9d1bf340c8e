-- Each story's newest sequence, so that an append checks and advances it by key under the append
-- lock (pg.rs) instead of taking MAX(sequence) over the story's events.
CREATE TABLE story_heads (
    aggregate_type TEXT   NOT NULL,
    aggregate_id   TEXT   NOT NULL,
    sequence       BIGINT NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
INSERT INTO story_heads (aggregate_type, aggregate_id, sequence)
SELECT aggregate_type, aggregate_id, MAX(sequence) FROM events GROUP BY aggregate_type, aggregate_id;
