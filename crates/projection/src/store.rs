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

use newsroom_log::EventLog;
use sqlx::PgPool;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

use newsroom_log::{DbError, SqliteDb, Synchronous};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use rusqlite_migration::{Migrations, M};
use uuid::Uuid;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::marks::{front_page_at, front_page_at_pg, write_marks, MarkRow, MarkSpacing};
use std::collections::HashMap;

use newsroom_domain::StoryEvent;

use crate::followed::{Followed, Heard};
use crate::pg::PgViews;
use crate::search::{Found, Hit, Search, SearchRow};
use newsroom_readmodel::model::{
    in_recording_order, sides_to_settle, ActorEntry, ClaimsAsk, DevelopmentStanding,
    DevelopmentView, FrontPageEntry, RelatedStory, Side, StoryPage, StoryStatus, StoryView, Window,
    PAGE_DEFAULT, PAGE_MAX, RELATIONS_SHOWN, RESPONSES_SHOWN,
};
use newsroom_readmodel::LoggedEvent;

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
            // 4: developments carry `occurred_at` and `ledger`, so that a page of the timeline
            //    and the claims ledger are read by index, not from the whole story.
            // 5: `story_versions` and `development_versions`: what `as_of` reads.
            // 6: `developments_rejected`: a reporter's rejected filings at the desk.
            // 7: developments' `id` and `published_at`, indexed: the projector reads a story's
            //    newest times and the developments an event changes, not the whole story.
            // 8: `story_versions.sort_key` and `front_page_marks`: the front page as it stood
            //    is read from a mark and the lines after it, not one line per story.
            // 9: developments' `claim`, `answers` and `stance` in place of `ledger`: a page of
            //    the claims ledger is read by index (claims, then each claim's responses), not
            //    the whole ledger.
            // 10: `search`, the full-text index of stories and developments (`search.rs`).
            // 11: `relations`, the relations editors record between stories, shown on both.
            // 12: `search` keeps no copy of the text (contentless, `contentless_delete`); its
            //     story and time are in `search_keys`.
            // 13: `search` without prefix indexes: they tripled what a rebuild writes into the
            //     index; a prefix query reads the terms that begin with it instead.
            ViewName::Stories => 13,
            // 3: rows refer to the development (its position) instead of copying it.
            // 4: actor keys fold confusables and drop invisible characters (UTS #39 skeletons,
            //    `Actor::normalise`), computed from the name whenever an event is read.
            ViewName::Actors => 4,
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
                    // `occurred_at` in RFC 3339 with microseconds (sorts as it reads);
                    // `claim`: a claim of attribution; `answers`: the development a response
                    // answers, and its `stance` (`Side`): the claims ledger's rows.
                    // `id`: the development's; `published_at` with nanoseconds, while it is
                    // published (the newest of a story's are its front-page time).
                    columns: "(
                        position     INTEGER PRIMARY KEY,
                        story_id     TEXT NOT NULL,
                        id           TEXT NOT NULL,
                        state        TEXT NOT NULL,
                        filed_by     TEXT,
                        occurred_at  TEXT NOT NULL,
                        published_at TEXT,
                        claim        INTEGER NOT NULL,
                        answers      TEXT,
                        stance       TEXT,
                        doc          TEXT NOT NULL
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
                        // A reporter's rejected filings, newest first (the desk's home).
                        ViewIndex {
                            name: "developments_rejected",
                            on: "(filed_by, position) WHERE state = 'rejected'",
                            while_loading: false,
                        },
                        // A page of the timeline: what readers see, in the order it happened.
                        ViewIndex {
                            name: "developments_timeline",
                            on: "(story_id, occurred_at, position) WHERE state IN ('published', 'retracted')",
                            while_loading: false,
                        },
                        // The projector finds the development an event changes by its id.
                        ViewIndex {
                            name: "developments_id",
                            on: "(story_id, id)",
                            while_loading: false,
                        },
                        // The newest published: a story's front-page time.
                        ViewIndex {
                            name: "developments_published",
                            on: "(story_id, published_at) WHERE state = 'published'",
                            while_loading: false,
                        },
                        // A page of the claims ledger: its claims, newest recorded first ...
                        ViewIndex {
                            name: "developments_claims",
                            on: "(story_id, position) WHERE claim = 1 AND state IN ('published', 'retracted')",
                            while_loading: false,
                        },
                        // ... and each claim's responses, newest first, or of one side.
                        ViewIndex {
                            name: "developments_answers",
                            on: "(story_id, answers, position) WHERE answers IS NOT NULL",
                            while_loading: false,
                        },
                        ViewIndex {
                            name: "developments_sides",
                            on: "(story_id, answers, stance, position) WHERE answers IS NOT NULL",
                            while_loading: false,
                        },
                    ],
                },
                ViewTable {
                    name: "story_versions",
                    // A story's front-page line right after each of its events, keyed by the
                    // event's position (a rebuild appends them in key order): `as_of` reads a
                    // story's fields and the front page as they stood from here. `recorded_at`
                    // with nanoseconds; `occurred_until`: no development readers saw then had
                    // happened later ('' while there was none).
                    // `sort_key`: the story's place on the front page then (`marks.rs`).
                    columns: "(
                        position       INTEGER PRIMARY KEY,
                        story_id       TEXT NOT NULL,
                        recorded_at    TEXT NOT NULL,
                        occurred_until TEXT NOT NULL,
                        sort_key       TEXT NOT NULL,
                        entry          TEXT NOT NULL
                    )",
                    indexes: &[
                        ViewIndex {
                            name: "story_versions_story",
                            on: "(story_id, recorded_at, position)",
                            while_loading: false,
                        },
                        // The lines recorded after a front-page mark.
                        ViewIndex {
                            name: "story_versions_recorded",
                            on: "(recorded_at)",
                            while_loading: false,
                        },
                    ],
                },
                ViewTable {
                    name: "front_page_marks",
                    // The front page's first stories every so many positions (`marks.rs`).
                    columns: "(
                        position INTEGER PRIMARY KEY,
                        high     TEXT NOT NULL,
                        low      TEXT NOT NULL,
                        stories  TEXT NOT NULL,
                        cut      INTEGER NOT NULL
                    )",
                    indexes: &[
                        ViewIndex {
                            name: "front_page_marks_high",
                            on: "(high, position)",
                            while_loading: false,
                        },
                        ViewIndex {
                            name: "front_page_marks_low",
                            on: "(low)",
                            while_loading: false,
                        },
                    ],
                },
                ViewTable {
                    name: "search",
                    // The full-text index (`search.rs`): one document per development (rowid:
                    // its position) and per story (a negative rowid from its id), its text
                    // folded in Rust, its filters as words of their own column.
                    // Contentless: the text is indexed, not kept (the rows are read from
                    // `developments` and `stories`); a document is deleted by its rowid.
                    // No prefix indexes (`prefix = '2 3'` made the index cost a rebuild two
                    // and a half times as much): a prefix query (`phish*`) merges the
                    // doclists of the terms that begin with it (BENCHMARKS.md, Search).
                    columns: "USING fts5(
                        headline,
                        body,
                        names,
                        filters,
                        tokenize = 'unicode61 remove_diacritics 2',
                        content = '',
                        contentless_delete = 1
                    )",
                    indexes: &[],
                },
                ViewTable {
                    name: "search_keys",
                    // Each document of `search`: its story and when it happened (the `from` and
                    // `to` filters), under the same rowid.
                    columns: "(
                        rowid       INTEGER PRIMARY KEY,
                        story       TEXT NOT NULL,
                        occurred_at TEXT
                    )",
                    indexes: &[],
                },
                ViewTable {
                    name: "relations",
                    // The relation a story records to another (`StoryLinked`), by the event at
                    // `position`; a story's related stories are read from both sides, newest
                    // first, by index (`load_relations`).
                    columns: "(
                        story_id TEXT NOT NULL,
                        other_id TEXT NOT NULL,
                        relation TEXT NOT NULL,
                        position INTEGER NOT NULL,
                        PRIMARY KEY (story_id, other_id)
                    ) WITHOUT ROWID",
                    indexes: &[
                        ViewIndex {
                            name: "relations_story",
                            on: "(story_id, position)",
                            while_loading: true,
                        },
                        ViewIndex {
                            name: "relations_other",
                            on: "(other_id, position)",
                            while_loading: true,
                        },
                    ],
                },
                ViewTable {
                    name: "development_versions",
                    // A development's document (recorded at `position`) as it stood until the
                    // event at `until` changed it; the `developments` row holds the latest.
                    // `moved`: that event changed when it happened, so the row's place in the
                    // timeline's index is not where it stood before.
                    columns: "(
                        until    INTEGER PRIMARY KEY,
                        position INTEGER NOT NULL,
                        story_id TEXT NOT NULL,
                        moved    INTEGER NOT NULL,
                        doc      TEXT NOT NULL
                    )",
                    indexes: &[
                        ViewIndex {
                            name: "development_versions_of",
                            on: "(position, until)",
                            while_loading: false,
                        },
                        ViewIndex {
                            name: "development_versions_moved",
                            on: "(story_id, until) WHERE moved = 1",
                            while_loading: false,
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
        // The full-text index is a virtual table (FTS5).
        let kind = if self.columns.starts_with("USING") {
            "VIRTUAL TABLE"
        } else {
            "TABLE"
        };
        format!("CREATE {kind} {}{suffix} {};", self.name, self.columns)
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
            ViewError::Postgres(e) => newsroom_log::feed::is_unreachable(e),
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
type BodyCache = Arc<Mutex<lru::LruCache<Uuid, StoryBody>>>;

/// The rendered API body of a story's first page.
#[derive(Debug, Clone)]
pub struct StoryBody {
    pub id: Uuid,
    /// The position the body reflects.
    pub position: i64,
    pub body: Bytes,
    /// The cursor of the page of older developments, if there is one.
    pub older: Option<i64>,
    /// The related stories the body shows (a change of them, which may leave the story's
    /// position as it was, makes the body stale).
    pub relations: Vec<RelatedStory>,
}

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

/// What a stored view's checkpoint says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: i64,
    pub schema_version: i64,
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
        let db = SqliteDb::open(path, &migrations(), Synchronous::Normal, 8)?;
        create_missing_tables(path)?;
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

/// The page shown of the hits read (one more than the page, if there are more).
pub(crate) fn found(mut hits: Vec<Hit>, s: &Search) -> Result<Found, ViewError> {
    let more = hits.len() > s.limit;
    hits.truncate(s.limit);
    let mut shown = Vec::with_capacity(hits.len());
    for hit in &hits {
        shown.extend(hit.shown(&s.query)?);
    }
    Ok(Found { hits: shown, more })
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
        body: Bytes::from(crate::api::story_body(page)),
        older: page.older,
        relations: page.relations.clone().unwrap_or_default(),
    };
    cache.lock().expect("body cache").put(body.id, body.clone());
    body
}

/// For [`ViewStore::story_after`], per event: the story's line then, and the changed
/// development's document now and (if an event changed it since) then.
pub(crate) type StoryAfterRow = (Option<String>, Option<(String, Option<String>)>);

/// What reading a page of a story found.
#[derive(Debug)]
pub enum PageRead {
    Found(Box<StoryPage>),
    /// No story has that id or slug.
    NoStory,
    /// The cursor names no development readers see in that story.
    NoCursor,
    /// The story did not exist yet at the time asked for.
    NotThen,
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

/// A story's line as it stood at a time: the position of its last event by then, how far its
/// visible developments reached, and its front-page entry.
pub(crate) struct VersionAt {
    pub(crate) position: i64,
    pub(crate) occurred_until: String,
    pub(crate) entry: FrontPageEntry,
}

impl VersionAt {
    /// The story's own fields then (see [`StoryHead::then`]).
    pub(crate) fn head(&self, now: StoryHead) -> StoryHead {
        now.then(&self.entry)
    }

    /// The bound of the page's scan: the cursor's place, and never past what had happened by
    /// then nor, among developments of that same time, anything recorded later (developments
    /// recorded later that happened earlier are read and set aside).
    pub(crate) fn bound(&self, cursor: Option<(String, i64)>) -> (String, i64) {
        let reach = (self.occurred_until.clone(), self.position.saturating_add(1));
        match cursor {
            Some(c) if c < reach => c,
            _ => reach,
        }
    }
}

/// What a page as of position `at` keeps of the rows read (newest first, each with the
/// position that recorded it, its current document, and its document then if an event
/// changed it since): those recorded by then and visible then, as they stood, up to `take`.
pub(crate) fn as_they_stood(
    at: i64,
    rows: impl IntoIterator<Item = (DevelopmentView, Option<DevelopmentView>)>,
    take: usize,
) -> Vec<DevelopmentView> {
    rows.into_iter()
        .filter(|(now, _)| now.position <= at)
        .map(|(now, then)| then.unwrap_or(now))
        .filter(DevelopmentView::is_visible)
        .take(take)
        .collect()
}

/// A development's place in the timeline: when it happened (as stored), then its position.
pub(crate) fn place(d: &DevelopmentView) -> (String, i64) {
    (sortable_time(&d.occurred_at), d.position)
}

/// Adds to a page read from the timeline's index (newest first, `moved` developments left out)
/// the developments whose time was corrected since (as they stood, so not where the index has
/// them now), keeping the newest `take` before the cursor.
pub(crate) fn with_moved(
    mut page: Vec<DevelopmentView>,
    moved: &[DevelopmentView],
    cursor: Option<&(String, i64)>,
    take: usize,
) -> Vec<DevelopmentView> {
    page.extend(
        moved
            .iter()
            .filter(|d| cursor.is_none_or(|c| place(d) < *c))
            .cloned(),
    );
    page.sort_by_key(|d| std::cmp::Reverse(place(d)));
    page.truncate(take);
    page
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
    Ok(PageRead::Found(Box::new(crate::store::page_from_rows(
        head,
        version.entry,
        page,
        ledger,
        limit,
    ))))
}

/// Responses of one side a read as of a moment looks through for one published then, newest
/// first (a response retracted since is still in the index; one retracted by then is not the
/// side's witness).
pub(crate) const WITNESS_SCAN: usize = 16;

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

/// One page of a claims ledger as read: its claims and the responses shown with them, and the
/// cursor of the ledger's next page.
pub(crate) struct LedgerRows {
    pub(crate) rows: Vec<DevelopmentView>,
    pub(crate) older: Option<i64>,
}

/// The bound of a timeline page without a cursor: after every stored time and position.
/// The PostgreSQL channel on which the views announce each commit (the position reached).
pub const VIEWS_CHANNEL: &str = "newsroom_views";

pub(crate) const PAGE_END: (&str, i64) = ("~", i64::MAX);

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
    let mut page = crate::store::page_from_rows(head, entry, page, ledger, limit);
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

/// A related story from its row (`None` for a row this code cannot read: skipped, never fatal).
pub(crate) fn related(
    position: i64,
    relation: &str,
    forward: bool,
    other: &str,
    slug: String,
    headline: String,
) -> Option<RelatedStory> {
    let id = Uuid::parse_str(other).ok()?;
    RelatedStory::of(id, slug, headline, relation, forward, position)
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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

    /// The story's own fields when `entry` was its front-page line: these fields (slug, summary,
    /// opening and review never change) with the line's headline, tags, status and times.
    pub(crate) fn then(self, entry: &FrontPageEntry) -> Self {
        Self {
            headline: entry.headline.clone(),
            tags: entry.tags.clone(),
            status: entry.status,
            updated_at: entry.updated_at,
            position: entry.position,
            ..self
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

/// A page from stored rows: the story's head and front-page line, up to `limit + 1` rows of
/// the timeline newest first (one more than the page says whether older ones exist), and
/// one page of the claims ledger.
pub(crate) fn page_from_rows(
    head: StoryHead,
    entry: FrontPageEntry,
    mut page: Vec<DevelopmentView>,
    ledger: LedgerRows,
    limit: usize,
) -> StoryPage {
    let older = (page.len() > limit).then(|| {
        page.truncate(limit);
        page.last().map_or(0, |d| d.position)
    });
    page.reverse();
    let view = head.clone().with(page);
    StoryPage {
        view,
        entry,
        ledger: head.with(in_recording_order(ledger.rows)),
        older,
        claims_older: ledger.older,
        relations: None,
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

/// How many of a story's newest times the projector reads into each window at least.
pub(crate) const WINDOW: usize = 16;

/// The windows of a story's newest times read from its rows: each query's documents, newest
/// first, with the sort key of the last one read. A window read in full (fewer documents than
/// `limit`) is complete; otherwise times in the last one's sort-key step (a microsecond for
/// `occurred_at`, a nanosecond for `published_at`) or earlier may be missing.
pub(crate) struct NewestDocs {
    pub(crate) visible: Vec<String>,
    pub(crate) occurred: Vec<String>,
    pub(crate) published: Vec<String>,
}

impl NewestDocs {
    /// The story's stored view from its head, its front-page line and these documents.
    pub(crate) fn view(
        self,
        head: StoryHead,
        entry: &FrontPageEntry,
        limit: usize,
    ) -> Result<StoryView, ViewError> {
        use chrono::{DurationRound, TimeDelta};
        let parse = |docs: &[String]| {
            docs.iter()
                .map(|d| serde_json::from_str::<DevelopmentView>(d))
                .collect::<Result<Vec<_>, _>>()
        };
        let window = |times: Vec<DateTime<Utc>>, step: TimeDelta| -> Window {
            // The last time read decides the floor: its whole step may be only partly read.
            let floor = (times.len() >= limit).then(|| {
                let last = *times.last().expect("a full window has times");
                last.duration_trunc(step).unwrap_or(last) + step - TimeDelta::nanoseconds(1)
            });
            Window::newest(times, floor)
        };
        let micro = TimeDelta::microseconds(1);
        let visible = parse(&self.visible)?
            .iter()
            .map(|d| d.occurred_at)
            .collect();
        let occurred = parse(&self.occurred)?
            .iter()
            .map(|d| d.occurred_at)
            .collect();
        let published = parse(&self.published)?
            .iter()
            .filter_map(|d| d.published_at)
            .collect();
        Ok(head.with(Vec::new()).stored(
            entry.development_count,
            window(occurred, micro),
            window(published, TimeDelta::nanoseconds(1)),
            window(visible, micro),
        ))
    }
}

/// A story as the projector keeps it ([`StoryView::stored`]), its windows `limit` times long;
/// `None` if the story has no row.
pub(crate) fn load_stored(
    c: &Connection,
    id: Uuid,
    limit: usize,
) -> Result<Option<StoryView>, ViewError> {
    let id = id.to_string();
    let row: Option<(String, String)> = c
        .prepare_cached("SELECT head, entry FROM stories WHERE id = ?1")?
        .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((head, entry)) = row else {
        return Ok(None);
    };
    let docs = |sql: &str| -> Result<Vec<String>, ViewError> {
        let mut stmt = c.prepare_cached(sql)?;
        let docs = stmt
            .query_map(params![&id, limit as i64], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(docs)
    };
    let newest = NewestDocs {
        visible: docs(
            "SELECT doc FROM developments
              WHERE story_id = ?1 AND state IN ('published', 'retracted')
              ORDER BY occurred_at DESC LIMIT ?2",
        )?,
        occurred: docs(
            "SELECT doc FROM developments
              WHERE story_id = ?1 AND state IN ('published', 'retracted') AND state = 'published'
              ORDER BY occurred_at DESC LIMIT ?2",
        )?,
        published: docs(
            "SELECT doc FROM developments
              WHERE story_id = ?1 AND state = 'published'
              ORDER BY published_at DESC LIMIT ?2",
        )?,
    };
    let head: StoryHead = serde_json::from_str(&head)?;
    let entry: FrontPageEntry = serde_json::from_str(&entry)?;
    Ok(Some(newest.view(head, &entry, limit)?))
}

/// The development `id` of story `story`, from its row.
pub(crate) fn development_by_id(
    c: &Connection,
    story: Uuid,
    id: Uuid,
) -> Result<Option<DevelopmentView>, ViewError> {
    let doc: Option<String> = c
        .prepare_cached("SELECT doc FROM developments WHERE story_id = ?1 AND id = ?2")?
        .query_row([story.to_string(), id.to_string()], |r| r.get(0))
        .optional()?;
    Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
}

/// A story's front-page line from its stored entry and its newest published development's
/// document, if it has one.
pub(crate) fn front_page_line(
    entry: &str,
    latest: Option<&str>,
) -> Result<FrontPageEntry, ViewError> {
    let mut entry: FrontPageEntry = serde_json::from_str(entry)?;
    entry.latest = latest
        .map(serde_json::from_str::<DevelopmentView>)
        .transpose()?
        .map(Into::into);
    Ok(entry)
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
    /// One per event applied to the `stories` view.
    pub(crate) versions: Vec<StoryVersionRow>,
    /// One per event that changed a development.
    pub(crate) superseded: Vec<SupersededRow>,
    pub(crate) developments: Vec<DevelopmentRow>,
    pub(crate) replaced: Vec<i64>,
    pub(crate) actors: Vec<ActorRow>,
    /// A rebuild's front-page marks, and the final `low` of those written earlier.
    pub(crate) marks: Vec<MarkRow>,
    pub(crate) mark_lows: Vec<(i64, String)>,
    /// Documents of the search index to write (or remove), for the `stories` view.
    pub(crate) search: Vec<SearchRow>,
    /// Relations set or removed, in the order of their events.
    pub(crate) relations: Vec<RelationRow>,
}

/// A change of the `relations` table: the relation story `story_id` records to `other_id`,
/// set (`relation`) or removed (`None`) by the event at `position`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RelationRow {
    pub(crate) story_id: String,
    pub(crate) other_id: String,
    pub(crate) relation: Option<String>,
    pub(crate) position: i64,
}

impl RelationRow {
    /// The change an event makes, if it relates or unrelates stories.
    pub(crate) fn of(e: &LoggedEvent) -> Option<Self> {
        let (other, relation) = match &e.event {
            StoryEvent::StoryLinked { story, relation } => (story, Some(relation.as_str())),
            StoryEvent::StoryUnlinked { story, .. } => (story, None),
            _ => return None,
        };
        Some(Self {
            story_id: e.story_id.to_string(),
            other_id: other.to_string(),
            relation: relation.map(str::to_owned),
            position: e.position,
        })
    }

    /// The last change of each pair of stories among `rows` (each replaces what was before).
    pub(crate) fn last_of_each(rows: &[RelationRow]) -> Vec<&RelationRow> {
        let mut last: HashMap<(&str, &str), &RelationRow> = HashMap::new();
        for row in rows {
            last.insert((&row.story_id, &row.other_id), row);
        }
        let mut rows: Vec<&RelationRow> = last.into_values().collect();
        rows.sort_by_key(|r| r.position);
        rows
    }
}

/// Writes relation changes (table name with `suffix`).
fn write_relations(tx: &Connection, rows: &[RelationRow], suffix: &str) -> Result<(), ViewError> {
    let mut delete = tx.prepare_cached(&format!(
        "DELETE FROM relations{suffix} WHERE story_id = ?1 AND other_id = ?2"
    ))?;
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO relations{suffix} (story_id, other_id, relation, position)
         VALUES (?1, ?2, ?3, ?4)"
    ))?;
    for row in RelationRow::last_of_each(rows) {
        delete.execute(params![row.story_id, row.other_id])?;
        if let Some(relation) = &row.relation {
            insert.execute(params![row.story_id, row.other_id, relation, row.position])?;
        }
    }
    Ok(())
}

/// A story's row in `story_versions`: its front-page line right after the event at `position`.
#[derive(Debug)]
pub(crate) struct StoryVersionRow {
    pub(crate) position: i64,
    pub(crate) story_id: String,
    pub(crate) recorded_at: String,
    pub(crate) occurred_until: String,
    /// The story's place on the front page (the `stories` row's `sort_key` then).
    pub(crate) sort_key: String,
    pub(crate) entry: String,
}

/// `recorded_at` as `story_versions` stores it: RFC 3339 with nanoseconds, so that comparing
/// the text compares the times exactly.
pub(crate) fn recorded_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl StoryVersionRow {
    /// The row of `view` right after applying its latest event.
    pub(crate) fn of(view: &StoryView) -> Self {
        let entry = view.front_page_entry();
        Self {
            position: view.position,
            story_id: view.id.to_string(),
            recorded_at: recorded_time(&view.updated_at),
            occurred_until: view
                .occurred_until()
                .map(|t| sortable_time(&t))
                .unwrap_or_default(),
            sort_key: sort_key(&entry, view),
            entry: serde_json::to_string(&entry).expect("an entry always serialises"),
        }
    }

    pub(crate) fn insert_all<'a>(
        tx: &Connection,
        rows: impl IntoIterator<Item = &'a StoryVersionRow>,
        suffix: &str,
    ) -> Result<(), ViewError> {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT OR REPLACE INTO story_versions{suffix}
                (position, story_id, recorded_at, occurred_until, sort_key, entry)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        ))?;
        for row in rows {
            insert.execute(params![
                row.position,
                row.story_id,
                row.recorded_at,
                row.occurred_until,
                row.sort_key,
                row.entry
            ])?;
        }
        Ok(())
    }
}

/// A row of `development_versions`: a development's document as it stood until the event at
/// `until` changed it.
#[derive(Debug)]
pub(crate) struct SupersededRow {
    pub(crate) until: i64,
    pub(crate) position: i64,
    pub(crate) story_id: String,
    pub(crate) moved: bool,
    pub(crate) doc: String,
}

impl SupersededRow {
    /// Applies the event at `until` (which changes development `id`) to `view`, keeping the
    /// development's document from before, if it had one.
    pub(crate) fn apply(view: &mut StoryView, e: &newsroom_readmodel::LoggedEvent) -> Option<Self> {
        let before = e
            .event
            .development_id()
            .and_then(|id| view.development(id.as_uuid()))
            .map(|d| (d.id, d.occurred_at, Self::of(view.id, d, e.position)));
        view.apply(e);
        let (id, occurred_at, mut row) = before?;
        row.moved = view
            .development(id)
            .is_some_and(|d| d.occurred_at != occurred_at);
        Some(row)
    }

    fn of(story: Uuid, d: &DevelopmentView, until: i64) -> Self {
        Self {
            until,
            position: d.position,
            story_id: story.to_string(),
            moved: false,
            doc: serde_json::to_string(d).expect("a development always serialises"),
        }
    }

    pub(crate) fn insert_all<'a>(
        tx: &Connection,
        rows: impl IntoIterator<Item = &'a SupersededRow>,
        suffix: &str,
    ) -> Result<(), ViewError> {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT OR REPLACE INTO development_versions{suffix}
                (until, position, story_id, moved, doc)
             VALUES (?1, ?2, ?3, ?4, ?5)"
        ))?;
        for row in rows {
            insert.execute(params![
                row.until,
                row.position,
                row.story_id,
                row.moved,
                row.doc
            ])?;
        }
        Ok(())
    }
}

/// A development's row in the `developments` table, ready to insert.
pub(crate) struct DevelopmentRow {
    pub(crate) position: i64,
    pub(crate) story_id: String,
    pub(crate) id: String,
    pub(crate) state: &'static str,
    pub(crate) filed_by: Option<String>,
    pub(crate) occurred_at: String,
    pub(crate) published_at: Option<String>,
    pub(crate) claim: bool,
    pub(crate) answers: Option<String>,
    pub(crate) stance: Option<&'static str>,
    pub(crate) doc: String,
}

/// A time as the views store it for sorting: RFC 3339 with microseconds, in UTC (its text
/// order is its time order).
pub(crate) fn sortable_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl DevelopmentRow {
    pub(crate) fn of(story: &StoryView, d: &DevelopmentView) -> Result<Self, ViewError> {
        Ok(Self {
            position: d.position,
            story_id: story.id.to_string(),
            id: d.id.to_string(),
            state: state_name(d.state),
            filed_by: d.filed_by.clone(),
            occurred_at: sortable_time(&d.occurred_at),
            published_at: d.published_at.as_ref().map(recorded_time),
            claim: d.is_claim(),
            answers: d.responds_to.map(|l| l.development.to_string()),
            stance: d.side().map(Side::as_str),
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
            "INSERT OR REPLACE INTO developments{suffix}
                (position, story_id, id, state, filed_by, occurred_at, published_at, claim,
                 answers, stance, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ))?;
        for row in rows {
            insert.execute(params![
                row.position,
                row.story_id,
                row.id,
                row.state,
                row.filed_by,
                row.occurred_at,
                row.published_at,
                row.claim,
                row.answers,
                row.stance,
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
        let occurred_at = sortable_time(&d.occurred_at);
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

fn state_name(state: DevelopmentStanding) -> &'static str {
    match state {
        DevelopmentStanding::PendingReview => "pending_review",
        DevelopmentStanding::Published => "published",
        DevelopmentStanding::Rejected => "rejected",
        DevelopmentStanding::Retracted => "retracted",
        DevelopmentStanding::Embargoed => "embargoed",
    }
}

/// Writes a batch's rows into SQLite views.
pub(crate) fn write_rows(tx: &Connection, rows: &BatchRows) -> Result<(), ViewError> {
    write_rows_into(tx, rows, "")
}

/// Writes `rows` into the tables named with `suffix` (`_next` for a rebuild); rows of a table
/// that does not exist must be absent.
pub(crate) fn write_rows_into(
    tx: &Connection,
    rows: &BatchRows,
    suffix: &str,
) -> Result<(), ViewError> {
    write_rows_between(tx, rows, suffix, &mut || Ok(()))
}

/// [`write_rows_into`], calling `between` after each table's rows (a rebuild's writer answers
/// the fold's read-backs there instead of making it wait for the whole part).
pub(crate) fn write_rows_between(
    tx: &Connection,
    rows: &BatchRows,
    suffix: &str,
    between: &mut dyn FnMut() -> Result<(), ViewError>,
) -> Result<(), ViewError> {
    if !rows.stories.is_empty() {
        StoryRow::insert_all(tx, &rows.stories, suffix)?;
        between()?;
    }
    if !rows.developments.is_empty() {
        DevelopmentRow::insert_all(tx, &rows.developments, suffix)?;
        between()?;
    }
    if !rows.versions.is_empty() {
        StoryVersionRow::insert_all(tx, &rows.versions, suffix)?;
        between()?;
    }
    if !rows.superseded.is_empty() {
        SupersededRow::insert_all(tx, &rows.superseded, suffix)?;
        between()?;
    }
    if !rows.replaced.is_empty() {
        let mut delete = tx.prepare_cached(&format!(
            "DELETE FROM actor_entries{suffix} WHERE position = ?1"
        ))?;
        for position in &rows.replaced {
            delete.execute([position])?;
        }
    }
    if !rows.actors.is_empty() {
        ActorRow::insert_all(tx, &rows.actors, suffix)?;
        between()?;
    }
    if !rows.marks.is_empty() || !rows.mark_lows.is_empty() {
        write_marks(tx, &rows.marks, &rows.mark_lows, suffix)?;
    }
    if !rows.search.is_empty() {
        write_search(tx, &rows.search, suffix)?;
        between()?;
    }
    if !rows.relations.is_empty() {
        write_relations(tx, &rows.relations, suffix)?;
    }
    Ok(())
}

/// Replaces documents of the search index (table name with `suffix`).
pub(crate) fn write_search(
    tx: &Connection,
    rows: &[SearchRow],
    suffix: &str,
) -> Result<(), ViewError> {
    let mut delete = tx.prepare_cached(&format!("DELETE FROM search{suffix} WHERE rowid = ?1"))?;
    let mut forget =
        tx.prepare_cached(&format!("DELETE FROM search_keys{suffix} WHERE rowid = ?1"))?;
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO search{suffix} (rowid, headline, body, names, filters)
         VALUES (?1, ?2, ?3, ?4, ?5)"
    ))?;
    let mut keep = tx.prepare_cached(&format!(
        "INSERT INTO search_keys{suffix} (rowid, story, occurred_at) VALUES (?1, ?2, ?3)"
    ))?;
    let t = std::time::Instant::now();
    let mut last = i64::MIN;
    let mut flushes = 0u64;
    for row in rows {
        if row.key <= last {
            flushes += 1;
        }
        last = row.key;
        // A document never indexed costs one look at the keys.
        if forget.execute([row.key])? > 0 {
            delete.execute([row.key])?;
        }
        if let Some(t) = &row.text {
            insert.execute(params![row.key, t.headline, t.body, t.names, t.filters])?;
            keep.execute(params![row.key, row.story_id, t.occurred_at])?;
        }
    }
    crate::rebuild::count_search(t, flushes);
    Ok(())
}

/// The developments recorded at `positions`, read back from `developments` (table name with
/// `suffix`), in no particular order; positions without a row are left out.
pub(crate) fn developments_at(
    tx: &Connection,
    positions: &[i64],
    suffix: &str,
) -> Result<Vec<DevelopmentView>, ViewError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT doc FROM developments{suffix} WHERE position = ?1"
    ))?;
    let mut found = Vec::with_capacity(positions.len());
    for position in positions {
        let doc: Option<String> = stmt.query_row([position], |r| r.get(0)).optional()?;
        if let Some(doc) = doc {
            found.push(serde_json::from_str(&doc)?);
        }
    }
    Ok(found)
}

/// Creates an empty `developments_next` table alone: where a rebuild of the `actors` view
/// without the `stories` view keeps the developments it lets go of. Dropped when it ends.
pub(crate) fn create_scratch_developments(tx: &Connection) -> Result<(), ViewError> {
    let table = ViewName::Stories
        .tables()
        .iter()
        .find(|t| t.name == "developments")
        .expect("the stories view has a developments table");
    tx.execute_batch(&format!(
        "DROP TABLE IF EXISTS developments_next; {}",
        table.create("_next")
    ))?;
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
