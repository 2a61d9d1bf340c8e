//! Where the views live: with an embedded (SQLite) log, a SQLite file of their own
//! (`views.db`), so that projecting never competes with the event log's writer for its lock;
//! with a PostgreSQL log, tables in the same database (`pg.rs`), shared by every projector and
//! reader process.
//!
//! Two views, each with a checkpoint row written in the same transaction as the view's rows:
//! `stories` (a row per story — front page line and the story's own fields — and a row per
//! development, each a JSON `DevelopmentView`) and `actors` (one row per actor × visible
//! development, referring to the development's row). Every development is stored once, so a
//! batch writes only the developments it changed. A view whose schema version differs from the
//! code's is rebuilt from the log on start.

use std::num::NonZeroUsize;
use std::path::Path;

use newsroom_command::EventLog;
use sqlx::PgPool;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

use newsroom_command::{DbError, SqliteDb, Synchronous};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use rusqlite_migration::{Migrations, M};
use uuid::Uuid;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{
    ActorEntry, DevelopmentState, DevelopmentView, FrontPageEntry, StoryStatus, StoryView,
};
use crate::pg::PgViews;

/// A view that can be rebuilt on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
            // 3: one row per development instead of a document (and a rendered body) per story.
            ViewName::Stories => 3,
            // 3: rows refer to the development (its position) instead of copying it.
            ViewName::Actors => 3,
        }
    }

    /// The view's tables, each with its `CREATE TABLE` statement for a name suffix (`_next` for
    /// rebuilds) and its secondary indexes.
    fn tables(&self) -> &'static [ViewTable] {
        match self {
            ViewName::Stories => &[
                ViewTable {
                    name: "stories",
                    // `head`: the story's own fields (a `StoryView` without its developments).
                    columns: "(
                        id       TEXT PRIMARY KEY,
                        slug     TEXT NOT NULL UNIQUE,
                        headline TEXT NOT NULL,
                        position INTEGER NOT NULL,
                        sort_key TEXT NOT NULL,
                        entry    TEXT NOT NULL,
                        head     TEXT NOT NULL
                    )",
                    indexes: &[ViewIndex {
                        name: "stories_front",
                        on: "(sort_key DESC, position DESC)",
                        while_loading: false,
                    }],
                },
                ViewTable {
                    name: "developments",
                    // Keyed by the position of the event that recorded the development: a
                    // rebuild appends rows in key order, and a story's developments come out of
                    // the `story_id` index in recording order.
                    columns: "(
                        position INTEGER PRIMARY KEY,
                        story_id TEXT NOT NULL,
                        state    TEXT NOT NULL,
                        filed_by TEXT,
                        doc      TEXT NOT NULL
                    )",
                    // Filled while a rebuild loads the rows (small, in the page cache): built
                    // afterwards, each would read the whole table back.
                    indexes: &[
                        ViewIndex {
                            name: "developments_story",
                            on: "(story_id)",
                            while_loading: true,
                        },
                        ViewIndex {
                            name: "developments_pending",
                            on: "(story_id) WHERE state = 'pending_review'",
                            while_loading: true,
                        },
                    ],
                },
            ],
            ViewName::Actors => &[ViewTable {
                name: "actor_entries",
                // A reference to the development (`developments.position`), not a copy.
                columns: "(
                    position    INTEGER NOT NULL,
                    actor_key   TEXT NOT NULL,
                    occurred_at TEXT NOT NULL,
                    name        TEXT NOT NULL,
                    PRIMARY KEY (position, actor_key)
                ) WITHOUT ROWID",
                indexes: &[ViewIndex {
                    name: "actor_entries_newest",
                    on: "(actor_key, occurred_at DESC, position DESC)",
                    while_loading: false,
                }],
            }],
        }
    }
}

/// One table of a view.
struct ViewTable {
    name: &'static str,
    columns: &'static str,
    indexes: &'static [ViewIndex],
}

/// A secondary index of a view's table.
struct ViewIndex {
    name: &'static str,
    /// Its columns (and `WHERE` clause), as in `CREATE INDEX … ON table <on>`.
    on: &'static str,
    /// Whether a rebuild creates it with the `_next` table, before the rows (else once the
    /// rows are in, when the table is swapped in).
    while_loading: bool,
}

impl ViewIndex {
    fn create(&self, name: &str, table: &str) -> String {
        format!("CREATE INDEX {name} ON {table} {};", self.on)
    }
}

impl ViewTable {
    fn create(&self, suffix: &str) -> String {
        format!("CREATE TABLE {}{suffix} {};", self.name, self.columns)
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
    #[error("view database error: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("view migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("these views are in PostgreSQL; a SQLite connection was asked for")]
    NotSqlite,
}

impl ViewError {
    /// Whether the views' database cannot be reached at the moment (retrying later may work).
    pub fn is_unavailable(&self) -> bool {
        match self {
            ViewError::Postgres(e) => newsroom_command::pg::is_unreachable(e),
            _ => false,
        }
    }
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

/// The page size of a new views database, in bytes.
const PAGE_SIZE: i64 = 16_384;

/// Rendered story bodies kept in memory, with the position each reflects.
type BodyCache = Arc<Mutex<lru::LruCache<Uuid, (i64, Bytes)>>>;

/// The views' database. Cheap to clone.
#[derive(Clone)]
pub struct ViewStore {
    backend: Backend,
    bodies: BodyCache,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqliteDb),
    Postgres(PgViews),
}

impl std::fmt::Debug for ViewStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

fn body_cache() -> BodyCache {
    Arc::new(Mutex::new(lru::LruCache::new(
        NonZeroUsize::new(256).expect("non-zero"),
    )))
}

/// What a stored view's checkpoint says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: i64,
    pub schema_version: i64,
}

impl ViewStore {
    pub fn open(path: &Path) -> Result<Self, ViewError> {
        if !path.exists() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| DbError::Io {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            // A development row is about 1 KB: 16 KB pages hold fifteen of them (4 KB pages only
            // three, a quarter of each page left empty), and a rebuild moves a quarter as many
            // pages through the WAL. The size is fixed when the file is created.
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "page_size", PAGE_SIZE)?;
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
        }
        // Views can always be rebuilt from the log: losing the last commits on power loss only
        // means applying them again.
        let db = SqliteDb::open(path, &migrations(), Synchronous::Normal, 8)?;
        create_missing_tables(path)?;
        Ok(Self {
            backend: Backend::Sqlite(db),
            bodies: body_cache(),
        })
    }

    /// The views in PostgreSQL (the log's database, reached through `pool`), brought up to date.
    pub async fn open_postgres(pool: PgPool) -> Result<Self, ViewError> {
        Ok(Self {
            backend: Backend::Postgres(PgViews::open(pool).await?),
            bodies: body_cache(),
        })
    }

    /// The views beside `log`: in its PostgreSQL database, or in the SQLite file at `path` when
    /// the log is embedded.
    pub async fn beside(log: &EventLog, path: &Path) -> Result<Self, ViewError> {
        match log {
            EventLog::Postgres(store) => Self::open_postgres(store.pool().clone()).await,
            EventLog::Sqlite(_) => Self::open(path),
        }
    }

    /// The PostgreSQL views, if that is where these are.
    pub fn postgres(&self) -> Option<&PgViews> {
        match &self.backend {
            Backend::Postgres(pg) => Some(pg),
            Backend::Sqlite(_) => None,
        }
    }

    fn sqlite(&self) -> Result<&SqliteDb, ViewError> {
        match &self.backend {
            Backend::Sqlite(db) => Ok(db),
            Backend::Postgres(_) => Err(ViewError::NotSqlite),
        }
    }

    /// The SQLite file, if the views are in one.
    pub fn path(&self) -> Option<&Path> {
        self.sqlite().ok().map(SqliteDb::path)
    }

    /// Runs `f` on a pooled read connection of SQLite views, off the async runtime.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ViewError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ViewError> + Send + 'static,
    {
        self.sqlite()?.read(f).await
    }

    /// Runs `f` in a write transaction on the single writer connection of SQLite views, off the
    /// runtime.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ViewError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, ViewError> + Send + 'static,
    {
        self.sqlite()?.write(f).await
    }

    /// Copies the WAL into the database file and empties it (after a rebuild, which commits
    /// without checkpointing). If a reader still needs part of the WAL, SQLite copies what it
    /// can and later checkpoints finish the job. Nothing to do for PostgreSQL views.
    pub async fn checkpoint_wal(&self) -> Result<(), ViewError> {
        let Some(path) = self.path().map(Path::to_owned) else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || {
            let conn = Connection::open(&path)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
        .map_err(|e| ViewError::Task(e.to_string()))?
    }

    pub async fn checkpoints(&self) -> Result<Vec<(ViewName, Checkpoint)>, ViewError> {
        match &self.backend {
            Backend::Sqlite(db) => db.read(read_checkpoints).await,
            Backend::Postgres(pg) => pg.checkpoints().await,
        }
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
        if let Some(pg) = self.postgres() {
            return pg.front_page(limit).await;
        }
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
        if let Some(pg) = self.postgres() {
            return Ok(pg.locate(&id_or_slug).await?.map(|(id, _)| id));
        }
        self.read(move |c| {
            let id: Option<String> = c
                .prepare_cached("SELECT id FROM stories WHERE id = ?1 OR slug = ?1")?
                .query_row([id_or_slug], |r| r.get(0))
                .optional()?;
            Ok(id.and_then(|s| Uuid::parse_str(&s).ok()))
        })
        .await
    }

    /// A story's view, with every development.
    pub async fn story(&self, id: Uuid) -> Result<Option<StoryView>, ViewError> {
        if let Some(pg) = self.postgres() {
            return pg.story(id).await;
        }
        self.read(move |c| {
            // One read transaction: the story's row and its developments as of one commit.
            let tx = c.unchecked_transaction()?;
            load_story(&tx, id)
        })
        .await
    }

    /// A story's rendered API body, by id or slug, with the story's id and the position the body
    /// reflects. Bodies are rendered from the view when first asked for and kept in memory
    /// while their story is unchanged, so a hot story is served with one indexed query.
    pub async fn story_body_by(
        &self,
        id_or_slug: String,
    ) -> Result<Option<(Uuid, i64, Bytes)>, ViewError> {
        let cache = self.bodies.clone();
        if let Some(pg) = self.postgres() {
            let Some((uuid, position)) = pg.locate(&id_or_slug).await? else {
                return Ok(None);
            };
            if let Some(hit) = cached_body(&cache, uuid, position) {
                return Ok(Some(hit));
            }
            let Some(view) = pg.story(uuid).await? else {
                return Ok(None);
            };
            return tokio::task::spawn_blocking(move || Some(render_body(&cache, view)))
                .await
                .map_err(|e| ViewError::Task(e.to_string()));
        }
        self.read(move |c| {
            let tx = c.unchecked_transaction()?;
            let row: Option<(String, i64)> = tx
                .prepare_cached("SELECT id, position FROM stories WHERE id = ?1 OR slug = ?1")?
                .query_row([&id_or_slug], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((id, position)) = row else {
                return Ok(None);
            };
            let Ok(uuid) = Uuid::parse_str(&id) else {
                return Ok(None);
            };
            if let Some(hit) = cached_body(&cache, uuid, position) {
                return Ok(Some(hit));
            }
            let Some(view) = load_story(&tx, uuid)? else {
                return Ok(None);
            };
            drop(tx);
            Ok(Some(render_body(&cache, view)))
        })
        .await
    }

    /// An actor's entries, newest first, with each story's current slug and headline.
    pub async fn actor(&self, key: String, limit: usize) -> Result<Vec<ActorEntry>, ViewError> {
        if let Some(pg) = self.postgres() {
            let rows = pg.actor(&key, limit).await?;
            return rows
                .into_iter()
                .filter_map(|(doc, story_id, slug, headline)| {
                    actor_entry(&key, &doc, &story_id, slug, headline).transpose()
                })
                .collect();
        }
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT d.doc, d.story_id, s.slug, s.headline FROM actor_entries a
                 JOIN developments d ON d.position = a.position
                 JOIN stories s ON s.id = d.story_id
                 WHERE a.actor_key = ?1
                 ORDER BY a.occurred_at DESC, a.position DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![key, limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            let mut entries = Vec::new();
            for row in rows {
                let (doc, story_id, slug, headline) = row?;
                entries.extend(actor_entry(&key, &doc, &story_id, slug, headline)?);
            }
            Ok(entries)
        })
        .await
    }
}

/// Creates the views' tables that a SQLite file lacks, each view at position 0.
fn create_missing_tables(path: &Path) -> Result<(), ViewError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for view in ViewName::ALL {
        let mut created_all = true;
        for table in view.tables() {
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [table.name],
                |r| r.get(0),
            )?;
            if exists {
                created_all = false;
            } else {
                tx.execute_batch(&table.create(""))?;
                for index in table.indexes {
                    tx.execute_batch(&index.create(index.name, table.name))?;
                }
            }
        }
        if created_all {
            // Fresh tables are "at position 0" of the right shape: the projector fills them.
            // (Tables of an older shape keep their checkpoint, whose schema version makes
            // the view rebuild itself.)
            set_checkpoint(&tx, view, 0)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A rendered body kept in memory, if it reflects `position`.
fn cached_body(cache: &BodyCache, id: Uuid, position: i64) -> Option<(Uuid, i64, Bytes)> {
    match cache.lock().expect("body cache").get(&id) {
        Some((at, body)) if *at == position => Some((id, position, body.clone())),
        _ => None,
    }
}

/// Renders a story's API body and keeps it in memory.
fn render_body(cache: &BodyCache, view: StoryView) -> (Uuid, i64, Bytes) {
    let body = Bytes::from(crate::api::story_body(&view));
    cache
        .lock()
        .expect("body cache")
        .put(view.id, (view.position, body.clone()));
    (view.id, view.position, body)
}

/// One entry of an actor's list from its stored row: the development, and its story's id,
/// slug and headline. `None` if the development does not name the actor after all.
fn actor_entry(
    key: &str,
    doc: &str,
    story_id: &str,
    slug: String,
    headline: String,
) -> Result<Option<ActorEntry>, ViewError> {
    let development: DevelopmentView = serde_json::from_str(doc)?;
    // The row exists because the development names the actor; the development's own spelling
    // of the name is the one shown.
    let Some(actor) = development.actors.iter().find(|a| a.key() == key).cloned() else {
        return Ok(None);
    };
    let Ok(story_id) = Uuid::parse_str(story_id) else {
        return Ok(None);
    };
    Ok(Some(ActorEntry {
        actor,
        story_id,
        story_slug: slug,
        story_headline: headline,
        development,
    }))
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

/// A story's own fields: its `StoryView` without the developments, which have rows of their own.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoryHead {
    id: Uuid,
    slug: String,
    headline: String,
    summary: String,
    tags: Vec<String>,
    status: StoryStatus,
    review_required: bool,
    opened_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    position: i64,
}

impl StoryHead {
    pub(crate) fn of(view: &StoryView) -> Self {
        Self {
            id: view.id,
            slug: view.slug.clone(),
            headline: view.headline.clone(),
            summary: view.summary.clone(),
            tags: view.tags.clone(),
            status: view.status,
            review_required: view.review_required,
            opened_at: view.opened_at,
            updated_at: view.updated_at,
            position: view.position,
        }
    }

    pub(crate) fn with(self, developments: Vec<DevelopmentView>) -> StoryView {
        let mut view = StoryView {
            id: self.id,
            slug: self.slug,
            headline: self.headline,
            summary: self.summary,
            tags: self.tags,
            status: self.status,
            review_required: self.review_required,
            opened_at: self.opened_at,
            updated_at: self.updated_at,
            position: self.position,
            developments,
            derived: Default::default(),
        };
        view.reindex();
        view
    }
}

/// Loads a story's view: its row and its developments in recording order. Run it inside a
/// transaction so that both reflect the same commit.
pub(crate) fn load_story(c: &Connection, id: Uuid) -> Result<Option<StoryView>, ViewError> {
    let id = id.to_string();
    let head: Option<String> = c
        .prepare_cached("SELECT head FROM stories WHERE id = ?1")?
        .query_row([&id], |r| r.get(0))
        .optional()?;
    let Some(head) = head else {
        return Ok(None);
    };
    let head: StoryHead = serde_json::from_str(&head)?;
    let mut stmt =
        c.prepare_cached("SELECT doc FROM developments WHERE story_id = ?1 ORDER BY position")?;
    let mut rows = stmt.query([&id])?;
    let mut developments = Vec::new();
    while let Some(row) = rows.next()? {
        // Parsed straight from SQLite's buffer, without copying the text out first.
        let doc = row.get_ref(0)?.as_bytes().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?;
        developments.push(serde_json::from_slice::<DevelopmentView>(doc)?);
    }
    Ok(Some(head.with(developments)))
}

/// The sort key of the front page: when the newest published development was published, or
/// when the story was opened.
fn sort_key(entry: &FrontPageEntry, view: &StoryView) -> String {
    entry
        .last_recorded_at
        .unwrap_or(view.opened_at)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A story's own row in the `stories` view: everything but its developments, so its cost does
/// not grow with the story. (`review_required` is a column of its own only in PostgreSQL; in
/// `views.db` it is read from `head`.)
pub(crate) struct StoryRow {
    pub(crate) id: String,
    pub(crate) slug: String,
    pub(crate) headline: String,
    pub(crate) position: i64,
    pub(crate) sort_key: String,
    pub(crate) review_required: bool,
    pub(crate) entry: String,
    pub(crate) head: String,
}

impl StoryRow {
    pub(crate) fn of(view: &StoryView) -> Result<Self, ViewError> {
        let entry = view.front_page_entry();
        Ok(Self {
            id: view.id.to_string(),
            slug: view.slug.clone(),
            headline: view.headline.clone(),
            position: view.position,
            sort_key: sort_key(&entry, view),
            review_required: view.review_required,
            entry: serde_json::to_string(&entry)?,
            head: serde_json::to_string(&StoryHead::of(view))?,
        })
    }

    /// Inserts (or updates) rows in `stories` (table name with `suffix`, for rebuilds).
    pub(crate) fn insert_all<'a>(
        tx: &Connection,
        rows: impl IntoIterator<Item = &'a StoryRow>,
        suffix: &str,
    ) -> Result<(), ViewError> {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO stories{suffix} (id, slug, headline, position, sort_key, entry, head)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, headline = excluded.headline,
                position = excluded.position, sort_key = excluded.sort_key,
                entry = excluded.entry, head = excluded.head"
        ))?;
        for row in rows {
            insert.execute(params![
                row.id,
                row.slug,
                row.headline,
                row.position,
                row.sort_key,
                row.entry,
                row.head
            ])?;
        }
        Ok(())
    }
}

/// The rows a batch writes, the same for both databases: the changed stories' own rows, the
/// changed developments' rows, and the `actors` view rows of the developments whose rows there
/// are replaced (`replaced`: their positions, whose old rows go first).
#[derive(Default)]
pub(crate) struct BatchRows {
    pub(crate) stories: Vec<StoryRow>,
    pub(crate) developments: Vec<DevelopmentRow>,
    pub(crate) replaced: Vec<i64>,
    pub(crate) actors: Vec<ActorRow>,
}

/// A development's row in the `developments` table, ready to insert.
pub(crate) struct DevelopmentRow {
    pub(crate) position: i64,
    pub(crate) story_id: String,
    pub(crate) state: &'static str,
    pub(crate) filed_by: Option<String>,
    pub(crate) doc: String,
}

impl DevelopmentRow {
    pub(crate) fn of(story: &StoryView, d: &DevelopmentView) -> Result<Self, ViewError> {
        Ok(Self {
            position: d.position,
            story_id: story.id.to_string(),
            state: state_name(d.state),
            filed_by: d.filed_by.clone(),
            doc: serde_json::to_string(d)?,
        })
    }

    /// Inserts (or replaces) rows in `developments` (table name with `suffix`).
    pub(crate) fn insert_all<'a>(
        tx: &Connection,
        rows: impl IntoIterator<Item = &'a DevelopmentRow>,
        suffix: &str,
    ) -> Result<(), ViewError> {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT OR REPLACE INTO developments{suffix} (position, story_id, state, filed_by, doc)
             VALUES (?1, ?2, ?3, ?4, ?5)"
        ))?;
        for row in rows {
            insert.execute(params![
                row.position,
                row.story_id,
                row.state,
                row.filed_by,
                row.doc
            ])?;
        }
        Ok(())
    }
}

/// One row of the `actors` view: an actor named by a visible development.
pub(crate) struct ActorRow {
    pub(crate) position: i64,
    pub(crate) key: String,
    pub(crate) occurred_at: String,
    pub(crate) name: String,
}

impl ActorRow {
    /// The rows a development has in the `actors` view: one per actor if readers see it.
    pub(crate) fn of(d: &DevelopmentView) -> impl Iterator<Item = ActorRow> + '_ {
        let occurred_at = d
            .occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        d.actors
            .iter()
            .filter(|_| d.is_visible())
            .map(move |actor| ActorRow {
                position: d.position,
                key: actor.key().to_owned(),
                occurred_at: occurred_at.clone(),
                name: actor.name().to_owned(),
            })
    }

    /// Inserts (or replaces) rows in `actor_entries` (table name with `suffix`).
    pub(crate) fn insert_all<'a>(
        tx: &Connection,
        rows: impl IntoIterator<Item = &'a ActorRow>,
        suffix: &str,
    ) -> Result<(), ViewError> {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT OR REPLACE INTO actor_entries{suffix} (position, actor_key, occurred_at, name)
             VALUES (?1, ?2, ?3, ?4)"
        ))?;
        for row in rows {
            insert.execute(params![row.position, row.key, row.occurred_at, row.name])?;
        }
        Ok(())
    }
}

fn state_name(state: DevelopmentState) -> &'static str {
    match state {
        DevelopmentState::PendingReview => "pending_review",
        DevelopmentState::Published => "published",
        DevelopmentState::Rejected => "rejected",
        DevelopmentState::Retracted => "retracted",
    }
}

/// Writes a batch's rows into SQLite views.
pub(crate) fn write_rows(tx: &Connection, rows: &BatchRows) -> Result<(), ViewError> {
    StoryRow::insert_all(tx, &rows.stories, "")?;
    DevelopmentRow::insert_all(tx, &rows.developments, "")?;
    let mut delete = tx.prepare_cached("DELETE FROM actor_entries WHERE position = ?1")?;
    for position in &rows.replaced {
        delete.execute([position])?;
    }
    ActorRow::insert_all(tx, &rows.actors, "")
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

/// Creates empty `_next` tables for a rebuild of `view`, with the indexes that are filled along
/// with the rows; [`swap_in`] builds the others once the rows are in.
pub(crate) fn create_next(tx: &Connection, view: ViewName) -> Result<(), ViewError> {
    // Index names are global and the live table's indexes keep theirs until the swap: the
    // indexes created now get a name of their own, which they keep after the swap.
    let generation = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for table in view.tables() {
        let next = format!("{}_next", table.name);
        tx.execute_batch(&format!(
            "DROP TABLE IF EXISTS {next}; {}",
            table.create("_next")
        ))?;
        for index in table.indexes.iter().filter(|i| i.while_loading) {
            let name = format!("{}_{generation:x}", index.name);
            tx.execute_batch(&index.create(&name, &next))?;
        }
    }
    Ok(())
}

/// Swaps a rebuilt view in: drops the live tables (and their indexes), renames `_next` over
/// them and builds the indexes that were not filled while loading. Runs inside the caller's
/// transaction together with the new checkpoint, so readers see old or new, never a mix.
pub(crate) fn swap_in(tx: &Connection, view: ViewName, position: i64) -> Result<(), ViewError> {
    for table in view.tables() {
        let name = table.name;
        tx.execute_batch(&format!(
            "DROP TABLE IF EXISTS {name};
             ALTER TABLE {name}_next RENAME TO {name};"
        ))?;
        for index in table.indexes.iter().filter(|i| !i.while_loading) {
            tx.execute_batch(&index.create(index.name, name))?;
        }
    }
    set_checkpoint(tx, view, position)
}
