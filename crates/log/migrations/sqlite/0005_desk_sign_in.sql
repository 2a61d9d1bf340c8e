-- Signing in to the desk like a person (`auth.rs`): a staff token's sign-in name and
-- Argon2id password hash, and the desk's sessions (their secrets' digests). `IF NOT EXISTS`: a
-- database of the earlier numbering applied this before the embargoes (crates/log/src/migrate.rs).
CREATE TABLE IF NOT EXISTS staff_passwords (
    token_id TEXT PRIMARY KEY REFERENCES tokens (id),
    login    TEXT NOT NULL UNIQUE,
    hash     TEXT NOT NULL,
    set_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS desk_sessions (
    hash       BLOB PRIMARY KEY,
    token_id   TEXT NOT NULL REFERENCES tokens (id),
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS desk_sessions_expiry ON desk_sessions (expires_at);
