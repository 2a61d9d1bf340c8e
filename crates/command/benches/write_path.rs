//! Write-path load benchmark: how fast, and how flat, recording a development is.
//!
//! A custom-harness binary (`cargo bench -p newsroom-command --bench write_path`) that prints a
//! Markdown report on stdout (progress goes to stderr). Every figure is compared with baselines
//! measured in the same run, on files in a fresh temporary directory, with the same SQLite settings
//! (WAL, busy timeout, and the `synchronous` mode under test). The whole suite runs once with
//! `synchronous = FULL` and once with `NORMAL`.
//!
//! 1. Baseline A: raw rusqlite, one event row per transaction.
//! 2. Baseline B: the same through sqlx's SQLite driver.
//! 3. The command service under many concurrent reporters (group commit).
//! 4. Latency flatness: one development on a 10-event story vs a 10,000-event story, with the
//!    aggregate cache warm and cold.
//! 5. The HTTP API under a concurrent load client.
//!
//! Scale with `BENCH_EVENTS` (events per throughput case, default 20,000; the latency sample
//! count is a hundredth of it) and `BENCH_SECONDS` (HTTP load duration, default 5).
//! `BENCH_BIG_STORY` (default 10,000) sets the size of the long story, for quick trial runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use hdrhistogram::Histogram;
use newsroom_command::{CommandService, ServiceOptions, Settings};
use newsroom_domain::{
    Actor, Body, Development, DevelopmentId, DevelopmentKind, Evidence, Headline, NewDevelopment,
    PublicationStatus, Role, Slug, Source, SourceKind, SourceName, Story, StoryCommand, StoryEvent,
    StoryId, Summary, Urgency,
};
use newsroom_log::{SqliteOptions, SqliteStore, Synchronous};
use newsroom_testkit::api::send_development;
use newsroom_testkit::report::{
    cores, histogram, load_average, median, ms, record, thousands, us, verdict, Started,
};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::env_num;
use newsroom_testkit::{BoxError, Res};
use newsroom_web::Principal;
use serde_json::{json, Value};
use uuid::Uuid;

/// The events table exactly as the store's migration creates it (columns, key, unique key).
const EVENTS_DDL: &str = "CREATE TABLE events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    sequence       INTEGER NOT NULL CHECK (sequence > 0),
    event_type     TEXT    NOT NULL,
    event_version  TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    recorded_at    TEXT    NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
)";

const INSERT: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
    event_version, payload, metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// The store's busy timeout, repeated for the baselines.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const HEADLINE: &str = "Ministry confirms breach of campaign mail server";
const BODY: &str = "Access occurred between March and May, the ministry said.";
const ACTORS: [&str; 2] = ["Interior Ministry", "APT28"];
const SOURCE: &str = "Interior Ministry";

#[derive(Debug, Clone)]
struct Config {
    events: usize,
    seconds: f64,
    stories: usize,
    reporters: usize,
    in_flight: usize,
    big_story: usize,
    small_story: usize,
    samples: usize,
}

impl Config {
    fn from_env() -> Self {
        let events = env_num("BENCH_EVENTS", 20_000.0) as usize;
        Self {
            events: events.max(100),
            seconds: env_num("BENCH_SECONDS", 5.0).max(0.5),
            stories: 64,
            reporters: 64,
            in_flight: 64,
            big_story: (env_num("BENCH_BIG_STORY", 10_000.0) as usize).max(20),
            small_story: 10,
            samples: (events / 100).clamp(20, 2_000),
        }
    }
}

fn mode_name(sync: Synchronous) -> &'static str {
    match sync {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    }
}

// ---------------------------------------------------------------------------------------------
// What gets written

fn reporter() -> Principal {
    Principal {
        token_id: Uuid::now_v7().to_string(),
        name: "Bench Reporter".into(),
        role: Role::Reporter,
    }
}

/// A development as a reporter files it, parsed with the value types' own `parse`.
fn template() -> NewDevelopment {
    NewDevelopment {
        embargo_until: None,
        accused: vec![],
        id: DevelopmentId::from(Uuid::new_v4()),
        kind: DevelopmentKind::StatementIssued,
        headline: Headline::parse("headline", HEADLINE).expect("valid headline"),
        body: Body::parse("body", BODY).expect("valid body"),
        occurred_at: None,
        actors: Actor::parse_list("actors", &ACTORS.map(str::to_owned)).expect("valid actors"),
        source: Some(Source {
            name: SourceName::parse("source.name", SOURCE).expect("valid source"),
            kind: SourceKind::OfficialStatement,
            url: None,
        }),
        evidence: Evidence::Documentary,
        urgency: Urgency::Priority,
        responds_to: None,
        hold: None,
    }
}

/// The template with a fresh id: a new filing, never an idempotent repeat.
fn record_development(template: &NewDevelopment) -> StoryCommand {
    let mut new = template.clone();
    new.id = DevelopmentId::from(Uuid::new_v4());
    StoryCommand::RecordDevelopment(new)
}

fn open_story(id: StoryId, slug: &str) -> StoryCommand {
    StoryCommand::OpenStory {
        id,
        slug: Slug::parse("slug", slug).expect("valid slug"),
        headline: Headline::parse("headline", "Campaign hack").expect("valid headline"),
        summary: Summary::parse("summary", "").expect("valid summary"),
        tags: vec![],
        review_required: false,
    }
}

/// The stored payload of a `DevelopmentRecorded` event for the template, as the baselines write
/// it, and the id inside it (replaced per row so that rows differ).
fn recorded_payload() -> (String, String) {
    let new = template();
    let now = Utc::now();
    let event = StoryEvent::DevelopmentRecorded {
        embargo_until: None,
        fingerprint: new.fingerprint(),
        development: Development {
            accused: vec![],
            id: new.id,
            kind: new.kind,
            headline: new.headline,
            body: new.body,
            occurred_at: now,
            recorded_at: now,
            actors: new.actors,
            source: new.source,
            evidence: new.evidence,
            urgency: new.urgency,
            responds_to: None,
        },
        status: PublicationStatus::Published,
        hold: None,
    };
    let payload = serde_json::to_string(&event).expect("an event serialises");
    (payload, new.id.to_string())
}

/// Metadata shaped like the command service's.
fn metadata(recorded_at: &str) -> String {
    json!({
        "author_id": "0190d1c4-7d2f-7c4e-9a65-3f1f2b9b1c11",
        "author_name": "Bench Reporter",
        "author_role": "reporter",
        "recorded_at": recorded_at,
    })
    .to_string()
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// One baseline row: story `i % stories`, next sequence of that story.
struct RowGen {
    story_ids: Vec<String>,
    next_seq: Vec<i64>,
    payload: String,
    placeholder: String,
}

impl RowGen {
    fn new(stories: usize) -> Self {
        let (payload, placeholder) = recorded_payload();
        Self {
            story_ids: (0..stories).map(|_| Uuid::now_v7().to_string()).collect(),
            next_seq: vec![1; stories],
            payload,
            placeholder,
        }
    }

    /// (aggregate_id, sequence, payload, metadata, recorded_at)
    fn row(&mut self, i: usize) -> (&str, i64, String, String, String) {
        let s = i % self.story_ids.len();
        let seq = self.next_seq[s];
        self.next_seq[s] += 1;
        let payload = self
            .payload
            .replace(&self.placeholder, &Uuid::new_v4().to_string());
        let recorded_at = now_rfc3339();
        (
            &self.story_ids[s],
            seq,
            payload,
            metadata(&recorded_at),
            recorded_at,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Baseline A: rusqlite

fn baseline_rusqlite(path: &Path, sync: Synchronous, cfg: &Config) -> Res<f64> {
    use rusqlite::{params, Connection, TransactionBehavior};
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", mode_name(sync))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(EVENTS_DDL)?;
    let mut rows = RowGen::new(cfg.stories);

    let started = Instant::now();
    for i in 0..cfg.events {
        let (id, seq, payload, metadata, recorded_at) = rows.row(i);
        // IMMEDIATE, like the store's writer.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(INSERT)?.execute(params![
            "story",
            id,
            seq,
            "DevelopmentRecorded",
            "1",
            payload,
            metadata,
            recorded_at
        ])?;
        tx.commit()?;
    }
    let elapsed = started.elapsed();

    let count: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    assert_eq!(count as usize, cfg.events, "baseline A lost rows");
    Ok(cfg.events as f64 / elapsed.as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// 2. Baseline B: sqlx

async fn baseline_sqlx(path: &Path, sync: Synchronous, cfg: &Config) -> Res<f64> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::{Connection, Executor};
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match sync {
            Synchronous::Full => SqliteSynchronous::Full,
            Synchronous::Normal => SqliteSynchronous::Normal,
        })
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
    conn.execute(EVENTS_DDL).await?;
    let mut rows = RowGen::new(cfg.stories);

    let started = Instant::now();
    for i in 0..cfg.events {
        let (id, seq, payload, metadata, recorded_at) = rows.row(i);
        let id = id.to_owned();
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(INSERT)
            .bind("story")
            .bind(id)
            .bind(seq)
            .bind("DevelopmentRecorded")
            .bind("1")
            .bind(payload)
            .bind(metadata)
            .bind(recorded_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let elapsed = started.elapsed();

    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(count as usize, cfg.events, "baseline B lost rows");
    conn.close().await?;
    Ok(cfg.events as f64 / elapsed.as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// 3. The command service under concurrent reporters

#[derive(Debug)]
struct ServiceRun {
    rate: f64,
    latency: Histogram<u64>,
    errors: usize,
    /// Appends per commit while reporters ran, from the store's batch-size metric.
    mean_batch: Option<f64>,
    /// Mean stored payload and metadata size of the recorded developments.
    payload_bytes: f64,
    metadata_bytes: f64,
}

fn open_store(path: &Path, sync: Synchronous) -> Res<SqliteStore> {
    Ok(SqliteStore::open(
        path,
        SqliteOptions {
            synchronous: sync,
            ..Default::default()
        },
    )?)
}

/// (sum, count) of the store's batch-size histogram, from the process-wide recorder.
fn batch_metric() -> Option<(f64, f64)> {
    let text = newsroom_web::telemetry::metrics_handle().render();
    let find = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
    };
    Some((
        find("newsroom_store_batch_size_sum ")?,
        find("newsroom_store_batch_size_count ")?,
    ))
}

async fn open_stories(
    service: &Arc<CommandService>,
    by: &Principal,
    prefix: &str,
    n: usize,
) -> Res<Vec<StoryId>> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let service = service.clone();
            let by = by.clone();
            let slug = format!("{prefix}-{i}");
            tokio::spawn(async move {
                let id = StoryId::new();
                service.execute(id, &by, open_story(id, &slug)).await?;
                Ok::<_, BoxError>(id)
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(n);
    for task in tasks {
        ids.push(task.await??);
    }
    Ok(ids)
}

async fn service_throughput(path: &Path, sync: Synchronous, cfg: &Config) -> Res<ServiceRun> {
    let store = open_store(path, sync)?;
    let service = Arc::new(CommandService::new(
        store.clone(),
        ServiceOptions::default(),
    ));
    let by = reporter();
    let template = Arc::new(template());
    let stories = Arc::new(open_stories(&service, &by, "load", cfg.stories).await?);

    let batches_before = batch_metric();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..cfg.reporters)
        .map(|r| {
            let (service, by, template, stories, next) = (
                service.clone(),
                by.clone(),
                template.clone(),
                stories.clone(),
                next.clone(),
            );
            let total = cfg.events;
            tokio::spawn(async move {
                let mut latency = histogram();
                let mut errors = 0;
                // Reporter r files its k-th development on story (r + k): the reporters spread
                // over all stories and only occasionally meet on one.
                for k in 0.. {
                    if next.fetch_add(1, Ordering::Relaxed) >= total {
                        break;
                    }
                    let story = stories[(r + k) % stories.len()];
                    let command = record_development(&template);
                    let t = Instant::now();
                    match service.execute(story, &by, command).await {
                        Ok(_) => record(&mut latency, t.elapsed()),
                        Err(e) => {
                            if errors == 0 {
                                eprintln!("  service error: {e}");
                            }
                            errors += 1;
                        }
                    }
                }
                (latency, errors)
            })
        })
        .collect();
    let mut latency = histogram();
    let mut errors = 0;
    for task in tasks {
        let (h, e) = task.await?;
        latency.add(h)?;
        errors += e;
    }
    let elapsed = started.elapsed();
    let batches_after = batch_metric();

    let mean_batch = match (batches_before, batches_after) {
        (Some((s0, c0)), Some((s1, c1))) if c1 > c0 => Some((s1 - s0) / (c1 - c0)),
        _ => None,
    };
    let expected = (cfg.stories + cfg.events - errors) as i64;
    assert_eq!(store.head(), expected, "the service lost events");
    let (payload_bytes, metadata_bytes) = store
        .with_conn(|c| {
            Ok(c.query_row(
                "SELECT AVG(LENGTH(payload)), AVG(LENGTH(metadata)) FROM events
                 WHERE event_type = 'DevelopmentRecorded'",
                [],
                |r| Ok((r.get::<_, f64>(0)?, r.get::<_, f64>(1)?)),
            )?)
        })
        .await?;
    Ok(ServiceRun {
        rate: (cfg.events - errors) as f64 / elapsed.as_secs_f64(),
        latency,
        errors,
        mean_batch,
        payload_bytes,
        metadata_bytes,
    })
}

// ---------------------------------------------------------------------------------------------
// 4. Latency flatness

#[derive(Debug)]
struct LatencyRun {
    warm_small: Histogram<u64>,
    warm_big: Histogram<u64>,
    cold_small: Histogram<u64>,
    cold_big: Histogram<u64>,
    build_secs: f64,
    /// Latency of the measured long-story commands that also wrote its snapshot.
    snapshot_commands: Vec<Duration>,
    breakdown: Breakdown,
}

/// The steps of a cold load of the long story (and of writing its snapshot), each the median
/// of several runs, done with the same calls, in the same order, as the store, cqrs-es's
/// snapshot store and the command service.
#[derive(Debug, Default)]
struct Breakdown {
    snapshot_bytes: usize,
    events_after_snapshot: usize,
    /// The whole `PersistedEventStore::load_aggregate`, as the service calls it.
    load_aggregate: Duration,
    /// `SqliteStore::get_snapshot`: SQL read of the row and text → `Value`.
    get_snapshot: Duration,
    /// cqrs-es clones the snapshot's `Value` before parsing it...
    clone_value: Duration,
    /// ...then `Value` → `Story`...
    value_to_story: Duration,
    /// ...and drops the original `Value`.
    drop_value: Duration,
    /// `SqliteStore::get_last_events`: the events after the snapshot, rows → `Value`s.
    events_after: Duration,
    /// cqrs-es: each of those `Value`s → `StoryEvent` (and its metadata), applied to the story.
    apply_events: Duration,
    /// Writing a snapshot: `Story` → `Value` on the command's task, holding the story's lock...
    story_to_value: Duration,
    /// ...and `Value` → text on the store's single writer thread, inside the group commit.
    value_to_text: Duration,
}

async fn cold_load_breakdown(store: &SqliteStore, story: StoryId) -> Res<Breakdown> {
    use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
    use cqrs_es::EventStore;

    const RUNS: usize = 7;
    let id = story.to_string();
    let log: newsroom_log::EventLog = store.clone().into();
    let mut steps: [Vec<Duration>; 9] = Default::default();
    let mut b = Breakdown::default();
    for _ in 0..RUNS {
        let loader = PersistedEventStore::<newsroom_log::EventLog, Story>::new_snapshot_store(
            log.clone(),
            ServiceOptions::default().snapshot_every,
        );
        let t = Instant::now();
        let context = loader.load_aggregate(&id).await?;
        steps[0].push(t.elapsed());
        drop(context);

        let t = Instant::now();
        let snapshot = log
            .get_snapshot::<Story>(&id)
            .await?
            .ok_or("the long story has no snapshot")?;
        steps[1].push(t.elapsed());
        b.snapshot_bytes = snapshot.aggregate.to_string().len();

        let t = Instant::now();
        let copy = snapshot.aggregate.clone();
        steps[2].push(t.elapsed());
        let t = Instant::now();
        let mut parsed: Story = serde_json::from_value(copy)?;
        steps[3].push(t.elapsed());
        let t = Instant::now();
        drop(snapshot.aggregate);
        steps[4].push(t.elapsed());

        let t = Instant::now();
        let value = serde_json::to_value(&parsed)?;
        steps[6].push(t.elapsed());
        let t = Instant::now();
        let text = serde_json::to_string(&value)?;
        steps[7].push(t.elapsed());
        // The state the snapshot holds serialises back to the same text.
        assert_eq!(text.len(), b.snapshot_bytes);

        let t = Instant::now();
        let events = log
            .get_last_events::<Story>(&id, snapshot.current_sequence)
            .await?;
        steps[5].push(t.elapsed());
        b.events_after_snapshot = events.len();
        let t = Instant::now();
        for event in events {
            let payload: StoryEvent = serde_json::from_value(event.payload)?;
            let _metadata: std::collections::HashMap<String, String> =
                serde_json::from_value(event.metadata)?;
            cqrs_es::Aggregate::apply(&mut parsed, payload);
        }
        steps[8].push(t.elapsed());
    }
    let [load, get, clone, parse, drop_v, after, to_value, to_text, apply] =
        steps.map(|v| median(&v).expect("timed runs"));
    b.load_aggregate = load;
    b.get_snapshot = get;
    b.clone_value = clone;
    b.value_to_story = parse;
    b.drop_value = drop_v;
    b.events_after = after;
    b.apply_events = apply;
    b.story_to_value = to_value;
    b.value_to_text = to_text;
    Ok(b)
}

async fn record_n(
    service: &CommandService,
    by: &Principal,
    template: &NewDevelopment,
    id: StoryId,
    n: usize,
) -> Res<usize> {
    let mut sequence = 0;
    for _ in 0..n {
        sequence = service
            .execute(id, by, record_development(template))
            .await?
            .sequence;
    }
    Ok(sequence)
}

async fn timed(
    service: &CommandService,
    by: &Principal,
    template: &NewDevelopment,
    id: StoryId,
    h: &mut Histogram<u64>,
) -> Res<(Duration, usize)> {
    let command = record_development(template);
    let t = Instant::now();
    let outcome = service.execute(id, by, command).await?;
    let elapsed = t.elapsed();
    record(h, elapsed);
    Ok((elapsed, outcome.sequence))
}

async fn latency_flatness(path: &Path, sync: Synchronous, cfg: &Config) -> Res<LatencyRun> {
    let store = open_store(path, sync)?;
    let service = Arc::new(CommandService::new(
        store.clone(),
        ServiceOptions::default(),
    ));
    let by = reporter();
    let template = Arc::new(template());

    // One long story, built sequentially through the service (a story's commands are serial);
    // meanwhile 2 × samples short stories are built concurrently, one per measured command so
    // that each measured short story has exactly `small_story` events before the command.
    let build_started = Instant::now();
    let big = open_stories(&service, &by, "long", 1).await?[0];
    let big_builder = {
        let (service, by, template) = (service.clone(), by.clone(), template.clone());
        let n = cfg.big_story - 1;
        tokio::spawn(async move { record_n(&service, &by, &template, big, n).await })
    };
    let small = Arc::new(open_stories(&service, &by, "short", 2 * cfg.samples).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let builders: Vec<_> = (0..cfg.reporters)
        .map(|_| {
            let (service, by, template, small, next) = (
                service.clone(),
                by.clone(),
                template.clone(),
                small.clone(),
                next.clone(),
            );
            let n = cfg.small_story - 1;
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&id) = small.get(i) else { break };
                    let sequence = record_n(&service, &by, &template, id, n).await?;
                    assert_eq!(sequence, n + 1);
                }
                Ok::<_, BoxError>(())
            })
        })
        .collect();
    for b in builders {
        b.await??;
    }
    let big_sequence = big_builder.await??;
    assert_eq!(
        big_sequence, cfg.big_story,
        "long story has the wrong length"
    );
    let build_secs = build_started.elapsed().as_secs_f64();

    // Warm: the service that built every story still caches them all. Alternate short and long
    // so that drift (WAL growth, checkpoints) hits both alike.
    let (mut warm_small, mut warm_big) = (histogram(), histogram());
    let every = ServiceOptions::default().snapshot_every;
    let mut snapshot_commands = Vec::new();
    for &id in &small[..cfg.samples] {
        timed(&service, &by, &template, id, &mut warm_small).await?;
        let (took, sequence) = timed(&service, &by, &template, big, &mut warm_big).await?;
        if sequence % every == 0 {
            snapshot_commands.push(took);
        }
    }

    // Cold: a fresh service (empty cache) before every measured command, so each one loads its
    // story through the snapshot store: latest snapshot plus the events after it.
    let (mut cold_small, mut cold_big) = (histogram(), histogram());
    for &id in &small[cfg.samples..] {
        let fresh = CommandService::new(store.clone(), ServiceOptions::default());
        timed(&fresh, &by, &template, id, &mut cold_small).await?;
        let fresh = CommandService::new(store.clone(), ServiceOptions::default());
        let (took, sequence) = timed(&fresh, &by, &template, big, &mut cold_big).await?;
        if sequence % every == 0 {
            snapshot_commands.push(took);
        }
    }

    // Where a cold load of the long story goes. First leave it half-way between two snapshots,
    // as it is on average during the cold runs above.
    let fresh = CommandService::new(store.clone(), ServiceOptions::default());
    record_n(&fresh, &by, &template, big, every / 2).await?;
    drop(fresh);
    let breakdown = cold_load_breakdown(&store, big).await?;

    Ok(LatencyRun {
        warm_small,
        warm_big,
        cold_small,
        cold_big,
        build_secs,
        snapshot_commands,
        breakdown,
    })
}

// ---------------------------------------------------------------------------------------------
// 5. HTTP

#[derive(Debug)]
struct HttpRun {
    rate: f64,
    latency: Histogram<u64>,
    requests: u64,
    non_2xx: u64,
    transport_errors: u64,
}

/// How one load request ended.
enum Answer {
    Success,
    Status(String),
    Transport(String),
}

async fn http_load(path: &Path, sync: Synchronous, cfg: &Config) -> Res<HttpRun> {
    let app = newsroom_command::Application::build(Settings {
        listen: "127.0.0.1:0".into(),
        database_path: path.to_owned(),
        synchronous: sync,
        ..Default::default()
    })
    .await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let token = app
        .state()
        .tokens
        .bootstrap_admin()
        .await?
        .ok_or("a fresh store already had an admin")?
        .token;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(cfg.in_flight)
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut stories = Vec::with_capacity(cfg.stories);
    for i in 0..cfg.stories {
        let response = client
            .post(format!("{base}/v1/stories"))
            .bearer_auth(&token)
            .json(&json!({ "slug": format!("http-{i}"), "headline": "Campaign hack" }))
            .send()
            .await?
            .error_for_status()?;
        let body: Value = response.json().await?;
        stories.push(body["id"].as_str().ok_or("no story id")?.to_owned());
    }
    let stories = Arc::new(stories);

    // Half a second of unrecorded warm-up (connections, caches), then the measured window.
    let warm_until = Instant::now() + Duration::from_millis(500);
    let measure_until = warm_until + Duration::from_secs_f64(cfg.seconds);
    let workers: Vec<_> = (0..cfg.in_flight)
        .map(|w| {
            let (client, base, token, stories) =
                (client.clone(), base.clone(), token.clone(), stories.clone());
            tokio::spawn(async move {
                let mut latency = histogram();
                let (mut ok, mut non_2xx, mut transport) = (0u64, 0u64, 0u64);
                for k in 0.. {
                    let t = Instant::now();
                    if t >= measure_until {
                        break;
                    }
                    let measured = t >= warm_until;
                    let story = &stories[(w + k) % stories.len()];
                    let body = json!({
                        "id": Uuid::new_v4(),
                        "kind": "statement_issued",
                        "headline": HEADLINE,
                        "body": BODY,
                        "actors": ACTORS,
                        "source": { "name": SOURCE, "kind": "official_statement" },
                    });
                    let result = send_development(&client, &base, &token, story, &body).await;
                    let outcome = match result {
                        Ok(response) if response.status().is_success() => {
                            // A request is done when its whole answer has arrived.
                            match response.bytes().await {
                                Ok(_) => Answer::Success,
                                Err(e) => Answer::Transport(e.to_string()),
                            }
                        }
                        Ok(response) => {
                            let status = response.status();
                            let text = response.text().await.unwrap_or_default();
                            Answer::Status(format!("{status}: {text}"))
                        }
                        Err(e) => Answer::Transport(e.to_string()),
                    };
                    if !measured {
                        continue;
                    }
                    record(&mut latency, t.elapsed());
                    match outcome {
                        Answer::Success => ok += 1,
                        Answer::Status(e) => {
                            if non_2xx == 0 {
                                eprintln!("  HTTP error answer: {e}");
                            }
                            non_2xx += 1;
                        }
                        Answer::Transport(e) => {
                            if transport == 0 {
                                eprintln!("  HTTP transport error: {e}");
                            }
                            transport += 1;
                        }
                    }
                }
                (latency, ok, non_2xx, transport, Instant::now())
            })
        })
        .collect();
    let mut run = HttpRun {
        rate: 0.0,
        latency: histogram(),
        requests: 0,
        non_2xx: 0,
        transport_errors: 0,
    };
    let mut last_done = measure_until;
    for w in workers {
        let (h, ok, non_2xx, transport, done) = w.await?;
        run.latency.add(h)?;
        run.requests += ok + non_2xx + transport;
        run.non_2xx += non_2xx;
        run.transport_errors += transport;
        last_done = last_done.max(done);
    }
    run.rate = run.requests as f64 / (last_done - warm_until).as_secs_f64();

    drop(client);
    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(10), server).await {
        Ok(joined) => joined??,
        Err(_) => eprintln!("  server did not stop within 10 s; leaving it"),
    }
    Ok(run)
}

// ---------------------------------------------------------------------------------------------
// Report

#[derive(Debug)]
struct ModeRun {
    sync: Synchronous,
    rusqlite: f64,
    sqlx: f64,
    service: ServiceRun,
    latency: LatencyRun,
    http: HttpRun,
    secs: f64,
    /// The machine's 1-minute load average when the mode started and ended: other work on the
    /// machine (compiles, tests) shows here and skews every figure, fsync-bound ones most.
    load: (String, String),
}

fn p(h: &Histogram<u64>, q: f64) -> u64 {
    h.value_at_quantile(q)
}

fn report_mode(out: &mut String, run: &ModeRun, cfg: &Config) -> std::fmt::Result {
    let (a, b, s, l, h) = (
        run.rusqlite,
        run.sqlx,
        &run.service,
        &run.latency,
        &run.http,
    );
    writeln!(out, "## synchronous = {}\n", mode_name(run.sync))?;
    writeln!(
        out,
        "| # | case | result | p50 | p99 | ratio | target |\n|---|---|---|---|---|---|---|"
    )?;
    writeln!(
        out,
        "| 1 | Baseline A: rusqlite, 1 row per transaction, {} rows | {} rows/s | | | 1.00 (reference) | |",
        thousands(cfg.events as f64),
        thousands(a)
    )?;
    writeln!(
        out,
        "| 2 | Baseline B: sqlx, 1 row per transaction, {} rows | {} rows/s | | | {:.2} × A | |",
        thousands(cfg.events as f64),
        thousands(b),
        b / a
    )?;
    writeln!(
        out,
        "| 3 | CommandService::execute, {} reporters on {} stories, {} developments | {} commands/s | {} | {} | {:.2} × A, {:.2} × B | ≥ 0.5 × A: {} |",
        cfg.reporters,
        cfg.stories,
        thousands(cfg.events as f64),
        thousands(s.rate),
        us(p(&s.latency, 0.5)),
        us(p(&s.latency, 0.99)),
        s.rate / a,
        s.rate / b,
        verdict(s.rate / a >= 0.5 && s.errors == 0)
    )?;
    let flat = |big: &Histogram<u64>, small: &Histogram<u64>| {
        p(big, 0.5) as f64 / p(small, 0.5).max(1) as f64
    };
    let (warm, cold) = (
        flat(&l.warm_big, &l.warm_small),
        flat(&l.cold_big, &l.cold_small),
    );
    let rows = [
        ("warm cache", cfg.small_story, &l.warm_small, None),
        ("warm cache", cfg.big_story, &l.warm_big, Some(warm)),
        (
            "cold (fresh service per command)",
            cfg.small_story,
            &l.cold_small,
            None,
        ),
        (
            "cold (fresh service per command)",
            cfg.big_story,
            &l.cold_big,
            Some(cold),
        ),
    ];
    for (how, events, hist, ratio) in rows {
        let (ratio, target) = match ratio {
            Some(r) => (
                format!("p50 ratio {r:.2}"),
                format!("≤ 1.5: {}", verdict(r <= 1.5)),
            ),
            None => ("(reference)".to_owned(), String::new()),
        };
        writeln!(
            out,
            "| 4 | One development, sequential, {how}, {}-event story ({} samples) | | {} | {} | {ratio} | {target} |",
            thousands(events as f64),
            hist.len(),
            us(p(hist, 0.5)),
            us(p(hist, 0.99)),
        )?;
    }
    let errors = h.non_2xx + h.transport_errors;
    writeln!(
        out,
        "| 5 | HTTP POST /v1/stories/{{id}}/developments, {} in flight, {:.1} s, {} requests | {} requests/s | {} | {} | {:.2} × A | errors = 0: {} ({} non-2xx, {} transport) |",
        cfg.in_flight,
        cfg.seconds,
        thousands(h.requests as f64),
        thousands(h.rate),
        us(p(&h.latency, 0.5)),
        us(p(&h.latency, 0.99)),
        h.rate / a,
        verdict(errors == 0),
        h.non_2xx,
        h.transport_errors
    )?;
    writeln!(out)?;
    let batch = s.mean_batch.map_or("n/a".to_owned(), |m| format!("{m:.1}"));
    writeln!(
        out,
        "- Service run: {} errors; mean group-commit batch {batch} appends per transaction; stored development payload {:.0} B + metadata {:.0} B.",
        s.errors, s.payload_bytes, s.metadata_bytes
    )?;
    let k = &l.breakdown;
    let snapshot_commands = if l.snapshot_commands.is_empty() {
        "none of the measured commands crossed a snapshot boundary".to_owned()
    } else {
        let list: Vec<String> = l.snapshot_commands.iter().map(|d| ms(*d)).collect();
        format!(
            "the measured commands on it that also wrote its snapshot (warm, then cold) took {}",
            list.join(", ")
        )
    };
    writeln!(
        out,
        "- Long story: built through the service in {:.1} s; {snapshot_commands}.",
        l.build_secs
    )?;
    writeln!(
        out,
        "- Cold load of the long story ({} B snapshot + {} events after it), median of 7: `load_aggregate` {} = `get_snapshot` (SQL + text → Value) {} + cqrs-es's clone of the Value {} + Value → Story {} + drop of the Value {} + `get_last_events` {} + events → StoryEvent and applied {}. Writing a snapshot: Story → Value {} (command task, story lock held) + Value → text {} (single writer thread, inside a group commit).",
        thousands(k.snapshot_bytes as f64),
        k.events_after_snapshot,
        ms(k.load_aggregate),
        ms(k.get_snapshot),
        ms(k.clone_value),
        ms(k.value_to_story),
        ms(k.drop_value),
        ms(k.events_after),
        ms(k.apply_events),
        ms(k.story_to_value),
        ms(k.value_to_text)
    )?;
    writeln!(
        out,
        "- Max latency: warm {} / {}, cold {} / {} (short / long story).",
        us(l.warm_small.max()),
        us(l.warm_big.max()),
        us(l.cold_small.max()),
        us(l.cold_big.max())
    )?;
    writeln!(
        out,
        "- This mode took {:.0} s; 1-minute load average of the machine {} at its start, {} at its end.\n",
        run.secs, run.load.0, run.load.1
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------

fn run_mode(rt: &tokio::runtime::Runtime, sync: Synchronous, cfg: &Config) -> Res<ModeRun> {
    let started = Started::now();
    let dir = tempfile::tempdir()?;
    let file = |name: &str| -> PathBuf { dir.path().join(name) };
    let mode = mode_name(sync);

    eprintln!("[{mode}] 1. baseline A: rusqlite");
    let rusqlite = baseline_rusqlite(&file("baseline-rusqlite.db"), sync, cfg)?;
    eprintln!("  {} rows/s", thousands(rusqlite));

    eprintln!("[{mode}] 2. baseline B: sqlx");
    let sqlx = rt.block_on(baseline_sqlx(&file("baseline-sqlx.db"), sync, cfg))?;
    eprintln!("  {} rows/s", thousands(sqlx));

    eprintln!("[{mode}] 3. command service");
    let service = rt.block_on(service_throughput(&file("service.db"), sync, cfg))?;
    eprintln!("  {} commands/s", thousands(service.rate));

    eprintln!("[{mode}] 4. latency flatness");
    let latency = rt.block_on(latency_flatness(&file("latency.db"), sync, cfg))?;
    eprintln!(
        "  p50 warm {} / {}, cold {} / {}",
        us(p(&latency.warm_small, 0.5)),
        us(p(&latency.warm_big, 0.5)),
        us(p(&latency.cold_small, 0.5)),
        us(p(&latency.cold_big, 0.5))
    );

    eprintln!("[{mode}] 5. HTTP");
    let http = rt.block_on(http_load(&file("http.db"), sync, cfg))?;
    eprintln!("  {} requests/s", thousands(http.rate));

    Ok(ModeRun {
        sync,
        rusqlite,
        sqlx,
        service,
        latency,
        http,
        secs: started.secs(),
        load: (started.load, load_average()),
    })
}

fn main() -> Res<()> {
    // `cargo bench` passes `--bench`; a filter argument is not supported, everything runs.
    let cfg = Config::from_env();
    let rt = runtime()?;
    // Install the process-wide recorder the application uses, so that the store's batch-size
    // metric can be read (and so the service pays for metrics as it does in production).
    let _ = newsroom_web::telemetry::metrics_handle();

    let started = Instant::now();
    let mut runs = Vec::new();
    for sync in [Synchronous::Full, Synchronous::Normal] {
        runs.push(run_mode(&rt, sync, &cfg)?);
    }

    let cores = cores();
    let mut out = String::new();
    writeln!(out, "# newsroom write path\n")?;
    writeln!(
        out,
        "Rerun: `BENCH_EVENTS={} BENCH_SECONDS={} cargo bench -p newsroom-command --bench write_path`\n",
        cfg.events, cfg.seconds
    )?;
    writeln!(
        out,
        "{cores} CPUs visible; SQLite {} (WAL, busy timeout 5 s); tokio multi-thread runtime with {cores} workers shared by the HTTP server and its load client; baseline rows carry a {} B `DevelopmentRecorded` payload; {} latency samples per case; total {:.0} s.\n",
        rusqlite::version(),
        recorded_payload().0.len(),
        cfg.samples,
        started.elapsed().as_secs_f64()
    )?;
    for run in &runs {
        report_mode(&mut out, run, &cfg)?;
    }
    print!("{out}");
    Ok(())
}
