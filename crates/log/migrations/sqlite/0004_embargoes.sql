-- Embargoes: what holds a development back, and the index the scheduler reads
-- (`developments::embargoes_sqlite`). No event logged before had one.
ALTER TABLE story_developments ADD COLUMN embargo_until TEXT;
CREATE INDEX story_developments_embargoes ON story_developments (embargo_until)
    WHERE embargo_until IS NOT NULL AND status IN ('embargoed', 'pending_review');
