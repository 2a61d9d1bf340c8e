-- The indexes PostgreSQL's migration of the same name adds; the columns they read are in
-- `developments` (1000_views.sql), which holds the table's current shape.
-- A page of the claims ledger: its claims, newest recorded first ...
CREATE INDEX developments_claims ON developments (story_id, position) WHERE claim = 1 AND state IN ('published', 'retracted');
-- ... and each claim's responses, newest first, or of one side.
CREATE INDEX developments_answers ON developments (story_id, answers, position) WHERE answers IS NOT NULL;
CREATE INDEX developments_sides ON developments (story_id, answers, stance, position) WHERE answers IS NOT NULL;
