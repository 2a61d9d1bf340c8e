-- Signing in to the desk like a person (`auth.rs`): a staff token's sign-in name and
-- Argon2id password hash, and the desk's sessions (their secrets' digests).
CREATE TABLE staff_passwords (
    token_id TEXT PRIMARY KEY REFERENCES tokens (id),
    login    TEXT NOT NULL UNIQUE,
    hash     TEXT NOT NULL,
    set_at   TEXT NOT NULL
);
CREATE TABLE desk_sessions (
    hash       BLOB PRIMARY KEY,
    token_id   TEXT NOT NULL REFERENCES tokens (id),
    expires_at TEXT NOT NULL
);
CREATE INDEX desk_sessions_expiry ON desk_sessions (expires_at);
