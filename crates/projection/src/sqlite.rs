//! The views in SQLite (`views.db`): what the projector's batch and a rebuild write, and the
//! reads they need. The tables are declared in `migrations/sqlite` (created by `schema.rs`); the
//! reads of readers are in `store.rs`, the PostgreSQL counterpart of this module is `pg.rs`.
//!
//! A rebuild ([`SqliteRebuild`]) fills `_next` tables in one transaction of the writer and swaps
//! them in: the writer keeps a larger page cache meanwhile and does not checkpoint (the WAL is
//! copied into the database once, at the end); the full-text index takes the rows in larger
//! runs and merges its segments once, in the swap.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use futures_util::FutureExt as _;
use newsroom_log::SqliteDb;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::batch::{apply, Batch, BatchIo, BatchResult, Done, Held, Moved, Stored};
use crate::handover::{next_job, Handover, Load};
use crate::marks::{follow_batch, write_marks};
use crate::rows::{
    ActorRow, BatchRows, Checkpoint, DevelopmentRow, NewestDocs, RelationRow, SearchRow, StoryHead,
    StoryRow, StoryVersionRow, SupersededRow, ViewError, ViewName,
};
use crate::schema::{create_next, create_scratch_developments, set_checkpoint, swap_in};
use crate::timing::{since_sched, thread_sched, Timing, TIMING};
use newsroom_readmodel::model::{DevelopmentView, FrontPageEntry, LoggedEvent, StoryView};

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
    crate::timing::count_search(t, flushes);
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

/// The batch step's reads and writes on SQLite views, in the writer's transaction: a statement
/// per story or development read, in process.
struct SqliteBatch<'a>(&'a rusqlite::Transaction<'a>);

impl BatchIo for SqliteBatch<'_> {
    async fn checkpoints(&mut self) -> Result<HashMap<ViewName, i64>, ViewError> {
        Ok(read_checkpoints(self.0)?
            .into_iter()
            .map(|(v, c)| (v, c.position))
            .collect())
    }

    async fn stored(&mut self, stories: &[(Uuid, usize)]) -> Result<Stored, ViewError> {
        let mut out = Vec::with_capacity(stories.len());
        for (id, limit) in stories {
            if let Some(view) = load_stored(self.0, *id, *limit)? {
                out.push((view, *limit));
            }
        }
        Ok(out)
    }

    async fn developments(&mut self, wanted: &[(Uuid, Uuid)]) -> Result<Held, ViewError> {
        let mut out = Vec::with_capacity(wanted.len());
        for (story, id) in wanted {
            if let Some(d) = development_by_id(self.0, *story, *id)? {
                out.push((*story, d));
            }
        }
        Ok(out)
    }

    async fn write(&mut self, rows: &BatchRows, _events: &[LoggedEvent], moved: Moved<'_>) -> Done {
        write_rows(self.0, rows)?;
        follow_batch(self.0, &rows.versions, moved.marks)?;
        for view in moved.behind {
            set_checkpoint(self.0, *view, moved.last)?;
        }
        Ok(())
    }
}

/// The batch applied to SQLite views, in the caller's write transaction. Nothing in it waits
/// (SQLite's reads and writes are calls on the connection), so its future is ready at once.
pub(crate) fn apply_sqlite_batch(
    tx: &rusqlite::Transaction<'_>,
    batch: &Batch,
) -> Result<BatchResult, ViewError> {
    apply(&mut SqliteBatch(tx), batch)
        .now_or_never()
        .unwrap_or_else(|| Err(ViewError::Task("a SQLite batch waited".into())))
}

/// The views' writer's page cache during a rebuild, in KiB: what a part's transaction touches
/// (rows go in at the end of their tables) stays in memory; the swap's index builds sort in
/// temporary files beyond it. (512 MiB made a rebuild of 200,000 events about an eighth faster
/// and its peak a fifth higher.)
#[doc(hidden)]
pub const REBUILD_CACHE_KIB: i64 = 32 * 1024;

/// How much text the full-text index of a rebuild holds before it writes a segment (SQLite's
/// FTS5 `hashsize`; by default 1 MiB, which a rebuild's part of rows exceeds many times over).
const REBUILD_FTS_HASH_BYTES: i64 = 8 << 20;
/// FTS5's default `hashsize`, which the projector's small batches never reach.
const FTS_HASH_BYTES: i64 = 1 << 20;
/// FTS5's defaults for merging segments as they are written.
const FTS_AUTOMERGE: i64 = 4;
const FTS_CRISISMERGE: i64 = 16;
/// During a rebuild, segments of one level are merged only when this many pile up (FTS5's
/// limit is 2,000 segments in all): the index is merged once, at the end, instead.
const REBUILD_FTS_CRISISMERGE: i64 = 1_000;

/// Sets the full-text index `table` up for a rebuild's bulk load: larger runs of text per
/// segment and no merging of segments as they are written ([`finish_search_bulk`] merges them
/// once). Public for the `read_path` benchmark, which writes the same rows the same way.
#[doc(hidden)]
pub fn tune_search_for_bulk(conn: &rusqlite::Connection, table: &str) -> rusqlite::Result<()> {
    let mut set = conn.prepare(&format!(
        "INSERT INTO {table} ({table}, rank) VALUES (?1, ?2)"
    ))?;
    set.execute(rusqlite::params!["hashsize", REBUILD_FTS_HASH_BYTES])?;
    set.execute(rusqlite::params!["automerge", 0])?;
    set.execute(rusqlite::params!["crisismerge", REBUILD_FTS_CRISISMERGE])?;
    Ok(())
}

/// Merges what a bulk load wrote into the full-text index `table` and gives it back FTS5's
/// usual settings, which the projector's small batches use.
#[doc(hidden)]
pub fn finish_search_bulk(conn: &rusqlite::Connection, table: &str) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT INTO {table} ({table}) VALUES ('optimize')"),
        [],
    )?;
    let mut set = conn.prepare(&format!(
        "INSERT INTO {table} ({table}, rank) VALUES (?1, ?2)"
    ))?;
    set.execute(rusqlite::params!["hashsize", FTS_HASH_BYTES])?;
    set.execute(rusqlite::params!["automerge", FTS_AUTOMERGE])?;
    set.execute(rusqlite::params!["crisismerge", FTS_CRISISMERGE])?;
    Ok(())
}

/// How much text (about, in bytes) a rebuild's writer gathers before it writes the documents
/// into the full-text index, sorted by key. FTS5 writes a new segment whenever a document's key
/// is lower than the one before (`sqlite3Fts5IndexBeginWrite`), and developments are let go of
/// in the order they were last touched, not recorded: written as they came, a part of rows made
/// some twenty segments of a few documents each, which the final `optimize` merged again.
const REBUILD_SEARCH_RUN_BYTES: usize = REBUILD_FTS_HASH_BYTES as usize;

/// Full-text documents gathered by a rebuild's writer (at most [`REBUILD_SEARCH_RUN_BYTES`]).
#[derive(Default)]
struct SearchRun {
    rows: Vec<SearchRow>,
    bytes: usize,
}

impl SearchRun {
    fn add(&mut self, rows: Vec<SearchRow>) {
        self.bytes += rows.iter().map(SearchRow::approximate_size).sum::<usize>();
        if self.rows.is_empty() {
            self.rows = rows;
        } else {
            self.rows.extend(rows);
        }
    }

    /// Writes the documents in key order, each key's last one only (a later one replaces it),
    /// answering read-backs between runs of a few thousand.
    fn write(
        &mut self,
        tx: &rusqlite::Connection,
        loads: &mut mpsc::Receiver<Load>,
    ) -> Result<(), ViewError> {
        let mut rows = std::mem::take(&mut self.rows);
        self.bytes = 0;
        // Newest first among equal keys, so that deduplicating keeps the last written.
        rows.reverse();
        rows.sort_by_key(|r| r.key);
        rows.dedup_by_key(|r| r.key);
        for chunk in rows.chunks(2_000) {
            write_search(tx, chunk, "_next")?;
            answer_loads(tx, loads)?;
        }
        Ok(())
    }
}

/// Answers the fold's waiting read-backs (in the middle of a part: the rows of parts not yet
/// wholly written are never asked for, the fold keeps them).
fn answer_loads(
    tx: &rusqlite::Connection,
    loads: &mut mpsc::Receiver<Load>,
) -> Result<(), ViewError> {
    while let Ok((positions, reply)) = loads.try_recv() {
        let t = std::time::Instant::now();
        let _ = reply.send(developments_at(tx, &positions, "_next")?);
        Timing::add(&TIMING.write_readback, t);
    }
    Ok(())
}

/// Makes the `_next` tables the chosen views, at `position` (in the rebuild's transaction).
fn swap_next_in(
    tx: &rusqlite::Connection,
    chosen: &[ViewName],
    position: i64,
) -> Result<(), ViewError> {
    for view in chosen {
        swap_in(tx, *view, position)?;
    }
    if chosen.contains(&ViewName::Stories) {
        finish_search_bulk(tx, "search")?;
    } else {
        tx.execute_batch("DROP TABLE IF EXISTS developments_next")?;
    }
    Ok(())
}

/// A rebuild of SQLite views under way: the `_next` tables made, the writer's settings changed
/// for the bulk load (given back by [`Self::write`], whether or not it succeeds).
pub(crate) struct SqliteRebuild {
    db: SqliteDb,
    chosen: Vec<ViewName>,
    cache_size: i64,
    autocheckpoint: i64,
}

impl SqliteRebuild {
    /// Makes the `_next` tables of the `chosen` views, and sets the writer up for the bulk load.
    pub(crate) async fn begin(db: &SqliteDb, chosen: &[ViewName]) -> Result<Self, ViewError> {
        let tables = chosen.to_vec();
        // While the `_next` tables fill (one transaction, spilling to the WAL beyond the cache),
        // the writer keeps a larger page cache and does not checkpoint: the WAL is copied into
        // the database once, at the end.
        let (cache_size, autocheckpoint): (i64, i64) = db
            .write(move |tx| {
                let cache: i64 = tx.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
                let autocheckpoint: i64 =
                    tx.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?;
                tx.execute_batch(&format!("PRAGMA cache_size = -{REBUILD_CACHE_KIB}"))?;
                tx.query_row("PRAGMA wal_autocheckpoint = 0", [], |_| Ok(()))?;
                for view in &tables {
                    create_next(tx, *view)?;
                }
                if tables.contains(&ViewName::Stories) {
                    // The full-text index takes what a rebuild hands it in larger runs before
                    // it writes a segment, and merges its segments once, at the end.
                    tune_search_for_bulk(tx, "search_next")?;
                }
                if !tables.contains(&ViewName::Stories) {
                    create_scratch_developments(tx)?;
                }
                Ok::<_, ViewError>((cache, autocheckpoint))
            })
            .await?;
        Ok(Self {
            db: db.clone(),
            chosen: chosen.to_vec(),
            cache_size,
            autocheckpoint,
        })
    }

    /// Writes what the fold hands over and swaps the `_next` tables in, in one transaction: a
    /// crash or a failure anywhere leaves the old views as they were and nothing of the new
    /// ones. Then gives the writer its usual settings back and empties the WAL.
    pub(crate) async fn write(self, handover: Handover) -> Result<(), ViewError> {
        let Self {
            db,
            chosen,
            cache_size,
            autocheckpoint,
        } = self;
        let Handover {
            mut work,
            mut loads,
            written_parts,
            decision,
        } = handover;
        let runtime = tokio::runtime::Handle::current();
        let written = db
            .write(move |tx| {
                let sched = thread_sched();
                let mut documents = SearchRun::default();
                loop {
                    let t = std::time::Instant::now();
                    let Some(next) = runtime.block_on(next_job(&mut work, &mut loads)) else {
                        break;
                    };
                    Timing::add(&TIMING.write_waiting, t);
                    let t = std::time::Instant::now();
                    match next {
                        Ok(mut rows) => {
                            let search = std::mem::take(&mut rows.search);
                            write_rows_between(tx, &rows, "_next", &mut || {
                                answer_loads(tx, &mut loads)
                            })?;
                            written_parts.fetch_add(1, Ordering::Release);
                            Timing::add(&TIMING.write_rows, t);
                            documents.add(search);
                            if documents.bytes >= REBUILD_SEARCH_RUN_BYTES {
                                documents.write(tx, &mut loads)?;
                            }
                        }
                        Err((positions, reply)) => {
                            let _ = reply.send(developments_at(tx, &positions, "_next")?);
                            Timing::add(&TIMING.write_readback, t);
                        }
                    }
                }
                documents.write(tx, &mut loads)?;
                let Ok(position) = decision.blocking_recv() else {
                    return Err(ViewError::Task("the rebuild stopped before its end".into()));
                };
                let t = std::time::Instant::now();
                let swapped = swap_next_in(tx, &chosen, position);
                Timing::add(&TIMING.swap, t);
                since_sched(sched, &TIMING.write_cpu, &TIMING.write_queued);
                TIMING.log();
                swapped
            })
            .await;
        // The writer goes back to its usual settings whether or not the rebuild succeeded.
        let restored = db
            .write(move |tx| {
                tx.execute_batch(&format!(
                    "PRAGMA cache_size = {cache_size}; PRAGMA shrink_memory;"
                ))?;
                tx.query_row(
                    &format!("PRAGMA wal_autocheckpoint = {autocheckpoint}"),
                    [],
                    |_| Ok(()),
                )?;
                Ok::<_, ViewError>(())
            })
            .await;
        written?;
        restored?;
        checkpoint_wal(db.path().to_owned()).await
    }
}

/// Copies the WAL into the database file at `path` and empties it (after a rebuild, which
/// commits without checkpointing). If a reader still needs part of the WAL, SQLite copies what
/// it can and later checkpoints finish the job.
async fn checkpoint_wal(path: PathBuf) -> Result<(), ViewError> {
    tokio::task::spawn_blocking(move || {
        let conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    })
    .await
    .map_err(|e| ViewError::Task(e.to_string()))?
}
