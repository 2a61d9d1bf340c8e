-- A subscription to a story may ask to hear when another story is related to it
-- (`include_related`, 0 or 1 as in notifier.db, so both take the same statements): the
-- matcher alerts its subscriber once per relation.
ALTER TABLE subscriptions ADD COLUMN include_related BIGINT NOT NULL DEFAULT 0;
