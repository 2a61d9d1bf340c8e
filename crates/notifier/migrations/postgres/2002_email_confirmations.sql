-- Email endpoints wait `unconfirmed` until their address confirms them through the single-use
-- link mailed to it; only the link's digest is kept (crates/notifier/src/store.rs).
ALTER TABLE endpoints DROP CONSTRAINT endpoints_status_check;
ALTER TABLE endpoints ADD CONSTRAINT endpoints_status_check
    CHECK (status IN ('active', 'disabled', 'unconfirmed'));
CREATE TABLE email_confirmations (
    token_hash  BYTEA PRIMARY KEY,
    endpoint_id TEXT NOT NULL UNIQUE REFERENCES endpoints (id) ON DELETE CASCADE,
    expires_at  TEXT COLLATE "C" NOT NULL
);
