-- One event's fan-out spread over the notifier copies (crates/notifier/src/fanout.rs): an event
-- that alerts many subscribers is written by its matcher as one chunk per subscriber partition
-- (`notifier_partition(subscriber_id)`), in the transaction that moves its checkpoint; the copy
-- owning a partition takes its chunks in (position, part) order, queues their alerts and
-- deliveries and deletes them in one transaction. A row lives from one commit to the next.
CREATE TABLE fanouts (
    partition INTEGER NOT NULL,
    position BIGINT NOT NULL,
    -- An event may alert in more than one way (a relation: those of either story).
    part INTEGER NOT NULL,
    story_id TEXT NOT NULL,
    development_id TEXT,
    -- A correction or retraction: the development whose alerted subscribers hear of it too.
    amends TEXT,
    -- The alert's JSON without the per-subscriber links.
    payload TEXT NOT NULL,
    recipients TEXT[] NOT NULL,
    -- Per recipient: 0 at once, else a digest every this many minutes.
    modes BIGINT[] NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (partition, position, part)
);
-- While a story has chunks waiting, its later events are chunked too (per-story order).
CREATE INDEX fanouts_story ON fanouts (story_id);
