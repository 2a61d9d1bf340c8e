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
//!
//! `ViewStore` is the facade, and the one place that knows which database holds the views:
//! callers (the projector, a rebuild, the read API, the desk) call the same methods either way,
//! and each method answers from SQLite or PostgreSQL (`pg.rs`). What the projector's batch and a
//! rebuild write in SQLite is in `sqlite.rs`; cold paths may be written once, in the SQL both
//! databases speak (`ViewStore::read_sql`, as the desk's queries are).
//!
//! The tables and their indexes are declared in `migrations/sqlite` (created by `schema.rs`);
//! this module reads them in SQLite. A page of the timeline (`timeline_before`: `(story_id, occurred_at, position)`
//! over the rows readers see, index `developments_timeline`) and a page of the claims ledger
//! (`load_ledger` here, `pg::ledger` in PostgreSQL) are indexed reads, whatever the story's length.
//! A page of the ledger (`newsroom_readmodel::ClaimsAsk`, `ledger_rows`) is the newest `limit`
//! claims by recording (`CLAIMS_DEFAULT` 20, at most `CLAIMS_MAX` 100), each with its newest
//! `RESPONSES_SHOWN` responses and, if those lack one, each side's newest published response; as of
//! a time, the same rows as they stood (a side's witness is looked for among its newest
//! `WITNESS_SCAN`, 16).
//!
//! History, what `?as_of=` reads: a story as of a time (`ViewStore::story_page_as_of`) is its line
//! then, from `story_versions`, and a page read from the timeline's index up to how far its visible
//! developments' `occurred_at` reached then, each row recorded by then taken as it stood (its
//! document in `development_versions` if an event changed it since), those whose time was corrected
//! since read apart. The front page as of a time comes from `front_page_marks` (`marks.rs`).
//! Nothing folds the log.
//!
//! The current front page shows each story's newest published development (`latest`), read with the
//! page: one probe of `developments_published` per story listed, so a retraction or correction
//! shows at once and nothing about it is stored in the line; a front page as of a time has no
//! `latest`.
//!
//! A story's related stories (`load_relations`, `PgViews::relations` in PostgreSQL) are read from
//! both sides of `relations`, each side newest first by its index and stopping at `RELATIONS_SHOWN`
//! (20), then the newest 20 of both, joined to the other story's current slug and headline:
//! bounded, however many stories point at one. A current page (`StoryPage::relations`) carries
//! them; a page as of a time does not.
//!
//! The API body of a story is not stored: it is rendered (`resource.rs`) from the first page
//! (`StoryPage`: the newest `PAGE_DEFAULT` developments, the first page of the ledger, the cursors
//! of the older ones) on the first read of each version and kept in memory (an LRU of 256 stories),
//! valid while the story's position *and* its related stories are unchanged (both read before the
//! body is served; the ETags of the story and its ninjs name both, `relations_tag`), so a hot
//! story's `GET` costs the two small indexed reads of its position and its relations; other pages
//! (`?before=<position>&limit=`) are read and rendered when asked. With PostgreSQL views,
//! `ViewStore::heard_position` and `ViewStore::follow_commits` come from `followed.rs`, and a body
//! read while the process heard the views' commits is served from memory with no round trip while
//! it is current. A new `views.db` is created with 16 KiB pages (`PAGE_SIZE`).

use crate::batch::{Batch, BatchResult};
use crate::handover::Handover;
use crate::pg::Replacement;
use crate::rows::{
    as_they_stood, front_page_line, place, recorded_time, related, with_moved, Checkpoint,
    LedgerRows, PageRead, StoryAfterRow, StoryBody, StoryHead, VersionAt, ViewError, ViewName,
    PAGE_END, VIEWS_CHANNEL, WITNESS_SCAN,
};
use crate::search::found;
use crate::sqlite::{apply_sqlite_batch, read_checkpoints, SqliteRebuild};
use std::num::NonZeroUsize;
use std::path::Path;

use newsroom_log::EventLog;
use sqlx::PgPool;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

use newsroom_log::sql::{Sql, SqlDb};
use newsroom_log::{DbError, SqliteDb, Synchronous};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use uuid::Uuid;

use chrono::{DateTime, Utc};

use crate::marks::{front_page_at, front_page_at_pg, MarkSpacing};

use crate::followed::{Followed, Heard};
use crate::pg::PgViews;
use crate::schema;
use crate::search::{Found, Hit, Search};
use newsroom_readmodel::model::{
    sides_to_settle, ActorEntry, ClaimsAsk, DevelopmentStanding, DevelopmentView, FrontPageEntry,
    RelatedStory, StoryPage, StoryView, PAGE_DEFAULT, PAGE_MAX, RELATIONS_SHOWN, RESPONSES_SHOWN,
};

/// The page size of a new views database, in bytes.
const PAGE_SIZE: i64 = 16_384;

/// Rendered story bodies kept in memory, with the position each reflects.
type BodyCache = Arc<Mutex<lru::LruCache<Uuid, StoryBody>>>;

/// The views' database. Cheap to clone.
#[derive(Clone)]
pub struct ViewStore {
    backend: Backend,
    bodies: BodyCache,
    /// What this process heard of the PostgreSQL views' commits, and the bodies it rendered
    /// while hearing them (`crate::followed`): served with no round trip while current.
    followed: Arc<Followed>,
    followed_bodies: FollowedBodies,
    /// Story bodies served from `followed_bodies`.
    memory_reads: Arc<std::sync::atomic::AtomicU64>,
    marks: MarkSpacing,
    /// Reads of the front page as it stood that a mark could not answer.
    fallbacks: Arc<std::sync::atomic::AtomicU64>,
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

/// What writes a rebuild of the views (`rebuild.rs`), in the views' database's own way: SQLite's
/// `_next` tables filled in one transaction of the writer and swapped in, or one PostgreSQL
/// transaction that emptied the views' tables and fills them again.
pub(crate) enum RebuildWriter {
    Sqlite(SqliteRebuild),
    Postgres(Replacement),
}

impl RebuildWriter {
    /// Writes what the rebuild's fold hands over (`handover.rs`), answering its read-backs
    /// between parts, and makes the new rows the views at the position it reached; nothing of
    /// them is seen before, nor after a failure.
    pub(crate) async fn write(self, handover: Handover) -> Result<(), ViewError> {
        match self {
            RebuildWriter::Sqlite(sqlite) => sqlite.write(handover).await,
            RebuildWriter::Postgres(replacement) => replacement.write(handover).await,
        }
    }
}

/// How the database holding the views names their tables: PostgreSQL's carry `view_`, apart
/// from the log's tables in the same database.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ViewTables {
    prefix: &'static str,
}

impl ViewTables {
    /// `template` with each `{table}` named as this database names it (`{stories}` is
    /// `stories` in SQLite, `view_stories` in PostgreSQL). The SQL holds no other braces.
    pub(crate) fn sql(self, template: &str) -> String {
        template.replace('{', self.prefix).replace('}', "")
    }
}

/// Bodies rendered while the views' commits were followed, by the id or slug they were asked
/// for, each with the position heard when it was read.
type FollowedBodies = Arc<Mutex<lru::LruCache<String, (i64, StoryBody)>>>;

fn followed_bodies() -> FollowedBodies {
    Arc::new(Mutex::new(lru::LruCache::new(
        NonZeroUsize::new(1_024).expect("non-zero"),
    )))
}

fn body_cache() -> BodyCache {
    Arc::new(Mutex::new(lru::LruCache::new(
        NonZeroUsize::new(256).expect("non-zero"),
    )))
}

impl ViewStore {
    /// The work reads of the views have done (`newsroom_log::db::ReadWork`); `None` on
    /// PostgreSQL.
    pub fn read_work(&self) -> Option<u64> {
        match &self.backend {
            Backend::Sqlite(db) => Some(db.read_work()),
            Backend::Postgres(_) => None,
        }
    }

    pub fn open(path: &Path) -> Result<Self, ViewError> {
        let new = !path.exists() || std::fs::metadata(path).is_ok_and(|m| m.len() == 0);
        // The file and its directory are the owner's alone (`newsroom_log::private`).
        newsroom_log::private::prepare_database_file(path)
            .map_err(|(path, source)| DbError::Io { path, source })?;
        if new {
            // A development row is about 1 KB: 16 KB pages hold fifteen of them (4 KB pages only
            // three, a quarter of each page left empty), and a rebuild moves a quarter as many
            // pages through the WAL. The size is fixed when the file is created.
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "page_size", PAGE_SIZE)?;
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
        }
        // Views can always be rebuilt from the log: losing the last commits on power loss only
        // means applying them again.
        let db = SqliteDb::open(path, &schema::migrations(), None, Synchronous::Normal, 8)?;
        schema::create_missing_tables(path)?;
        Ok(Self {
            backend: Backend::Sqlite(db),
            bodies: body_cache(),
            followed: Arc::default(),
            followed_bodies: followed_bodies(),
            memory_reads: Arc::default(),
            marks: MarkSpacing::default(),
            fallbacks: Arc::default(),
        })
    }

    /// The views in PostgreSQL (the log's database, reached through `pool`), brought up to date.
    pub async fn open_postgres(pool: PgPool) -> Result<Self, ViewError> {
        Ok(Self {
            backend: Backend::Postgres(PgViews::open(pool).await?),
            bodies: body_cache(),
            followed: Arc::default(),
            followed_bodies: followed_bodies(),
            memory_reads: Arc::default(),
            marks: MarkSpacing::default(),
            fallbacks: Arc::default(),
        })
    }

    /// Writes front-page marks `spacing` apart (tests make them close).
    pub fn with_marks(mut self, spacing: MarkSpacing) -> Self {
        self.marks = spacing;
        self
    }

    pub fn marks(&self) -> MarkSpacing {
        self.marks
    }

    /// How many reads of the front page as it stood read one line per story, because no mark
    /// could answer them (`marks.rs`).
    pub fn front_page_fallbacks(&self) -> u64 {
        self.fallbacks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The views beside `log`: in its PostgreSQL database, or in the SQLite file at `path` when
    /// the log is embedded.
    pub async fn beside(log: &EventLog, path: &Path) -> Result<Self, ViewError> {
        match log {
            EventLog::Postgres(store) => Self::open_postgres(store.pool().clone()).await,
            EventLog::Sqlite(_) => Self::open(path),
        }
    }

    /// Whether every commit to the views is announced to each process reading them (PostgreSQL
    /// views announce theirs on [`VIEWS_CHANNEL`]; a SQLite file announces nothing): a process
    /// that hears them ([`Self::follow_commits`]) serves what it already holds without asking,
    /// even while a projector in the same process writes the views.
    pub fn announces_commits(&self) -> bool {
        self.postgres().is_some()
    }

    /// PostgreSQL's plan of a search (`EXPLAIN`), for tests that hold it to the indexes; `None`
    /// for SQLite views, whose FTS5 `MATCH` is the index.
    #[doc(hidden)]
    pub async fn search_plan(&self, search: &Search) -> Result<Option<String>, ViewError> {
        match self.postgres() {
            Some(pg) => Ok(Some(pg.search_plan(search).await?)),
            None => Ok(None),
        }
    }

    /// The PostgreSQL views, if that is where these are.
    fn postgres(&self) -> Option<&PgViews> {
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

    /// Runs `f` on a read connection of the views, off the async runtime, in the SQL both
    /// databases speak (`newsroom_log::sql`), with the views' tables named as that database
    /// names them ([`ViewTables`]): for cold paths, whose queries are written once.
    pub(crate) async fn read_sql<T, F>(&self, f: F) -> Result<T, ViewError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql, ViewTables) -> Result<T, ViewError> + Send + 'static,
    {
        let (db, tables) = match &self.backend {
            Backend::Sqlite(db) => (SqlDb::Sqlite(db.clone()), ViewTables { prefix: "" }),
            // A read takes no advisory lock.
            Backend::Postgres(pg) => (
                SqlDb::Postgres {
                    pool: pg.pool().clone(),
                    lock: 0,
                },
                ViewTables { prefix: "view_" },
            ),
        };
        db.read(move |sql| f(sql, tables)).await
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

    pub async fn checkpoints(&self) -> Result<Vec<(ViewName, Checkpoint)>, ViewError> {
        match &self.backend {
            Backend::Sqlite(db) => db.read(read_checkpoints).await,
            Backend::Postgres(pg) => pg.checkpoints().await,
        }
    }

    /// The position every view has reached.
    /// Keeps `positions` at the views' position as the processes that write them commit,
    /// until `shutdown` completes: for a process that reads views another process keeps (the
    /// web front of a scale-out deployment, whose desk waits for its own writes to show).
    /// PostgreSQL views announce each commit on [`VIEWS_CHANNEL`]; the position is read again
    /// when one is heard, and when listening starts (again after a lost connection). A SQLite
    /// file written by another process announces nothing and is read every 100 ms.
    pub async fn follow_commits(
        &self,
        positions: tokio::sync::watch::Sender<i64>,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        let publish = |at: i64| {
            positions.send_if_modified(|p| {
                let newer = at > *p;
                if newer {
                    *p = at;
                }
                newer
            });
        };
        loop {
            let Some(pg) = self.postgres() else {
                if let Ok(at) = self.position().await {
                    publish(at);
                }
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => continue,
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                Err(e) = self.listen_for_commits(pg, &publish) => {
                    tracing::warn!(error = %e, "following the views' commits failed; listening again");
                }
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    }

    /// Publishes the views' position when listening starts and at every commit announced,
    /// until the connection fails, keeping [`Followed`] up to date meanwhile.
    async fn listen_for_commits(
        &self,
        pg: &PgViews,
        publish: &(impl Fn(i64) + Sync),
    ) -> Result<(), ViewError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(pg.pool()).await?;
        listener.listen(VIEWS_CHANNEL).await?;
        let heard = async {
            // Listening first, then the position: every commit after it is announced to us.
            let start = self.position().await?;
            self.followed.start(start);
            publish(start);
            // `None`: the connection was lost, and with it whatever was announced meanwhile.
            while let Some(said) = listener.try_recv().await? {
                match self.followed.hear(said.payload()) {
                    Heard::At(at) => publish(at),
                    Heard::Unreadable => {
                        let at = self.position().await?;
                        self.followed.start(at);
                        publish(at);
                    }
                }
            }
            Err(ViewError::Task(
                "the connection announcing the views' commits was lost".into(),
            ))
        };
        let result = heard.await;
        self.followed.stop();
        result
    }

    /// How many story bodies were served from memory, known current from the commits heard.
    pub fn bodies_read_from_memory(&self) -> u64 {
        self.memory_reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The views' position as this process heard it announced, with every change up to it
    /// applied to what it keeps in memory; `None` unless it follows PostgreSQL views' commits.
    pub fn heard_position(&self) -> Option<i64> {
        self.followed.known()
    }

    pub async fn position(&self) -> Result<i64, ViewError> {
        Ok(self
            .checkpoints()
            .await?
            .iter()
            .map(|(_, c)| c.position)
            .min()
            .unwrap_or(0))
    }

    /// Applies a batch of the projector (`batch.rs`) to the views and moves their checkpoints,
    /// in one transaction.
    pub(crate) async fn apply_batch(&self, batch: Batch) -> Result<BatchResult, ViewError> {
        match &self.backend {
            Backend::Postgres(pg) => pg.apply_batch(&batch).await,
            Backend::Sqlite(db) => db.write(move |tx| apply_sqlite_batch(tx, &batch)).await,
        }
    }

    /// Makes ready a rebuild of the `chosen` views (`rebuild.rs`) and returns what writes it.
    /// With `only_outdated`, `None` if another process already brought every chosen view in
    /// PostgreSQL to the code's shape meanwhile.
    pub(crate) async fn begin_rebuild(
        &self,
        chosen: &[ViewName],
        only_outdated: bool,
    ) -> Result<Option<RebuildWriter>, ViewError> {
        Ok(match &self.backend {
            Backend::Sqlite(db) => Some(RebuildWriter::Sqlite(
                SqliteRebuild::begin(db, chosen).await?,
            )),
            Backend::Postgres(pg) => pg
                .replace(chosen, only_outdated)
                .await?
                .map(RebuildWriter::Postgres),
        })
    }

    /// The front page, newest development first.
    pub async fn front_page(&self, limit: usize) -> Result<Vec<FrontPageEntry>, ViewError> {
        if let Some(pg) = self.postgres() {
            return pg.front_page(limit).await;
        }
        self.read(move |c| {
            // Each story's newest published development through `developments_published`: one
            // index probe per story listed.
            let mut stmt = c.prepare_cached(
                "SELECT s.entry,
                        (SELECT d.doc FROM developments d
                          WHERE d.story_id = s.id AND d.state = 'published'
                          ORDER BY d.published_at DESC, d.position DESC LIMIT 1)
                   FROM stories s ORDER BY s.sort_key DESC, s.position DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            rows.map(|r| {
                let (entry, latest) = r?;
                front_page_line(&entry, latest.as_deref())
            })
            .collect()
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

    /// A story's own fields without its developments, by id or slug.
    pub async fn story_head(&self, id_or_slug: String) -> Result<Option<StoryView>, ViewError> {
        Ok(self
            .stored_head(id_or_slug)
            .await?
            .map(|h| h.with(Vec::new())))
    }

    /// A story's slug and headline as they are now (one indexed read).
    pub async fn story_line(&self, id: Uuid) -> Result<Option<(String, String)>, ViewError> {
        Ok(self
            .stored_head(id.to_string())
            .await?
            .map(|h| (h.slug, h.headline)))
    }

    /// A story's stored `head`, by id or slug.
    async fn stored_head(&self, id_or_slug: String) -> Result<Option<StoryHead>, ViewError> {
        let head: Option<String> = match self.postgres() {
            Some(pg) => pg.story_head(&id_or_slug).await?,
            None => {
                self.read(move |c| {
                    Ok(
                        c.prepare_cached("SELECT head FROM stories WHERE id = ?1 OR slug = ?1")?
                            .query_row([&id_or_slug], |r| r.get(0))
                            .optional()?,
                    )
                })
                .await?
            }
        };
        head.map(|h| Ok(serde_json::from_str::<StoryHead>(&h)?))
            .transpose()
    }

    /// One page of a story's timeline with its own fields and its claims ledger, by id or slug
    /// (see [`StoryPage`]): indexed reads of the page's rows and the ledger's, whatever the
    /// story's length.
    pub async fn story_page(
        &self,
        id_or_slug: String,
        before: Option<i64>,
        limit: usize,
        claims: ClaimsAsk,
    ) -> Result<PageRead, ViewError> {
        if let Some(pg) = self.postgres() {
            return pg.story_page(&id_or_slug, before, limit, claims).await;
        }
        self.read(move |c| {
            let tx = c.unchecked_transaction()?;
            load_page(&tx, &id_or_slug, before, limit, claims)
        })
        .await
    }

    /// A page of a story as it stood at `at` (see [`StoryPage`]): the story's line from
    /// `story_versions`, and each development of the page and the ledger as it stood then
    /// (from `development_versions` if an event changed it since). Indexed reads of the page's
    /// rows, the ledger's and those recorded since, never a fold of the story's events.
    pub async fn story_page_as_of(
        &self,
        id_or_slug: String,
        at: DateTime<Utc>,
        before: Option<i64>,
        limit: usize,
        claims: ClaimsAsk,
    ) -> Result<PageRead, ViewError> {
        if let Some(pg) = self.postgres() {
            return pg
                .story_page_as_of(&id_or_slug, at, before, limit, claims)
                .await;
        }
        self.read(move |c| {
            let tx = c.unchecked_transaction()?;
            load_page_as_of(&tx, &id_or_slug, at, before, limit, claims)
        })
        .await
    }

    /// The story right after each of `at` (the positions of some of its events, each with the
    /// position that recorded the development the event changed, if any), as far as readers of
    /// that change need it: its line then (headline, tags) and that development as it stood
    /// then. Indexed point reads per event, whatever the story's length.
    pub async fn story_after(
        &self,
        story: Uuid,
        at: Vec<(i64, Option<i64>)>,
    ) -> Result<Vec<Option<StoryView>>, ViewError> {
        let head = match self.stored_head(story.to_string()).await? {
            Some(head) => head,
            None => return Ok(vec![None; at.len()]),
        };
        let found: Vec<StoryAfterRow> = match self.postgres() {
            Some(pg) => pg.story_after(&at).await?,
            None => {
                self.read(move |c| {
                    let mut found = Vec::with_capacity(at.len());
                    for (q, recorded) in &at {
                        let entry: Option<String> = c
                            .prepare_cached("SELECT entry FROM story_versions WHERE position = ?1")?
                            .query_row([q], |r| r.get(0))
                            .optional()?;
                        let doc = match recorded {
                            None => None,
                            Some(p) => {
                                let now: Option<String> = c
                                    .prepare_cached(
                                        "SELECT doc FROM developments WHERE position = ?1",
                                    )?
                                    .query_row([p], |r| r.get(0))
                                    .optional()?;
                                let then: Option<String> = c
                                    .prepare_cached(
                                        "SELECT doc FROM development_versions
                                             WHERE position = ?1 AND until > ?2
                                             ORDER BY until LIMIT 1",
                                    )?
                                    .query_row(params![p, q], |r| r.get(0))
                                    .optional()?;
                                now.map(|now| (now, then))
                            }
                        };
                        found.push((entry, doc));
                    }
                    Ok(found)
                })
                .await?
            }
        };
        found
            .into_iter()
            .map(|(entry, doc)| {
                let Some(entry) = entry else { return Ok(None) };
                let entry: FrontPageEntry = serde_json::from_str(&entry)?;
                let developments = match doc {
                    Some((now, then)) => {
                        vec![serde_json::from_str(then.as_deref().unwrap_or(&now))?]
                    }
                    None => Vec::new(),
                };
                Ok(Some(head.clone().then(&entry).with(developments)))
            })
            .collect()
    }

    /// The front page as it stood at `at`: each story's line then, first place first. Read from
    /// the newest front-page mark before `at` and the lines recorded after it (`marks.rs`):
    /// bounded work, whatever the log's length.
    pub async fn front_page_as_of(
        &self,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<FrontPageEntry>, ViewError> {
        let time = recorded_time(&at);
        let marked = match self.postgres() {
            Some(pg) => front_page_at_pg(pg.pool(), &time, limit).await?,
            None => self.read(move |c| front_page_at(c, &time, limit)).await?,
        };
        let entries = match marked {
            Some(entries) => entries,
            None => {
                self.fallbacks
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(%at, "no front-page mark answers; reading every story's line");
                return self.front_page_as_of_by_story(at, limit).await;
            }
        };
        entries
            .iter()
            .map(|e| Ok(serde_json::from_str::<FrontPageEntry>(e)?))
            .collect()
    }

    /// The front page as it stood at `at`, read as one line per story ever opened: what a mark
    /// cannot answer, and what tests hold the marks to.
    pub async fn front_page_as_of_by_story(
        &self,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<FrontPageEntry>, ViewError> {
        let lines: Vec<(String, i64, String)> = match self.postgres() {
            Some(pg) => pg.front_page_as_of(&recorded_time(&at)).await?,
            None => {
                self.read(move |c| {
                    let mut stmt = c.prepare_cached(
                        "SELECT v.sort_key, v.position, v.entry FROM stories s
                           JOIN story_versions v ON v.position =
                                (SELECT w.position FROM story_versions w
                                  WHERE w.story_id = s.id AND w.recorded_at <= ?1
                                  ORDER BY w.recorded_at DESC, w.position DESC LIMIT 1)",
                    )?;
                    let rows = stmt.query_map([recorded_time(&at)], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?;
                    Ok(rows.collect::<Result<Vec<_>, _>>()?)
                })
                .await?
            }
        };
        let mut lines = lines;
        lines.sort_by(|a, b| (&b.0, b.1).cmp(&(&a.0, a.1)));
        lines.truncate(limit);
        lines
            .iter()
            .map(|(_, _, e)| Ok(serde_json::from_str::<FrontPageEntry>(e)?))
            .collect()
    }

    /// The API body of a story's first page (its newest developments), by id or slug, with the
    /// story's id and the position the body reflects. Bodies are rendered when first asked for
    /// and kept in memory while their story is unchanged, so a hot story is served with one
    /// indexed query.
    /// A read asking for `at_least` (its `min_position`) is never answered from what this
    /// process has not heard yet.
    pub async fn story_body_by(
        &self,
        id_or_slug: String,
        at_least: Option<i64>,
    ) -> Result<Option<StoryBody>, ViewError> {
        // A process hearing the PostgreSQL views' commits knows whether a body it rendered is
        // still current without asking (`crate::followed`).
        let Some(seen) = self.followed.known() else {
            return self.story_body_asked(id_or_slug).await;
        };
        if at_least.is_some_and(|wanted| wanted > seen) {
            return self.story_body_asked(id_or_slug).await;
        }
        let kept = self
            .followed_bodies
            .lock()
            .expect("followed bodies")
            .get(&id_or_slug)
            .cloned();
        if let Some((read_at, body)) = kept {
            let shown = std::iter::once(body.id).chain(body.relations.iter().map(|r| r.id));
            if self.followed.current(read_at, shown) {
                self.memory_reads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(Some(body));
            }
        }
        let body = self.story_body_asked(id_or_slug.clone()).await?;
        if let Some(body) = &body {
            self.followed_bodies
                .lock()
                .expect("followed bodies")
                .put(id_or_slug, (seen, body.clone()));
        }
        Ok(body)
    }

    /// [`Self::story_body_by`], reading the story's position and relations from the views.
    async fn story_body_asked(&self, id_or_slug: String) -> Result<Option<StoryBody>, ViewError> {
        let cache = self.bodies.clone();
        let located = match self.postgres() {
            Some(pg) => match pg.locate(&id_or_slug).await? {
                Some((uuid, position)) => {
                    let relations = pg.relations(&uuid.to_string()).await?;
                    Some((uuid, position, relations))
                }
                None => None,
            },
            None => {
                let key = id_or_slug.clone();
                self.read(move |c| {
                    let Some((uuid, position)) = locate(c, &key)? else {
                        return Ok(None);
                    };
                    Ok(Some((
                        uuid,
                        position,
                        load_relations(c, &uuid.to_string())?,
                    )))
                })
                .await?
            }
        };
        let Some((uuid, position, relations)) = located else {
            return Ok(None);
        };
        if let Some(hit) = cached_body(&cache, uuid, position, &relations) {
            return Ok(Some(hit));
        }
        let PageRead::Found(page) = self
            .story_page(uuid.to_string(), None, PAGE_DEFAULT, ClaimsAsk::default())
            .await?
        else {
            return Ok(None);
        };
        tokio::task::spawn_blocking(move || Some(render_body(&cache, &page)))
            .await
            .map_err(|e| ViewError::Task(e.to_string()))
    }

    /// The stories related to story `id`, newest relation first, at most
    /// [`RELATIONS_SHOWN`]: bounded work whatever links to it.
    pub async fn relations(&self, id: Uuid) -> Result<Vec<RelatedStory>, ViewError> {
        let id = id.to_string();
        if let Some(pg) = self.postgres() {
            return pg.relations(&id).await;
        }
        self.read(move |c| load_relations(c, &id)).await
    }

    /// A page of search results (`search.rs`): the newest matches the index holds, up to its
    /// windows, ranked; bounded work whatever its size.
    pub async fn search(&self, search: Search) -> Result<Found, ViewError> {
        if let Some(pg) = self.postgres() {
            return pg.search(&search).await;
        }
        self.read(move |c| search_sqlite(c, &search)).await
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

/// The SQL of a search of the SQLite index: the keys it ranks. `?1`: the FTS5 expression;
/// `?2`, `?3`: the windows of developments and stories; `?4`: the expression of the whole query
/// as one phrase (with `exact`); `?5`, `?6`: the `occurred_at` bounds. Each window is read
/// newest first through the index and stops at its size, so the work is bounded whatever the
/// index holds. Nothing here ranks: FTS5's `bm25` counts the documents of every phrase of the
/// expression (its inverse document frequency) by reading each phrase's whole doclist, a
/// cost that grows with the index (a filter word such as "published" is in nearly every
/// document); the window's hits are ranked from their own text instead ([`Hit::score`]).
fn search_sql(exact: bool) -> String {
    // The time bounds are checked inside each window (the filter words only narrow it to the
    // months and years around them): a window of the newest matches of a month must not be
    // filled by matches outside the bounds and leave those inside unseen.
    let window = |expr: &str, columns: &str| {
        format!(
            "SELECT * FROM (SELECT {columns} FROM search JOIN search_keys key ON key.rowid = search.rowid
                             WHERE search MATCH {expr} AND search.rowid > 0
                               AND (?5 IS NULL OR key.occurred_at >= ?5)
                               AND (?6 IS NULL OR key.occurred_at <= ?6)
                             ORDER BY search.rowid DESC LIMIT ?2)
             UNION ALL
             SELECT * FROM (SELECT {columns} FROM search JOIN search_keys key ON key.rowid = search.rowid
                             WHERE search MATCH {expr} AND search.rowid < 0
                             ORDER BY search.rowid LIMIT ?3)"
        )
    };
    let hits = window("?1", "search.rowid AS k, key.story AS story");
    let (exact_cte, first) = if exact {
        (
            format!(", exact AS ({})", window("?4", "search.rowid AS k")),
            "h.k IN (SELECT k FROM exact)",
        )
    } else {
        (String::new(), "0")
    };
    format!("WITH hits AS ({hits}){exact_cte} SELECT h.k, h.story, {first} FROM hits h")
}

/// How much of the views' file a search reads through a memory map (`PRAGMA mmap_size`).
const SEARCH_MMAP_BYTES: i64 = 1 << 30;

/// Searches the SQLite index: the window's hits, each read with its story (a hit whose story
/// is gone is dropped) and ranked by [`Hit::score`] — the whole query as a phrase first, then
/// the score, then the newest — and the page of them in rank order, and whether more follow.
fn search_sqlite(c: &Connection, s: &Search) -> Result<Found, ViewError> {
    // One read transaction: one snapshot for the window and the hundreds of reads of its
    // hits, and one lock taken instead of one per statement.
    // The index is read through a memory map, not copied page by page into each reader's
    // small cache (a window's pages of doclists were a quarter of a search's time at
    // 1,000,000 developments); idempotent, and kept by the connection.
    c.pragma_update(None, "mmap_size", SEARCH_MMAP_BYTES)?;
    let _read = c.unchecked_transaction()?;
    let mut known = crate::search::Expansions::new();
    for prefix in s.query.prefixes() {
        if !known.contains_key(prefix) {
            known.insert(prefix.to_owned(), known_words(c, prefix)?);
        }
    }
    let Some(text) = s.query.fts5_expanded(&known) else {
        // A prefix no word of the index begins with.
        return Ok(Found {
            hits: Vec::new(),
            more: false,
        });
    };
    let expr = s.fts5(&text);
    let exact = s
        .query
        .as_phrase()
        .and_then(|p| crate::search::fts5_term_expanded(&p, &known))
        .map(|p| s.fts5(&p));
    let stories = if s.stories_too() {
        crate::search::STORY_WINDOW
    } else {
        0
    };
    let keys = c
        .prepare_cached(&search_sql(exact.is_some()))?
        .query_map(
            params![
                expr,
                crate::search::WINDOW as i64,
                stories as i64,
                exact,
                s.from,
                s.to
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let mut read = c.prepare_cached(
        "SELECT s.slug, s.headline, CASE WHEN ?1 < 0 THEN s.head END, d.doc
           FROM stories s LEFT JOIN developments d ON d.position = ?1
          WHERE s.id = ?2",
    )?;
    let mut ranked = Vec::with_capacity(keys.len());
    for (key, story_id, first) in keys {
        let hit = read
            .query_row(params![key, story_id], |r| {
                Ok(Hit {
                    slug: r.get(0)?,
                    story_headline: r.get(1)?,
                    head: r.get(2)?,
                    doc: r.get(3)?,
                    story_id: story_id.clone(),
                })
            })
            .optional()?;
        if let Some(hit) = hit {
            let score = hit.score(&s.query)?;
            ranked.push((first, score, key, hit));
        }
    }
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then(b.2.cmp(&a.2)));
    let hits = ranked
        .into_iter()
        .skip(s.offset)
        .take(s.limit + 1)
        .map(|(.., hit)| hit)
        .collect();
    found(hits, s)
}

/// The words of the SQLite index that begin with `prefix`, in the index's order,
/// [`PREFIX_WORDS`](crate::search::PREFIX_WORDS) at most: what a prefix query stands for.
/// Each is one seek of FTS5's vocabulary (`fts5vocab`, `instance`: its cursor starts at the
/// first word from the one asked for and reads one of its places), so the work is bounded by
/// the count of words looked at ([`PREFIX_STEPS`](crate::search::PREFIX_STEPS)), never by
/// the documents that hold them. Words first found in `filters` are filter words (a story's,
/// an actor's, a month's), not text: passed over.
fn known_words(c: &Connection, prefix: &str) -> Result<Vec<String>, ViewError> {
    use crate::search::{PREFIX_STEPS, PREFIX_WORDS};
    c.execute_batch(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_vocab
           USING fts5vocab(main, search, instance)",
    )?;
    let mut next =
        c.prepare_cached("SELECT term, col FROM temp.search_vocab WHERE term >= ?1 LIMIT 1")?;
    let mut words = Vec::new();
    let mut from = prefix.to_owned();
    for _ in 0..PREFIX_STEPS {
        let Some((word, column)) = next
            .query_row([&from], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?
        else {
            break;
        };
        if !word.starts_with(prefix) {
            break;
        }
        // The least string after `word` and before every longer word that begins with it
        // (words hold only letters and digits).
        from = format!("{word}\u{1}");
        if column != "filters" {
            words.push(word);
            if words.len() == PREFIX_WORDS {
                break;
            }
        }
    }
    Ok(words)
}

/// A rendered body kept in memory, if it reflects `position`.
fn cached_body(
    cache: &BodyCache,
    id: Uuid,
    position: i64,
    relations: &[RelatedStory],
) -> Option<StoryBody> {
    match cache.lock().expect("body cache").get(&id) {
        Some(body) if body.position == position && body.relations == relations => {
            Some(body.clone())
        }
        _ => None,
    }
}

/// Renders the API body of a story's first page and keeps it in memory.
fn render_body(cache: &BodyCache, page: &StoryPage) -> StoryBody {
    let body = StoryBody {
        id: page.view.id,
        position: page.view.position,
        body: Bytes::from(crate::resource::story_body(page)),
        older: page.older,
        relations: page.relations.clone().unwrap_or_default(),
    };
    cache.lock().expect("body cache").put(body.id, body.clone());
    body
}

/// A story's id and the position its view reflects, by id or slug.
fn locate(c: &Connection, id_or_slug: &str) -> Result<Option<(Uuid, i64)>, ViewError> {
    let row: Option<(String, i64)> = c
        .prepare_cached("SELECT id, position FROM stories WHERE id = ?1 OR slug = ?1")?
        .query_row([id_or_slug], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.and_then(|(id, position)| Some((Uuid::parse_str(&id).ok()?, position))))
}

/// Parses a development's stored document straight from SQLite's buffer.
fn development_doc(row: &rusqlite::Row<'_>) -> Result<DevelopmentView, ViewError> {
    let doc = row.get_ref(0)?.as_bytes().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(serde_json::from_slice::<DevelopmentView>(doc)?)
}

/// Walks a story's timeline (readers' developments, newest first) from just before `bound`
/// (a moment and a position), handing each row's document and position to `take` until it
/// says stop. Two seeks of the timeline's index: the developments at the bound's very moment
/// below its position, then those before the moment. (SQLite seeks a row-value bound
/// `(occurred_at, position) < (?, ?)` by its moment only, so one statement walked every
/// development sharing the moment above the position: a story whose developments share one
/// `occurred_at` cost a page as many rows as it had.)
pub(crate) fn timeline_before(
    c: &Connection,
    story_id: &str,
    bound: &(String, i64),
    mut take: impl FnMut(&rusqlite::Row<'_>, i64) -> Result<bool, ViewError>,
) -> Result<(), ViewError> {
    const AT_MOMENT: &str =
        "SELECT doc, position FROM developments INDEXED BY developments_timeline
         WHERE story_id = ?1 AND state IN ('published', 'retracted')
           AND occurred_at = ?2 AND position < ?3
         ORDER BY position DESC";
    const BEFORE_MOMENT: &str =
        "SELECT doc, position FROM developments INDEXED BY developments_timeline
         WHERE story_id = ?1 AND state IN ('published', 'retracted') AND occurred_at < ?2
         ORDER BY occurred_at DESC, position DESC";
    {
        let mut stmt = c.prepare_cached(AT_MOMENT)?;
        let mut rows = stmt.query(params![story_id, bound.0, bound.1])?;
        while let Some(row) = rows.next()? {
            if !take(row, row.get(1)?)? {
                return Ok(());
            }
        }
    }
    let mut stmt = c.prepare_cached(BEFORE_MOMENT)?;
    let mut rows = stmt.query(params![story_id, bound.0])?;
    while let Some(row) = rows.next()? {
        if !take(row, row.get(1)?)? {
            return Ok(());
        }
    }
    Ok(())
}

/// The story's line at `at` from `story_versions`, if it existed then.
fn version_at(
    c: &Connection,
    id: &str,
    at: &DateTime<Utc>,
) -> Result<Option<VersionAt>, ViewError> {
    let row: Option<(i64, String, String)> = c
        .prepare_cached(
            "SELECT position, occurred_until, entry FROM story_versions
             WHERE story_id = ?1 AND recorded_at <= ?2
             ORDER BY recorded_at DESC, position DESC LIMIT 1",
        )?
        .query_row(params![id, recorded_time(at)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    row.map(|(position, occurred_until, entry)| {
        Ok(VersionAt {
            position,
            occurred_until,
            entry: serde_json::from_str(&entry)?,
        })
    })
    .transpose()
}

/// Development `now` (its row in `developments`) as it stood after the event at `at`, if an
/// event since changed it (else the row is how it stood).
fn doc_then(
    c: &Connection,
    now: &DevelopmentView,
    at: i64,
) -> Result<Option<DevelopmentView>, ViewError> {
    if now.updated_position <= at {
        return Ok(None);
    }
    let position = now.position;
    let doc: Option<String> = c
        .prepare_cached(
            "SELECT doc FROM development_versions WHERE position = ?1 AND until > ?2
             ORDER BY until LIMIT 1",
        )?
        .query_row(params![position, at], |r| r.get(0))
        .optional()?;
    doc.map(|d| Ok(serde_json::from_str(&d)?)).transpose()
}

/// Reads a page of a story as it stood at `at` (see [`ViewStore::story_page_as_of`]).
pub(crate) fn load_page_as_of(
    c: &Connection,
    id_or_slug: &str,
    at: DateTime<Utc>,
    before: Option<i64>,
    limit: usize,
    claims: ClaimsAsk,
) -> Result<PageRead, ViewError> {
    let row: Option<(String, String)> = c
        .prepare_cached("SELECT id, head FROM stories WHERE id = ?1 OR slug = ?1")?
        .query_row([id_or_slug], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((id, head)) = row else {
        return Ok(PageRead::NoStory);
    };
    let Some(version) = version_at(c, &id, &at)? else {
        return Ok(PageRead::NotThen);
    };
    let p = version.position;
    let then = |position: i64| -> Result<Option<DevelopmentView>, ViewError> {
        let doc: Option<String> = c
            .prepare_cached(
                "SELECT doc FROM developments WHERE position = ?1 AND story_id = ?2 AND position <= ?3",
            )?
            .query_row(params![position, id, p], |r| r.get(0))
            .optional()?;
        let Some(doc) = doc else { return Ok(None) };
        let now: DevelopmentView = serde_json::from_str(&doc)?;
        let then = doc_then(c, &now, p)?;
        Ok(as_they_stood(p, [(now, then)], 1).pop())
    };
    // Developments whose time was corrected since sit elsewhere in the index now: read apart.
    let mut moved = Vec::new();
    let mut moved_at = std::collections::HashSet::new();
    {
        let mut stmt = c.prepare_cached(
            "SELECT DISTINCT position FROM development_versions
             WHERE story_id = ?1 AND moved = 1 AND until > ?2",
        )?;
        let positions = stmt
            .query_map(params![id, p], |r| r.get::<_, i64>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        for position in positions {
            moved_at.insert(position);
            moved.extend(then(position)?);
        }
    }
    let cursor = match before {
        None => None,
        Some(b) => match then(b)? {
            Some(d) => Some(place(&d)),
            None => return Ok(PageRead::NoCursor),
        },
    };
    let bound = version.bound(cursor.clone());
    let mut page = Vec::with_capacity(limit.min(PAGE_MAX) + 1);
    timeline_before(c, &id, &bound, |row, position| {
        if position <= p && !moved_at.contains(&position) {
            let now = development_doc(row)?;
            let then = doc_then(c, &now, p)?;
            page.extend(as_they_stood(p, [(now, then)], 1));
        }
        Ok(page.len() <= limit)
    })?;
    let page = with_moved(page, &moved, cursor.as_ref(), limit + 1);
    let ledger = load_ledger(c, &id, Some(p), claims)?;
    let head = version.head(serde_json::from_str(&head)?);
    Ok(PageRead::Found(Box::new(crate::rows::page_from_rows(
        head,
        version.entry,
        page,
        ledger,
        limit,
    ))))
}

/// Reads one page of a story's claims ledger by index (see [`ClaimsAsk`], [`ledger_rows`]):
/// as it is now, or as it stood right after position `at`. The rows chosen, and the cursor of
/// the ledger's next page.
pub(crate) fn load_ledger(
    c: &Connection,
    story: &str,
    at: Option<i64>,
    ask: ClaimsAsk,
) -> Result<LedgerRows, ViewError> {
    let upto = at.unwrap_or(i64::MAX);
    // A row as readers saw it then, if they saw it (the queries read only visible rows now).
    let seen = |row: &rusqlite::Row<'_>| -> Result<Option<DevelopmentView>, ViewError> {
        let now = development_doc(row)?;
        Ok(match at {
            None => Some(now),
            Some(p) => {
                let then = doc_then(c, &now, p)?;
                as_they_stood(p, [(now, then)], 1).pop()
            }
        })
    };
    let mut claims = Vec::with_capacity(ask.limit + 1);
    {
        let mut stmt = c.prepare_cached(
            "SELECT doc FROM developments
             WHERE story_id = ?1 AND claim = 1 AND state IN ('published', 'retracted')
               AND position < ?2 AND position <= ?3
             ORDER BY position DESC",
        )?;
        let mut rows = stmt.query(params![story, ask.bound(), upto])?;
        while claims.len() <= ask.limit {
            let Some(row) = rows.next()? else { break };
            claims.extend(seen(row)?);
        }
    }
    let (claims, older) = ask.cut(claims);
    let mut found = Vec::new();
    for claim in claims {
        let answers = claim.id.to_string();
        let mut shown = Vec::with_capacity(RESPONSES_SHOWN);
        {
            let mut stmt = c.prepare_cached(
                "SELECT doc FROM developments
                 WHERE story_id = ?1 AND answers = ?2 AND position <= ?3
                   AND state IN ('published', 'retracted')
                 ORDER BY position DESC",
            )?;
            let mut rows = stmt.query(params![story, answers, upto])?;
            while shown.len() < RESPONSES_SHOWN {
                let Some(row) = rows.next()? else { break };
                shown.extend(seen(row)?);
            }
        }
        for side in sides_to_settle(&shown) {
            // Now: the side's newest published response. Then: the newest of those published
            // by then, among the side's newest few.
            let mut stmt = c.prepare_cached(
                "SELECT doc FROM developments
                 WHERE story_id = ?1 AND answers = ?2 AND stance = ?3 AND position <= ?4
                   AND (state = 'published' OR (?5 AND state = 'retracted'))
                 ORDER BY position DESC LIMIT ?6",
            )?;
            let scan = if at.is_some() { WITNESS_SCAN } else { 1 };
            let mut rows = stmt.query(params![
                story,
                answers,
                side.as_str(),
                upto,
                at.is_some(),
                scan as i64
            ])?;
            while let Some(row) = rows.next()? {
                if let Some(r) = seen(row)?.filter(|r| r.state == DevelopmentStanding::Published) {
                    found.push(r);
                    break;
                }
            }
        }
        found.push(claim);
        found.extend(shown);
    }
    Ok(LedgerRows { rows: found, older })
}

/// Reads a page of a story (see [`ViewStore::story_page`]). Run it inside a transaction so
/// that every part reflects the same commit.
pub(crate) fn load_page(
    c: &Connection,
    id_or_slug: &str,
    before: Option<i64>,
    limit: usize,
    claims: ClaimsAsk,
) -> Result<PageRead, ViewError> {
    let row: Option<(String, String, String)> = c
        .prepare_cached("SELECT id, head, entry FROM stories WHERE id = ?1 OR slug = ?1")?
        .query_row([id_or_slug], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((id, head, entry)) = row else {
        return Ok(PageRead::NoStory);
    };
    let head: StoryHead = serde_json::from_str(&head)?;
    let entry: FrontPageEntry = serde_json::from_str(&entry)?;
    let bound: (String, i64) = match before {
        None => (PAGE_END.0.to_owned(), PAGE_END.1),
        Some(p) => {
            let at: Option<String> = c
                .prepare_cached(
                    "SELECT occurred_at FROM developments
                     WHERE position = ?1 AND story_id = ?2 AND state IN ('published', 'retracted')",
                )?
                .query_row(params![p, id], |r| r.get(0))
                .optional()?;
            match at {
                Some(at) => (at, p),
                None => return Ok(PageRead::NoCursor),
            }
        }
    };
    let mut page = Vec::with_capacity(limit.min(PAGE_MAX) + 1);
    timeline_before(c, &id, &bound, |row, _| {
        page.push(development_doc(row)?);
        Ok(page.len() <= limit)
    })?;
    let ledger = load_ledger(c, &id, None, claims)?;
    let mut page = crate::rows::page_from_rows(head, entry, page, ledger, limit);
    page.relations = Some(load_relations(c, &id)?);
    Ok(PageRead::Found(Box::new(page)))
}

/// The newest relations recorded on a story (`?1`) and to it, each side read newest first by
/// its index and stopping at `?2`, then the newest `?2` of both, with the other story's slug
/// and headline: bounded, whatever links to the story.
const RELATIONS_SQL: &str = "SELECT * FROM (
        SELECT r.position, r.relation, 1, s.id, s.slug, s.headline
          FROM relations r JOIN stories s ON s.id = r.other_id
         WHERE r.story_id = ?1 ORDER BY r.position DESC LIMIT ?2)
     UNION ALL
     SELECT * FROM (
        SELECT r.position, r.relation, 0, s.id, s.slug, s.headline
          FROM relations r JOIN stories s ON s.id = r.story_id
         WHERE r.other_id = ?1 ORDER BY r.position DESC LIMIT ?2)
     ORDER BY 1 DESC LIMIT ?2";

/// The stories related to story `id` (see [`RELATIONS_SQL`]).
pub(crate) fn load_relations(c: &Connection, id: &str) -> Result<Vec<RelatedStory>, ViewError> {
    let mut stmt = c.prepare_cached(RELATIONS_SQL)?;
    let rows = stmt.query_map(params![id, RELATIONS_SHOWN as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, bool>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut found = Vec::new();
    for row in rows {
        let (position, relation, forward, other, slug, headline) = row?;
        found.extend(related(
            position, &relation, forward, &other, slug, headline,
        ));
    }
    Ok(found)
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
