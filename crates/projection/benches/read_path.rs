//! Read-path load benchmark: how fast views are rebuilt, how fast a long story is served and how
//! far the views trail the log under a steady write load.
//!
//! A custom-harness binary (`cargo bench -p newsroom-projection --bench read_path`) that prints a
//! Markdown report on stdout (progress goes to stderr). Every figure is compared with a baseline
//! measured in the same run, on files in a fresh temporary directory.
//!
//! 1. Rebuild: an event log of `BENCH_EVENTS` events (default 1,000,000) over 1,000 stories is
//!    filled through `SqliteStore::append` (not measured). Baseline: read every row through
//!    `read_feed` pages of 10,000 and `decode` each (read and deserialise, apply nothing). Then
//!    `rebuild` into a fresh `ViewStore`. Afterwards the rebuild's steps are timed on their own.
//! 2. GET of a story with a 1,000-development timeline from the real app (built from the
//!    binary's configuration defaults, so the notifier runs too), against a plain axum server in
//!    the same process that serves the same bytes from memory; the same concurrent client loads
//!    both (`BENCH_SECONDS` per run, default 5; order static, app, app, static).
//! 3. Lag: developments POSTed at a steady rate (`BENCH_LAG_RATE`/s, default 200, over 10
//!    stories, for `BENCH_LAG_SECONDS`, default 10); per command, the time from its answer until
//!    the views' checkpoint (polled every millisecond) reaches its position.
//!    `BENCH_LAG_PREFILL=n` first records n developments on each of those stories.
//!
//! `BENCH_PARTS` (default `123`) picks the cases to run. Case 1 at the default size writes about
//! 4 GB of temporary files (the log, the rebuilt views and their WAL) and takes a few minutes.

/// The allocator of the `newsroom` binary, whose `projection rebuild` this measures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::persist::SerializedEvent;
use cqrs_es::DomainEvent;
use futures_util::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use newsroom::config::Config as AppConfig;
use newsroom::{Newsroom, NewsroomSettings};
use newsroom_domain::{
    Actor, Body, Development, DevelopmentChanges, DevelopmentId, DevelopmentKind, Evidence,
    Headline, Note, PublicationStatus, RespondsTo, Slug, Source, SourceKind, SourceName, Stance,
    StoryEvent, StoryId, Summary, Tag, Urgency, AGGREGATE_TYPE,
};
use newsroom_log::{EventLog, SqliteOptions, SqliteStore, Synchronous};
use newsroom_projection::{rebuild, ViewStore};
use newsroom_readmodel::decode;
use newsroom_testkit::api::story;
use newsroom_testkit::http::{post_json_to, GetLoad};
use newsroom_testkit::procfs::{own_cpu_seconds, own_status_bytes, reset_own_peak_rss};
use newsroom_testkit::report::{cores, histogram, record, secs, thousands, us, verdict, Started};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::env_num;
use newsroom_testkit::{BoxError, Res};
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Feed page size of the baseline, the same as the rebuild's.
const PAGE: usize = 10_000;

#[derive(Debug, Clone)]
struct Config {
    events: usize,
    stories: usize,
    /// Events per append while filling the log.
    chunk: usize,
    /// Appends in flight while filling.
    fill_in_flight: usize,
    seconds: f64,
    in_flight: usize,
    timeline: usize,
    lag_seconds: f64,
    lag_rate: f64,
    lag_stories: usize,
    /// Developments recorded on each lag story before the measured load.
    lag_prefill: usize,
    /// Which cases run: a subset of "123".
    parts: String,
    /// Whether case 1 times the rebuild's steps on their own afterwards (`BENCH_BREAKDOWN=0`
    /// skips it: its in-memory replay holds the whole log's folds).
    breakdown: bool,
}

impl Config {
    fn from_env() -> Self {
        let events = (env_num("BENCH_EVENTS", 1_000_000.0) as usize).max(2_000);
        Self {
            events,
            stories: (env_num("BENCH_STORIES", 1_000.0) as usize).max(1),
            chunk: 25,
            fill_in_flight: 64,
            seconds: env_num("BENCH_SECONDS", 5.0).max(0.5),
            in_flight: 32,
            timeline: 1_000,
            lag_seconds: env_num("BENCH_LAG_SECONDS", 10.0).max(1.0),
            lag_rate: env_num("BENCH_LAG_RATE", 200.0).max(1.0),
            lag_stories: 10,
            lag_prefill: env_num("BENCH_LAG_PREFILL", 0.0) as usize,
            parts: std::env::var("BENCH_PARTS")
                .ok()
                .filter(|p| p.chars().any(|c| matches!(c, '1'..='3')))
                .unwrap_or_else(|| "123".to_owned()),
            breakdown: std::env::var("BENCH_BREAKDOWN").map_or(true, |v| v != "0"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the log holds

const ACTORS: [&str; 12] = [
    "Interior Ministry",
    "APT28",
    "Campaign A",
    "Fancy Bear",
    "Electoral Commission",
    "Cyber Command",
    "Ministry of Foreign Affairs",
    "Sandworm",
    "National Police",
    "Public Prosecutor",
    "Campaign B",
    "CERT-EU",
];

const AUTHORS: [(&str, &str, &str); 4] = [
    (
        "0190d1c4-7d2f-7c4e-9a65-3f1f2b9b1c11",
        "Rita Reporter",
        "reporter",
    ),
    (
        "0190d1c4-7d2f-7c4e-9a65-3f1f2b9b1c12",
        "Rafael Reporter",
        "reporter",
    ),
    (
        "0190d1c4-7d2f-7c4e-9a65-3f1f2b9b1c13",
        "Renee Reporter",
        "reporter",
    ),
    (
        "0190d1c4-7d2f-7c4e-9a65-3f1f2b9b1c14",
        "Eda Editor",
        "editor",
    ),
];

const HEADLINES: [&str; 4] = [
    "Ministry confirms breach of campaign mail server",
    "Investigators trace intrusion to rented server",
    "Campaign says no voter data was taken",
    "Prosecutor opens inquiry into the leak",
];

/// A development body of about 300 bytes; `i` makes each one differ.
fn body_text(i: usize) -> String {
    format!(
        "Officials said on Tuesday that investigators had traced the intrusion to a server rented \
         under a false name abroad. The campaign's security team disconnected the affected \
         mailboxes and notified the electoral commission; no ballots or voter rolls were \
         affected, the spokesperson added. Further details are expected (item {i})."
    )
}

fn source(kind: SourceKind) -> Source {
    Source {
        name: SourceName::parse("source.name", "Interior Ministry spokesperson")
            .expect("valid source"),
        kind,
        url: None,
    }
}

/// Everything parsed once: the generator only clones.
struct Pools {
    actors: Vec<Actor>,
    headlines: Vec<Headline>,
    note: Note,
    reason: Note,
}

impl Pools {
    fn new() -> Self {
        Self {
            actors: ACTORS
                .iter()
                .map(|a| Actor::parse("actors", a).expect("valid actor"))
                .collect(),
            headlines: HEADLINES
                .iter()
                .map(|h| Headline::parse("headline", h).expect("valid headline"))
                .collect(),
            note: Note::parse(
                "note",
                "An earlier version misstated the date of the breach.",
            )
            .expect("valid note"),
            reason: Note::parse("reason", "The source withdrew the statement.")
                .expect("valid reason"),
        }
    }
}

/// One story's event generator: realistic shapes, contiguous sequences.
struct StoryGen {
    id: StoryId,
    index: usize,
    review_required: bool,
    seq: usize,
    devs: Vec<DevelopmentId>,
    claims: Vec<DevelopmentId>,
    pending: Option<DevelopmentId>,
}

impl StoryGen {
    fn new(index: usize) -> Self {
        Self {
            id: StoryId::new(),
            index,
            // One story in ten is under desk review: its developments wait for an editor.
            review_required: index % 10 == 0,
            seq: 0,
            devs: Vec::new(),
            claims: Vec::new(),
            pending: None,
        }
    }

    fn next(&mut self, pools: &Pools, at: DateTime<Utc>) -> StoryEvent {
        self.seq += 1;
        let k = self.seq;
        if k == 1 {
            return StoryEvent::StoryOpened {
                id: self.id,
                slug: Slug::parse("slug", &format!("campaign-hack-{}", self.index))
                    .expect("valid slug"),
                headline: Headline::parse("headline", &format!("Campaign hack {}", self.index))
                    .expect("valid headline"),
                summary: Summary::parse("summary", "A campaign says its email was breached.")
                    .expect("valid summary"),
                tags: vec![
                    Tag::parse("tags", "cyber").expect("valid tag"),
                    Tag::parse("tags", "elections").expect("valid tag"),
                ],
                review_required: self.review_required,
            };
        }
        if let Some(development) = self.pending.take() {
            return if k % 23 == 0 {
                StoryEvent::DevelopmentRejected {
                    development,
                    reason: pools.reason.clone(),
                }
            } else {
                StoryEvent::DevelopmentApproved { development }
            };
        }
        let n = self.devs.len();
        if k % 97 == 0 && n > 10 {
            return StoryEvent::DevelopmentCorrected {
                development: self.devs[n - 7],
                note: pools.note.clone(),
                changes: DevelopmentChanges {
                    body: Some(Body::parse("body", &body_text(k + 1)).expect("valid body")),
                    evidence: Some(Evidence::Confirmed),
                    ..Default::default()
                },
            };
        }
        if k % 331 == 0 && n > 10 {
            return StoryEvent::DevelopmentRetracted {
                development: self.devs[n - 3],
                reason: pools.reason.clone(),
            };
        }
        let id = DevelopmentId::from(Uuid::new_v4());
        let last_claim = self.claims.last().copied();
        let (kind, responds_to) = match (k % 40, last_claim) {
            (5, _) => (DevelopmentKind::AttributionClaimed, None),
            (6 | 26, Some(claim)) => (
                DevelopmentKind::DenialIssued,
                Some(RespondsTo {
                    development: claim,
                    stance: Stance::Denies,
                }),
            ),
            (15, Some(claim)) => (
                DevelopmentKind::ReportPublished,
                Some(RespondsTo {
                    development: claim,
                    stance: Stance::Supports,
                }),
            ),
            (r, _) if r % 3 == 0 => (DevelopmentKind::Update, None),
            (r, _) if r % 3 == 1 => (DevelopmentKind::StatementIssued, None),
            _ => (DevelopmentKind::ReportPublished, None),
        };
        if kind == DevelopmentKind::AttributionClaimed {
            self.claims.push(id);
        }
        self.devs.push(id);
        let status = if self.review_required {
            self.pending = Some(id);
            PublicationStatus::PendingReview
        } else {
            PublicationStatus::Published
        };
        let a = k % pools.actors.len();
        StoryEvent::DevelopmentRecorded {
            embargo_until: None,
            development: Development {
                accused: vec![],
                id,
                kind,
                headline: pools.headlines[k % pools.headlines.len()].clone(),
                body: Body::parse("body", &body_text(k)).expect("valid body"),
                occurred_at: at - chrono::Duration::minutes((k % 90) as i64),
                recorded_at: at,
                actors: vec![
                    pools.actors[a].clone(),
                    pools.actors[(a + 5) % pools.actors.len()].clone(),
                ],
                source: Some(source(SourceKind::OfficialStatement)),
                evidence: Evidence::Documentary,
                urgency: Urgency::Priority,
                responds_to,
            },
            status,
            fingerprint: format!("{:032x}", id.as_uuid().as_u128() ^ 0x5eed),
            hold: None,
        }
    }

    fn serialized(&mut self, pools: &Pools, at: DateTime<Utc>) -> Res<SerializedEvent> {
        let event = self.next(pools, at);
        let (author_id, author_name, author_role) = match &event {
            StoryEvent::DevelopmentApproved { .. }
            | StoryEvent::DevelopmentRejected { .. }
            | StoryEvent::DevelopmentCorrected { .. }
            | StoryEvent::DevelopmentRetracted { .. } => AUTHORS[3],
            _ => AUTHORS[self.index % 3],
        };
        let metadata = json!({
            "author_id": author_id,
            "author_name": author_name,
            "author_role": author_role,
            "recorded_at": at.to_rfc3339_opts(SecondsFormat::Micros, true),
        });
        Ok(SerializedEvent::new(
            self.id.to_string(),
            self.seq,
            AGGREGATE_TYPE.to_owned(),
            event.event_type(),
            event.event_version(),
            serde_json::to_value(&event)?,
            metadata,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Rebuild

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
    let per_story: Vec<usize> = (0..cfg.stories)
        .map(|s| cfg.events / cfg.stories + usize::from(s < cfg.events % cfg.stories))
        .collect();
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
    tokio::pin!(appends);
    let mut written = 0usize;
    let mut next_report = 100_000;
    while let Some(n) = appends.next().await {
        written += n?;
        if written >= next_report {
            eprintln!(
                "  filled {written} events ({:.0} events/s)",
                written as f64 / started.elapsed().as_secs_f64()
            );
            next_report += 100_000;
        }
    }
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
struct RebuildRun {
    fill: FillRun,
    events: u64,
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

async fn rebuild_case(dir: &Path, cfg: &Config) -> Res<RebuildRun> {
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

// ---------------------------------------------------------------------------------------------
// The real app

struct RunningApp {
    base: String,
    token: String,
    views: ViewStore,
    log: EventLog,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), String>>>,
    _dir: tempfile::TempDir,
}

impl RunningApp {
    async fn start() -> Res<Self> {
        let dir = tempfile::tempdir()?;
        // The settings the binary would build from this configuration (production defaults for
        // everything not named here, the notifier included), on port 0 in a temporary directory.
        let config = AppConfig {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_owned(),
            sqlite_synchronous: Synchronous::Normal,
            // One token drives the whole load: per-client write limits would turn it into 429s.
            writes_per_token_per_minute: 0,
            ..AppConfig::default()
        };
        let settings: NewsroomSettings = config.newsroom_settings()?;
        let app = Newsroom::build(settings).await?;
        let base = format!("http://{}", app.local_addr());
        let token = app
            .state()
            .tokens
            .bootstrap_admin()
            .await?
            .ok_or("a fresh store has no admin")?
            .token;
        let views = app.views().expect("role all projects").clone();
        let log = app.state().store.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| format!("{e:#}"))
        });
        Ok(Self {
            base,
            token,
            views,
            log,
            client: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
            _dir: dir,
        })
    }

    async fn post(&self, path: &str, body: Value) -> Res<Value> {
        Ok(post_json_to(&self.client, &self.base, path, Some(&self.token), &body).await?)
    }

    async fn open_story(&self, slug: &str) -> Res<String> {
        let answer = self.post("/v1/stories", story(slug)).await?;
        Ok(answer["id"].as_str().ok_or("no story id")?.to_owned())
    }

    async fn stop(mut self) -> Res<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            match tokio::time::timeout(Duration::from_secs(10), server).await {
                Ok(joined) => joined??,
                Err(_) => eprintln!("  the app did not stop within 10 s; leaving it"),
            }
        }
        Ok(())
    }
}

/// A filing as a reporter sends it: about 300 bytes of body, two actors, a named source.
fn filing(k: usize, responds_to: Option<(&str, &str)>, kind: &str) -> Value {
    let mut body = json!({
        "id": Uuid::new_v4(),
        "kind": kind,
        "headline": HEADLINES[k % HEADLINES.len()],
        "body": body_text(k),
        "actors": [ACTORS[k % ACTORS.len()], ACTORS[(k + 5) % ACTORS.len()]],
        "source": {"name": "Interior Ministry spokesperson", "kind": "official_statement"},
        "evidence": "documentary",
        "urgency": "priority",
    });
    if let Some((development, stance)) = responds_to {
        body["responds_to"] = json!({"development": development, "stance": stance});
    }
    body
}

// ---------------------------------------------------------------------------------------------
// 2. GET of a long story

#[derive(Debug)]
struct LoadRun {
    rate: f64,
    requests: u64,
    errors: u64,
    latency: Histogram<u64>,
}

impl LoadRun {
    fn merge(runs: &[&LoadRun]) -> LoadRun {
        let mut latency = histogram();
        for r in runs {
            latency.add(&r.latency).expect("same bounds");
        }
        LoadRun {
            rate: runs.iter().map(|r| r.rate).sum::<f64>() / runs.len() as f64,
            requests: runs.iter().map(|r| r.requests).sum(),
            errors: runs.iter().map(|r| r.errors).sum(),
            latency,
        }
    }
}

/// [`GetLoad`] on `url`: `in_flight` workers GET it back to back for a warm-up second, then
/// `seconds`; a request counts when its whole answer has arrived, 200 and of the expected length.
async fn get_load(
    client: &reqwest::Client,
    url: &str,
    expected_len: usize,
    in_flight: usize,
    seconds: f64,
) -> Res<LoadRun> {
    let urls = [url.to_owned()];
    let tally = GetLoad::start(client, &urls, expected_len, in_flight, seconds)
        .finish()
        .await?;
    Ok(LoadRun {
        rate: tally.requests as f64 / tally.window.as_secs_f64(),
        requests: tally.requests,
        errors: tally.errors,
        latency: tally.latency,
    })
}

/// A plain axum server answering every GET of `/v1/stories/{id}` with `body` from memory.
async fn start_static(
    body: Bytes,
    content_type: HeaderValue,
) -> Res<(String, oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)> {
    let router = Router::new().route(
        "/v1/stories/{id}",
        get(move || {
            let (body, content_type) = (body.clone(), content_type.clone());
            async move { ([(header::CONTENT_TYPE, content_type)], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok((base, stop, server))
}

#[derive(Debug)]
struct GetRun {
    body_bytes: usize,
    content_type: String,
    timeline: usize,
    build_secs: f64,
    app: LoadRun,
    statik: LoadRun,
    app_runs: Vec<f64>,
    static_runs: Vec<f64>,
}

async fn get_case(cfg: &Config) -> Res<GetRun> {
    let app = RunningApp::start().await?;
    eprintln!(
        "[2] recording {} developments on one story over HTTP",
        cfg.timeline
    );
    let started = Instant::now();
    let story = app.open_story("long-story").await?;
    let mut claim: Option<String> = None;
    let mut devs: Vec<String> = Vec::new();
    let mut last = 0i64;
    for k in 1..=cfg.timeline {
        let (kind, responds) = match (k % 40, &claim) {
            (5, _) => ("attribution_claimed", None),
            (6 | 26, Some(c)) => ("denial_issued", Some((c.as_str(), "denies"))),
            (15, Some(c)) => ("report_published", Some((c.as_str(), "supports"))),
            (r, _) if r % 3 == 0 => ("update", None),
            (r, _) if r % 3 == 1 => ("statement_issued", None),
            _ => ("report_published", None),
        };
        let body = filing(k, responds, kind);
        let id = body["id"].as_str().expect("an id").to_owned();
        let answer = app
            .post(&format!("/v1/stories/{story}/developments"), body)
            .await?;
        last = answer["position"].as_i64().ok_or("no position")?;
        if kind == "attribution_claimed" {
            claim = Some(id.clone());
        }
        devs.push(id);
        // A few corrections and retractions, as a running story has.
        if k % 97 == 0 {
            let answer = app
                .post(
                    &format!(
                        "/v1/stories/{story}/developments/{}/corrections",
                        devs[k - 7]
                    ),
                    json!({
                        "note": "An earlier version misstated the date of the breach.",
                        "changes": {"body": body_text(k + 1), "evidence": "confirmed"},
                    }),
                )
                .await?;
            last = answer["position"].as_i64().ok_or("no position")?;
        }
        if k % 331 == 0 {
            let answer = app
                .post(
                    &format!(
                        "/v1/stories/{story}/developments/{}/retraction",
                        devs[k - 3]
                    ),
                    json!({"reason": "The source withdrew the statement."}),
                )
                .await?;
            last = answer["position"].as_i64().ok_or("no position")?;
        }
    }
    let url = format!("{}/v1/stories/{story}", app.base);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = app
            .client
            .get(format!("{url}?min_position={last}"))
            .send()
            .await?;
        if r.status() == reqwest::StatusCode::OK {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("views did not reach {last}: {}", r.status()).into());
        }
    }
    let build_secs = started.elapsed().as_secs_f64();
    let r = app.client.get(&url).send().await?;
    let content_type = r
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .ok_or("no content type")?;
    let body = r.bytes().await?;
    let doc: Value = serde_json::from_slice(&body)?;
    let timeline = doc["timeline"].as_array().map_or(0, Vec::len);
    if doc["position"].as_i64() != Some(last) || timeline != cfg.timeline {
        return Err(format!(
            "unexpected story: position {} (want {last}), {timeline} developments",
            doc["position"]
        )
        .into());
    }
    eprintln!(
        "  done in {build_secs:.1} s; the answer is {} bytes of {}",
        body.len(),
        content_type.to_str().unwrap_or("?")
    );

    let (static_base, static_stop, static_server) =
        start_static(body.clone(), content_type.clone()).await?;
    let static_url = format!("{static_base}/v1/stories/{story}");
    // One client for every run, so both servers see the same connection behaviour.
    let client = reqwest::Client::new();
    let mut app_runs = Vec::new();
    let mut static_runs = Vec::new();
    for (i, target) in ["static", "app", "app", "static"].into_iter().enumerate() {
        let u = if target == "app" { &url } else { &static_url };
        eprintln!(
            "[2] GET load {}/4 on {target}: {} in flight, {} s",
            i + 1,
            cfg.in_flight,
            cfg.seconds
        );
        let run = get_load(&client, u, body.len(), cfg.in_flight, cfg.seconds).await?;
        eprintln!(
            "  {:.0} requests/s, p50 {}, p99 {}, {} errors",
            run.rate,
            us(run.latency.value_at_quantile(0.5)),
            us(run.latency.value_at_quantile(0.99)),
            run.errors
        );
        if target == "app" {
            app_runs.push(run);
        } else {
            static_runs.push(run);
        }
    }
    let _ = static_stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), static_server).await;
    app.stop().await?;
    Ok(GetRun {
        body_bytes: body.len(),
        content_type: content_type.to_str().unwrap_or("?").to_owned(),
        timeline,
        build_secs,
        app: LoadRun::merge(&app_runs.iter().collect::<Vec<_>>()),
        statik: LoadRun::merge(&static_runs.iter().collect::<Vec<_>>()),
        app_runs: app_runs.iter().map(|r| r.rate).collect(),
        static_runs: static_runs.iter().map(|r| r.rate).collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// 3. Lag

#[derive(Debug)]
struct LagRun {
    commands: usize,
    errors: usize,
    achieved_rate: f64,
    post_latency: Histogram<u64>,
    /// From the POST's answer to the views' checkpoint reaching its position.
    lag_answer: Histogram<u64>,
    /// From the store's commit signal to the views' checkpoint reaching the position.
    lag_commit: Histogram<u64>,
    /// Commands whose position the views had already reached when the answer arrived.
    already_visible: usize,
    checkpoint_steps: usize,
    poll_interval: Duration,
    catch_up: Duration,
}

/// Records, for each value a position source takes, the first instant it was seen.
type Seen = Arc<Mutex<Vec<(i64, Instant)>>>;

/// The first instant at which a position ≥ `p` was seen.
fn first_seen(seen: &[(i64, Instant)], p: i64) -> Option<Instant> {
    let i = seen.partition_point(|(q, _)| *q < p);
    seen.get(i).map(|(_, t)| *t)
}

async fn lag_case(cfg: &Config) -> Res<LagRun> {
    let app = Arc::new(RunningApp::start().await?);
    let mut stories = Vec::new();
    for i in 0..cfg.lag_stories {
        stories.push(app.open_story(&format!("lag-story-{i}")).await?);
    }
    let prefill_started = Instant::now();
    if cfg.lag_prefill > 0 {
        eprintln!(
            "[3] recording {} developments on each of the {} stories first",
            cfg.lag_prefill, cfg.lag_stories
        );
        let fills: Vec<_> = stories
            .iter()
            .map(|story| {
                let (app, story, n) = (app.clone(), story.clone(), cfg.lag_prefill);
                tokio::spawn(async move {
                    let mut last = 0;
                    for k in 0..n {
                        let answer = app
                            .post(
                                &format!("/v1/stories/{story}/developments"),
                                filing(k, None, "statement_issued"),
                            )
                            .await?;
                        last = answer["position"].as_i64().unwrap_or(0);
                    }
                    Ok::<_, BoxError>(last)
                })
            })
            .collect();
        let mut head = 0;
        for fill in fills {
            head = head.max(fill.await??);
        }
        while app.views.position().await? < head {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!(
            "  recorded and projected in {:.1} s",
            prefill_started.elapsed().as_secs_f64()
        );
    }
    let (stop_tx, stop_rx) = watch::channel(false);

    // The views' checkpoint, polled every millisecond.
    let views_seen: Seen = Arc::default();
    let poller = {
        let (views, seen, mut stop) = (app.views.clone(), views_seen.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let (mut last, mut polls) = (i64::MIN, 0u64);
            let started = Instant::now();
            while !*stop.borrow_and_update() {
                let p = views.position().await?;
                polls += 1;
                if p > last {
                    seen.lock().expect("lock").push((p, Instant::now()));
                    last = p;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(1)) => {},
                    _ = stop.changed() => {},
                }
            }
            Ok::<_, BoxError>(started.elapsed() / polls.max(1) as u32)
        })
    };
    // The store's commit signal (the head after each group commit).
    let commits_seen: Seen = Arc::default();
    let committer = {
        let (mut head, seen, mut stop) = (app.log.subscribe(), commits_seen.clone(), stop_rx);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = head.changed() => {
                        if changed.is_err() { break; }
                        let p = *head.borrow_and_update();
                        seen.lock().expect("lock").push((p, Instant::now()));
                    }
                    _ = stop.changed() => break,
                }
            }
        })
    };

    eprintln!(
        "[3] {:.0} developments/s over {} stories for {} s",
        cfg.lag_rate, cfg.lag_stories, cfg.lag_seconds
    );
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / cfg.lag_rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(cfg.lag_seconds);
    let mut tasks = Vec::new();
    let mut k = 0usize;
    loop {
        tick.tick().await;
        if Instant::now() >= until {
            break;
        }
        let story = stories[k % stories.len()].clone();
        let app = app.clone();
        let body = filing(k, None, "statement_issued");
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let answer = app
                .post(&format!("/v1/stories/{story}/developments"), body)
                .await;
            let returned = Instant::now();
            answer.map(|a| (sent, returned, a["position"].as_i64().unwrap_or(0)))
        }));
        k += 1;
    }
    let mut done = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for task in tasks {
        match task.await? {
            Ok(d) => done.push(d),
            Err(e) => {
                if errors == 0 {
                    eprintln!("  POST failed: {e}");
                }
                errors += 1;
            }
        }
    }
    let last_answer = done.iter().map(|d| d.1).max().unwrap_or(started);
    let achieved_rate = done.len() as f64 / (last_answer - started).as_secs_f64();
    let head = done.iter().map(|d| d.2).max().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.views.position().await? < head {
        if Instant::now() > deadline {
            return Err(format!("the views did not reach {head} within 60 s").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let catch_up = last_answer.elapsed();
    // Let the poller see the last step too.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _ = stop_tx.send(true);
    let poll_interval = poller.await??;
    committer.await?;

    let views_seen = views_seen.lock().expect("lock").clone();
    let commits_seen = commits_seen.lock().expect("lock").clone();
    let mut run = LagRun {
        commands: done.len(),
        errors,
        achieved_rate,
        post_latency: histogram(),
        lag_answer: histogram(),
        lag_commit: histogram(),
        already_visible: 0,
        checkpoint_steps: views_seen.len(),
        poll_interval,
        catch_up,
    };
    for (sent, returned, position) in &done {
        record(&mut run.post_latency, *returned - *sent);
        let seen = first_seen(&views_seen, *position).ok_or("position never seen")?;
        if seen <= *returned {
            run.already_visible += 1;
        }
        record(
            &mut run.lag_answer,
            seen.saturating_duration_since(*returned),
        );
        if let Some(committed) = first_seen(&commits_seen, *position) {
            record(
                &mut run.lag_commit,
                seen.saturating_duration_since(committed),
            );
        }
    }
    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await?,
        Err(_) => eprintln!("  the app is still shared; not stopping it"),
    }
    Ok(run)
}

// ---------------------------------------------------------------------------------------------
// Report

fn ms(v: u64) -> String {
    format!("{:.1} ms", v as f64 / 1000.0)
}

fn report_rebuild(out: &mut String, r: &RebuildRun, cfg: &Config) -> std::fmt::Result {
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

fn report_get(out: &mut String, g: &GetRun, cfg: &Config) -> std::fmt::Result {
    writeln!(out, "### 2. GET of a {}-development timeline\n", g.timeline)?;
    writeln!(
        out,
        "One story with {} developments (plus corrections and retractions) recorded over HTTP, built and projected in {:.1} s. The answer is {} bytes of `{}`. Baseline: a plain axum server in the same process serving those bytes from memory with the same content type. Same reqwest client, {} requests in flight, 1 s warm-up then {} s per run, order static, app, app, static; a request counts when its whole body has arrived.\n",
        g.timeline,
        g.build_secs,
        thousands(g.body_bytes as f64),
        g.content_type,
        cfg.in_flight,
        cfg.seconds
    )?;
    writeln!(
        out,
        "| case | requests | requests/s (per run) | p50 | p99 | ratio | target |\n|---|---|---|---|---|---|---|"
    )?;
    let runs = |v: &[f64]| {
        v.iter()
            .map(|r| thousands(*r))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(
        out,
        "| static bytes from memory (plain axum) | {} ({} errors) | {} ({}) | {} | {} | 1.00 (reference) | |",
        thousands(g.statik.requests as f64),
        g.statik.errors,
        thousands(g.statik.rate),
        runs(&g.static_runs),
        us(g.statik.latency.value_at_quantile(0.5)),
        us(g.statik.latency.value_at_quantile(0.99)),
    )?;
    let ratio = g.app.rate / g.statik.rate;
    writeln!(
        out,
        "| newsroom `GET /v1/stories/{{id}}` | {} ({} errors) | {} ({}) | {} | {} | {:.2} × static | ≥ 0.8: {} |",
        thousands(g.app.requests as f64),
        g.app.errors,
        thousands(g.app.rate),
        runs(&g.app_runs),
        us(g.app.latency.value_at_quantile(0.5)),
        us(g.app.latency.value_at_quantile(0.99)),
        ratio,
        verdict(ratio >= 0.8 && g.app.errors == 0)
    )?;
    writeln!(out)?;
    Ok(())
}

fn report_lag(out: &mut String, l: &LagRun, cfg: &Config) -> std::fmt::Result {
    writeln!(out, "### 3. Projection lag under a steady write load\n")?;
    writeln!(
        out,
        "`POST /v1/stories/{{id}}/developments` at {:.0}/s (open loop, one task per request) spread over {} stories{} for {} s: {} commands answered ({:.0}/s achieved), {} errors; POST latency p50 {}, p99 {}. The views' checkpoint (`ViewStore::position()`) was polled every {:.2} ms on average and advanced {} times (≈ {:.1} commands per projector step). After the last answer the views caught up in {}.\n",
        cfg.lag_rate,
        cfg.lag_stories,
        if cfg.lag_prefill > 0 {
            format!(" that already had {} developments each", thousands(cfg.lag_prefill as f64))
        } else {
            String::new()
        },
        cfg.lag_seconds,
        thousands(l.commands as f64),
        l.achieved_rate,
        l.errors,
        us(l.post_latency.value_at_quantile(0.5)),
        us(l.post_latency.value_at_quantile(0.99)),
        l.poll_interval.as_secs_f64() * 1000.0,
        l.checkpoint_steps,
        l.commands as f64 / l.checkpoint_steps.max(1) as f64,
        secs(l.catch_up),
    )?;
    writeln!(
        out,
        "| lag, per command | p50 | p99 | max |\n|---|---|---|---|"
    )?;
    writeln!(
        out,
        "| from the POST's answer until the views' checkpoint reached its `position` | {} | {} | {} |",
        ms(l.lag_answer.value_at_quantile(0.5)),
        ms(l.lag_answer.value_at_quantile(0.99)),
        ms(l.lag_answer.max()),
    )?;
    writeln!(
        out,
        "| from the store's commit signal (`subscribe()`) until the same | {} | {} | {} |",
        ms(l.lag_commit.value_at_quantile(0.5)),
        ms(l.lag_commit.value_at_quantile(0.99)),
        ms(l.lag_commit.max()),
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{} of {} commands were already visible in the views when their answer arrived (lag 0). Resolution is the poll interval.\n",
        thousands(l.already_visible as f64),
        thousands(l.commands as f64)
    )?;
    Ok(())
}

fn main() -> Res<()> {
    // As the `newsroom` binary does.
    newsroom::disable_transparent_huge_pages();
    // `cargo bench` passes `--bench`; filters are not supported (see `BENCH_PARTS`).
    let cfg = Config::from_env();
    let rt = runtime()?;
    let started = Started::now();

    let rebuild_run = if cfg.parts.contains('1') {
        let dir = tempfile::tempdir()?;
        let run = rt.block_on(rebuild_case(dir.path(), &cfg))?;
        // The rebuild's files are large; free the disk before the HTTP cases.
        drop(dir);
        Some(run)
    } else {
        None
    };
    let get_run = if cfg.parts.contains('2') {
        Some(rt.block_on(get_case(&cfg))?)
    } else {
        None
    };
    let lag_run = if cfg.parts.contains('3') {
        Some(rt.block_on(lag_case(&cfg))?)
    } else {
        None
    };

    let cores = cores();
    let mut env = format!(
        "BENCH_EVENTS={} BENCH_SECONDS={} BENCH_LAG_RATE={} BENCH_LAG_SECONDS={}",
        cfg.events, cfg.seconds, cfg.lag_rate, cfg.lag_seconds
    );
    if cfg.lag_prefill > 0 {
        write!(env, " BENCH_LAG_PREFILL={}", cfg.lag_prefill)?;
    }
    if cfg.parts != "123" {
        write!(env, " BENCH_PARTS={}", cfg.parts)?;
    }
    let mut out = String::new();
    writeln!(out, "## Read side (projection)\n")?;
    writeln!(
        out,
        "Rerun: `{env} cargo bench -p newsroom-projection --bench read_path`\n"
    )?;
    writeln!(
        out,
        "{cores} CPUs visible; SQLite {}; one tokio multi-thread runtime ({cores} workers) shared by the app (command side, projector, notifier), the baseline server and the load clients; apps run with `synchronous = NORMAL`; {}.\n",
        rusqlite::version(),
        started.summary()
    )?;
    if let Some(r) = &rebuild_run {
        report_rebuild(&mut out, r, &cfg)?;
    }
    if let Some(g) = &get_run {
        report_get(&mut out, g, &cfg)?;
    }
    if let Some(l) = &lag_run {
        report_lag(&mut out, l, &cfg)?;
    }
    print!("{out}");
    Ok(())
}
