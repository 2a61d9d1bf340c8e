-- Web Push endpoints (the push service's URL in `target`, the subscription's keys in `secret`)
-- and the installation's own secrets, such as the VAPID key pair every notifier copy signs
-- pushes with (crates/notifier/src/webpush.rs).
ALTER TABLE endpoints DROP CONSTRAINT endpoints_kind_check;
ALTER TABLE endpoints ADD CONSTRAINT endpoints_kind_check
    CHECK (kind IN ('webhook', 'email', 'nats', 'web_push'));
CREATE TABLE installation_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);
