-- Email endpoints wait `unconfirmed` until their address confirms them through the
-- single-use link mailed to it (only the link's digest is kept): SQLite cannot change
-- a CHECK, so the table is made again with the same rows.
CREATE TABLE endpoints_next (
    id                 TEXT PRIMARY KEY,
    subscriber_id      TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    kind               TEXT NOT NULL CHECK (kind IN ('webhook', 'email', 'nats')),
    target             TEXT NOT NULL,
    secret             TEXT,
    previous_secret    TEXT,
    previous_expires   TEXT,
    status             TEXT NOT NULL DEFAULT 'active'
                       CHECK (status IN ('active', 'disabled', 'unconfirmed')),
    disabled_reason    TEXT,
    failing_since      TEXT,
    created_at         TEXT NOT NULL
);
INSERT INTO endpoints_next SELECT * FROM endpoints;
DROP TABLE endpoints;
ALTER TABLE endpoints_next RENAME TO endpoints;
CREATE INDEX endpoints_subscriber ON endpoints (subscriber_id);
CREATE TABLE email_confirmations (
    token_hash  BLOB PRIMARY KEY,
    endpoint_id TEXT NOT NULL UNIQUE REFERENCES endpoints (id) ON DELETE CASCADE,
    expires_at  TEXT NOT NULL
);
