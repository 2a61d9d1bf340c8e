-- Fewer index entries per alert and per delivery, as in PostgreSQL's migration of the same
-- name: a flash's fan-out writes an alert and a delivery per subscriber, and each entry of an
-- index keyed by a subscriber or an endpoint lands on a page of its own.
-- - `alerts_subscriber` (subscriber_id, seq) is gone: `alerts_listed` (subscriber_id, mode,
--   seq) answers every query it did (a subscriber's immediate alerts after or before a seq,
--   the newest seq, a forgotten subscriber's alerts).
-- - `alerts_digest` holds only the digest alerts it is read for.
-- - `deliveries_order` holds only pending deliveries, the only ones an order check or a claim
--   asks about: a delivery that is done leaves it, instead of gaining a second entry.
DROP INDEX alerts_subscriber;
DROP INDEX alerts_digest;
CREATE INDEX alerts_digest ON alerts (mode, digest_due_at) WHERE mode = 'digest';
DROP INDEX deliveries_order;
CREATE INDEX deliveries_order ON deliveries (endpoint_id, story_id, seq) WHERE status = 'pending';
