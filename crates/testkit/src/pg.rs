//! A PostgreSQL database of one test or bench run alone, on the machine's server: fresh and
//! dropped at the end ([`Database`]), or kept under a name of its own between runs of a bench
//! ([`kept_database`]).

use uuid::Uuid;

use crate::Res;

/// A fresh database on the server at `admin_url`, dropped (`WITH (FORCE)`) when this is.
#[derive(Debug)]
pub struct Database {
    /// The new database's URL.
    pub url: String,
    admin_url: String,
    name: String,
}

impl Database {
    /// Creates the database `{prefix}_{a fresh uuid}`.
    pub async fn create(admin_url: &str, prefix: &str) -> Res<Self> {
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await?;
        admin.close().await;
        Ok(Self {
            url: url_of(admin_url, &name)?,
            admin_url: admin_url.to_owned(),
            name,
        })
    }
}

/// The URL of the database `name` on the server at `admin_url`, created if it is not there; it
/// is never dropped (a bench keeping what it filled for its next run). `name` is an identifier
/// of the caller's own: lower-case letters, digits and `_`.
pub async fn kept_database(admin_url: &str, name: &str) -> Res<String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(
            format!("{name:?} is not a database name of lower-case letters, digits and _").into(),
        );
    }
    let admin = sqlx::PgPool::connect(admin_url).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&admin)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await?;
    }
    admin.close().await;
    url_of(admin_url, name)
}

fn url_of(admin_url: &str, name: &str) -> Res<String> {
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        crate::on_own_thread(move || async move {
            match sqlx::PgPool::connect(&admin_url).await {
                Ok(admin) => {
                    if let Err(e) =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&admin)
                            .await
                    {
                        eprintln!("  could not drop database {name}: {e}");
                    }
                }
                Err(e) => eprintln!("  could not drop database {name}: {e}"),
            }
        });
    }
}
