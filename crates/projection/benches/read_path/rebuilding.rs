//! Section 1, rebuild: the log filled, read and decoded as the baseline, rebuilt into fresh views,
//! the floor of writing the same rows, the rebuild's steps on their own; and its report.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use newsroom_log::{EventLog, SqliteOptions, SqliteStore, Synchronous};
use newsroom_projection::{rebuild, ViewStore};
use newsroom_readmodel::decode;
use newsroom_testkit::procfs::{own_cpu_seconds, own_status_bytes, reset_own_peak_rss};
use newsroom_testkit::report::{secs, thousands, verdict};
use newsroom_testkit::Res;

use crate::common::{drain_appends, per_story};
use crate::story_gen::{Pools, StoryGen};
use crate::{Config, PAGE};

#[derive(Debug)]
struct FillRun {
    secs: f64,
    db_bytes: u64,
    mean_payload: f64,
}

/// Fills the log round-robin over the stories, `chunk` events of one story per append, many
/// appends in flight (each story's previous append is long done when its next one is sent).
async fn fill(log: &SqliteStore, cfg: &Config) -> Res<FillRun> {
    let started = Instant::now();
    let pools = Pools::new();
    let mut gens: Vec<StoryGen> = (0..cfg.stories).map(StoryGen::new).collect();
    let per_story = per_story(cfg.events, cfg.stories);
    let rounds = per_story
        .iter()
        .max()
        .copied()
        .unwrap_or(0)
        .div_ceil(cfg.chunk);
    let base: DateTime<Utc> = "2026-01-05T06:00:00Z".parse()?;
    let mut generated = 0usize;
    let appends = stream::iter((0..rounds).flat_map(|r| (0..cfg.stories).map(move |s| (r, s))))
        .filter_map(|(r, s)| {
            let from = r * cfg.chunk;
            let to = ((r + 1) * cfg.chunk).min(per_story[s]);
            let mut events = Vec::with_capacity(cfg.chunk);
            for _ in from..to {
                let at = base + chrono::Duration::milliseconds(generated as i64 * 250);
                generated += 1;
                events.push(gens[s].serialized(&pools, at).expect("an event serialises"));
            }
            let log = log.clone();
            std::future::ready((!events.is_empty()).then_some(async move {
                let n = events.len();
                log.append(events, None).await.map(|_| n)
            }))
        })
        .buffered(cfg.fill_in_flight);
    let written = drain_appends(appends, started, 100_000).await?;
    if log.head() != cfg.events as i64 || written != cfg.events {
        return Err(format!("filled {written} events, head {}", log.head()).into());
    }
    let secs = started.elapsed().as_secs_f64();
    let mean_payload = log
        .with_conn(|c| {
            Ok(
                c.query_row("SELECT AVG(LENGTH(payload)) FROM events", [], |r| {
                    r.get::<_, f64>(0)
                })?,
            )
        })
        .await?;
    Ok(FillRun {
        secs,
        db_bytes: sqlite_bytes(log.path()),
        mean_payload,
    })
}

/// The size of an SQLite database with its WAL.
fn sqlite_bytes(path: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    size(path) + size(Path::new(&wal))
}

/// The pages each table and index of an SQLite file takes (SQLite's `dbstat`), largest first.
fn table_sizes(path: &Path) -> Res<Vec<(String, u64)>> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn
        .prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY SUM(pgsize) DESC")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Baseline: every row through `read_feed` pages and `decode`, nothing applied.
async fn read_and_decode(log: &EventLog) -> Res<(u64, Duration)> {
    let head = log.head();
    let started = Instant::now();
    let (mut after, mut count) = (0, 0u64);
    while after < head {
        let page = log.read_feed(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for raw in &page {
            std::hint::black_box(decode(raw)?);
        }
        count += page.len() as u64;
    }
    Ok((count, started.elapsed()))
}

/// The views' tables a rebuild fills (the full-text index `search` is written from the
/// developments' and stories' rows: it is contentless and cannot give its text back).
const VIEW_TABLES: [&str; 8] = [
    "stories",
    "developments",
    "story_versions",
    "front_page_marks",
    "search_keys",
    "relations",
    "development_versions",
    "actor_entries",
];

/// The floor: what SQLite alone takes to write the rows a rebuild wrote.
#[derive(Debug, Default)]
struct FloorRun {
    /// Inserting the rows, building the secondary indexes, committing and checkpointing.
    time: Duration,
    /// Of it, building the secondary indexes.
    indexes: Duration,
    /// Of it, writing the full-text index (`search`, `search_keys`).
    search: Duration,
    rows: u64,
    /// Bytes of the values inserted (text and blobs as stored, 8 per number).
    value_bytes: u64,
    db_bytes: u64,
}

fn value_bytes(v: &rusqlite::types::Value) -> u64 {
    use rusqlite::types::Value;
    match v {
        Value::Null => 0,
        Value::Integer(_) | Value::Real(_) => 8,
        Value::Text(t) => t.len() as u64,
        Value::Blob(b) => b.len() as u64,
    }
}

/// Writes the rows of the rebuilt views at `views` again into a fresh file at `to`, timing only
/// the writing: the same tables and indexes (as the views' `sqlite_master` has them), the same
/// rows, in their keys' order, through one prepared `INSERT` per table in one transaction; the
/// secondary indexes built after the rows; the same page size, journal (WAL), `synchronous`,
/// page cache and full-text settings as the rebuild; then the commit and the checkpoint the
/// rebuild ends with. Reading the rows back (10,000 at a time) and folding the full-text
/// documents are not timed. No projection logic: this is the cost of the output itself.
fn write_floor(views: &Path, to: &Path) -> Res<FloorRun> {
    use rusqlite::types::Value;
    const CHUNK: usize = 10_000;
    let src =
        rusqlite::Connection::open_with_flags(views, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let page_size: i64 = src.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let schema = |kind: &str, table: &str| -> Res<Vec<String>> {
        let mut stmt = src.prepare(
            "SELECT sql FROM sqlite_master WHERE type = ?1 AND tbl_name = ?2 AND sql IS NOT NULL",
        )?;
        let sql = stmt.query_map([kind, table], |r| r.get::<_, String>(0))?;
        Ok(sql.collect::<Result<_, _>>()?)
    };
    let dst = rusqlite::Connection::open(to)?;
    dst.pragma_update(None, "page_size", page_size)?;
    dst.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
    dst.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{}; PRAGMA wal_autocheckpoint = 0;",
        newsroom_projection::rebuild::REBUILD_CACHE_KIB
    ))?;
    let mut run = FloorRun::default();
    let mut indexes = vec![];
    let mut tables: Vec<&str> = VIEW_TABLES.to_vec();
    tables.push("search");
    let t = Instant::now();
    dst.execute_batch("BEGIN")?;
    for table in &tables {
        for sql in schema("table", table)? {
            dst.execute_batch(&sql)?;
        }
        indexes.extend(schema("index", table)?);
    }
    newsroom_projection::rebuild::tune_search_for_bulk(&dst, "search")?;
    run.time += t.elapsed();

    for table in VIEW_TABLES {
        let columns: usize = src.query_row(
            &format!("SELECT COUNT(*) FROM pragma_table_info('{table}')"),
            [],
            |r| r.get(0),
        )?;
        let search_keys = table == "search_keys";
        if search_keys {
            // Written with the index, below.
            continue;
        }
        let marks = vec!["?"; columns].join(", ");
        let mut read = src.prepare(&format!("SELECT * FROM {table}"))?;
        let mut rows = read.query([])?;
        let mut insert = dst.prepare(&format!("INSERT INTO {table} VALUES ({marks})"))?;
        let mut chunk: Vec<Vec<Value>> = Vec::with_capacity(CHUNK);
        loop {
            chunk.clear();
            while chunk.len() < CHUNK {
                let Some(row) = rows.next()? else { break };
                chunk.push((0..columns).map(|i| row.get(i)).collect::<Result<_, _>>()?);
            }
            if chunk.is_empty() {
                break;
            }
            let t = Instant::now();
            for row in &chunk {
                insert.execute(rusqlite::params_from_iter(row))?;
            }
            run.time += t.elapsed();
            run.rows += chunk.len() as u64;
            run.value_bytes += chunk.iter().flatten().map(value_bytes).sum::<u64>();
        }
    }

    // The full-text documents: each visible development's (in position order), then each
    // story's.
    type Doc = (i64, [String; 4], String, String);
    let mut insert = dst.prepare(
        "INSERT INTO search (rowid, headline, body, names, filters) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut keep =
        dst.prepare("INSERT INTO search_keys (rowid, story, occurred_at) VALUES (?1, ?2, ?3)")?;
    let mut write = |docs: &[Doc], run: &mut FloorRun| -> Res<()> {
        let t = Instant::now();
        for (key, [headline, body, names, filters], story, occurred_at) in docs {
            insert.execute(rusqlite::params![key, headline, body, names, filters])?;
            let occurred_at = (!occurred_at.is_empty()).then_some(occurred_at);
            keep.execute(rusqlite::params![key, story, occurred_at])?;
        }
        let spent = t.elapsed();
        run.time += spent;
        run.search += spent;
        run.rows += 2 * docs.len() as u64;
        run.value_bytes += docs
            .iter()
            .map(|(_, text, story, at)| {
                16 + text.iter().map(|t| t.len() as u64).sum::<u64>()
                    + (story.len() + at.len()) as u64
            })
            .sum::<u64>();
        Ok(())
    };
    let mut docs: Vec<Doc> = Vec::with_capacity(CHUNK);
    let mut read = src.prepare("SELECT story_id, doc FROM developments ORDER BY position")?;
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        let story: String = row.get(0)?;
        let doc: String = row.get(1)?;
        if let Some((key, text, at)) =
            newsroom_projection::search::development_document(story.parse()?, &doc)?
        {
            docs.push((key, text, story, at));
        }
        if docs.len() == CHUNK {
            write(&docs, &mut run)?;
            docs.clear();
        }
    }
    let mut read = src.prepare("SELECT id, headline, head FROM stories")?;
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        use newsroom_projection::search::{filter_word, fold, story_key, PUBLIC};
        let id: String = row.get(0)?;
        let headline: String = row.get(1)?;
        let head: Value = row.get(2)?;
        let Value::Text(head) = head else { continue };
        let head: serde_json::Value = serde_json::from_str(&head)?;
        let summary = head["summary"].as_str().unwrap_or_default();
        let text = [
            fold(&headline),
            fold(summary),
            String::new(),
            format!("{} {PUBLIC}", filter_word('s', &id)),
        ];
        docs.push((story_key(id.parse()?), text, id, String::new()));
    }
    write(&docs, &mut run)?;

    let t = Instant::now();
    for sql in &indexes {
        dst.execute_batch(sql)?;
    }
    run.indexes = t.elapsed();
    newsroom_projection::rebuild::finish_search_bulk(&dst, "search")?;
    dst.execute_batch("COMMIT")?;
    dst.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    run.time += t.elapsed();
    drop((insert, keep));
    run.db_bytes = sqlite_bytes(to);
    Ok(run)
}

#[derive(Debug, Default)]
struct Breakdown {
    replay: Duration,
    drop_replayed: Duration,
    developments: usize,
    doc_json: Duration,
    doc_bytes: usize,
    actor_rows: usize,
}

#[derive(Debug)]
pub(crate) struct RebuildRun {
    fill: FillRun,
    pub(crate) events: u64,
    baseline: Duration,
    rebuild: Duration,
    rebuilt_events: u64,
    stories: usize,
    views_bytes: u64,
    /// (table or index, bytes) of the rebuilt views, largest first.
    views_tables: Vec<(String, u64)>,
    /// The process's resident memory when the rebuild started and its peak during the rebuild
    /// (bytes; `None` where `/proc` cannot say).
    rss_before: Option<u64>,
    rss_peak: Option<u64>,
    floor: FloorRun,
    breakdown: Option<Breakdown>,
}

/// The process's CPU time so far (user + system), in seconds.
fn process_cpu() -> f64 {
    own_cpu_seconds().unwrap_or(0.0)
}

/// The rebuild's steps on their own: the in-memory replay (pipelined as in the rebuild), then
/// the JSON its rows carry (one `developments.doc` per development; `actor_entries` rows are
/// references, without JSON).
async fn breakdown(log: &EventLog) -> Res<Breakdown> {
    let mut b = Breakdown::default();
    let t = Instant::now();
    let (stories, _, _) = newsroom_projection::rebuild::replay(log, None).await?;
    b.replay = t.elapsed();

    let t = Instant::now();
    for view in stories.values() {
        for d in &view.developments {
            b.doc_bytes += serde_json::to_string(d)?.len();
            b.developments += 1;
        }
    }
    b.doc_json = t.elapsed();
    b.actor_rows = stories
        .values()
        .flat_map(|v| v.developments.iter().filter(|d| d.is_visible()))
        .map(|d| d.actors.len())
        .sum();

    let t = Instant::now();
    drop(stories);
    b.drop_replayed = t.elapsed();
    Ok(b)
}

pub(crate) async fn rebuild_case(dir: &Path, cfg: &Config) -> Res<RebuildRun> {
    let log = SqliteStore::open(
        &dir.join("log.db"),
        SqliteOptions {
            synchronous: Synchronous::Normal,
            ..Default::default()
        },
    )?;
    eprintln!(
        "[1] filling the log with {} events over {} stories",
        cfg.events, cfg.stories
    );
    let fill = fill(&log, cfg).await?;
    eprintln!(
        "  filled in {:.1} s ({:.0} events/s), {:.0} MB",
        fill.secs,
        cfg.events as f64 / fill.secs,
        fill.db_bytes as f64 / 1e6
    );

    eprintln!("[1] baseline: read_feed + decode");
    // The rebuild reads through the `EventLog` the app uses; so does the baseline (both end in
    // `SqliteStore::read_feed`).
    let store = log;
    let log = EventLog::from(store.clone());
    let cpu = process_cpu();
    let (events, baseline) = read_and_decode(&log).await?;
    eprintln!("  process CPU during (a): {:.2} s", process_cpu() - cpu);
    eprintln!(
        "  {events} events in {:.2} s ({:.0} events/s)",
        baseline.as_secs_f64(),
        events as f64 / baseline.as_secs_f64()
    );

    eprintln!("[1] rebuild into a fresh view store");
    let views = ViewStore::open(&dir.join("views.db"))?;
    let rss_before = own_status_bytes("VmRSS:");
    let peak_reset = reset_own_peak_rss();
    let cpu = process_cpu();
    let t = Instant::now();
    let report = rebuild(&log, &views, &[], None).await?;
    let rebuild_time = t.elapsed();
    eprintln!("  process CPU during (b): {:.2} s", process_cpu() - cpu);
    let rss_peak = own_status_bytes("VmHWM:").filter(|_| peak_reset);
    let mb = |b: Option<u64>| b.map_or("n/a".to_owned(), |b| format!("{:.0} MB", b as f64 / 1e6));
    eprintln!(
        "  {} events, {} stories in {:.2} s ({:.0} events/s); RSS {} before, peak {} during the rebuild",
        report.events,
        report.stories,
        rebuild_time.as_secs_f64(),
        report.events as f64 / rebuild_time.as_secs_f64(),
        mb(rss_before),
        mb(rss_peak)
    );
    let views_path = views
        .path()
        .expect("the views are a SQLite file")
        .to_owned();
    let views_bytes = sqlite_bytes(&views_path);
    let views_tables = table_sizes(&views_path).unwrap_or_else(|e| {
        eprintln!("  cannot measure the views' tables: {e}");
        vec![]
    });
    drop(views);

    eprintln!("[1] floor: the same rows written by SQLite alone");
    let floor_path = dir.join("floor.db");
    let cpu = process_cpu();
    let floor = {
        let (views_path, floor_path) = (views_path.clone(), floor_path.clone());
        tokio::task::spawn_blocking(move || {
            write_floor(&views_path, &floor_path).map_err(|e| e.to_string())
        })
        .await??
    };
    eprintln!(
        "  process CPU during (c) (reading the rows back too): {:.2} s",
        process_cpu() - cpu
    );
    for path in [floor_path.clone(), floor_path.with_extension("db-wal")] {
        let _ = std::fs::remove_file(path);
    }
    eprintln!(
        "  {} rows ({:.0} MB of values) in {:.2} s (indexes {:.2} s, full-text {:.2} s), {:.0} MB",
        floor.rows,
        floor.value_bytes as f64 / 1e6,
        floor.time.as_secs_f64(),
        floor.indexes.as_secs_f64(),
        floor.search.as_secs_f64(),
        floor.db_bytes as f64 / 1e6
    );

    let breakdown = if cfg.breakdown {
        eprintln!("[1] rebuild steps on their own");
        Some(breakdown(&log).await?)
    } else {
        None
    };
    Ok(RebuildRun {
        fill,
        events,
        baseline,
        rebuild: rebuild_time,
        rebuilt_events: report.events,
        stories: report.stories,
        views_bytes,
        views_tables,
        rss_before,
        rss_peak,
        floor,
        breakdown,
    })
}

pub(crate) fn report_rebuild(out: &mut String, r: &RebuildRun, cfg: &Config) -> std::fmt::Result {
    let a = r.events as f64 / r.baseline.as_secs_f64();
    let b = r.rebuilt_events as f64 / r.rebuild.as_secs_f64();
    writeln!(out, "### 1. Rebuild speed\n")?;
    writeln!(
        out,
        "Log: {} events over {} stories (1 `StoryOpened` each, then `DevelopmentRecorded` with ~300-byte bodies and two actors; one story in ten under desk review with approvals and rejections; a correction every 97th and a retraction every 331st event of a story; claims with denials and supporting reports), mean payload {:.0} B, {:.0} MB on disk, filled through `SqliteStore::append` (`synchronous = NORMAL`, {} events per append, {} appends in flight) in {:.1} s (not measured).\n",
        thousands(cfg.events as f64),
        thousands(cfg.stories as f64),
        r.fill.mean_payload,
        r.fill.db_bytes as f64 / 1e6,
        cfg.chunk,
        cfg.fill_in_flight,
        r.fill.secs
    )?;
    writeln!(
        out,
        "| case | events | time | events/s | ratio | target |\n|---|---|---|---|---|---|"
    )?;
    writeln!(
        out,
        "| (a) baseline: `read_feed` pages of {} + `decode`, nothing applied | {} | {} | {} | 1.00 (reference) | |",
        thousands(PAGE as f64),
        thousands(r.events as f64),
        secs(r.baseline),
        thousands(a)
    )?;
    writeln!(
        out,
        "| (b) `rebuild(&log, &views, &[], None)` into a fresh `ViewStore` ({} stories) | {} | {} | {} | {:.2} × (a) | ≥ 0.6: {} |",
        thousands(r.stories as f64),
        thousands(r.rebuilt_events as f64),
        secs(r.rebuild),
        thousands(b),
        b / a,
        verdict(b / a >= 0.6)
    )?;
    let f = &r.floor;
    writeln!(
        out,
        "| (c) floor: the rows (b) left in the views ({} rows, {:.0} MB of values) written again by SQLite alone — same tables, indexes, page size, WAL, cache and full-text settings, one prepared `INSERT` per table, one transaction, indexes after the rows, commit and checkpoint; reading them back not timed | {} | {} | {} | (b) ÷ (c): {:.2} × the floor's time | |",
        thousands(f.rows as f64),
        f.value_bytes as f64 / 1e6,
        thousands(r.rebuilt_events as f64),
        secs(f.time),
        thousands(r.rebuilt_events as f64 / f.time.as_secs_f64()),
        r.rebuild.as_secs_f64() / f.time.as_secs_f64()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Rebuild ÷ floor: {:.2} (the rebuild takes {:.2} × as long as writing its output alone); rebuild ÷ (read + decode): {:.2} (the issue's target, ≥ 0.6 × the speed, is ≤ 1.67 × the time); floor ÷ (read + decode): {:.2}. A rebuild has to do both (a) and (c): with the two fully overlapped on the two cores it could reach at most {:.2} × the speed of (a), one after the other {:.2} ×. Of (c): secondary indexes {}, full-text documents {}. Floor file {:.0} MB.\n",
        r.rebuild.as_secs_f64() / f.time.as_secs_f64(),
        r.rebuild.as_secs_f64() / f.time.as_secs_f64(),
        r.rebuild.as_secs_f64() / r.baseline.as_secs_f64(),
        f.time.as_secs_f64() / r.baseline.as_secs_f64(),
        r.baseline.as_secs_f64() / r.baseline.max(f.time).as_secs_f64(),
        r.baseline.as_secs_f64() / (r.baseline + f.time).as_secs_f64(),
        secs(f.indexes),
        secs(f.search),
        f.db_bytes as f64 / 1e6
    )?;
    let mb = |b: Option<u64>| b.map_or("n/a".to_owned(), |b| format!("{:.0} MB", b as f64 / 1e6));
    writeln!(
        out,
        "Resident memory of the process (`/proc/self/status`): {} when (b) started, peak {} during (b) (`VmHWM`, reset through `clear_refs` as (b) started; the process also holds the log's connections and what (a) left behind). Target: peak ≤ 500 MB at 1,000,000 events: {}.\n",
        mb(r.rss_before),
        mb(r.rss_peak),
        r.rss_peak.map_or("not measured", |p| verdict(p <= 500_000_000))
    )?;
    if let Some(k) = &r.breakdown {
        let rest = r.rebuild.saturating_sub(k.replay);
        writeln!(
        out,
        "Where (b)'s time goes, each step timed again on its own after (b): `replay`, the reference fold of complete views in memory (one task reading feed pages ahead while a second thread decodes and applies them; (b) folds partial views on that thread instead, handing rows to the writer as it goes) {}; the rest of (b), {}, is what the writer does beyond it: the {} `developments.doc` documents take {} to serialise alone ({:.0} MB; {} `actor_entries` rows without JSON), then inserting, building the indexes and swapping the tables in; freeing the complete views takes {}. `views.db` and its WAL after the rebuild: {:.0} MB.\n",
        secs(k.replay),
        secs(rest),
        thousands(k.developments as f64),
        secs(k.doc_json),
        k.doc_bytes as f64 / 1e6,
        thousands(k.actor_rows as f64),
        secs(k.drop_replayed),
        r.views_bytes as f64 / 1e6
    )?;
    }
    if !r.views_tables.is_empty() {
        let tables: Vec<String> = r
            .views_tables
            .iter()
            .filter(|(_, bytes)| *bytes >= 1_000_000)
            .map(|(name, bytes)| format!("`{name}` {:.0} MB", *bytes as f64 / 1e6))
            .collect();
        writeln!(
            out,
            "Of that, tables and indexes (SQLite `dbstat`): {}; the rest is the WAL. The log itself is {:.0} MB.\n",
            tables.join(", "),
            r.fill.db_bytes as f64 / 1e6
        )?;
    }
    Ok(())
}
