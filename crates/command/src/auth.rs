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
use sqlx::Connection;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::log::EventLog;
use crate::store::StoreError;

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
        match &self.store {
            EventLog::Sqlite(s) => {
                let row = issued.clone();
                s.with_conn(move |conn| insert(conn, &row)).await?;
            }
            EventLog::Postgres(s) => pg_insert(&mut *s.acquire().await?, &issued).await?,
        }
        Ok(issued)
    }

    /// Creates the first admin token, if no admin token exists yet; returns it so that it can be
    /// shown once.
    pub async fn bootstrap_admin(&self) -> Result<Option<IssuedToken>, StoreError> {
        const LIVE_ADMINS: &str =
            "SELECT COUNT(*) FROM tokens WHERE role = 'admin' AND revoked_at IS NULL";
        match &self.store {
            EventLog::Sqlite(s) => {
                s.with_conn(|conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let admins: i64 = tx.query_row(LIVE_ADMINS, [], |r| r.get(0))?;
                    if admins > 0 {
                        return Ok(None);
                    }
                    let issued = Self::issue(Role::Admin, "first admin".into());
                    insert(&tx, &issued)?;
                    tx.commit()?;
                    Ok(Some(issued))
                })
                .await
            }
            EventLog::Postgres(s) => {
                let mut conn = s.acquire().await?;
                let mut tx = conn.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(BOOTSTRAP_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let admins: i64 = sqlx::query_scalar(LIVE_ADMINS).fetch_one(&mut *tx).await?;
                if admins > 0 {
                    return Ok(None);
                }
                let issued = Self::issue(Role::Admin, "first admin".into());
                pg_insert(&mut *tx, &issued).await?;
                tx.commit().await?;
                Ok(Some(issued))
            }
        }
    }

    /// The principal a bearer token belongs to, if it is known and not revoked.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>, StoreError> {
        if !presented.starts_with(PREFIX) || presented.len() > 128 {
            return Ok(None);
        }
        let wanted = token_digest(presented);
        let row: Option<(String, String, String, Vec<u8>)> = match &self.store {
            EventLog::Sqlite(s) => {
                s.with_conn(move |conn| {
                    Ok(conn
                        .prepare_cached(
                            "SELECT id, name, role, hash FROM tokens
                             WHERE hash = ?1 AND revoked_at IS NULL",
                        )?
                        .query_row([&wanted[..]], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                        })
                        .optional()?)
                })
                .await?
            }
            EventLog::Postgres(s) => sqlx::query_as(
                "SELECT id, name, role, hash FROM tokens WHERE hash = $1 AND revoked_at IS NULL",
            )
            .bind(&wanted[..])
            .fetch_optional(&mut *s.acquire().await?)
            .await?,
        };
        Ok(row.and_then(|(token_id, name, role, hash)| {
            let same: bool = hash.as_slice().ct_eq(&wanted[..]).into();
            Some(Principal {
                token_id,
                name,
                role: role.parse().ok()?,
            })
            .filter(|_| same)
        }))
    }

    /// Whether the token with this id exists and is not revoked: what a connection opened with
    /// it (an alert stream) checks while it stays open.
    pub async fn is_live(&self, id: String) -> Result<bool, StoreError> {
        const LIVE: &str = "SELECT COUNT(*) FROM tokens WHERE id = ?1 AND revoked_at IS NULL";
        match &self.store {
            EventLog::Sqlite(s) => {
                s.with_conn(move |conn| {
                    Ok(conn
                        .prepare_cached(LIVE)?
                        .query_row([&id], |r| r.get::<_, i64>(0))?
                        > 0)
                })
                .await
            }
            EventLog::Postgres(s) => Ok(sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM tokens WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .fetch_one(&mut *s.acquire().await?)
            .await?
                > 0),
        }
    }

    /// Revokes a token; it stops working at once. Returns whether a live token was revoked.
    pub async fn revoke(&self, id: String) -> Result<bool, StoreError> {
        match &self.store {
            EventLog::Sqlite(s) => {
                s.with_conn(move |conn| {
                    Ok(conn.execute(
                        "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                        params![id, now_text()],
                    )? == 1)
                })
                .await
            }
            EventLog::Postgres(s) => Ok(sqlx::query(
                "UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(now_text())
            .execute(&mut *s.acquire().await?)
            .await?
            .rows_affected()
                == 1),
        }
    }
}

async fn pg_insert<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    token: &IssuedToken,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tokens (id, name, role, hash, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&token.id)
    .bind(&token.name)
    .bind(token.role.as_str())
    .bind(&token_digest(&token.token)[..])
    .bind(now_text())
    .execute(executor)
    .await?;
    Ok(())
}

fn insert(conn: &rusqlite::Connection, token: &IssuedToken) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            token.id,
            token.name,
            token.role.as_str(),
            &token_digest(&token.token)[..],
            now_text(),
        ],
    )?;
    Ok(())
}
