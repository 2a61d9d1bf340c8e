-- A delivery belongs to the partition of its endpoint's subscriber, no longer of the endpoint:
-- the copy that takes a big fan-out's chunk (crates/notifier/src/fanout.rs, chunks are by
-- subscriber partition) owns every delivery it writes and sends them itself, instead of leaving
-- most of them to the other copies' claims. An endpoint's deliveries still share one partition,
-- so one copy at a time claims them, in order per (endpoint, story).
ALTER TABLE deliveries ALTER COLUMN partition DROP EXPRESSION;
UPDATE deliveries d SET partition = notifier_partition(e.subscriber_id)
FROM endpoints e
WHERE e.id = d.endpoint_id AND d.status = 'pending';
-- Statements that do not name it (the digester's; a copy of the previous release still running
-- during an upgrade) get it from the endpoint's subscriber.
CREATE FUNCTION deliveries_partition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.partition IS NULL THEN
        NEW.partition := notifier_partition(
            (SELECT subscriber_id FROM endpoints WHERE id = NEW.endpoint_id));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER deliveries_partition BEFORE INSERT ON deliveries
    FOR EACH ROW EXECUTE FUNCTION deliveries_partition();
