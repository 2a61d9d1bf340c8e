-- A subscription to a story may ask to hear when another story is related to it
-- (`include_related`): the matcher alerts its subscriber once per relation.
ALTER TABLE subscriptions ADD COLUMN include_related INTEGER NOT NULL DEFAULT 0;
