//! A PostgreSQL database of one test or bench run alone, on the machine's server.

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
        let mut url = url::Url::parse(admin_url)?;
        url.set_path(&format!("/{name}"));
        Ok(Self {
            url: url.to_string(),
            admin_url: admin_url.to_owned(),
            name,
        })
    }
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
