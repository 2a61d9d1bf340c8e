-- The indexes PostgreSQL's migration of the same name adds; the columns they read are in
-- `developments` (1000_views.sql), which holds the table's current shape.
-- A page of the timeline: what readers see, in the order it happened.
CREATE INDEX developments_timeline ON developments (story_id, occurred_at, position) WHERE state IN ('published', 'retracted');
