//! API tokens: who may write, and as what.
//!
//! A token is 32 random bytes shown once as `nr_<base64url>`; only its SHA-256 digest is stored.
//! A presented token is hashed and looked up by digest, and the stored digest is compared in
//! constant time. Tokens are never logged; `Debug` of a freshly issued token redacts the secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{SecondsFormat, Utc};
use newsroom_domain::Role;
use rand::RngCore;
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::store::{SqliteStore, StoreError};

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

/// The token registry, stored beside the event log.
#[derive(Debug, Clone)]
pub struct Tokens {
    store: SqliteStore,
}

impl Tokens {
    pub fn new(store: SqliteStore) -> Self {
        Self { store }
    }

    /// Creates a token for `name` with `role`.
    pub async fn create(&self, role: Role, name: String) -> Result<IssuedToken, StoreError> {
        let issued = IssuedToken {
            id: Uuid::now_v7().to_string(),
            token: generate_token(PREFIX),
            role,
            name,
        };
        let row = issued.clone();
        self.store
            .with_conn(move |conn| {
                insert(conn, &row)?;
                Ok(())
            })
            .await?;
        Ok(issued)
    }

    /// Creates the first admin token, if no admin token exists yet; returns it so that it can be
    /// shown once.
    pub async fn bootstrap_admin(&self) -> Result<Option<IssuedToken>, StoreError> {
        self.store
            .with_conn(|conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let admins: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM tokens WHERE role = 'admin' AND revoked_at IS NULL",
                    [],
                    |r| r.get(0),
                )?;
                if admins > 0 {
                    return Ok(None);
                }
                let issued = IssuedToken {
                    id: Uuid::now_v7().to_string(),
                    token: generate_token(PREFIX),
                    role: Role::Admin,
                    name: "first admin".into(),
                };
                insert(&tx, &issued)?;
                tx.commit()?;
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
        self.store
            .with_conn(move |conn| {
                let row = conn
                    .prepare_cached(
                        "SELECT id, name, role, hash FROM tokens
                         WHERE hash = ?1 AND revoked_at IS NULL",
                    )?
                    .query_row([&wanted[..]], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Vec<u8>>(3)?,
                        ))
                    })
                    .optional()?;
                Ok(row.and_then(|(token_id, name, role, hash)| {
                    let same: bool = hash.as_slice().ct_eq(&wanted[..]).into();
                    Some(Principal {
                        token_id,
                        name,
                        role: role.parse().ok()?,
                    })
                    .filter(|_| same)
                }))
            })
            .await
    }

    /// Revokes a token; it stops working at once. Returns whether a live token was revoked.
    pub async fn revoke(&self, id: String) -> Result<bool, StoreError> {
        self.store
            .with_conn(move |conn| {
                Ok(conn.execute(
                    "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    params![id, Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)],
                )? == 1)
            })
            .await
    }
}

fn insert(conn: &rusqlite::Connection, token: &IssuedToken) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            token.id,
            token.name,
            token.role.as_str(),
            &token_digest(&token.token)[..],
            Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        ],
    )?;
    Ok(())
}
