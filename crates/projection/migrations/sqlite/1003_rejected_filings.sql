-- A reporter's rejected filings, newest first (the desk's home), as PostgreSQL's migration of the
-- same name.
CREATE INDEX developments_rejected ON developments (filed_by, position) WHERE state = 'rejected';
