-- Web Push endpoints (the push service's URL in `target`, the subscription's keys in
-- `secret`) and the installation's own secrets (the VAPID key pair). The table is made
-- again for its CHECK; dropping the old one deletes the confirmations that refer to it
-- (foreign keys are on), so they are kept aside and put back.
CREATE TABLE email_confirmations_kept AS SELECT * FROM email_confirmations;
CREATE TABLE endpoints_next (
    id                 TEXT PRIMARY KEY,
    subscriber_id      TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    kind               TEXT NOT NULL
                       CHECK (kind IN ('webhook', 'email', 'nats', 'web_push')),
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
INSERT INTO email_confirmations SELECT * FROM email_confirmations_kept;
DROP TABLE email_confirmations_kept;
CREATE TABLE installation_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TEXT NOT NULL
);
