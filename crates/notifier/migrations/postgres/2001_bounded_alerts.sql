-- A subscriber's alert list reads one page of their immediate alerts, newest first.
CREATE INDEX alerts_listed ON alerts (subscriber_id, mode, seq);
-- Retention prunes alerts by age, oldest first.
CREATE INDEX alerts_created ON alerts (created_at);
-- A subscriber who asks to be forgotten takes their `alerted` rows with them.
CREATE INDEX alerted_subscriber ON alerted (subscriber_id);
-- ... and the changes their subscriptions left for the matchers' index.
CREATE INDEX subscription_changes_subscriber ON subscription_changes (subscriber_id);
CREATE INDEX subscription_changes_subscription ON subscription_changes (subscription_id);
