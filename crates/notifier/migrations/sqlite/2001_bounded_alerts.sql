-- The alert list reads one page, retention prunes by age, and forgetting a subscriber
-- takes their `alerted` rows and subscription changes: each through an index, never a
-- scan of a whole table.
CREATE INDEX alerts_listed ON alerts (subscriber_id, mode, seq);
CREATE INDEX alerts_created ON alerts (created_at);
CREATE INDEX alerted_subscriber ON alerted (subscriber_id);
CREATE INDEX subscription_changes_subscriber ON subscription_changes (subscriber_id);
CREATE INDEX subscription_changes_subscription
    ON subscription_changes (subscription_id);
-- A database of the earlier numbering (crates/log/src/migrate.rs) that stopped after its first
-- file still holds the matcher's folds of the stories, which its second file dropped: the
-- matcher keeps no folds.
DROP TABLE IF EXISTS notify_stories;
