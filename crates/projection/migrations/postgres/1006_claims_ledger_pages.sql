-- A page of the claims ledger is read by index: the story's claims newest first, then each
-- claim's responses, or one side's (views schema 9 of `stories`; the rebuild it brings on
-- fills the new columns). `ledger` (claims and responses in one) goes.
ALTER TABLE view_developments
    ADD COLUMN claim BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN answers TEXT,
    ADD COLUMN stance TEXT;
DROP INDEX view_developments_ledger;
ALTER TABLE view_developments DROP COLUMN ledger;
CREATE INDEX view_developments_claims ON view_developments (story_id, position)
    WHERE claim AND state IN ('published', 'retracted');
CREATE INDEX view_developments_answers ON view_developments (story_id, answers, position)
    WHERE answers IS NOT NULL;
CREATE INDEX view_developments_sides ON view_developments (story_id, answers, stance, position)
    WHERE answers IS NOT NULL;
