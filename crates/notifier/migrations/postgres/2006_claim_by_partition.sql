-- A claim reads, per partition its copy owns, the pending deliveries in `seq` order and stops at
-- what it takes (crates/notifier/src/dispatch.rs, `CLAIM_PG_SQL`): its cost is what it takes,
-- not how many deliveries are pending elsewhere nor how long the queue's history is.
-- Deliveries nobody leases are read by (partition, seq); leased ones by (partition, leased_until),
-- so a copy's claim passes over the deliveries it was handed (leased, being sent) without
-- reading them, and finds only leases that ran out.
CREATE INDEX deliveries_unleased ON deliveries (partition, seq)
    WHERE status = 'pending' AND leased_until IS NULL;
CREATE INDEX deliveries_leased ON deliveries (partition, leased_until)
    WHERE status = 'pending' AND leased_until IS NOT NULL;
-- Only the claim read these two. Right after a fan-out queued many deliveries, before the
-- statistics know of them, `status = 'pending'` looks like a handful of rows, and the planner
-- took `deliveries_due` for the claim's check of earlier deliveries: every pending delivery read
-- once per candidate, a claim that did not return in minutes.
DROP INDEX deliveries_claim;
DROP INDEX deliveries_due;
