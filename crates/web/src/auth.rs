//! API tokens: who may write, and as what.
//!
//! A token is 32 random bytes shown once as `nr_<base64url>`; only its SHA-256 digest is stored.
//! A presented token is hashed and looked up by digest, and the stored digest is compared in
//! constant time. Tokens are never logged; `Debug` of a freshly issued token redacts the secret.
//!
//! A [`Principal`] is who a request acts for (the token's id, name and role); the command service
//! writes it into each event's metadata (`author_id`, `author_name`, `author_role`, with
//! `recorded_at`). Tokens are revocable at once ([`Tokens::revoke`]; [`Tokens::is_live`] lets long
//! streams check theirs).
//!
//! The desk's sign-in lives here too, beside the tokens in the log's database: a staff member's
//! sign-in name and Argon2id password (`staff_passwords`, [`Tokens::set_password`],
//! [`Tokens::sign_in_with_password`]), desk sessions ([`Tokens::open_session`]: a random secret
//! whose digest is kept in `desk_sessions` for [`SESSION_HOURS`], while its token is live), and the
//! filing form's drafts saved on the server for their author ([`Tokens::save_draft`]: at most
//! [`DRAFT_BYTES`], [`DRAFTS_PER_PERSON`], the oldest dropped).
//!
//! All of it is kept in the log's database through [`EventLog::with_sql`] and
//! [`EventLog::transaction_sql`]: each statement is written once, for SQLite and PostgreSQL alike.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{SecondsFormat, Utc};
use newsroom_domain::Role;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use newsroom_log::args;
use newsroom_log::feed::StoreError;
use newsroom_log::log::EventLog;
use newsroom_log::sql::{OptionalRow, Sql};

const PREFIX: &str = "nr_";

/// Who is making a request, once their token checked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub token_id: String,
    pub name: String,
    pub role: Role,
}

/// A token just created: the only time its secret exists in the clear.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub id: String,
    /// The bearer token. Shown once; store it now.
    pub token: String,
    pub role: Role,
    pub name: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .field("role", &self.role)
            .field("name", &self.name)
            .finish()
    }
}

/// The stored form of a bearer token: its SHA-256. Tokens carry 256 random bits, so a fast hash
/// is enough; lookups are by digest.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new bearer token: `prefix` + 32 random bytes, base64url.
pub fn generate_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The token registry, stored beside the event log (in whichever database holds it).
#[derive(Debug, Clone)]
pub struct Tokens {
    store: EventLog,
}

/// Serialises first-admin creation across processes on PostgreSQL.
const BOOTSTRAP_LOCK: i64 = 0x6e72_5f61_646d_696e;

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Tokens {
    pub fn new(store: impl Into<EventLog>) -> Self {
        Self {
            store: store.into(),
        }
    }

    fn issue(role: Role, name: String) -> IssuedToken {
        IssuedToken {
            id: Uuid::now_v7().to_string(),
            token: generate_token(PREFIX),
            role,
            name,
        }
    }

    /// Creates a token for `name` with `role`.
    pub async fn create(&self, role: Role, name: String) -> Result<IssuedToken, StoreError> {
        let issued = Self::issue(role, name);
        let row = issued.clone();
        self.store.with_sql(move |db| insert(db, &row)).await?;
        Ok(issued)
    }

    /// Creates the first admin token, if no admin token exists yet; returns it so that it can be
    /// shown once.
    pub async fn bootstrap_admin(&self) -> Result<Option<IssuedToken>, StoreError> {
        const LIVE_ADMINS: &str =
            "SELECT COUNT(*) FROM tokens WHERE role = 'admin' AND revoked_at IS NULL";
        self.store
            .transaction_sql(Some(BOOTSTRAP_LOCK), |db| {
                let admins: i64 = db.query_row(LIVE_ADMINS, args![], |r| r.get(0))?;
                if admins > 0 {
                    return Ok(None);
                }
                let issued = Self::issue(Role::Admin, "first admin".into());
                insert(db, &issued)?;
                Ok(Some(issued))
            })
            .await
    }

    /// The principal a bearer token belongs to, if it is known and not revoked.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>, StoreError> {
        if !presented.starts_with(PREFIX) || presented.len() > 128 {
            return Ok(None);
        }
        let wanted = token_digest(presented);
        let row: Option<(String, String, String, Vec<u8>)> = self
            .store
            .with_sql(move |db| {
                Ok(db
                    .query_row(
                        "SELECT id, name, role, hash FROM tokens
                         WHERE hash = ?1 AND revoked_at IS NULL",
                        args![&wanted[..]],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?)
            })
            .await?;
        Ok(principal_of(row.and_then(
            |(token_id, name, role, hash)| {
                let same: bool = hash.as_slice().ct_eq(&wanted[..]).into();
                same.then_some((token_id, name, role))
            },
        )))
    }

    /// Whether the token with this id exists and is not revoked: what a connection opened with
    /// it (an alert stream) checks while it stays open.
    pub async fn is_live(&self, id: String) -> Result<bool, StoreError> {
        const LIVE: &str = "SELECT COUNT(*) FROM tokens WHERE id = ?1 AND revoked_at IS NULL";
        self.store
            .with_sql(move |db| Ok(db.query_row(LIVE, args![id], |r| r.get::<i64>(0))? > 0))
            .await
    }

    /// Revokes a token; it stops working at once. Returns whether a live token was revoked.
    pub async fn revoke(&self, id: String) -> Result<bool, StoreError> {
        self.store
            .with_sql(move |db| {
                Ok(db.execute(
                    "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    args![id, now_text()],
                )? == 1)
            })
            .await
    }
}

/// The prefix of a desk session's secret.
const SESSION_PREFIX: &str = "ns_";

/// How long a desk session lasts: a long shift.
pub const SESSION_HOURS: i64 = 12;

/// Shortest and longest password taken (Argon2id's work does not depend on the length, but a
/// bound keeps a request's body small).
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 12..=256;

/// Why a password was not set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "a sign-in name is 3 to 64 letters, digits, dots, dashes, underscores or @, without spaces"
    )]
    BadLogin,
    #[error("that sign-in name is someone else's")]
    LoginTaken,
    #[error("a password is 12 to 256 characters, and not the sign-in name")]
    BadPassword,
    #[error("the token is revoked")]
    Revoked,
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A sign-in name as stored: trimmed, lower case; `None` if it breaks the rule
/// ([`PasswordError::BadLogin`]).
pub fn normalise_login(raw: &str) -> Option<String> {
    let login = raw.trim().to_lowercase();
    let ok = (3..=64).contains(&login.chars().count())
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    ok.then_some(login)
}

/// The Argon2id hash of `password` (PHC string, a fresh random salt, the crate's default cost:
/// 19 MiB, two passes), computed off the async runtime.
async fn hash_password(password: String) -> Result<String, PasswordError> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| PasswordError::Hash(e.to_string()))?
}

/// A hash no password is known to match, with the cost of real ones: what an unknown sign-in name
/// is checked against.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1N8e0Oq2GCQdWyfzAcJ9pjA8Qx7Z8mY2m8mO7S1e2Ns";

/// Whether `password` matches the stored hash (constant time, off the async runtime). With no
/// hash, a made-up one is checked all the same, so an unknown name takes as long as a wrong
/// password.
async fn verify_password(hash: Option<String>, password: String) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let stored = hash.unwrap_or_else(|| DECOY.to_owned());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        let matched = argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        known && matched
    })
    .await
    .unwrap_or(false)
}

type PrincipalRow = (String, String, String);

fn principal_of(row: Option<PrincipalRow>) -> Option<Principal> {
    row.and_then(|(token_id, name, role)| {
        Some(Principal {
            token_id,
            name,
            role: role.parse().ok()?,
        })
    })
}

impl Tokens {
    /// Sets the sign-in name and password of a live token's holder (replacing any earlier
    /// ones); returns the name as stored.
    pub async fn set_password(
        &self,
        token_id: &str,
        login: &str,
        password: &str,
    ) -> Result<String, PasswordError> {
        let login = normalise_login(login).ok_or(PasswordError::BadLogin)?;
        if !PASSWORD_CHARS.contains(&password.chars().count())
            || password.trim().to_lowercase() == login
        {
            return Err(PasswordError::BadPassword);
        }
        if !self.is_live(token_id.to_owned()).await? {
            return Err(PasswordError::Revoked);
        }
        let hash = hash_password(password.to_owned()).await?;
        let (id, name) = (token_id.to_owned(), login.clone());
        let holder: Option<String> = self
            .store
            .transaction_sql(None, move |db| {
                let holder: Option<String> = db
                    .query_row(
                        "SELECT token_id FROM staff_passwords WHERE login = ?1",
                        args![name],
                        |r| r.get(0),
                    )
                    .optional()?;
                if holder.as_ref().is_none_or(|h| *h == id) {
                    db.execute(
                        "INSERT INTO staff_passwords (token_id, login, hash, set_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (token_id) DO UPDATE SET login = excluded.login,
                            hash = excluded.hash, set_at = excluded.set_at",
                        args![id, name, hash, now_text()],
                    )?;
                }
                Ok(holder.filter(|h| *h != id))
            })
            .await?;
        match holder {
            Some(_) => Err(PasswordError::LoginTaken),
            None => Ok(login),
        }
    }

    /// The sign-in name of a token's holder, if they set a password.
    pub async fn login_of(&self, token_id: &str) -> Result<Option<String>, StoreError> {
        let id = token_id.to_owned();
        self.store
            .with_sql(move |db| {
                Ok(db
                    .query_row(
                        "SELECT login FROM staff_passwords WHERE token_id = ?1",
                        args![id],
                        |r| r.get(0),
                    )
                    .optional()?)
            })
            .await
    }

    /// The principal whose sign-in name and password these are, if their token is live.
    pub async fn sign_in_with_password(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<Principal>, StoreError> {
        let found: Option<(String, String, String, String)> = match normalise_login(login) {
            None => None,
            Some(login) => {
                self.store
                    .with_sql(move |db| {
                        Ok(db
                            .query_row(
                                "SELECT p.hash, t.id, t.name, t.role FROM staff_passwords p
                                 JOIN tokens t ON t.id = p.token_id
                                 WHERE p.login = ?1 AND t.revoked_at IS NULL",
                                args![login],
                                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                            )
                            .optional()?)
                    })
                    .await?
            }
        };
        let (hash, row) = match found {
            Some((hash, id, name, role)) => (Some(hash), Some((id, name, role))),
            None => (None, None),
        };
        if !verify_password(hash, password.to_owned()).await {
            return Ok(None);
        }
        Ok(principal_of(row))
    }

    /// Opens a desk session for a token's holder: a fresh secret (shown once, kept in the desk's
    /// cookie; only its digest is stored) valid for [`SESSION_HOURS`] while the token is live.
    /// Sessions that ran out are cleared on the way.
    pub async fn open_session(&self, token_id: &str) -> Result<String, StoreError> {
        let secret = generate_token(SESSION_PREFIX);
        let digest = token_digest(&secret).to_vec();
        let now = now_text();
        let expires = (Utc::now() + chrono::Duration::hours(SESSION_HOURS))
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let id = token_id.to_owned();
        self.store
            .with_sql(move |db| {
                db.execute(
                    "DELETE FROM desk_sessions WHERE expires_at <= ?1",
                    args![now],
                )?;
                db.execute(
                    "INSERT INTO desk_sessions (hash, token_id, expires_at) VALUES (?1, ?2, ?3)",
                    args![digest, id, expires],
                )?;
                Ok(())
            })
            .await?;
        Ok(secret)
    }

    /// The principal of a desk session's secret, while it lasts and its token is live.
    pub async fn session(&self, presented: &str) -> Result<Option<Principal>, StoreError> {
        if !presented.starts_with(SESSION_PREFIX) || presented.len() > 128 {
            return Ok(None);
        }
        let digest = token_digest(presented).to_vec();
        let now = now_text();
        let row: Option<PrincipalRow> = self
            .store
            .with_sql(move |db| {
                Ok(db
                    .query_row(
                        "SELECT t.id, t.name, t.role FROM desk_sessions s
                         JOIN tokens t ON t.id = s.token_id
                         WHERE s.hash = ?1 AND s.expires_at > ?2 AND t.revoked_at IS NULL",
                        args![digest, now],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?)
            })
            .await?;
        Ok(principal_of(row))
    }

    /// Ends a desk session (signing out).
    pub async fn close_session(&self, presented: &str) -> Result<(), StoreError> {
        let digest = token_digest(presented).to_vec();
        self.store
            .with_sql(move |db| {
                db.execute("DELETE FROM desk_sessions WHERE hash = ?1", args![digest])?;
                Ok(())
            })
            .await
    }
}

/// The most a saved draft may hold, in bytes (a filing form at its limits, URL-encoded).
pub const DRAFT_BYTES: usize = 256 * 1024;
/// The most drafts one person keeps; saving another drops their oldest.
pub const DRAFTS_PER_PERSON: i64 = 20;

impl Tokens {
    /// Saves what `token_id`'s holder has typed into the form `key` (a desk form's fields,
    /// URL-encoded, without its CSRF value), replacing the draft saved before; at most
    /// [`DRAFTS_PER_PERSON`] are kept, the oldest dropped. Bounded by the caller to
    /// [`DRAFT_BYTES`].
    pub async fn save_draft(
        &self,
        token_id: &str,
        key: &str,
        fields: &str,
    ) -> Result<(), StoreError> {
        // (Nanoseconds: two saves in one second still read back newest first.)
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
        let (id, key, fields) = (token_id.to_owned(), key.to_owned(), fields.to_owned());
        self.store
            .transaction_sql(None, move |db| {
                db.execute(
                    "INSERT INTO desk_drafts (token_id, draft_key, fields, saved_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (token_id, draft_key) DO UPDATE SET
                         fields = excluded.fields, saved_at = excluded.saved_at",
                    args![id, key, fields, now],
                )?;
                db.execute(
                    "DELETE FROM desk_drafts WHERE token_id = ?1 AND draft_key NOT IN
                         (SELECT draft_key FROM desk_drafts WHERE token_id = ?1
                          ORDER BY saved_at DESC LIMIT ?2)",
                    args![id, DRAFTS_PER_PERSON],
                )?;
                Ok(())
            })
            .await
    }

    /// The draft `token_id`'s holder saved of the form `key`, and when (RFC 3339).
    pub async fn draft(
        &self,
        token_id: &str,
        key: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let (id, key) = (token_id.to_owned(), key.to_owned());
        self.store
            .with_sql(move |db| {
                Ok(db
                    .query_row(
                        "SELECT fields, saved_at FROM desk_drafts
                         WHERE token_id = ?1 AND draft_key = ?2",
                        args![id, key],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?)
            })
            .await
    }

    /// Drops the draft of the form `key` (it was sent and carried out).
    pub async fn discard_draft(&self, token_id: &str, key: &str) -> Result<(), StoreError> {
        let (id, key) = (token_id.to_owned(), key.to_owned());
        self.store
            .with_sql(move |db| {
                db.execute(
                    "DELETE FROM desk_drafts WHERE token_id = ?1 AND draft_key = ?2",
                    args![id, key],
                )?;
                Ok(())
            })
            .await
    }
}

fn insert(db: &dyn Sql, token: &IssuedToken) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        args![
            token.id,
            token.name,
            token.role.as_str(),
            &token_digest(&token.token)[..],
            now_text(),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_are_argon2id_and_an_unknown_name_costs_a_real_check() {
        use argon2::password_hash::PasswordHash;
        let decoy = PasswordHash::new(DECOY).expect("the decoy parses, so it is really checked");
        let hash = hash_password("correct horse battery".into()).await.unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(
            parsed.params, decoy.params,
            "the decoy costs what a real hash costs"
        );
        assert!(verify_password(Some(hash.clone()), "correct horse battery".into()).await);
        assert!(!verify_password(Some(hash), "correct horse batter".into()).await);
        assert!(!verify_password(None, "correct horse battery".into()).await);
    }

    #[test]
    fn sign_in_names_are_folded_and_checked() {
        assert_eq!(
            normalise_login("  Rita.Reporter "),
            Some("rita.reporter".into())
        );
        assert_eq!(normalise_login("ed@newsroom"), Some("ed@newsroom".into()));
        for bad in ["ab", "rita reporter", "ríta", "a/b", &"x".repeat(65)] {
            assert_eq!(normalise_login(bad), None, "{bad}");
        }
    }
}
