-- A reporter's rejected filings, newest first, for the desk's home (views schema 6 of `stories`).
CREATE INDEX view_developments_rejected ON view_developments (filed_by, position)
    WHERE state = 'rejected';
