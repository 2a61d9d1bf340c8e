//! Where the views live: a SQLite file of their own (`views.db`), so that projecting never
//! competes with the event log's writer for its lock.
//!
//! Two views, each with a checkpoint row written in the same transaction as the view's rows:
//! `stories` (front page line, timeline, claims: one JSON document per story, plus the rendered
//! API body) and `actors` (one row per actor × visible development). A view whose schema version
//! differs from the code's is rebuilt from the log on start.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

use newsroom_command::{DbError, SqliteDb, Synchronous};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use rusqlite_migration::{Migrations, M};
use uuid::Uuid;

use crate::model::{ActorEntry, FrontPageEntry, StoryView};

/// A view that can be rebuilt on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewName {
    Stories,
    Actors,
}

impl ViewName {
    pub const ALL: [ViewName; 2] = [ViewName::Stories, ViewName::Actors];

    pub fn as_str(&self) -> &'static str {
        match self {
            ViewName::Stories => "stories",
            ViewName::Actors => "actors",
        }
    }

    /// The shape version of the view's tables and documents. Bump it when either changes: the
    /// view is then rebuilt from the log on the next start.
    pub fn schema_version(&self) -> i64 {
        match self {
            // 2: developments remember the position that published them.
            ViewName::Stories => 2,
            ViewName::Actors => 2,
        }
    }

    fn tables(&self, suffix: &str) -> String {
        match self {
            ViewName::Stories => format!(
                "CREATE TABLE stories{suffix} (
                    id       TEXT PRIMARY KEY,
                    slug     TEXT NOT NULL UNIQUE,
                    headline TEXT NOT NULL,
                    position INTEGER NOT NULL,
                    sort_key TEXT NOT NULL,
                    entry    TEXT NOT NULL,
                    doc      TEXT NOT NULL,
                    body     TEXT NOT NULL
                 );
                 CREATE INDEX stories{suffix}_front ON stories{suffix} (sort_key DESC, position DESC);"
            ),
            ViewName::Actors => format!(
                "CREATE TABLE actor_entries{suffix} (
                    actor_key      TEXT NOT NULL,
                    development_id TEXT NOT NULL,
                    story_id       TEXT NOT NULL,
                    occurred_at    TEXT NOT NULL,
                    position       INTEGER NOT NULL,
                    entry          TEXT NOT NULL,
                    PRIMARY KEY (actor_key, development_id)
                 );
                 CREATE INDEX actor_entries{suffix}_development ON actor_entries{suffix} (development_id);
                 CREATE INDEX actor_entries{suffix}_newest
                    ON actor_entries{suffix} (actor_key, occurred_at DESC, position DESC);"
            ),
        }
    }

    fn table(&self) -> &'static str {
        match self {
            ViewName::Stories => "stories",
            ViewName::Actors => "actor_entries",
        }
    }
}

impl std::str::FromStr for ViewName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stories" => Ok(ViewName::Stories),
            "actors" => Ok(ViewName::Actors),
            _ => Err(format!("unknown view `{s}`: stories or actors")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("view database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("a stored view cannot be read: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the view task stopped: {0}")]
    Task(String),
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(
        "CREATE TABLE checkpoints (
            view           TEXT PRIMARY KEY,
            position       INTEGER NOT NULL,
            schema_version INTEGER NOT NULL
         );",
    )])
}

/// Rendered story bodies kept in memory, with the position each reflects.
type BodyCache = Arc<Mutex<lru::LruCache<Uuid, (i64, Bytes)>>>;

/// The views' database. Cheap to clone.
#[derive(Clone)]
pub struct ViewStore {
    db: SqliteDb,
    bodies: BodyCache,
}

impl std::fmt::Debug for ViewStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewStore")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// What a stored view's checkpoint says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: i64,
    pub schema_version: i64,
}

impl ViewStore {
    pub fn open(path: &Path) -> Result<Self, ViewError> {
        // Views can always be rebuilt from the log: losing the last commits on power loss only
        // means applying them again.
        let db = SqliteDb::open(path, &migrations(), Synchronous::Normal, 8)?;
        let store = Self {
            db,
            bodies: Arc::new(Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(256).expect("non-zero"),
            ))),
        };
        store.create_missing_tables()?;
        Ok(store)
    }

    fn create_missing_tables(&self) -> Result<(), ViewError> {
        let mut conn = Connection::open(self.db.path())?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for view in ViewName::ALL {
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [view.table()],
                |r| r.get(0),
            )?;
            if !exists {
                // Fresh tables are "at position 0" of the right shape: the projector fills them.
                tx.execute_batch(&view.tables(""))?;
                set_checkpoint(&tx, view, 0)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// Runs `f` on a pooled read connection, off the async runtime.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ViewError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ViewError> + Send + 'static,
    {
        self.db.read(f).await
    }

    /// Runs `f` in a write transaction on the single writer connection, off the runtime.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ViewError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, ViewError> + Send + 'static,
    {
        self.db.write(f).await
    }

    pub async fn checkpoints(&self) -> Result<Vec<(ViewName, Checkpoint)>, ViewError> {
        self.read(read_checkpoints).await
    }

    /// The position every view has reached.
    pub async fn position(&self) -> Result<i64, ViewError> {
        Ok(self
            .checkpoints()
            .await?
            .iter()
            .map(|(_, c)| c.position)
            .min()
            .unwrap_or(0))
    }

    /// The front page, newest development first.
    pub async fn front_page(&self, limit: usize) -> Result<Vec<FrontPageEntry>, ViewError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT entry FROM stories ORDER BY sort_key DESC, position DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |r| r.get::<_, String>(0))?;
            rows.map(|r| Ok(serde_json::from_str(&r?)?)).collect()
        })
        .await
    }

    /// A story's id, by id or slug.
    pub async fn resolve(&self, id_or_slug: String) -> Result<Option<Uuid>, ViewError> {
        self.read(move |c| {
            let id: Option<String> = c
                .prepare_cached("SELECT id FROM stories WHERE id = ?1 OR slug = ?1")?
                .query_row([id_or_slug], |r| r.get(0))
                .optional()?;
            Ok(id.and_then(|s| Uuid::parse_str(&s).ok()))
        })
        .await
    }

    /// A story's view document.
    pub async fn story(&self, id: Uuid) -> Result<Option<StoryView>, ViewError> {
        self.read(move |c| load_story(c, id)).await
    }

    /// A story's rendered API body, by id or slug, with the story's id and the position the body
    /// reflects. Bodies are kept in memory while their story is unchanged, so a hot story is
    /// served without copying its body out of SQLite.
    pub async fn story_body_by(
        &self,
        id_or_slug: String,
    ) -> Result<Option<(Uuid, i64, Bytes)>, ViewError> {
        let cache = self.bodies.clone();
        self.read(move |c| {
            let row: Option<(String, i64)> = c
                .prepare_cached("SELECT id, position FROM stories WHERE id = ?1 OR slug = ?1")?
                .query_row([&id_or_slug], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((id, position)) = row else {
                return Ok(None);
            };
            let Ok(uuid) = Uuid::parse_str(&id) else {
                return Ok(None);
            };
            if let Some((at, body)) = cache.lock().expect("body cache").get(&uuid) {
                if *at == position {
                    return Ok(Some((uuid, position, body.clone())));
                }
            }
            let body: Option<(i64, Vec<u8>)> = c
                .prepare_cached("SELECT position, CAST(body AS BLOB) FROM stories WHERE id = ?1")?
                .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((position, body)) = body else {
                return Ok(None);
            };
            let body = Bytes::from(body);
            cache
                .lock()
                .expect("body cache")
                .put(uuid, (position, body.clone()));
            Ok(Some((uuid, position, body)))
        })
        .await
    }

    /// An actor's entries, newest first, with each story's current slug and headline.
    pub async fn actor(&self, key: String, limit: usize) -> Result<Vec<ActorEntry>, ViewError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT a.entry, s.slug, s.headline FROM actor_entries a
                 JOIN stories s ON s.id = a.story_id
                 WHERE a.actor_key = ?1
                 ORDER BY a.occurred_at DESC, a.position DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![key, limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            rows.map(|r| {
                let (entry, slug, headline) = r?;
                let mut entry: ActorEntry = serde_json::from_str(&entry)?;
                entry.story_slug = slug;
                entry.story_headline = headline;
                Ok(entry)
            })
            .collect()
        })
        .await
    }
}

pub(crate) fn read_checkpoints(c: &Connection) -> Result<Vec<(ViewName, Checkpoint)>, ViewError> {
    let mut out = Vec::new();
    for view in ViewName::ALL {
        let cp = c
            .prepare_cached("SELECT position, schema_version FROM checkpoints WHERE view = ?1")?
            .query_row([view.as_str()], |r| {
                Ok(Checkpoint {
                    position: r.get(0)?,
                    schema_version: r.get(1)?,
                })
            })
            .optional()?
            .unwrap_or(Checkpoint {
                position: 0,
                schema_version: 0,
            });
        out.push((view, cp));
    }
    Ok(out)
}

pub(crate) fn load_story(c: &Connection, id: Uuid) -> Result<Option<StoryView>, ViewError> {
    let doc: Option<String> = c
        .prepare_cached("SELECT doc FROM stories WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    doc.map(|d| serde_json::from_str(&d).map_err(ViewError::from))
        .transpose()
}

/// The sort key of the front page: when the newest published development was published, or
/// when the story was opened.
fn sort_key(entry: &FrontPageEntry, view: &StoryView) -> String {
    entry
        .last_recorded_at
        .unwrap_or(view.opened_at)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Writes a story's row in the `stories` view (table name with `suffix`, for rebuilds).
pub(crate) fn write_story(
    tx: &Connection,
    view: &StoryView,
    suffix: &str,
) -> Result<(), ViewError> {
    let entry = view.front_page_entry();
    let body = crate::api::story_body(view);
    tx.prepare_cached(&format!(
        "INSERT INTO stories{suffix} (id, slug, headline, position, sort_key, entry, doc, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, headline = excluded.headline,
            position = excluded.position, sort_key = excluded.sort_key, entry = excluded.entry,
            doc = excluded.doc, body = excluded.body"
    ))?
    .execute(params![
        view.id.to_string(),
        view.slug,
        view.headline,
        view.position,
        sort_key(&entry, view),
        serde_json::to_string(&entry)?,
        serde_json::to_string(view)?,
        body,
    ])?;
    Ok(())
}

/// Rewrites the `actors` view rows of the given developments of a story.
pub(crate) fn write_actor_entries(
    tx: &Connection,
    view: &StoryView,
    developments: &[Uuid],
    suffix: &str,
) -> Result<(), ViewError> {
    let mut delete = tx.prepare_cached(&format!(
        "DELETE FROM actor_entries{suffix} WHERE development_id = ?1"
    ))?;
    let mut insert = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO actor_entries{suffix}
            (actor_key, development_id, story_id, occurred_at, position, entry)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    ))?;
    for id in developments {
        delete.execute([id.to_string()])?;
        let Some(d) = view.development(*id).filter(|d| d.is_visible()) else {
            continue;
        };
        for actor in &d.actors {
            let entry = ActorEntry {
                actor: actor.clone(),
                story_id: view.id,
                // Filled from the stories view when read, so a new headline needs no rewrite.
                story_slug: String::new(),
                story_headline: String::new(),
                development: d.clone(),
            };
            insert.execute(params![
                actor.key(),
                id.to_string(),
                view.id.to_string(),
                d.occurred_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                d.position,
                serde_json::to_string(&entry)?,
            ])?;
        }
    }
    Ok(())
}

pub(crate) fn set_checkpoint(
    tx: &Connection,
    view: ViewName,
    position: i64,
) -> Result<(), ViewError> {
    tx.prepare_cached(
        "INSERT INTO checkpoints (view, position, schema_version) VALUES (?1, ?2, ?3)
         ON CONFLICT (view) DO UPDATE SET position = excluded.position,
            schema_version = excluded.schema_version",
    )?
    .execute(params![view.as_str(), position, view.schema_version()])?;
    Ok(())
}

/// Creates empty `_next` tables for a rebuild of `view`.
pub(crate) fn create_next(tx: &Connection, view: ViewName) -> Result<(), ViewError> {
    tx.execute_batch(&format!(
        "DROP TABLE IF EXISTS {table}_next; {create}",
        table = view.table(),
        create = view.tables("_next")
    ))?;
    Ok(())
}

/// Swaps a rebuilt view in: drops the live tables and renames `_next` over them. Runs inside the
/// caller's transaction together with the new checkpoint, so readers see old or new, never a mix.
pub(crate) fn swap_in(tx: &Connection, view: ViewName, position: i64) -> Result<(), ViewError> {
    let table = view.table();
    tx.execute_batch(&format!(
        "DROP TABLE IF EXISTS {table};
         ALTER TABLE {table}_next RENAME TO {table};"
    ))?;
    // Index names keep their `_next` suffix after a rename; give them their usual names back.
    let indexes: Vec<String> = tx
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND name LIKE '%_next_%'")?
        .query_map([table], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for index in indexes {
        let sql: String = tx.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
            [&index],
            |r| r.get(0),
        )?;
        let renamed = index.replacen("_next_", "_", 1);
        tx.execute_batch(&format!(
            "DROP INDEX {index}; {}",
            sql.replacen(&index, &renamed, 1)
        ))?;
    }
    set_checkpoint(tx, view, position)
}
