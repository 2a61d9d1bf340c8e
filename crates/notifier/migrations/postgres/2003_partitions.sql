-- Partitioned work (crates/notifier/src/partitions.rs): notifier copies share the work in 64
-- partitions, each owned by one copy at a time. A story's events are matched by the owner of
-- its partition, which moves that partition's checkpoint (`matcher/NN`, locked per batch) —
-- so copies owning other partitions never wait for it; a delivery is claimed by the owner of
-- its endpoint's partition. From here on only subscribers' own writes take the notifier's
-- advisory lock (so `subscription_changes.seq` stays in commit order); alerts are queued side by
-- side, and readers following `alerts.seq` read below the horizon of the transactions in flight
-- (`alert_horizon` in crates/notifier/src/store.rs).
CREATE FUNCTION notifier_partition(key TEXT) RETURNS INTEGER
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT (hashtextextended(key, 0) & 63)::integer $$;

ALTER TABLE deliveries
    ADD COLUMN partition INTEGER GENERATED ALWAYS AS (notifier_partition(endpoint_id)) STORED;
CREATE INDEX deliveries_claim ON deliveries (partition, status, next_attempt_at);

-- Every partition starts where the one matcher checkpoint stood. That row is kept (this release
-- no longer moves it): a copy of the previous release still running during an upgrade goes on
-- from it instead of matching the whole log again.
INSERT INTO checkpoints (name, position)
SELECT 'matcher/' || lpad(p::text, 2, '0'),
       COALESCE((SELECT position FROM checkpoints WHERE name = 'matcher'), 0)
FROM generate_series(0, 63) AS p
ON CONFLICT (name) DO NOTHING;
