//! A SQLite database file owned by one part of newsroom (the views, the notifier's queue): one
//! writer connection behind a lock, a pool of readers, WAL, a busy timeout, and schema migrations
//! run on open. The event log has its own, more specialised writer (`sqlite.rs`).
//!
//! [`ReadWork`] counts what reads cost, deterministically: a progress handler on every reader
//! connection (of these files and of the log) counts one unit per [`WORK_UNIT`] SQLite
//! virtual-machine instructions; the end-to-end budget test (`tests/api/budget.rs`) holds every
//! public read to a bound that does not grow with the log.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use rusqlite_migration::Migrations;

use crate::migrate::Renumbering;

/// Errors of a [`SqliteDb`], and of the closures run on it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("schema migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("stored JSON cannot be read: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot create {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the database task stopped: {0}")]
    Task(String),
    #[error("database error: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("a stored value cannot be read: {0}")]
    Value(String),
    #[error("the query returned no row")]
    NoRows,
}

/// The plumbing's errors as the log's, for closures run on the log's database
/// ([`crate::EventLog::with_sql`]).
impl From<DbError> for crate::feed::StoreError {
    fn from(e: DbError) -> Self {
        use crate::feed::StoreError;
        match e {
            DbError::Database(e) => StoreError::Database(e),
            DbError::Pool(e) => StoreError::Pool(e),
            DbError::Migration(e) => StoreError::Migration(e),
            DbError::Json(e) => StoreError::Json(e),
            DbError::Io { path, source } => StoreError::DataDir { path, source },
            DbError::Task(_) => StoreError::WriterGone,
            DbError::Postgres(e) => StoreError::Postgres(e),
            DbError::Value(what) => StoreError::Unreadable(what),
            DbError::NoRows => StoreError::Database(rusqlite::Error::QueryReturnedNoRows),
        }
    }
}

impl DbError {
    /// Whether the database cannot be reached right now (a PostgreSQL restart, a failover):
    /// retrying later may succeed.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, DbError::Postgres(e) if crate::feed::is_unreachable(e))
    }
}

fn set_synchronous(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    conn.pragma_update(None, "synchronous", synchronous.pragma())
}

/// Pragmas every connection to every newsroom SQLite file gets (the log's included): WAL, so
/// readers never block the writer; a busy timeout, so a lock is waited for instead of failing at
/// once; foreign keys; and temporary storage in memory. A statement that may fail half-way keeps
/// the pages it changes in a statement journal, and a temporary file would take those writes
/// (hundreds of kilobytes per development once a batch's inserts outgrow 64 KiB); in memory it
/// is bounded by what one statement changes and never touches the disk.
pub(crate) fn configure(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    set_synchronous(conn, synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// How many SQLite virtual-machine instructions one unit of [`ReadWork`] stands for.
pub const WORK_UNIT: i32 = 64;

/// The work reads have done on a database: SQLite calls a progress handler on every reader
/// connection each [`WORK_UNIT`] virtual-machine instructions a statement runs, and each call
/// counts one. A deterministic measure of what reading costs (rows visited, index pages walked),
/// unlike time: what proves that a request's cost does not grow with the log. A statement of
/// fewer instructions than a unit counts nothing; the handler costs one atomic add per unit.
#[derive(Clone, Debug, Default)]
pub struct ReadWork(Arc<std::sync::atomic::AtomicU64>);

impl ReadWork {
    /// Counts the work of statements run on `conn`.
    pub fn count_on(&self, conn: &Connection) {
        let counter = self.0.clone();
        conn.progress_handler(
            WORK_UNIT,
            Some(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                false
            }),
        );
    }

    /// Units of work counted so far.
    pub fn units(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// One SQLite file with a single writer and pooled readers. Cheap to clone.
#[derive(Clone)]
pub struct SqliteDb {
    writer: Arc<Mutex<Connection>>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
    synchronous: Synchronous,
    read_work: ReadWork,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDb")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteDb {
    /// Opens (creating it and its directory if needed) and migrates the database at `path`
    /// (moving it first onto today's numbering of its files, if `renumbering` says how).
    pub fn open(
        path: &Path,
        migrations: &Migrations<'_>,
        renumbering: Option<&Renumbering<'_>>,
        synchronous: Synchronous,
        readers: u32,
    ) -> Result<Self, DbError> {
        // The file and its directory are the owner's alone (`private`).
        crate::private::prepare_database_file(path)
            .map_err(|(path, source)| DbError::Io { path, source })?;
        let mut conn = Connection::open(path)?;
        configure(&conn, synchronous)?;
        crate::migrate::migrate(&mut conn, migrations, renumbering)?;
        let read_work = ReadWork::default();
        let counter = read_work.clone();
        let manager = SqliteConnectionManager::file(path).with_init(move |c: &mut Connection| {
            counter.count_on(c);
            configure(c, synchronous)
        });
        let readers = r2d2::Pool::builder()
            .max_size(readers.max(1))
            .min_idle(Some(1))
            .build(manager)?;
        Ok(Self {
            writer: Arc::new(Mutex::new(conn)),
            readers,
            path: path.to_owned(),
            synchronous,
            read_work,
        })
    }

    /// The work the reader connections have done ([`ReadWork`]).
    pub fn read_work(&self) -> u64 {
        self.read_work.units()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves WAL checkpoints off the write path: the writer stops checkpointing by itself, and a
    /// background task checkpoints (`PASSIVE`: never waiting for, nor blocking, the writer)
    /// every `every`, on a reader connection. Without this, whichever commit crosses the WAL's
    /// size threshold also pays for copying and syncing the database file. The task ends when
    /// the last handle to the database is dropped.
    pub fn checkpoint_in_background(&self, every: Duration) -> Result<(), DbError> {
        {
            let conn = self
                .writer
                .lock()
                .map_err(|e| DbError::Task(e.to_string()))?;
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        let weak = Arc::downgrade(&self.writer);
        let readers = self.readers.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if weak.upgrade().is_none() {
                    return;
                }
                let readers = readers.clone();
                let done = tokio::task::spawn_blocking(move || -> Result<(), DbError> {
                    let conn = readers.get()?;
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
                    Ok(())
                })
                .await;
                if let Ok(Err(e)) = done {
                    tracing::warn!(error = %e, "background WAL checkpoint failed");
                }
            }
        });
        Ok(())
    }

    /// Runs `f` on a pooled read connection, off the async runtime.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get().map_err(DbError::from)?;
            f(&conn)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// Runs `f` in an immediate write transaction on the writer connection, off the runtime;
    /// commits if `f` succeeds, rolls back if it fails.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        self.write_at(self.synchronous, f).await
    }

    /// Like [`SqliteDb::write`], but the commit does not wait for the disk
    /// (`synchronous = NORMAL` for this transaction; WAL keeps it atomic and safe from a crash of
    /// the process, and the next full commit makes it durable). For state derived from the log,
    /// which a power cut may roll back and the owner rebuilds.
    pub async fn write_derived<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        self.write_at(Synchronous::Normal, f).await
    }

    async fn write_at<T, E, F>(&self, level: Synchronous, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let writer = self.writer.clone();
        let usual = self.synchronous;
        tokio::task::spawn_blocking(move || {
            let mut conn = writer.lock().map_err(|e| DbError::Task(e.to_string()))?;
            let relaxed = level != usual;
            if relaxed {
                set_synchronous(&conn, level).map_err(DbError::from)?;
            }
            let result = (|| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(DbError::from)?;
                let out = f(&tx)?;
                tx.commit().map_err(DbError::from)?;
                Ok(out)
            })();
            if relaxed {
                set_synchronous(&conn, usual).map_err(DbError::from)?;
            }
            result
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }
}

/// How hard SQLite works to make a commit survive power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// fsync the WAL at every commit: a commit that was answered survives power loss.
    #[default]
    Full,
    /// fsync only at checkpoints: survives a crash of the process, may lose the last commits
    /// on power loss.
    Normal,
}

impl Synchronous {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}
