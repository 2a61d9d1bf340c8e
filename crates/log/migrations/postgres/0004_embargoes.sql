-- Embargoes (issue 20): the moment a development is held back until, in the index of
-- developments, as RFC 3339 text in UTC with nanoseconds (fixed width: text order is time order,
-- and the moment reads back exactly), and the index the embargo scheduler reads.
ALTER TABLE story_developments ADD COLUMN embargo_until TEXT;
CREATE INDEX story_developments_embargoes ON story_developments (embargo_until)
    WHERE embargo_until IS NOT NULL AND status IN ('embargoed', 'pending_review');
