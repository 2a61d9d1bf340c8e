//! Scale-out benchmark: the same load on the embedded mode (one process, SQLite) and on the
//! scale-out mode (command, projector and notifier processes on PostgreSQL and JetStream), how
//! read throughput and catch-up change with projector copies, and what the relay achieves
//! against publishing the same messages to JetStream directly.
//!
//! A custom-harness binary (`cargo bench -p newsroom --bench scale_out`) that prints a Markdown
//! report on stdout (progress goes to stderr). It starts real `newsroom` processes (the release
//! binary cargo builds for this bench, `CARGO_BIN_EXE_newsroom`), each on its own loopback port,
//! with the machine's PostgreSQL (a fresh database per case, dropped at the end) and NATS (a fresh
//! stream and subject prefix per case, deleted at the end).
//!
//! 1. Embedded vs scale-out, same load, same run: `BENCH_STORIES` stories (default 64), one
//!    subscriber with a webhook endpoint (an axum receiver in this process) following every
//!    story. Two phases of `BENCH_SECONDS` (default 10) each: (a) `BENCH_RATE` (default 200)
//!    `POST /v1/stories/{id}/developments` per second on a fixed schedule, so both modes carry
//!    the same work and their latencies compare; (b) `BENCH_REPORTERS` (default 32) reporters
//!    each keeping one POST in flight, so each mode runs as fast as it answers. Per phase:
//!    commands/s (2xx answers), errors, POST latency; per alert, the time from the POST's answer
//!    to the webhook's arrival (matched by the development id in the payload); projection lag:
//!    a probe that, after each answered POST it sees, asks the read side for
//!    `GET /v1/stories?limit=1&min_position=<its position>` and times the answer from the POST's;
//!    the mean group-commit batch of the log (`/metrics`) and the CPU time each process used
//!    (`/proc`).
//! 2. Projector copies (scale-out): (a) read throughput, `BENCH_READERS` (default 32) GETs in
//!    flight on one story of `BENCH_VIEW_DEVELOPMENTS` (default 100) developments, with 1 copy,
//!    2 copies (requests spread evenly) and 1 copy again; (b) catch-up: a log of `BENCH_PREFILL`
//!    events (default 50,000) filled in-process and published to a fresh stream, then one fresh
//!    projector process, then (the shared views emptied again) two at once: how long until the
//!    views have applied everything. (c) Notifier copies: 1, then 2 notifier processes sharing
//!    the queue (and one projector process keeping the views they read), one subscriber (a
//!    webhook in this process) following an actor every
//!    development names; a log of `BENCH_NOTIFIER_EVENTS` events (default 20,000) filled while
//!    they wait, then published: how long until every development's alert arrived.
//! 3. Relay vs direct: a PostgreSQL log of `BENCH_EVENTS` events (default 100,000), published
//!    by `Relay` (in this process) into a fresh stream, against the same messages (subject,
//!    `Nats-Msg-Id`, `Newsroom-Position`, body) prepared beforehand and published with async-nats
//!    directly, pipelined the same way (batches of 256, then their acks), into another fresh
//!    stream; and the relay's reading and serialising of the feed alone. Two rounds of: feed
//!    read, direct, relay.
//!
//! 4. One flash development to `BENCH_FLASH_ENDPOINTS` webhook endpoints (default 100,000; one
//!    subscriber each, following the story or its tag), with 1, 2 and 4 notifier copies, each in
//!    a cgroup v1 `cpu` group of its own limited to `BENCH_COPY_CORES` cores (default 0.4;
//!    PostgreSQL and NATS unthrottled; needs `/sys/fs/cgroup/cpu` writable): the time until 90%
//!    and 100% of the alerts arrived at receivers in another process (this executable run again
//!    with `BENCH_FLASH_RECEIVER` set), each counted once by `webhook-id`. One subscriber signs up
//!    through the API; the rest are copies of its rows, inserted in SQL.
//!
//! `BENCH_SECTIONS=1,2,3,4` picks sections. `BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and `BENCH_NATS_URL` (default
//! `nats://127.0.0.1:4222`) say where the services are.

mod common;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hdrhistogram::Histogram;
use newsroom_command::{CommandService, ServiceOptions};
use newsroom_domain::{
    Actor, Body, DevelopmentId, DevelopmentKind, Evidence, Headline, NewDevelopment, Role, Slug,
    Source, SourceKind, SourceName, StoryCommand, StoryId, Summary, Urgency,
};
use newsroom_log::relay::{Relay, StreamSettings, POSITION_HEADER};
use newsroom_log::{EventLog, PgStore};
use newsroom_testkit::api::{
    alerted_development, development, send_development, slug, story, webhook_id,
};
use newsroom_testkit::http::{self, answered_position, post_json, wait_for, GetLoad};
use newsroom_testkit::pg::Database;
use newsroom_testkit::procfs::{proc_ticks, TICKS_PER_SECOND};
use newsroom_testkit::report::{
    cores, histogram, load_average, quantiles, record, secs, thousands, Started,
};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::{env_num, sections, sections_setting};
use newsroom_testkit::BoxError;
use newsroom_web::Principal;
use serde_json::{json, Value};
use tokio::sync::watch;
use uuid::Uuid;

use common::*;

/// Publishes the relay sends before awaiting their acks (`relay.rs`'s private `BATCH`).
const RELAY_BATCH: usize = 256;
/// Events per story in the logs filled in-process (sections 2b and 3).
const EVENTS_PER_STORY: usize = 100;
/// Tasks filing commands while a log is filled in-process.
const FILLERS: usize = 64;
/// Every section, the default.
const SECTIONS: [u8; 4] = [1, 2, 3, 4];
/// How long section 1 watches the processes' CPU with nothing to do.
const IDLE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
struct Config {
    seconds: f64,
    rate: f64,
    stories: usize,
    reporters: usize,
    readers: usize,
    view_developments: usize,
    prefill: usize,
    notifier_events: usize,
    events: usize,
    flash_endpoints: usize,
    copy_cores: f64,
    sections: Vec<u8>,
    database_url: String,
    nats_url: String,
}

impl Config {
    fn from_env() -> Self {
        let sections = sections(&SECTIONS);
        Self {
            seconds: env_num("BENCH_SECONDS", 10.0).max(1.0),
            rate: env_num("BENCH_RATE", 200.0).clamp(1.0, 100_000.0),
            stories: (env_num("BENCH_STORIES", 64.0) as usize).max(1),
            reporters: (env_num("BENCH_REPORTERS", 32.0) as usize).max(1),
            readers: (env_num("BENCH_READERS", 32.0) as usize).max(1),
            view_developments: (env_num("BENCH_VIEW_DEVELOPMENTS", 100.0) as usize).max(1),
            prefill: (env_num("BENCH_PREFILL", 50_000.0) as usize).max(EVENTS_PER_STORY),
            notifier_events: (env_num("BENCH_NOTIFIER_EVENTS", 20_000.0) as usize)
                .max(EVENTS_PER_STORY),
            events: (env_num("BENCH_EVENTS", 100_000.0) as usize).max(EVENTS_PER_STORY),
            flash_endpoints: (env_num("BENCH_FLASH_ENDPOINTS", 100_000.0) as usize).max(1),
            copy_cores: env_num("BENCH_COPY_CORES", 0.4).clamp(0.01, 64.0),
            sections,
            database_url: std::env::var("BENCH_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
            nats_url: std::env::var("BENCH_NATS_URL")
                .unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        }
    }

    fn runs(&self, section: u8) -> bool {
        self.sections.contains(&section)
    }
}

// =============================================================================================
// Services: a fresh database, a fresh stream

/// A JetStream stream and subject prefix of their own, deleted when this is dropped.
struct Stream {
    settings: StreamSettings,
    nats_url: String,
}

impl Stream {
    fn new(nats_url: &str) -> Self {
        let tag = Uuid::new_v4().simple().to_string();
        Self {
            settings: StreamSettings {
                stream: format!("BENCH_{tag}"),
                subject_prefix: format!("bench.{tag}.events"),
                replicas: 1,
            },
            nats_url: nats_url.to_owned(),
        }
    }

    /// Messages the stream holds.
    async fn messages(&self, client: &async_nats::Client) -> Res<u64> {
        let js = async_nats::jetstream::new(client.clone());
        let mut s = js.get_stream(&self.settings.stream).await?;
        Ok(s.info().await?.state.messages)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let (url, name) = (self.nats_url.clone(), self.settings.stream.clone());
        newsroom_testkit::on_own_thread(move || async move {
            let Ok(client) = async_nats::connect(&url).await else {
                eprintln!("  could not reach NATS to delete stream {name}");
                return;
            };
            let js = async_nats::jetstream::new(client);
            // A stream never created (a case that failed early) is not an error here.
            let _ = js.delete_stream(&name).await;
        });
    }
}

// =============================================================================================
// Processes of the newsroom binary

/// The variables of a scale-out deployment: its database, NATS and stream.
fn scale_out_env(db: &Database, stream: &Stream) -> Env {
    Env {
        vars: vec![
            ("NEWSROOM_DATABASE_URL".into(), db.url.clone()),
            ("NEWSROOM_NATS_URL".into(), stream.nats_url.clone()),
            (
                "NEWSROOM_NATS_STREAM".into(),
                stream.settings.stream.clone(),
            ),
            (
                "NEWSROOM_NATS_SUBJECT_PREFIX".into(),
                stream.settings.subject_prefix.clone(),
            ),
        ],
    }
}

/// A process's id and name, for the CPU accounting.
fn ident(p: &Proc) -> (u32, String) {
    (p.child.id(), format!("newsroom {}", p.name))
}

fn http_client() -> Res<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build()?)
}

async fn open_story(client: &reqwest::Client, base: &str, token: &str) -> Res<String> {
    let body = story(&slug("bench"));
    let answer = call(client, format!("{base}/v1/stories"), Some(token), body).await?;
    Ok(answer["id"].as_str().ok_or("no story id")?.to_owned())
}

/// `POST url` of `body` as JSON (and a bearer token): the answer's JSON.
async fn call(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> Res<Value> {
    Ok(post_json(client, &url, token, &body).await?)
}

/// One `POST …/developments`: its id, when its answer had fully arrived, its position.
#[derive(Debug)]
struct Posted {
    development: String,
    took: Duration,
    answered: Instant,
    position: Option<i64>,
    error: Option<String>,
}

async fn post_development(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    story: &str,
) -> Posted {
    let id = Uuid::new_v4();
    let sent = Instant::now();
    let result = send_development(client, base, token, story, &development(id)).await;
    let (position, error) = answered_position(result, |s| s.is_success()).await;
    let answered = Instant::now();
    Posted {
        development: id.to_string(),
        took: answered - sent,
        answered,
        position,
        error,
    }
}

/// Runs `f` on every item, at most `n` at a time.
async fn bounded<T, F, Fut, O>(items: Vec<T>, n: usize, f: F) -> Res<Vec<O>>
where
    T: Send + 'static,
    O: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Res<O>> + Send + 'static,
{
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    stream::iter(items.into_iter().map(|i| tokio::spawn(f(i))))
        .buffered(n.max(1))
        .map(|joined| joined.map_err(BoxError::from).and_then(|r| r))
        .try_collect()
        .await
}

// =============================================================================================
// The webhook receiver

#[derive(Clone, Default)]
struct Sink {
    inner: Arc<Mutex<Arrivals>>,
    count: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Arrivals {
    /// The first arrival of each development's alert.
    first: HashMap<String, Instant>,
    webhook_ids: HashSet<String>,
    /// The same `webhook-id` again (a retry, or a re-send after a redelivery).
    duplicates: usize,
    /// Another alert for a development already alerted, under another id.
    repeats: usize,
    /// Requests without a development id in the payload.
    unparsed: usize,
}

impl Sink {
    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// Records the arrival instant first; the body has been read in full by then.
async fn receive(State(sink): State<Sink>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let webhook_id = webhook_id(&headers);
    let development = alerted_development(&body);
    {
        let mut a = sink.inner.lock().expect("arrivals lock");
        if !a.webhook_ids.insert(webhook_id) {
            a.duplicates += 1;
        } else {
            match development {
                Some(d) => {
                    if a.first.insert(d, at).is_some() {
                        a.repeats += 1;
                    }
                }
                None => a.unparsed += 1,
            }
        }
    }
    sink.count.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
}

async fn start_receiver(sink: &Sink) -> Res<(String, tokio::task::JoinHandle<()>)> {
    Ok(http::start_receiver("the webhook receiver".into(), receive, sink.clone()).await?)
}

// =============================================================================================
// 1. Embedded vs scale-out

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Embedded,
    ScaleOut,
}

impl Mode {
    fn describe(self) -> &'static str {
        match self {
            Mode::Embedded => "embedded: 1 process `--role all`, SQLite log",
            Mode::ScaleOut => {
                "scale-out: `--role command` + `--role projector` + `--role notifier`, PostgreSQL log, JetStream"
            }
        }
    }
}

/// The processes of one deployment and where each API is.
struct Deployment {
    procs: Vec<Proc>,
    command: String,
    reads: String,
    subscribers: String,
    reporter: String,
    started: Duration,
    // Dropped after the processes (fields drop in order): the files, the stream, the database.
    _dir: tempfile::TempDir,
    _stream: Option<Stream>,
    _db: Option<Database>,
}

impl Deployment {
    async fn start(mode: Mode, cfg: &Config, client: &reqwest::Client) -> Res<Self> {
        let dir = tempfile::tempdir()?;
        let (db, stream, env) = match mode {
            Mode::Embedded => (None, None, Env::embedded()),
            Mode::ScaleOut => {
                let db = Database::create(&cfg.database_url, "bench").await?;
                let stream = Stream::new(&cfg.nats_url);
                let env = scale_out_env(&db, &stream);
                (Some(db), Some(stream), env)
            }
        };
        let started = Instant::now();
        let (procs, reporter) = match mode {
            Mode::Embedded => {
                let reporter = env.reporter_token(&dir.path().join("all"))?;
                (vec![env.spawn("all", dir.path(), "all")?], reporter)
            }
            Mode::ScaleOut => {
                let reporter = env.reporter_token(&dir.path().join("command"))?;
                (
                    vec![
                        env.spawn("command", dir.path(), "command")?,
                        env.spawn("projector", dir.path(), "projector")?,
                        env.spawn("notifier", dir.path(), "notifier")?,
                    ],
                    reporter,
                )
            }
        };
        let mut procs = procs;
        for p in &mut procs {
            p.healthy(client).await?;
        }
        let base = |name: &str| base_of(&procs, name);
        let (command, reads, subscribers) = match mode {
            Mode::Embedded => (base("all"), base("all"), base("all")),
            Mode::ScaleOut => (base("command"), base("projector"), base("notifier")),
        };
        Ok(Self {
            procs,
            command,
            reads,
            subscribers,
            reporter,
            started: started.elapsed(),
            _dir: dir,
            _stream: stream,
            _db: db,
        })
    }

    async fn stop(mut self) {
        for p in self.procs.drain(..) {
            p.stop().await;
        }
    }

    /// The processes' ids and names, in start order, for the CPU accounting.
    fn pids(&self) -> Vec<(u32, String)> {
        self.procs.iter().map(ident).collect()
    }

    fn log_tails(&self) -> String {
        self.procs
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.name, p.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How a phase offers its load.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pace {
    /// Developments started on a fixed schedule (open loop: a slow answer delays nothing).
    Rate(f64),
    /// Reporters each keeping one development in flight (closed loop: as fast as answered).
    Reporters(usize),
}

#[derive(Debug)]
struct Phase {
    pace: Pace,
    window: Duration,
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    post: Histogram<u64>,
    alert: Histogram<u64>,
    alerts_missing: usize,
    duplicates: usize,
    repeats: usize,
    lag: Histogram<u64>,
    lag_timeouts: usize,
    cpu: CpuUse,
    /// Mean appends per log transaction in the process taking commands.
    batch: Option<f64>,
    /// The share of its commands' time spent waiting for PostgreSQL's append lock.
    lock_share: Option<f64>,
    load: (String, String),
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }
}

#[derive(Debug)]
struct LoadRun {
    mode: Mode,
    start_up: Duration,
    /// CPU used with nothing to do (after the warm-up, before the phases).
    idle: CpuUse,
    phases: Vec<Phase>,
}

async fn load_case(mode: Mode, cfg: &Config) -> Res<LoadRun> {
    let client = http_client()?;
    eprintln!("  starting: {}", mode.describe());
    let app = Deployment::start(mode, cfg, &client).await?;
    let result = drive_load(cfg, &client, &app).await;
    if result.is_err() {
        eprintln!("{}", app.log_tails());
    }
    let start_up = app.started;
    app.stop().await;
    let (idle, phases) = result?;
    Ok(LoadRun {
        mode,
        start_up,
        idle,
        phases,
    })
}

async fn drive_load(
    cfg: &Config,
    client: &reqwest::Client,
    app: &Deployment,
) -> Res<(CpuUse, Vec<Phase>)> {
    let sink = Sink::default();
    let (hook, receiver) = start_receiver(&sink).await?;

    eprintln!(
        "  opening {} stories, one subscriber following each",
        cfg.stories
    );
    let stories = {
        let (client, base, token) = (client.clone(), app.command.clone(), app.reporter.clone());
        bounded((0..cfg.stories).collect(), 16, move |_| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            async move { open_story(&client, &base, &token).await }
        })
        .await?
    };
    let signed = call(
        client,
        format!("{}/v1/subscribers", app.subscribers),
        None,
        json!({"name": "Wire desk"}),
    )
    .await?;
    let id = signed["id"].as_str().ok_or("no subscriber id")?.to_owned();
    let token = signed["token"]
        .as_str()
        .ok_or("no subscriber token")?
        .to_owned();
    call(
        client,
        format!("{}/v1/subscribers/{id}/endpoints", app.subscribers),
        Some(&token),
        json!({"kind": "webhook", "url": hook}),
    )
    .await?;
    {
        let (client, url, token) = (
            client.clone(),
            format!("{}/v1/subscribers/{id}/subscriptions", app.subscribers),
            token.clone(),
        );
        bounded(stories.clone(), 16, move |story| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            async move { call(&client, url, Some(&token), json!({"story": story})).await }
        })
        .await?;
    }

    // Warm-up, unrecorded: one development per story, and its alert.
    eprintln!("  warm-up: one development per story");
    let warm = {
        let (client, base, token) = (client.clone(), app.command.clone(), app.reporter.clone());
        bounded(stories.clone(), cfg.reporters, move |story| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            async move { Ok(post_development(&client, &base, &token, &story).await) }
        })
        .await?
    };
    if let Some(e) = warm.iter().find_map(|p| p.error.clone()) {
        return Err(format!("warm-up POST failed: {e}").into());
    }
    if !wait_for(
        warm.len(),
        Duration::from_secs(15),
        Duration::from_secs(60),
        || sink.count(),
    )
    .await
    {
        return Err(format!("warm-up: {} of {} alerts arrived", sink.count(), warm.len()).into());
    }

    // What the processes cost with nothing to do (polling, timers).
    eprintln!("  idle for {IDLE:?}");
    let before = cpu_snapshot();
    tokio::time::sleep(IDLE).await;
    let idle = cpu_use(&before, &cpu_snapshot(), &app.pids());

    let stories = Arc::new(stories);
    let mut phases = Vec::new();
    // The fixed rate first, while every deployment's stories are the same size.
    for pace in [Pace::Rate(cfg.rate), Pace::Reporters(cfg.reporters)] {
        phases.push(run_phase(pace, cfg, client, app, &stories, &sink).await?);
    }
    receiver.abort();
    Ok((idle, phases))
}

async fn run_phase(
    pace: Pace,
    cfg: &Config,
    client: &reqwest::Client,
    app: &Deployment,
    stories: &Arc<Vec<String>>,
    sink: &Sink,
) -> Res<Phase> {
    let load_start = load_average();
    let (count_before, duplicates_before, repeats_before) = {
        let a = sink.inner.lock().expect("arrivals lock");
        (sink.count(), a.duplicates, a.repeats)
    };
    let batch_before = batch_metric(client, &app.command).await;
    let cpu_before = cpu_snapshot();
    match pace {
        Pace::Rate(r) => eprintln!("  load: {r} developments/s for {} s", cfg.seconds),
        Pace::Reporters(k) => eprintln!("  load: {k} reporters for {} s", cfg.seconds),
    }
    let (answers, _) = watch::channel::<Option<(i64, Instant)>>(None);
    let answers = Arc::new(answers);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(cfg.seconds);

    // The lag probe: after each answer it sees, how long until the read side shows it.
    let probe = {
        let (client, base) = (client.clone(), app.reads.clone());
        let mut seen = answers.subscribe();
        tokio::spawn(async move {
            let mut lag = histogram();
            let mut timeouts = 0;
            while Instant::now() < until {
                if tokio::time::timeout_at(until.into(), seen.changed())
                    .await
                    .is_err()
                {
                    break;
                }
                let Some((position, answered)) = *seen.borrow_and_update() else {
                    continue;
                };
                let shown = client
                    .get(format!("{base}/v1/stories?limit=1&min_position={position}"))
                    .send()
                    .await;
                match shown {
                    Ok(r) if r.status() == StatusCode::OK => {
                        let _ = r.bytes().await;
                        record(&mut lag, answered.elapsed());
                    }
                    _ => timeouts += 1,
                }
            }
            (lag, timeouts)
        })
    };

    let mut posted = Vec::new();
    let mut last_done = until;
    match pace {
        Pace::Reporters(k) => {
            let reporters: Vec<_> = (0..k)
                .map(|r| {
                    let (client, base, token, stories, answers) = (
                        client.clone(),
                        app.command.clone(),
                        app.reporter.clone(),
                        stories.clone(),
                        answers.clone(),
                    );
                    tokio::spawn(async move {
                        let mut posted = Vec::new();
                        // Reporter r files its k-th development on story (r + k): reporters
                        // spread over all stories and only occasionally meet on one.
                        for k in 0.. {
                            if Instant::now() >= until {
                                break;
                            }
                            let story = &stories[(r + k) % stories.len()];
                            let p = post_development(&client, &base, &token, story).await;
                            if let Some(position) = p.position {
                                answers.send_replace(Some((position, p.answered)));
                            }
                            posted.push(p);
                        }
                        posted
                    })
                })
                .collect();
            for r in reporters {
                posted.extend(r.await?);
            }
        }
        Pace::Rate(rate) => {
            let n = (rate * cfg.seconds).round().max(1.0) as usize;
            let period = Duration::from_secs_f64(1.0 / rate);
            let start = tokio::time::Instant::from_std(started);
            let mut tasks = Vec::with_capacity(n);
            for i in 0..n {
                tokio::time::sleep_until(start + period.mul_f64(i as f64)).await;
                let (client, base, token, story, answers) = (
                    client.clone(),
                    app.command.clone(),
                    app.reporter.clone(),
                    stories[i % stories.len()].clone(),
                    answers.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let p = post_development(&client, &base, &token, &story).await;
                    if let Some(position) = p.position {
                        answers.send_replace(Some((position, p.answered)));
                    }
                    p
                }));
            }
            for t in tasks {
                posted.push(t.await?);
            }
        }
    }
    for p in &posted {
        last_done = last_done.max(p.answered);
    }
    let window = last_done - started;
    let (lag, lag_timeouts) = probe.await?;
    let cpu = cpu_use(&cpu_before, &cpu_snapshot(), &app.pids());
    let (batch, lock_share) = match (batch_before, batch_metric(client, &app.command).await) {
        (Some(a), Some(b)) if b.batch_count > a.batch_count => {
            let commands = b.command_seconds - a.command_seconds;
            (
                Some((b.batch_sum - a.batch_sum) / (b.batch_count - a.batch_count)),
                (commands > 0.0).then(|| (b.lock_wait_seconds - a.lock_wait_seconds) / commands),
            )
        }
        _ => (None, None),
    };

    let mut phase = Phase {
        pace,
        window,
        ok: 0,
        errors: 0,
        first_error: None,
        post: histogram(),
        alert: histogram(),
        alerts_missing: 0,
        duplicates: 0,
        repeats: 0,
        lag,
        lag_timeouts,
        cpu,
        batch,
        lock_share,
        load: (load_start, String::new()),
    };
    let mut expected = HashMap::new();
    for p in &posted {
        match &p.error {
            None => {
                phase.ok += 1;
                record(&mut phase.post, p.took);
                expected.insert(p.development.clone(), p.answered);
            }
            Some(e) => {
                phase.errors += 1;
                phase.first_error.get_or_insert_with(|| e.clone());
            }
        }
    }
    eprintln!(
        "  {} answered ({} errors) in {:.1} s; waiting for their alerts",
        phase.ok,
        phase.errors,
        window.as_secs_f64()
    );
    wait_for(
        count_before + expected.len(),
        Duration::from_secs(15),
        Duration::from_secs(300),
        || sink.count(),
    )
    .await;
    let arrivals = sink.inner.lock().expect("arrivals lock");
    for (development, answered) in &expected {
        match arrivals.first.get(development) {
            Some(at) => record(&mut phase.alert, at.saturating_duration_since(*answered)),
            None => phase.alerts_missing += 1,
        }
    }
    phase.duplicates = arrivals.duplicates - duplicates_before;
    phase.repeats = arrivals.repeats - repeats_before;
    if arrivals.unparsed > 0 {
        return Err(format!(
            "{} webhook requests carried no development id",
            arrivals.unparsed
        )
        .into());
    }
    phase.load.1 = load_average();
    Ok(phase)
}

/// What the process taking commands reports of its log's writer (`/metrics`): the sum and count
/// of its group-commit batch sizes, the seconds its commands took in all, and the seconds they
/// waited for PostgreSQL's append lock in all (none in embedded mode).
#[derive(Debug, Clone, Copy)]
struct WriterMetrics {
    batch_sum: f64,
    batch_count: f64,
    command_seconds: f64,
    lock_wait_seconds: f64,
}

async fn batch_metric(client: &reqwest::Client, base: &str) -> Option<WriterMetrics> {
    let metrics = Metrics::read(client, base).await?;
    Some(WriterMetrics {
        batch_sum: metrics.sum("newsroom_store_batch_size_sum")?,
        batch_count: metrics.sum("newsroom_store_batch_size_count")?,
        // One sample per command name: `newsroom_command_seconds_sum{command="…"} 1.5`.
        command_seconds: metrics.sum("newsroom_command_seconds_sum").unwrap_or(0.0),
        lock_wait_seconds: metrics
            .sum("newsroom_store_append_lock_wait_seconds_sum")
            .unwrap_or(0.0),
    })
}

// ---------------------------------------------------------------------------------------------
// Where the CPU went: /proc, in clock ticks (USER_HZ = 100 on Linux)

#[derive(Debug, Default)]
struct CpuSnapshot {
    /// pid → (command name, start time, user + system ticks).
    procs: HashMap<u32, (String, u64, u64)>,
    /// The machine's busy and total ticks over all CPUs.
    busy: u64,
    total: u64,
}

fn cpu_snapshot() -> CpuSnapshot {
    let mut snap = CpuSnapshot::default();
    if let Ok(stat) = std::fs::read_to_string("/proc/stat") {
        if let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|f| f.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            if v.len() >= 8 {
                snap.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
                snap.total = snap.busy + v[3] + v[4];
            }
        }
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return snap;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A kernel worker's name changes with its work: the start time tells processes apart.
        if let Some(t) = proc_ticks(&entry.path().join("stat")) {
            snap.procs.insert(pid, (t.comm, t.start, t.ticks));
        }
    }
    snap
}

/// CPU seconds used between two snapshots, by group; and the machine's busy and total seconds.
#[derive(Debug, Default)]
struct CpuUse {
    groups: Vec<(String, f64)>,
    busy: f64,
    total: f64,
}

fn cpu_use(before: &CpuSnapshot, after: &CpuSnapshot, names: &[(u32, String)]) -> CpuUse {
    let me = std::process::id();
    let mut groups: Vec<(String, f64)> = names
        .iter()
        .map(|(_, n)| (n.clone(), 0.0))
        .chain(
            ["PostgreSQL", "NATS", "bench process", "other processes"]
                .iter()
                .map(|n| (n.to_string(), 0.0)),
        )
        .collect();
    for (pid, (comm, start, ticks)) in &after.procs {
        let used = match before.procs.get(pid) {
            Some((_, s, t)) if s == start => ticks.saturating_sub(*t),
            // Started during the window.
            _ => *ticks,
        };
        if used == 0 {
            continue;
        }
        let group = if let Some((_, n)) = names.iter().find(|(p, _)| p == pid) {
            n.as_str()
        } else if *pid == me {
            "bench process"
        } else if comm == "postgres" {
            "PostgreSQL"
        } else if comm == "nats-server" {
            "NATS"
        } else {
            "other processes"
        };
        if let Some(g) = groups.iter_mut().find(|(n, _)| n == group) {
            g.1 += used as f64 / TICKS_PER_SECOND;
        }
    }
    CpuUse {
        groups,
        busy: after.busy.saturating_sub(before.busy) as f64 / TICKS_PER_SECOND,
        total: after.total.saturating_sub(before.total) as f64 / TICKS_PER_SECOND,
    }
}

impl CpuUse {
    /// CPU-seconds of the system under test: the newsroom processes, PostgreSQL and NATS.
    fn system(&self) -> f64 {
        self.groups
            .iter()
            .filter(|(n, _)| n != "bench process" && n != "other processes")
            .map(|(_, s)| s)
            .sum()
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = self
            .groups
            .iter()
            .map(|(n, s)| format!("{n} {s:.1}"))
            .collect();
        let attributed: f64 = self.groups.iter().map(|(_, s)| s).sum();
        format!(
            "{}; machine busy {:.1} of {:.1} CPU-seconds ({:.1} in processes that ended during the window, or not attributed)",
            parts.join(", "),
            self.busy,
            self.total,
            (self.busy - attributed).max(0.0)
        )
    }
}

// =============================================================================================
// 2. Projector copies

#[derive(Debug)]
struct GetRun {
    copies: usize,
    cpu: CpuUse,
    rate: f64,
    requests: u64,
    errors: u64,
    latency: Histogram<u64>,
}

/// [`GetLoad`] on `urls` (worker i on `urls[i % len]`), with the CPU `procs` and the machine
/// used in the measured window; the rate counts good answers only.
async fn get_load(
    client: &reqwest::Client,
    urls: &[String],
    expected_len: usize,
    in_flight: usize,
    seconds: f64,
    procs: &[(u32, String)],
) -> Res<GetRun> {
    let load = GetLoad::start(client, urls, expected_len, in_flight, seconds);
    tokio::time::sleep_until(load.warm_until.into()).await;
    let cpu_before = cpu_snapshot();
    let tally = load.finish().await?;
    Ok(GetRun {
        copies: urls.len(),
        cpu: cpu_use(&cpu_before, &cpu_snapshot(), procs),
        rate: (tally.requests - tally.errors) as f64 / tally.window.as_secs_f64(),
        requests: tally.requests,
        errors: tally.errors,
        latency: tally.latency,
    })
}

/// The body of `path` at a projector copy (`base`), once it answers `reached` (the same path
/// with a `min_position` it must have applied).
async fn view_once_reached(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    reached: &str,
) -> Res<Bytes> {
    get_when_ready(client, &format!("{base}{reached}"), Duration::from_secs(60)).await?;
    get_when_ready(client, &format!("{base}{path}"), Duration::from_secs(5)).await
}

/// GETs `url` until it answers 200 (a read with `min_position` waits up to 5 s, then 503).
async fn get_when_ready(client: &reqwest::Client, url: &str, cap: Duration) -> Res<Bytes> {
    let deadline = Instant::now() + cap;
    loop {
        match client.get(url).send().await {
            Ok(r) if r.status() == StatusCode::OK => return Ok(r.bytes().await?),
            Ok(_) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Ok(r) => return Err(format!("GET {url}: {}", r.status()).into()),
            Err(e) => return Err(format!("GET {url}: {e}").into()),
        }
    }
}

#[derive(Debug)]
struct ReadRun {
    view_bytes: usize,
    runs: Vec<GetRun>,
    /// The same story and load on one embedded process (`--role all`, SQLite): the baseline.
    embedded: GetRun,
    load: (String, String),
}

/// Opens a story on `command` and records `developments` developments on it (8 in flight); the
/// story's id and the last position recorded.
async fn fill_story(
    client: &reqwest::Client,
    command: &str,
    reporter: &str,
    developments: usize,
) -> Res<(String, i64)> {
    let story = open_story(client, command, reporter).await?;
    let (c, base, token, s) = (
        client.clone(),
        command.to_owned(),
        reporter.to_owned(),
        story.clone(),
    );
    let posted = bounded((0..developments).collect(), 8, move |_| {
        let (client, base, token, story) = (c.clone(), base.clone(), token.clone(), s.clone());
        async move {
            let p = post_development(&client, &base, &token, &story).await;
            match (p.error, p.position) {
                (None, Some(position)) => Ok(position),
                (e, _) => Err(format!("filing the story: {e:?}").into()),
            }
        }
    })
    .await?;
    Ok((story, posted.into_iter().max().unwrap_or(0)))
}

/// The baseline of 2a: the same story read on one embedded process.
async fn embedded_reads(client: &reqwest::Client, cfg: &Config) -> Res<GetRun> {
    let dir = tempfile::tempdir()?;
    let env = Env::embedded();
    let reporter = env.reporter_token(&dir.path().join("all"))?;
    let mut all = env.spawn("all", dir.path(), "all")?;
    all.healthy(client).await?;
    let result = async {
        let (story, last) = fill_story(client, &all.base, &reporter, cfg.view_developments).await?;
        let path = format!("/v1/stories/{story}");
        let reached = format!("{path}?min_position={last}");
        let body = view_once_reached(client, &all.base, &path, &reached).await?;
        let url = vec![format!("{}{path}", all.base)];
        get_load(
            client,
            &url,
            body.len(),
            cfg.readers,
            cfg.seconds,
            &[ident(&all)],
        )
        .await
    }
    .await;
    all.stop().await;
    result
}

async fn read_case(cfg: &Config) -> Res<ReadRun> {
    let load_start = load_average();
    let client = http_client()?;
    let dir = tempfile::tempdir()?;
    let db = Database::create(&cfg.database_url, "bench").await?;
    let stream = Stream::new(&cfg.nats_url);
    let env = scale_out_env(&db, &stream);
    let reporter = env.reporter_token(&dir.path().join("command"))?;
    let mut command = env.spawn("command", dir.path(), "command")?;
    let mut first = env.spawn("projector", dir.path(), "projector-1")?;
    command.healthy(&client).await?;
    first.healthy(&client).await?;

    let result = async {
        eprintln!("  one story of {} developments", cfg.view_developments);
        let (story, last) =
            fill_story(&client, &command.base, &reporter, cfg.view_developments).await?;
        let path = format!("/v1/stories/{story}");
        let reached = format!("{path}?min_position={last}");
        let body = view_once_reached(&client, &first.base, &path, &reached).await?;
        let one = vec![format!("{}{path}", first.base)];

        eprintln!("  GET with 1 copy");
        let procs = [ident(&command), ident(&first)];
        let mut runs =
            vec![get_load(&client, &one, body.len(), cfg.readers, cfg.seconds, &procs).await?];

        eprintln!("  starting a second copy");
        let mut second = env.spawn("projector", dir.path(), "projector-2")?;
        second.healthy(&client).await?;
        let other = view_once_reached(&client, &second.base, &path, &reached).await?;
        if other != body {
            second.stop().await;
            return Err("the two copies answer the story with different bodies".into());
        }
        let two = vec![one[0].clone(), format!("{}{path}", second.base)];
        eprintln!("  GET with 2 copies");
        let all = [ident(&command), ident(&first), ident(&second)];
        let both = get_load(&client, &two, body.len(), cfg.readers, cfg.seconds, &all).await;
        second.stop().await;
        runs.push(both?);

        eprintln!("  GET with 1 copy again");
        runs.push(get_load(&client, &one, body.len(), cfg.readers, cfg.seconds, &procs).await?);
        Ok::<_, BoxError>((body.len(), runs))
    }
    .await;
    if result.is_err() {
        eprintln!(
            "--- command ---\n{}\n--- projector-1 ---\n{}",
            command.log_tail(),
            first.log_tail()
        );
    }
    first.stop().await;
    command.stop().await;
    drop(stream);
    drop(db);
    let (view_bytes, runs) = result?;
    eprintln!("  GET on one embedded process (the baseline)");
    let embedded = embedded_reads(&client, cfg).await?;
    Ok(ReadRun {
        view_bytes,
        runs,
        embedded,
        load: (load_start, load_average()),
    })
}

/// Fills a fresh PostgreSQL log with `events` events through the command service, in this
/// process: `events / 100` stories, each opened and then given developments by 64 tasks.
async fn fill_log(url: &str, events: usize) -> Res<(EventLog, Duration)> {
    let store = PgStore::connect(url).await?;
    let log: EventLog = store.into();
    let service = Arc::new(CommandService::new(log.clone(), ServiceOptions::default()));
    let by = Principal {
        token_id: Uuid::now_v7().to_string(),
        name: "Bench Reporter".into(),
        role: Role::Reporter,
    };
    let started = Instant::now();
    let stories = (events / EVENTS_PER_STORY).max(1);
    let ids: Vec<StoryId> = (0..stories).map(|_| StoryId::new()).collect();
    let opened = {
        let (service, by) = (service.clone(), by.clone());
        bounded(ids.clone(), FILLERS, move |id| {
            let (service, by) = (service.clone(), by.clone());
            async move {
                let slug = format!("fill-{}", &Uuid::new_v4().simple().to_string()[..12]);
                service
                    .execute(id, &by, open_story_command(id, &slug))
                    .await?;
                Ok(())
            }
        })
        .await?
    };
    let developments = events - opened.len();
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(ids);
    let template = Arc::new(template());
    let tasks: Vec<_> = (0..FILLERS)
        .map(|_| {
            let (service, by, ids, next, template) = (
                service.clone(),
                by.clone(),
                ids.clone(),
                next.clone(),
                template.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= developments {
                        return Ok::<_, BoxError>(());
                    }
                    let mut new = (*template).clone();
                    new.id = DevelopmentId::from(Uuid::new_v4());
                    service
                        .execute(
                            ids[i % ids.len()],
                            &by,
                            StoryCommand::RecordDevelopment(new),
                        )
                        .await?;
                    if (i + 1) % 20_000 == 0 {
                        eprintln!("    {} developments filed", i + 1);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let head = log.current_head().await?;
    if head as usize != events {
        return Err(format!("the log holds {head} events, not {events}").into());
    }
    Ok((log, started.elapsed()))
}

fn template() -> NewDevelopment {
    NewDevelopment {
        embargo_until: None,
        accused: vec![],
        id: DevelopmentId::from(Uuid::new_v4()),
        kind: DevelopmentKind::StatementIssued,
        headline: Headline::parse("headline", "Campaign A says its email was breached")
            .expect("valid headline"),
        body: Body::parse(
            "body",
            "The campaign said attackers had access for three weeks.",
        )
        .expect("valid body"),
        occurred_at: None,
        actors: Actor::parse_list(
            "actors",
            &["Campaign A".to_owned(), "Fancy Bear".to_owned()],
        )
        .expect("valid actors"),
        source: Some(Source {
            name: SourceName::parse("source.name", "Campaign spokesperson").expect("valid source"),
            kind: SourceKind::OfficialStatement,
            url: None,
        }),
        evidence: Evidence::NoneProvided,
        urgency: Urgency::Priority,
        responds_to: None,
        hold: None,
    }
}

fn open_story_command(id: StoryId, slug: &str) -> StoryCommand {
    StoryCommand::OpenStory {
        id,
        slug: Slug::parse("slug", slug).expect("valid slug"),
        headline: Headline::parse("headline", "Campaign reports a hack").expect("valid headline"),
        summary: Summary::parse("summary", "A campaign says its email was breached.")
            .expect("valid summary"),
        tags: vec![],
        review_required: false,
    }
}

/// Runs `Relay` over `log` into `stream` until it has published up to `head`.
async fn relay_all(
    log: &EventLog,
    client: &async_nats::Client,
    stream: &Stream,
    head: i64,
) -> Res<(Duration, u64, u64)> {
    let relay = Relay::new(log.clone(), client.clone(), stream.settings.clone());
    let status = relay.status();
    let mut positions = relay.positions();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(relay.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    // Gives up after 60 s without progress, saying what the relay last reported.
    let mut reached = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(60), positions.changed()).await {
            Ok(Ok(())) if *positions.borrow_and_update() >= head => {
                reached = true;
                break;
            }
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let took = started.elapsed();
    let _ = stop.send(());
    let published = task.await?;
    if reached {
        Ok((took, published.events, published.duplicates))
    } else {
        Err(format!(
            "the relay did not reach position {head}: published {} events, position {}, last error {:?}",
            published.events,
            status.published(),
            status.error()
        )
        .into())
    }
}

#[derive(Debug)]
struct CatchUp {
    copy: String,
    /// Spawn → the first `/healthz` answer (the process is up, the projector has started).
    start_up: Duration,
    /// Spawn → the views have reached the head.
    done: Duration,
}

impl CatchUp {
    fn applying(&self) -> Duration {
        self.done.saturating_sub(self.start_up)
    }
}

#[derive(Debug)]
struct CatchUpRun {
    events: i64,
    fill: Duration,
    publish: Duration,
    one: Vec<CatchUp>,
    two: Vec<CatchUp>,
    two_wall: Duration,
    cpu_one: CpuUse,
    cpu_two: CpuUse,
    load: (String, String),
}

/// Spawn → the views at `head`. The first `/healthz` answer marks the process up (the projector
/// starts with the HTTP server); then `GET /v1/stories?limit=1&min_position=head` (which waits up
/// to 5 s for the views, then answers 503) is asked until it answers 200.
async fn catch_up(proc: &mut Proc, client: &reqwest::Client, head: i64) -> Res<CatchUp> {
    let start_up = proc.healthy(client).await?;
    let url = format!("{}/v1/stories?limit=1&min_position={head}", proc.base);
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if let Some(status) = proc.child.try_wait()? {
            return Err(format!("{} exited ({status}):\n{}", proc.name, proc.log_tail()).into());
        }
        match client.get(&url).send().await {
            Ok(r) if r.status() == StatusCode::OK => {
                let _ = r.bytes().await;
                return Ok(CatchUp {
                    copy: proc.name.clone(),
                    start_up,
                    done: proc.spawned.elapsed(),
                });
            }
            Ok(r) => {
                let _ = r.bytes().await;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
        if Instant::now() > deadline {
            return Err(format!("{} did not catch up:\n{}", proc.name, proc.log_tail()).into());
        }
    }
}

async fn catch_up_case(cfg: &Config) -> Res<CatchUpRun> {
    let load_start = load_average();
    let client = http_client()?;
    let dir = tempfile::tempdir()?;
    let db = Database::create(&cfg.database_url, "bench").await?;
    let stream = Stream::new(&cfg.nats_url);
    let env = scale_out_env(&db, &stream);
    eprintln!("  filling a PostgreSQL log with {} events", cfg.prefill);
    let (log, fill) = fill_log(&db.url, cfg.prefill).await?;
    let head = log.current_head().await?;
    eprintln!("  publishing them to the stream");
    let nats = async_nats::connect(&cfg.nats_url).await?;
    let (publish, _, _) = relay_all(&log, &nats, &stream, head).await?;

    eprintln!("  one projector copy catching up");
    let cpu_before = cpu_snapshot();
    let mut p = env.spawn("projector", dir.path(), "copy-1")?;
    let one = catch_up(&mut p, &client, head).await;
    let cpu_one = cpu_use(&cpu_before, &cpu_snapshot(), &[ident(&p)]);
    p.stop().await;
    let one = vec![one?];

    eprintln!("  two projector copies catching up at once, on views emptied again");
    reset_views(&db.url).await?;
    let cpu_before = cpu_snapshot();
    let started = Instant::now();
    let mut a = env.spawn("projector", dir.path(), "copy-2")?;
    let mut b = env.spawn("projector", dir.path(), "copy-3")?;
    let (ra, rb) = tokio::join!(
        catch_up(&mut a, &client, head),
        catch_up(&mut b, &client, head)
    );
    let two_wall = started.elapsed();
    let cpu_two = cpu_use(&cpu_before, &cpu_snapshot(), &[ident(&a), ident(&b)]);
    a.stop().await;
    b.stop().await;
    let two = vec![ra?, rb?];
    drop(stream);
    drop(db);
    Ok(CatchUpRun {
        events: head,
        fill,
        publish,
        one,
        two,
        two_wall,
        cpu_one,
        cpu_two,
        load: (load_start, load_average()),
    })
}

/// Empties the views the copies share (PostgreSQL, beside the log), back to position 0.
async fn reset_views(url: &str) -> Res<()> {
    let pool = sqlx::PgPool::connect(url).await?;
    sqlx::query("TRUNCATE view_stories, view_developments, view_actor_entries")
        .execute(&pool)
        .await?;
    sqlx::query("UPDATE view_checkpoints SET position = 0")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

/// One run of notifier copies over a fresh log and stream.
#[derive(Debug)]
struct NotifierPhase {
    copies: usize,
    developments: usize,
    /// Relay start → the last development's first alert.
    took: Duration,
    arrived: usize,
    duplicates: usize,
    repeats: usize,
    cpu: CpuUse,
}

impl NotifierPhase {
    fn rate(&self) -> f64 {
        self.arrived as f64 / self.took.as_secs_f64()
    }
}

#[derive(Debug)]
struct NotifierRun {
    events: usize,
    phases: Vec<NotifierPhase>,
    load: (String, String),
}

async fn notifier_phase(cfg: &Config, copies: usize) -> Res<NotifierPhase> {
    let client = http_client()?;
    let dir = tempfile::tempdir()?;
    let db = Database::create(&cfg.database_url, "bench").await?;
    let stream = Stream::new(&cfg.nats_url);
    let env = scale_out_env(&db, &stream);
    let mut procs = Vec::new();
    for i in 1..=copies {
        procs.push(env.spawn("notifier", dir.path(), &format!("notifier-{i}"))?);
    }
    // The matcher reads each story as it stood from the views' history: a projector keeps them.
    procs.push(env.spawn("projector", dir.path(), "projector")?);
    for p in &mut procs {
        p.healthy(&client).await?;
    }
    let sink = Sink::default();
    let (hook, receiver) = start_receiver(&sink).await?;
    let base = procs[0].base.clone();
    let signed = call(
        &client,
        format!("{base}/v1/subscribers"),
        None,
        json!({"name": "Wire desk"}),
    )
    .await?;
    let id = signed["id"].as_str().ok_or("no subscriber id")?.to_owned();
    let token = signed["token"].as_str().ok_or("no subscriber token")?;
    call(
        &client,
        format!("{base}/v1/subscribers/{id}/endpoints"),
        Some(token),
        json!({"kind": "webhook", "url": hook}),
    )
    .await?;
    // Every development of the fill names this actor.
    call(
        &client,
        format!("{base}/v1/subscribers/{id}/subscriptions"),
        Some(token),
        json!({"actor": "Fancy Bear"}),
    )
    .await?;
    eprintln!(
        "  {copies} notifier cop{}: filling a log of {} events",
        if copies == 1 { "y" } else { "ies" },
        cfg.notifier_events
    );
    let (log, _) = fill_log(&db.url, cfg.notifier_events).await?;
    let head = log.current_head().await?;
    let stories = (cfg.notifier_events / EVENTS_PER_STORY).max(1);
    let developments = head as usize - stories;
    let nats = async_nats::connect(&cfg.nats_url).await?;
    let pids: Vec<(u32, String)> = procs.iter().map(ident).collect();
    let cpu_before = cpu_snapshot();
    let started = Instant::now();
    relay_all(&log, &nats, &stream, head).await?;
    let first = |sink: &Sink| sink.inner.lock().expect("arrivals lock").first.len();
    let all = wait_for(
        developments,
        Duration::from_secs(30),
        Duration::from_secs(900),
        || first(&sink),
    )
    .await;
    let took = started.elapsed();
    let cpu = cpu_use(&cpu_before, &cpu_snapshot(), &pids);
    if !all {
        eprintln!(
            "  only {} of {developments} alerts arrived:\n{}",
            first(&sink),
            procs
                .iter()
                .map(Proc::log_tail)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // Longer than the copies take to send anything twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (arrived, duplicates, repeats) = {
        let a = sink.inner.lock().expect("arrivals lock");
        (a.first.len(), a.duplicates, a.repeats)
    };
    for p in procs {
        p.stop().await;
    }
    receiver.abort();
    drop(stream);
    drop(db);
    Ok(NotifierPhase {
        copies,
        developments,
        took,
        arrived,
        duplicates,
        repeats,
        cpu,
    })
}

async fn notifier_case(cfg: &Config) -> Res<NotifierRun> {
    let load_start = load_average();
    let mut phases = Vec::new();
    for copies in [1, 2] {
        phases.push(notifier_phase(cfg, copies).await?);
    }
    Ok(NotifierRun {
        events: cfg.notifier_events,
        phases,
        load: (load_start, load_average()),
    })
}

// =============================================================================================
// 4. One flash development to many webhook endpoints, notifier copies under CPU quotas

/// The variable that makes this executable the flash receiver process (section 4).
const RECEIVER_ENV: &str = "BENCH_FLASH_RECEIVER";
/// The tag every other bench subscriber follows (the story's first tag; the rest follow the
/// story itself).
const FLASH_TAG: &str = "elections";

/// What the receiver process has seen since its last reset.
#[derive(Default)]
struct FlashTally {
    seen: HashSet<String>,
    /// Microseconds since the Unix epoch of each first arrival (the clock the parent reads too).
    times: Vec<u64>,
    /// The same `webhook-id` again.
    duplicates: usize,
}

type SharedTally = Arc<Mutex<FlashTally>>;

fn epoch_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Any POST but the control routes: a webhook, counted by its `webhook-id`.
async fn flash_receive(
    State(t): State<SharedTally>,
    headers: HeaderMap,
    _body: Bytes,
) -> StatusCode {
    let at = epoch_micros();
    let id = webhook_id(&headers);
    let mut t = t.lock().expect("tally lock");
    if t.seen.insert(id) {
        t.times.push(at);
    } else {
        t.duplicates += 1;
    }
    StatusCode::OK
}

async fn flash_count(State(t): State<SharedTally>) -> axum::Json<Value> {
    let t = t.lock().expect("tally lock");
    axum::Json(json!({"unique": t.seen.len(), "duplicates": t.duplicates}))
}

async fn flash_times(State(t): State<SharedTally>) -> axum::Json<Value> {
    let t = t.lock().expect("tally lock");
    axum::Json(json!({"unique": t.seen.len(), "duplicates": t.duplicates, "times": t.times}))
}

async fn flash_reset(State(t): State<SharedTally>) -> StatusCode {
    *t.lock().expect("tally lock") = FlashTally::default();
    StatusCode::NO_CONTENT
}

/// The receiver process: webhooks on any path, `GET /tally/count`, `GET /tally/times`,
/// `POST /tally/reset`; it ends when its standard input closes (the parent went away).
fn run_flash_receiver() -> Res<()> {
    use tokio::io::AsyncReadExt as _;
    runtime()?.block_on(async {
        let listener = newsroom_testkit::process::announce_port().await?;
        let app = axum::Router::new()
            .route("/tally/count", axum::routing::get(flash_count))
            .route("/tally/times", axum::routing::get(flash_times))
            .route("/tally/reset", axum::routing::post(flash_reset))
            .fallback(flash_receive)
            .with_state(SharedTally::default());
        let parent_gone = async {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        };
        tokio::select! {
            served = std::future::IntoFuture::into_future(axum::serve(listener, app)) => served?,
            _ = parent_gone => {}
        }
        Ok::<(), BoxError>(())
    })
}

/// A cgroup v1 `cpu` group of its own for one process, removed when dropped (after the
/// process has ended).
struct CpuGroup {
    path: std::path::PathBuf,
}

impl CpuGroup {
    fn limit(pid: u32, cores: f64) -> Res<Self> {
        let path = std::path::PathBuf::from(format!(
            "/sys/fs/cgroup/cpu/newsroom-bench-{}",
            Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        let group = Self { path };
        let quota = ((cores * 100_000.0).round() as u64).max(1000);
        for (file, value) in [
            ("cpu.cfs_period_us", "100000".to_owned()),
            ("cpu.cfs_quota_us", quota.to_string()),
            ("cgroup.procs", pid.to_string()),
        ] {
            let at = group.path.join(file);
            std::fs::write(&at, value).map_err(|e| format!("write {}: {e}", at.display()))?;
        }
        Ok(group)
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir(&self.path) {
            eprintln!("  could not remove {}: {e}", self.path.display());
        }
    }
}

#[derive(Debug)]
struct FlashPhase {
    copies: usize,
    endpoints: usize,
    /// The API sign-up and the SQL insert of the rest.
    sign_up: Duration,
    /// A routine development first, until every partition's matcher has passed it (each copy
    /// loads its subscription index then).
    warm_up: Duration,
    /// POST of the flash development → the first, the 90% and the last first arrival.
    first: Option<Duration>,
    t90: Option<Duration>,
    t100: Option<Duration>,
    arrived: usize,
    duplicates: usize,
    cpu: CpuUse,
    copy_names: Vec<String>,
}

impl FlashPhase {
    fn rate(&self) -> Option<f64> {
        self.t100
            .map(|t| self.arrived as f64 / t.as_secs_f64().max(1e-6))
    }

    fn missing(&self) -> usize {
        self.endpoints.saturating_sub(self.arrived)
    }

    fn cpu_of(&self, name: &str) -> f64 {
        self.cpu
            .groups
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, s)| *s)
    }
}

#[derive(Debug)]
struct FlashRun {
    endpoints: usize,
    copy_cores: f64,
    phases: Vec<FlashPhase>,
    load: (String, String),
}

async fn receiver_get(client: &reqwest::Client, receiver: &str, what: &str) -> Res<Value> {
    Ok(client
        .get(format!("{receiver}/tally/{what}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// How many processes hold partitions of the notifier's work, and how many partitions are held
/// (the advisory locks of `crates/notifier/src/partitions.rs`).
async fn partition_owners(pool: &sqlx::PgPool) -> Res<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT count(DISTINCT l.pid), count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
         WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.granted
           AND l.classid::int8 = $1 AND l.objsubid = 2",
    )
    .bind(i64::from(newsroom_notifier::partitions::PARTITION_SPACE))
    .fetch_one(pool)
    .await?)
}

/// The lowest checkpoint over the matcher's partitions.
async fn matched_through(pool: &sqlx::PgPool) -> Res<i64> {
    let (at,): (Option<i64>,) =
        sqlx::query_as("SELECT MIN(position) FROM checkpoints WHERE name LIKE 'matcher/%'")
            .fetch_one(pool)
            .await?;
    Ok(at.unwrap_or(0))
}

/// Copies the one subscriber signed up through the API (its subscriber, endpoint and
/// subscription rows) `more` times, in one transaction: fresh ids, tokens and hook URLs
/// (`{hooks}{n}`), the same webhook secret; every even one follows the story, every odd one the
/// tag; each subscription recorded in `subscription_changes` as the API records it.
async fn insert_subscribers(pool: &sqlx::PgPool, more: usize, hooks: &str) -> Res<()> {
    let mut tx = pool.begin().await?;
    let n = more as i64;
    sqlx::query(
        "INSERT INTO subscribers (id, name, email, token_hash, unsubscribe_token, status, created_at)
         SELECT md5('flash-subscriber-' || g)::uuid::text, t.name || ' ' || g, t.email,
                sha256(convert_to('flash-token-' || g, 'UTF8')), t.unsubscribe_token || '-' || g,
                t.status, t.created_at
         FROM subscribers t, generate_series(1, $1::bigint) g",
    )
    .bind(n)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO endpoints (id, subscriber_id, kind, target, secret, status, created_at)
         SELECT md5('flash-endpoint-' || g)::uuid::text, md5('flash-subscriber-' || g)::uuid::text,
                t.kind, $2::text || g, t.secret, t.status, t.created_at
         FROM endpoints t, generate_series(1, $1::bigint) g",
    )
    .bind(n)
    .bind(hooks)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO subscriptions (id, subscriber_id, story_id, actor_key, kind, tag, min_urgency,
                                    delivery, digest_minutes, include_related, created_at)
         SELECT md5('flash-subscription-' || g)::uuid::text, md5('flash-subscriber-' || g)::uuid::text,
                CASE WHEN g % 2 = 0 THEN t.story_id END, t.actor_key, t.kind,
                CASE WHEN g % 2 = 1 THEN $2::text END, t.min_urgency, t.delivery, t.digest_minutes,
                t.include_related, t.created_at
         FROM subscriptions t, generate_series(1, $1::bigint) g",
    )
    .bind(n)
    .bind(FLASH_TAG)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO subscription_changes (subscription_id, subscriber_id)
         SELECT md5('flash-subscription-' || g)::uuid::text, md5('flash-subscriber-' || g)::uuid::text
         FROM generate_series(1, $1::bigint) g ORDER BY g",
    )
    .bind(n)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let (endpoints,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM endpoints")
        .fetch_one(pool)
        .await?;
    if endpoints != n + 1 {
        return Err(format!("{endpoints} endpoints after the insert, not {}", n + 1).into());
    }
    Ok(())
}

async fn flash_phase(
    cfg: &Config,
    copies: usize,
    receiver: &str,
    receiver_pid: Option<u32>,
    client: &reqwest::Client,
) -> Res<FlashPhase> {
    let dir = tempfile::tempdir()?;
    let db = Database::create(&cfg.database_url, "bench").await?;
    let stream = Stream::new(&cfg.nats_url);
    let env = scale_out_env(&db, &stream);
    // A reporter's `flash` waits for an editor's approval: an editor files it.
    let editor = env.editor_token(&dir.path().join("command"))?;
    // Declared before the processes, so that on an early return the processes (dropped first,
    // killed) have left their groups when these are removed.
    let mut groups = Vec::new();
    let mut procs = vec![
        env.spawn("command", dir.path(), "command")?,
        env.spawn("projector", dir.path(), "projector")?,
    ];
    for i in 1..=copies {
        let p = env.spawn("notifier", dir.path(), &format!("notifier-{i}"))?;
        groups.push(CpuGroup::limit(p.pid(), cfg.copy_cores)?);
        procs.push(p);
    }
    let outcome = flash_measure(
        cfg,
        (copies, receiver, receiver_pid),
        client,
        &db,
        &mut procs,
        &editor,
    )
    .await;
    if outcome.is_err() {
        eprintln!(
            "{}",
            procs
                .iter()
                .map(|p| format!("--- {} ---\n{}", p.name, p.log_tail()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    for p in procs {
        p.stop().await;
    }
    drop(groups);
    drop(stream);
    drop(db);
    outcome
}

async fn flash_measure(
    cfg: &Config,
    (copies, receiver, receiver_pid): (usize, &str, Option<u32>),
    client: &reqwest::Client,
    db: &Database,
    procs: &mut [Proc],
    editor: &str,
) -> Res<FlashPhase> {
    for p in procs.iter_mut() {
        p.healthy(client).await?;
    }
    let base = |name: &str| base_of(procs, name);
    let (command, reads, notifier) = (base("command"), base("projector"), base("notifier-1"));
    // One subscriber through the API, the rest copied from its rows.
    let (story, signing_up) =
        flash_story(client, (&command, &reads, &notifier), editor, receiver).await?;
    let pool = sqlx::PgPool::connect(&db.url).await?;
    insert_subscribers(
        &pool,
        cfg.flash_endpoints - 1,
        &format!("{receiver}/hooks/"),
    )
    .await?;
    let sign_up = signing_up.elapsed();

    // Let the copies share the partitions out (a copy takes its share within two looks of
    // 500 ms), then a routine development that no subscription asks for: every copy loads its
    // subscription index on the batch that carries it (a copy that owned nothing then would
    // load it on the flash's).
    let sharing = Instant::now();
    while partition_owners(&pool).await? != (copies as i64, 64) {
        if sharing.elapsed() > Duration::from_secs(60) {
            return Err("the copies did not share the 64 partitions out within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let warm_up = warm_up(
        client,
        (&command, editor, &story),
        receiver,
        Matched::Postgres(&pool),
    )
    .await?;
    eprintln!(
        "  {copies} notifier cop{}: {} endpoints signed up in {}, indexes loaded in {}; sending the flash",
        if copies == 1 { "y" } else { "ies" },
        thousands(cfg.flash_endpoints as f64),
        secs(sign_up),
        secs(warm_up)
    );

    settle(Some(&pool)).await?;
    let mut pids: Vec<(u32, String)> = procs.iter().map(ident).collect();
    pids.extend(receiver_pid.map(|p| (p, "receiver process".to_owned())));
    let clocked = flash_clock(
        client,
        receiver,
        (&command, editor, &story),
        cfg.flash_endpoints,
        &pids,
    )
    .await?;
    pool.close().await;
    Ok(clocked.phase(
        copies,
        (sign_up, warm_up),
        (1..=copies)
            .map(|i| format!("newsroom notifier-{i}"))
            .collect(),
    ))
}

/// Before a flash is clocked, lets what earlier steps set going end outside the clock:
/// PostgreSQL's vacuum and statistics of the 100,000 rows just inserted and its checkpoint
/// (run now, rather than by autovacuum and the checkpointer during the flash), and whatever
/// else is busy (an earlier phase's database being dropped): it waits until the machine is
/// under a tenth of a core busy for a second, 60 s at most.
async fn settle(pool: Option<&sqlx::PgPool>) -> Res<()> {
    if let Some(pool) = pool {
        sqlx::query("VACUUM ANALYZE").execute(pool).await?;
        sqlx::query("CHECKPOINT").execute(pool).await?;
    }
    let started = Instant::now();
    loop {
        let before = cpu_snapshot();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = cpu_snapshot();
        let busy = after.busy.saturating_sub(before.busy) as f64 / TICKS_PER_SECOND;
        if busy < 0.1 || started.elapsed() > Duration::from_secs(60) {
            eprintln!(
                "  settled in {} ({busy:.2} core busy)",
                secs(started.elapsed())
            );
            return Ok(());
        }
    }
}

/// What the clock saw of one flash: POST → first, 90% and last first arrival.
struct Clocked {
    endpoints: usize,
    first: Option<Duration>,
    t90: Option<Duration>,
    t100: Option<Duration>,
    arrived: usize,
    duplicates: usize,
    cpu: CpuUse,
}

impl Clocked {
    fn phase(
        self,
        copies: usize,
        (sign_up, warm_up): (Duration, Duration),
        copy_names: Vec<String>,
    ) -> FlashPhase {
        FlashPhase {
            copies,
            endpoints: self.endpoints,
            sign_up,
            warm_up,
            first: self.first,
            t90: self.t90,
            t100: self.t100,
            arrived: self.arrived,
            duplicates: self.duplicates,
            cpu: self.cpu,
            copy_names,
        }
    }
}

/// POSTs the flash development to `story` and waits until the receiver has seen `goal` distinct
/// alerts (or nothing more arrives for a while), counting the CPU of `pids` meanwhile.
async fn flash_clock(
    client: &reqwest::Client,
    receiver: &str,
    (command, editor, story): (&str, &str, &str),
    goal: usize,
    pids: &[(u32, String)],
) -> Res<Clocked> {
    let cpu_before = cpu_snapshot();
    let sent = epoch_micros();
    post_of_urgency(client, (command, editor, story), "flash").await?;
    let (mut last, mut last_change) = (0usize, Instant::now());
    loop {
        let unique = receiver_get(client, receiver, "count").await?["unique"]
            .as_u64()
            .unwrap_or(0) as usize;
        if unique >= goal {
            break;
        }
        if unique != last {
            (last, last_change) = (unique, Instant::now());
        }
        // Before the first alert the matcher may still be writing every alert of the fan-out.
        let patience = if unique == 0 { 600 } else { 60 };
        if last_change.elapsed() > Duration::from_secs(patience) {
            eprintln!("  only {unique} of {goal} alerts arrived; nothing more for {patience} s");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = cpu_use(&cpu_before, &cpu_snapshot(), pids);
    // Longer than the copies take to send anything twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tally = receiver_get(client, receiver, "times").await?;
    let mut times: Vec<u64> = tally["times"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    times.sort_unstable();
    let after = |nth: usize| {
        (nth >= 1 && nth <= times.len())
            .then(|| Duration::from_micros(times[nth - 1].saturating_sub(sent)))
    };
    Ok(Clocked {
        endpoints: goal,
        first: after(1),
        t90: after((goal as f64 * 0.9).ceil() as usize),
        t100: if times.len() >= goal {
            after(goal)
        } else {
            None
        },
        arrived: times.len(),
        duplicates: tally["duplicates"].as_u64().unwrap_or(0) as usize,
        cpu,
    })
}

/// The same endpoints copied in SQL into an embedded process's `notifier.db` (SQLite), as
/// [`insert_subscribers`] does in PostgreSQL.
fn insert_subscribers_sqlite(path: &std::path::Path, more: usize, hooks: &str) -> Res<()> {
    let mut db = rusqlite::Connection::open(path)?;
    db.busy_timeout(Duration::from_secs(30))?;
    let tx = db.transaction()?;
    let numbers = "WITH RECURSIVE g(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM g WHERE g < ?1)";
    let id = |what: &str| format!("printf('00000000-0000-4000-8{what}-%012d', g.g)");
    tx.execute(
        &format!(
            "{numbers} INSERT INTO subscribers (id, name, email, token_hash, unsubscribe_token, status, created_at)
             SELECT {}, t.name || ' ' || g.g, t.email, randomblob(32), t.unsubscribe_token || '-' || g.g,
                    t.status, t.created_at
             FROM subscribers t, g",
            id("001")
        ),
        [more as i64],
    )?;
    tx.execute(
        &format!(
            "{numbers} INSERT INTO endpoints (id, subscriber_id, kind, target, secret, status, created_at)
             SELECT {}, {}, t.kind, ?2 || g.g, t.secret, t.status, t.created_at
             FROM endpoints t, g",
            id("002"),
            id("001")
        ),
        rusqlite::params![more as i64, hooks],
    )?;
    tx.execute(
        &format!(
            "{numbers} INSERT INTO subscriptions (id, subscriber_id, story_id, actor_key, kind, tag,
                    min_urgency, delivery, digest_minutes, include_related, created_at)
             SELECT {}, {}, CASE WHEN g.g % 2 = 0 THEN t.story_id END, t.actor_key, t.kind,
                    CASE WHEN g.g % 2 = 1 THEN ?2 END, t.min_urgency, t.delivery, t.digest_minutes,
                    t.include_related, t.created_at
             FROM subscriptions t, g",
            id("003"),
            id("001")
        ),
        rusqlite::params![more as i64, FLASH_TAG],
    )?;
    tx.execute(
        &format!(
            "{numbers} INSERT INTO subscription_changes (subscription_id, subscriber_id)
             SELECT {}, {} FROM g ORDER BY g.g",
            id("003"),
            id("001")
        ),
        [more as i64],
    )?;
    tx.commit()?;
    let endpoints: i64 = db.query_row("SELECT COUNT(*) FROM endpoints", [], |r| r.get(0))?;
    if endpoints != more as i64 + 1 {
        return Err(format!("{endpoints} endpoints after the insert, not {}", more + 1).into());
    }
    Ok(())
}

/// Opens the flash's story (through `command`, until `reads` serves it) and signs its first
/// subscriber up through `notifier`'s API: a webhook to the receiver's `/hooks/0`, following the
/// story at `min_urgency: flash`. Returns the story and when the sign-up began.
async fn flash_story(
    client: &reqwest::Client,
    (command, reads, notifier): (&str, &str, &str),
    editor: &str,
    receiver: &str,
) -> Res<(String, Instant)> {
    let story = open_story(client, command, editor).await?;
    get_when_ready(
        client,
        &format!("{reads}/v1/stories/{story}"),
        Duration::from_secs(60),
    )
    .await?;
    let signing_up = Instant::now();
    newsroom_testkit::api::webhook_subscriber(
        client,
        notifier,
        "Flash desk",
        &format!("{receiver}/hooks/0"),
        &json!({"story": story, "min_urgency": "flash"}),
    )
    .await?;
    Ok((story, signing_up))
}

/// Where the matchers stand: every partition's checkpoint in PostgreSQL, or the embedded
/// matcher's in its `notifier.db`.
enum Matched<'a> {
    Postgres(&'a sqlx::PgPool),
    Sqlite(&'a std::path::Path),
}

impl Matched<'_> {
    async fn position(&self) -> Res<i64> {
        match self {
            Self::Postgres(pool) => matched_through(pool).await,
            Self::Sqlite(path) => Ok(rusqlite::Connection::open(path)?.query_row(
                "SELECT COALESCE(MAX(position), 0) FROM checkpoints WHERE name = 'matcher'",
                [],
                |r| r.get(0),
            )?),
        }
    }
}

/// Records a new development of `urgency` on the story; returns its position in the log.
async fn post_of_urgency(
    client: &reqwest::Client,
    (command, editor, story): (&str, &str, &str),
    urgency: &str,
) -> Res<i64> {
    Ok(newsroom_testkit::api::post_development(
        client,
        command,
        editor,
        story,
        &newsroom_testkit::api::development_with_urgency(Uuid::new_v4(), urgency),
    )
    .await?)
}

/// A routine development no subscription asks for, until the matchers have passed it (each loads
/// its subscription index on the batch that carries it); then the receiver's tally is reset.
/// Returns how long the matchers took.
async fn warm_up(
    client: &reqwest::Client,
    (command, editor, story): (&str, &str, &str),
    receiver: &str,
    matched: Matched<'_>,
) -> Res<Duration> {
    let warming = Instant::now();
    let warm = post_of_urgency(client, (command, editor, story), "routine").await?;
    while matched.position().await? < warm {
        if warming.elapsed() > Duration::from_secs(300) {
            return Err("the matchers did not pass the warm-up development within 300 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let warm_up = warming.elapsed();
    let reset = client
        .post(format!("{receiver}/tally/reset"))
        .send()
        .await?;
    if !reset.status().is_success() {
        return Err(format!("receiver reset: {}", reset.status()).into());
    }
    Ok(warm_up)
}

/// The baseline of the issue's embedded target: the same flash on one embedded process
/// (`--role all`, SQLite), unthrottled.
async fn flash_embedded(
    cfg: &Config,
    receiver: &str,
    receiver_pid: Option<u32>,
    client: &reqwest::Client,
) -> Res<FlashPhase> {
    let dir = tempfile::tempdir()?;
    let env = Env::embedded();
    let editor = env.editor_token(&dir.path().join("all"))?;
    let mut all = env.spawn("all", dir.path(), "all")?;
    let result = async {
        all.healthy(client).await?;
        let base = all.base.clone();
        let (story, signing_up) =
            flash_story(client, (&base, &base, &base), &editor, receiver).await?;
        insert_subscribers_sqlite(
            &dir.path().join("all").join("notifier.db"),
            cfg.flash_endpoints - 1,
            &format!("{receiver}/hooks/"),
        )?;
        let sign_up = signing_up.elapsed();
        // A routine development first: the matcher loads the index on its batch.
        let notifier = dir.path().join("all").join("notifier.db");
        let warm_up = warm_up(
            client,
            (&base, &editor, &story),
            receiver,
            Matched::Sqlite(&notifier),
        )
        .await?;
        eprintln!(
            "  embedded: {} endpoints signed up in {}, index loaded in {}; sending the flash",
            thousands(cfg.flash_endpoints as f64),
            secs(sign_up),
            secs(warm_up)
        );
        settle(None).await?;
        let mut pids = vec![ident(&all)];
        pids.extend(receiver_pid.map(|p| (p, "receiver process".to_owned())));
        let clocked = flash_clock(
            client,
            receiver,
            (&base, &editor, &story),
            cfg.flash_endpoints,
            &pids,
        )
        .await?;
        Ok::<_, BoxError>(clocked.phase(0, (sign_up, warm_up), vec!["newsroom all".to_owned()]))
    }
    .await;
    if result.is_err() {
        eprintln!("--- all ---\n{}", all.log_tail());
    }
    all.stop().await;
    result
}

async fn flash_case(cfg: &Config) -> Res<FlashRun> {
    let load_start = load_average();
    let client = http_client()?;
    let (child, port) = newsroom_testkit::process::spawn_self(&[(RECEIVER_ENV, "1")]).await?;
    let receiver = format!("http://127.0.0.1:{port}");
    let mut phases = Vec::new();
    for copies in [1, 2, 4] {
        phases.push(flash_phase(cfg, copies, &receiver, child.id(), &client).await?);
    }
    eprintln!("  the same flash on one embedded process, unthrottled");
    phases.push(flash_embedded(cfg, &receiver, child.id(), &client).await?);
    Ok(FlashRun {
        endpoints: cfg.flash_endpoints,
        copy_cores: cfg.copy_cores,
        phases,
        load: (load_start, load_average()),
    })
}

// =============================================================================================
// 3. Relay vs direct

#[derive(Debug)]
struct Publish {
    took: Duration,
    cpu: CpuUse,
    events: u64,
    duplicates: u64,
    stored: u64,
}

impl Publish {
    fn rate(&self) -> f64 {
        self.events as f64 / self.took.as_secs_f64()
    }
}

/// One round: the feed read alone, the direct publisher, the relay.
#[derive(Debug)]
struct Round {
    /// `read_feed` pages of `RELAY_BATCH` and the serialisation of each event: the relay's work
    /// besides publishing.
    read: Duration,
    direct: Publish,
    relay: Publish,
}

#[derive(Debug)]
struct RelayRun {
    events: i64,
    fill: Duration,
    mean_body: f64,
    rounds: Vec<Round>,
    load: (String, String),
}

/// The relay's message for `e` as `Relay::message` builds it, but with the story id in place of
/// the subject (each run publishes to a stream, and so a subject prefix, of its own).
fn message(e: &newsroom_log::FeedEvent) -> Res<(String, async_nats::HeaderMap, Bytes)> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "Nats-Msg-Id",
        format!("{}:{}", e.story_id, e.sequence).as_str(),
    );
    headers.insert(POSITION_HEADER, e.position.to_string().as_str());
    Ok((
        e.story_id.clone(),
        headers,
        Bytes::from(serde_json::to_vec(e)?),
    ))
}

/// The baseline: the prepared messages published with async-nats, `RELAY_BATCH` publishes sent
/// before their acks are awaited, as the relay does.
async fn publish_direct(
    client: &async_nats::Client,
    stream: &Stream,
    messages: &[(String, async_nats::HeaderMap, Bytes)],
) -> Res<Publish> {
    let js = async_nats::jetstream::new(client.clone());
    js.get_or_create_stream(stream.settings.config()).await?;
    let cpu_before = cpu_snapshot();
    let started = Instant::now();
    let (mut events, mut duplicates) = (0, 0);
    for batch in messages.chunks(RELAY_BATCH) {
        let mut acks = Vec::with_capacity(batch.len());
        for (subject, headers, body) in batch {
            acks.push(
                js.publish_with_headers(subject.clone(), headers.clone(), body.clone())
                    .await?,
            );
        }
        for ack in acks {
            let ack = ack.await?;
            events += 1;
            if ack.duplicate {
                duplicates += 1;
            }
        }
    }
    let took = started.elapsed();
    let cpu = cpu_use(&cpu_before, &cpu_snapshot(), &[]);
    Ok(Publish {
        took,
        cpu,
        events,
        duplicates,
        stored: stream.messages(client).await?,
    })
}

/// The relay's reading and encoding alone: the whole feed in pages of `RELAY_BATCH`, each event
/// serialised as the relay serialises it (and dropped).
async fn read_only(log: &EventLog, head: i64) -> Res<Duration> {
    let started = Instant::now();
    let (mut after, mut bytes) = (0, 0usize);
    while after < head {
        let page = log.read_feed(after, RELAY_BATCH).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in &page {
            bytes += serde_json::to_vec(e)?.len();
        }
    }
    std::hint::black_box(bytes);
    Ok(started.elapsed())
}

async fn relay_case(cfg: &Config) -> Res<RelayRun> {
    let load_start = load_average();
    let db = Database::create(&cfg.database_url, "bench").await?;
    eprintln!("  filling a PostgreSQL log with {} events", cfg.events);
    let (log, fill) = fill_log(&db.url, cfg.events).await?;
    let head = log.current_head().await?;
    let client = async_nats::connect(&cfg.nats_url).await?;

    eprintln!("  preparing the direct publisher's messages");
    let mut messages = Vec::with_capacity(head as usize);
    let mut after = 0;
    loop {
        let page = log.read_feed(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in &page {
            messages.push(message(e)?);
        }
    }
    let mean_body =
        messages.iter().map(|m| m.2.len()).sum::<usize>() as f64 / messages.len().max(1) as f64;

    let mut rounds = Vec::new();
    for round in 1..=2 {
        eprintln!("  round {round}: feed read only");
        let read = read_only(&log, head).await?;

        // The same messages to a fresh stream each time: its subjects are its own.
        let direct = Stream::new(&cfg.nats_url);
        let prepared: Vec<_> = messages
            .iter()
            .map(|(story, h, b)| (direct.settings.subject(story), h.clone(), b.clone()))
            .collect();
        eprintln!("  round {round}: direct");
        let direct_run = publish_direct(&client, &direct, &prepared).await?;
        drop(prepared);
        drop(direct);

        eprintln!("  round {round}: relay");
        let relayed = Stream::new(&cfg.nats_url);
        let cpu_before = cpu_snapshot();
        let (took, events, duplicates) = relay_all(&log, &client, &relayed, head).await?;
        let cpu = cpu_use(&cpu_before, &cpu_snapshot(), &[]);
        let relay_run = Publish {
            took,
            cpu,
            events,
            duplicates,
            stored: relayed.messages(&client).await?,
        };
        drop(relayed);
        rounds.push(Round {
            read,
            direct: direct_run,
            relay: relay_run,
        });
    }
    drop(log);
    drop(db);
    Ok(RelayRun {
        events: head,
        fill,
        mean_body,
        rounds,
        load: (load_start, load_average()),
    })
}

// =============================================================================================
// Report

fn report_load(out: &mut String, runs: &[LoadRun], cfg: &Config) -> std::fmt::Result {
    writeln!(out, "### 1. Embedded vs scale-out, same load\n")?;
    writeln!(
        out,
        "{} stories; one subscriber with a webhook endpoint (axum receiver in the bench process) following each; one unrecorded development per story first. Then, on each deployment, two phases of {} s: (a) a fixed rate of {} `POST /v1/stories/{{id}}/developments` per second (open loop, round-robin over the stories), (b) {} reporters each keeping one POST in flight (closed loop: as fast as answered). Alert latency: POST answered → webhook arrived, per development. Projection lag: POST answered → `GET /v1/stories?limit=1&min_position=<its position>` answered by the read side (a sequential probe taking the newest answer each time). Commands/s counts 2xx answers; errors are non-2xx answers and transport failures.\n",
        cfg.stories, cfg.seconds, cfg.rate, cfg.reporters
    )?;
    let phases = runs.iter().map(|r| r.phases.len()).max().unwrap_or(0);
    for i in 0..phases {
        let title = match runs.iter().find_map(|r| r.phases.get(i)).map(|p| p.pace) {
            Some(Pace::Rate(rate)) => format!("(a) {rate} developments/s, open loop"),
            Some(Pace::Reporters(k)) => format!("(b) {k} reporters, closed loop"),
            None => continue,
        };
        writeln!(out, "#### {title}\n")?;
        writeln!(
            out,
            "| mode | commands/s (2xx) | errors | POST p50 / p99 | alerts | alert p50 | alert p99 | alert max | projection lag p50 / p99 (samples) |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
        for r in runs {
            let Some(p) = r.phases.get(i) else { continue };
            let (p50, p99, _) = quantiles(&p.post);
            let (a50, a99, amax) = quantiles(&p.alert);
            let (l50, l99, _) = quantiles(&p.lag);
            writeln!(
                out,
                "| {} | {} ({} in {:.1} s) | {} | {p50} / {p99} | {} arrived, {} missing, {} duplicate ids | {a50} | {a99} | {amax} | {l50} / {l99} ({}{}) |",
                r.mode.describe(),
                thousands(p.rate()),
                thousands(p.ok as f64),
                p.window.as_secs_f64(),
                p.errors,
                thousands(p.alert.len() as f64),
                p.alerts_missing,
                p.duplicates,
                p.lag.len(),
                if p.lag_timeouts > 0 {
                    format!(", {} not shown within 5 s", p.lag_timeouts)
                } else {
                    String::new()
                },
            )?;
        }
        writeln!(out)?;
        let find = |m: Mode| {
            runs.iter()
                .find(|r| r.mode == m)
                .and_then(|r| r.phases.get(i))
        };
        if let (Some(e), Some(s)) = (find(Mode::Embedded), find(Mode::ScaleOut)) {
            let ratio = |a: &Histogram<u64>, b: &Histogram<u64>, q: f64| {
                b.value_at_quantile(q) as f64 / a.value_at_quantile(q).max(1) as f64
            };
            writeln!(
                out,
                "- Scale-out ÷ embedded: commands/s {:.2}; alert p50 {:.2}, p99 {:.2}; projection lag p50 {:.2}, p99 {:.2}.",
                s.rate() / e.rate().max(f64::MIN_POSITIVE),
                ratio(&e.alert, &s.alert, 0.5),
                ratio(&e.alert, &s.alert, 0.99),
                ratio(&e.lag, &s.lag, 0.5),
                ratio(&e.lag, &s.lag, 0.99),
            )?;
        }
        for r in runs {
            let Some(p) = r.phases.get(i) else { continue };
            writeln!(
                out,
                "- {}: mean group-commit batch {}; {:.2} ms of CPU per command (newsroom processes, PostgreSQL and NATS together); CPU-seconds in the window: {}; 1-minute load average {} at the start, {} at the end.{}{}",
                match r.mode {
                    Mode::Embedded => "Embedded",
                    Mode::ScaleOut => "Scale-out",
                },
                match (p.batch, p.lock_share) {
                    (Some(b), Some(share)) if r.mode == Mode::ScaleOut => format!(
                        "{b:.1} appends per transaction, {:.1} % of the commands' time waiting for the append lock",
                        share * 100.0
                    ),
                    (Some(b), _) => format!("{b:.1} appends per transaction"),
                    (None, _) => "n/a".to_owned(),
                },
                p.cpu.system() * 1000.0 / p.ok.max(1) as f64,
                p.cpu.describe(),
                p.load.0,
                p.load.1,
                if p.repeats > 0 {
                    format!(" {} developments alerted twice under different ids.", p.repeats)
                } else {
                    String::new()
                },
                p.first_error
                    .as_ref()
                    .map(|e| format!(" First error: `{}`.", e.chars().take(200).collect::<String>()))
                    .unwrap_or_default(),
            )?;
        }
        writeln!(out)?;
    }
    for r in runs {
        writeln!(
            out,
            "- {}: processes healthy {} after spawn; idle for {} s after the warm-up, CPU-seconds: {}.",
            r.mode.describe(),
            secs(r.start_up),
            IDLE.as_secs(),
            r.idle.describe()
        )?;
    }
    writeln!(out)
}

fn report_reads(out: &mut String, r: &ReadRun, cfg: &Config) -> std::fmt::Result {
    writeln!(
        out,
        "### 2a. Read throughput with 1 and 2 projector copies\n"
    )?;
    writeln!(
        out,
        "Scale-out (command + projector processes, PostgreSQL, JetStream); one story of {} developments (`GET /v1/stories/{{id}}`, {} B); {} GETs in flight back to back for {} s after 1 s of warm-up, spread evenly over the copies; a request counts when its whole answer arrived, 200 and of the expected length. Order: 1 copy, 2 copies (the second started and caught up first), 1 copy again (the second stopped).\n",
        cfg.view_developments,
        thousands(r.view_bytes as f64),
        cfg.readers,
        cfg.seconds
    )?;
    writeln!(
        out,
        "| copies | GET/s | requests | errors | p50 | p99 | max |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for g in &r.runs {
        let (p50, p99, max) = quantiles(&g.latency);
        writeln!(
            out,
            "| {} | {} | {} | {} | {p50} | {p99} | {max} |",
            g.copies,
            thousands(g.rate),
            thousands(g.requests as f64),
            g.errors
        )?;
    }
    let e = &r.embedded;
    let (p50, p99, max) = quantiles(&e.latency);
    writeln!(
        out,
        "| embedded (`--role all`, SQLite), the baseline | {} | {} | {} | {p50} | {p99} | {max} |",
        thousands(e.rate),
        thousands(e.requests as f64),
        e.errors
    )?;
    writeln!(out)?;
    if let Some(first) = r.runs.first() {
        writeln!(
            out,
            "- PostgreSQL mode, 1 copy (first run) ÷ embedded, GET/s: {:.2} (target ≥ 0.8: {}). Embedded CPU-seconds in the measured {} s: {}.",
            first.rate / e.rate.max(1e-9),
            if first.rate >= 0.8 * e.rate { "met" } else { "**missed**" },
            cfg.seconds,
            e.cpu.describe()
        )?;
    }
    for g in &r.runs {
        writeln!(
            out,
            "- {} {}: CPU-seconds in the measured {} s: {}.",
            g.copies,
            if g.copies == 1 { "copy" } else { "copies" },
            cfg.seconds,
            g.cpu.describe()
        )?;
    }
    let ones: Vec<f64> = r
        .runs
        .iter()
        .filter(|g| g.copies == 1)
        .map(|g| g.rate)
        .collect();
    if let Some(two) = r.runs.iter().find(|g| g.copies == 2) {
        let one = ones.iter().sum::<f64>() / ones.len().max(1) as f64;
        writeln!(
            out,
            "- 2 copies ÷ mean of the 1-copy runs: {:.2}. 1-minute load average {} at the start, {} at the end.",
            two.rate / one.max(f64::MIN_POSITIVE),
            r.load.0,
            r.load.1
        )?;
    }
    writeln!(out)
}

fn report_catch_up(out: &mut String, c: &CatchUpRun) -> std::fmt::Result {
    writeln!(out, "### 2b. Projection catch-up with 1 and 2 copies\n")?;
    writeln!(
        out,
        "A PostgreSQL log of {} events ({} stories of {} events: opened, then developments), filled in-process through `CommandService` in {} and published to a fresh stream by `Relay` in {} (neither measured here). Then a fresh projector process (its own durable consumer; the views in PostgreSQL beside the log, empty) is started against it; then, the views emptied again, two at once, sharing them. Start-up: spawn → the first `/healthz` answer (the projector starts together with the HTTP server); applying: from there until `GET /v1/stories?limit=1&min_position=<head>` answers 200 on that copy.\n",
        thousands(c.events as f64),
        thousands((c.events as usize / EVENTS_PER_STORY) as f64),
        EVENTS_PER_STORY,
        secs(c.fill),
        secs(c.publish)
    )?;
    writeln!(
        out,
        "| run | copy | start-up | spawn → caught up | applying | events/s while applying |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    for (run, copies) in [("1 copy", &c.one), ("2 copies at once", &c.two)] {
        for u in copies.iter() {
            writeln!(
                out,
                "| {run} | {} | {} | {} | {} | {} |",
                u.copy,
                secs(u.start_up),
                secs(u.done),
                secs(u.applying()),
                thousands(c.events as f64 / u.applying().as_secs_f64())
            )?;
        }
    }
    let one = c
        .one
        .first()
        .map_or(f64::NAN, |u| c.events as f64 / u.applying().as_secs_f64());
    // The copies share the views: the events are applied once, by whichever copy takes a batch.
    let aggregate = c.events as f64 / c.two_wall.as_secs_f64();
    let single_wall = c
        .one
        .first()
        .map_or(f64::NAN, |u| c.events as f64 / u.done.as_secs_f64());
    writeln!(
        out,
        "\n- Events brought into the shared views per second, spawn to the last copy seeing the head: 1 copy {}, 2 copies {} ({:.2} ×). Per copy while applying: 1 copy {}, 2 copies {} and {}.",
        thousands(single_wall),
        thousands(aggregate),
        aggregate / single_wall,
        thousands(one),
        c.two
            .first()
            .map_or("–".into(), |u| thousands(c.events as f64 / u.applying().as_secs_f64())),
        c.two
            .get(1)
            .map_or("–".into(), |u| thousands(c.events as f64 / u.applying().as_secs_f64())),
    )?;
    writeln!(
        out,
        "- CPU-seconds, spawn to caught up: 1 copy: {}; 2 copies: {}.",
        c.cpu_one.describe(),
        c.cpu_two.describe()
    )?;
    writeln!(
        out,
        "- 1-minute load average {} at the start, {} at the end.\n",
        c.load.0, c.load.1
    )
}

fn report_notifiers(out: &mut String, n: &NotifierRun) -> std::fmt::Result {
    writeln!(out, "### 2c. Alerts with 1 and 2 notifier copies\n")?;
    writeln!(
        out,
        "Per run: a fresh PostgreSQL database and stream; the notifier processes started (each with its own durable consumer; subscribers, the queue and its checkpoint shared in PostgreSQL); one subscriber signed up through the first, with a webhook endpoint (an axum receiver in the bench process) and a subscription to an actor every development names; a log of {} events ({} stories of {EVENTS_PER_STORY}) filled in-process while they wait (not measured); then `Relay` publishes it, and the clock runs from the relay's start until every development's alert has arrived.\n",
        thousands(n.events as f64),
        thousands((n.events / EVENTS_PER_STORY) as f64),
    )?;
    writeln!(
        out,
        "| copies | developments | alerts arrived | relay start → last alert | alerts/s | same `webhook-id` twice | another id for an alerted development |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for p in &n.phases {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            p.copies,
            thousands(p.developments as f64),
            thousands(p.arrived as f64),
            secs(p.took),
            thousands(p.rate()),
            p.duplicates,
            p.repeats
        )?;
    }
    if let [one, two] = &n.phases[..] {
        writeln!(
            out,
            "\n- 2 copies ÷ 1 copy, alerts/s: {:.2} ×.",
            two.rate() / one.rate()
        )?;
    }
    for p in &n.phases {
        writeln!(
            out,
            "- CPU-seconds, {} cop{}: {}.",
            p.copies,
            if p.copies == 1 { "y" } else { "ies" },
            p.cpu.describe()
        )?;
    }
    writeln!(
        out,
        "- 1-minute load average {} at the start, {} at the end.\n",
        n.load.0, n.load.1
    )
}

fn report_relay(out: &mut String, r: &RelayRun) -> std::fmt::Result {
    writeln!(out, "### 3. Relay vs direct publishing\n")?;
    writeln!(
        out,
        "A PostgreSQL log of {} events ({} stories), filled in-process through `CommandService` in {} (not measured). Each publishing run sends all of them into a fresh JetStream stream (file storage, 1 replica, 2-minute duplicate window). Relay: `Relay::run_until_stopped` in the bench process, from its start (it creates the stream) until its published position reaches the head; it reads the feed from PostgreSQL {} events a round, serialises them, publishes them, and awaits their acks while it reads the next page (when the page was full). Direct: the same subjects, headers (`Nats-Msg-Id`, `{}`) and bodies (mean {:.0} B), prepared before the clock starts, published with async-nats, {} publishes then their acks. Feed read only: the relay's reading and serialising without publishing (`read_feed` pages of {}). One NATS connection for all. Each round: feed read, direct, relay.\n",
        thousands(r.events as f64),
        thousands((r.events as usize / EVENTS_PER_STORY) as f64),
        secs(r.fill),
        RELAY_BATCH,
        POSITION_HEADER,
        r.mean_body,
        RELAY_BATCH,
        RELAY_BATCH,
    )?;
    writeln!(
        out,
        "| round | case | time | events/s | acks marked duplicate | messages in the stream | relay ÷ direct |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for (i, round) in r.rounds.iter().enumerate() {
        writeln!(
            out,
            "| {} | feed read + serialise only | {} | {} | | | |",
            i + 1,
            secs(round.read),
            thousands(r.events as f64 / round.read.as_secs_f64()),
        )?;
        for (what, p) in [
            ("direct (async-nats)", &round.direct),
            ("Relay", &round.relay),
        ] {
            writeln!(
                out,
                "| {} | {what} | {} | {} | {} | {} | {} |",
                i + 1,
                secs(p.took),
                thousands(p.rate()),
                p.duplicates,
                thousands(p.stored as f64),
                if what == "Relay" {
                    format!("{:.2}", round.relay.rate() / round.direct.rate())
                } else {
                    String::new()
                }
            )?;
        }
    }
    let n = r.rounds.len().max(1) as f64;
    let relay = r.rounds.iter().map(|x| x.relay.rate()).sum::<f64>() / n;
    let direct = r.rounds.iter().map(|x| x.direct.rate()).sum::<f64>() / n;
    let ratio = relay / direct;
    writeln!(
        out,
        "\n- **Relay ÷ direct: {:.2}** (mean relay {} events/s ÷ mean direct {} events/s). Target ≥ 0.50: {}.",
        ratio,
        thousands(relay),
        thousands(direct),
        if ratio >= 0.5 { "met" } else { "**missed**" }
    )?;
    let serial: Vec<String> = r
        .rounds
        .iter()
        .map(|x| {
            format!(
                "{} + {} = {} against {}",
                secs(x.read),
                secs(x.direct.took),
                secs(x.read + x.direct.took),
                secs(x.relay.took)
            )
        })
        .collect();
    writeln!(
        out,
        "- Feed read + direct publish, added up, against the relay's time, per round: {}.",
        serial.join("; ")
    )?;
    for (i, round) in r.rounds.iter().enumerate() {
        writeln!(
            out,
            "- Round {}, CPU-seconds: direct: {}; relay: {}.",
            i + 1,
            round.direct.cpu.describe(),
            round.relay.cpu.describe()
        )?;
    }
    writeln!(
        out,
        "- 1-minute load average {} at the start, {} at the end.\n",
        r.load.0, r.load.1
    )
}

fn report_flash(out: &mut String, f: &FlashRun) -> std::fmt::Result {
    writeln!(
        out,
        "### 4. One flash development to {} webhook endpoints, notifier copies at {} core each\n",
        thousands(f.endpoints as f64),
        f.copy_cores
    )?;
    writeln!(
        out,
        "Per copy count: a fresh PostgreSQL database and stream; `--role command`, `--role projector` (unthrottled) and the notifier copies (`--role notifier`), each copy in a cgroup v1 `cpu` group of its own (`cpu.cfs_quota_us` {} of a `cpu.cfs_period_us` of 100,000; PostgreSQL and NATS unthrottled). One subscriber signed up through the API (webhook endpoint, subscription to the story at `min_urgency: flash`), {} more copied from its rows in SQL (one subscriber and one endpoint each, every other one subscribed to the story's tag `{FLASH_TAG}` instead). A routine development first, until every matcher partition has passed it (the copies load their subscription indexes then; not measured). PostgreSQL's vacuum, statistics and checkpoint of what the set-up wrote are run then, and the machine left until it is idle, so that no phase pays for an earlier one's background work. Then one `flash` development is POSTed; the clock runs from just before the POST until the receivers (the bench's own executable run as a helper process, every endpoint a path of its one port) have seen the 90% and the last alert, each counted once by `webhook-id`.\n",
        thousands((f.copy_cores * 100_000.0).round()),
        thousands((f.endpoints - 1) as f64),
    )?;
    writeln!(
        out,
        "| copies | alerts received | POST → first | POST → 90% | POST → 100% | alerts/s | ÷ 1 copy | target | same `webhook-id` twice | missing | CPU-s of each copy | CPU-s PostgreSQL |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    let one = f
        .phases
        .iter()
        .find(|p| p.copies == 1)
        .and_then(FlashPhase::rate);
    for p in &f.phases {
        let ratio = match (p.rate(), one) {
            (Some(r), Some(o)) if o > 0.0 => Some(r / o),
            _ => None,
        };
        let target = match p.copies {
            2 => Some(1.7),
            4 => Some(3.0),
            _ => None,
        };
        let copies = if p.copies == 0 {
            "embedded, unthrottled (90% ≤ 10 s: ".to_owned()
                + match p.t90 {
                    Some(t) if t <= Duration::from_secs(10) => "met)",
                    _ => "**missed**)",
                }
        } else {
            p.copies.to_string()
        };
        let copies_cpu: Vec<String> = p
            .copy_names
            .iter()
            .map(|n| format!("{:.1}", p.cpu_of(n)))
            .collect();
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            copies,
            thousands(p.arrived as f64),
            p.first.map_or_else(|| "–".into(), secs),
            p.t90.map_or_else(|| "–".into(), secs),
            p.t100.map_or_else(|| "–".into(), secs),
            p.rate().map_or_else(|| "–".into(), thousands),
            ratio.map_or_else(|| "–".into(), |r| format!("{r:.2}")),
            match (target, ratio) {
                (Some(t), Some(r)) =>
                    format!("≥ {t}: {}", if r >= t { "met" } else { "**missed**" }),
                (Some(t), None) => format!("≥ {t}: **missed**"),
                _ => String::new(),
            },
            p.duplicates,
            p.missing(),
            copies_cpu.join(" / "),
            p.cpu_of("PostgreSQL"),
        )?;
    }
    writeln!(out)?;
    writeln!(out, "- alerts/s = alerts received ÷ (POST → 100%); the ratio is that rate against 1 copy's in the same run.")?;
    // What an alert costs the whole machine, and so the most alerts/s its cores could carry
    // at that cost whatever the number of copies.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    for p in f.phases.iter().filter(|p| p.arrived > 0) {
        let per = |cpu: f64| cpu / p.arrived as f64 * 1e6;
        let copies: f64 = p.copy_names.iter().map(|n| p.cpu_of(n)).sum();
        // The system under test: every group but processes not its own (builds, say).
        let system: f64 = p
            .cpu
            .groups
            .iter()
            .filter(|(n, _)| n != "other processes")
            .map(|(_, s)| s)
            .sum();
        let ceiling = cores / (system / p.arrived as f64).max(1e-9);
        writeln!(
            out,
            "- {}: CPU per alert: notifier {:.0} µs, PostgreSQL {:.0} µs, receivers {:.0} µs; the whole system (every process but others') {:.0} µs, so {} cores carry at most {} alerts/s at that cost ({}).",
            match p.copies {
                0 => "embedded".to_owned(),
                1 => "1 copy".to_owned(),
                n => format!("{n} copies"),
            },
            per(copies),
            per(p.cpu_of("PostgreSQL")),
            per(p.cpu_of("receiver process")),
            per(system),
            cores,
            thousands(ceiling),
            match one {
                Some(o) if o > 0.0 && p.copies > 0 => format!("{:.2} × 1 copy's rate", ceiling / o),
                _ => "–".to_owned(),
            }
        )?;
    }
    for p in &f.phases {
        writeln!(
            out,
            "- {}: sign-up {}, index warm-up {}; CPU-seconds from the POST to the last alert: {}.",
            match p.copies {
                0 => "embedded".to_owned(),
                1 => "1 copy".to_owned(),
                n => format!("{n} copies"),
            },
            secs(p.sign_up),
            secs(p.warm_up),
            p.cpu.describe()
        )?;
    }
    writeln!(
        out,
        "- 1-minute load average {} at the start, {} at the end.\n",
        f.load.0, f.load.1
    )
}

fn main() -> Res<()> {
    if std::env::var_os(RECEIVER_ENV).is_some() {
        return run_flash_receiver();
    }
    // `cargo bench` passes `--bench`; filters are not supported (see `BENCH_SECTIONS`).
    let cfg = Config::from_env();
    let rt = runtime()?;
    let started = Started::now();

    let mut loads = Vec::new();
    if cfg.runs(1) {
        for mode in [Mode::Embedded, Mode::ScaleOut] {
            eprintln!("1. {}", mode.describe());
            loads.push(rt.block_on(load_case(mode, &cfg))?);
        }
    }
    let (mut reads, mut catch, mut notifiers) = (None, None, None);
    if cfg.runs(2) {
        eprintln!("2a. read throughput with projector copies");
        reads = Some(rt.block_on(read_case(&cfg))?);
        eprintln!("2b. projection catch-up with projector copies");
        catch = Some(rt.block_on(catch_up_case(&cfg))?);
        eprintln!("2c. alerts with notifier copies");
        notifiers = Some(rt.block_on(notifier_case(&cfg))?);
    }
    let relay = if cfg.runs(3) {
        eprintln!("3. relay vs direct");
        Some(rt.block_on(relay_case(&cfg))?)
    } else {
        None
    };
    let flash = if cfg.runs(4) {
        eprintln!("4. one flash development to many webhook endpoints");
        Some(rt.block_on(flash_case(&cfg))?)
    } else {
        None
    };

    let cores = cores();
    let env = format!(
        "BENCH_SECONDS={} BENCH_RATE={} BENCH_STORIES={} BENCH_REPORTERS={} BENCH_READERS={} BENCH_VIEW_DEVELOPMENTS={} BENCH_PREFILL={} BENCH_NOTIFIER_EVENTS={} BENCH_EVENTS={} BENCH_FLASH_ENDPOINTS={} BENCH_COPY_CORES={}",
        cfg.seconds,
        cfg.rate,
        cfg.stories,
        cfg.reporters,
        cfg.readers,
        cfg.view_developments,
        cfg.prefill,
        cfg.notifier_events,
        cfg.events,
        cfg.flash_endpoints,
        cfg.copy_cores
    ) + &sections_setting(&cfg.sections, &SECTIONS);
    let mut out = String::new();
    writeln!(out, "## Scale-out\n")?;
    writeln!(
        out,
        "Rerun: `{env} cargo bench -p newsroom --bench scale_out`\n"
    )?;
    writeln!(
        out,
        "{cores} CPUs visible; every process (the newsroom processes, PostgreSQL, NATS, the bench's load clients and webhook receiver) on this one machine; newsroom processes log at `warn`, rate limits off, durability defaults (SQLite log `synchronous = FULL`, PostgreSQL `synchronous_commit = on`); {}.\n",
        started.summary()
    )?;
    if !loads.is_empty() {
        report_load(&mut out, &loads, &cfg)?;
    }
    if let Some(r) = &reads {
        report_reads(&mut out, r, &cfg)?;
    }
    if let Some(c) = &catch {
        report_catch_up(&mut out, c)?;
    }
    if let Some(n) = &notifiers {
        report_notifiers(&mut out, n)?;
    }
    if let Some(r) = &relay {
        report_relay(&mut out, r)?;
    }
    if let Some(f) = &flash {
        report_flash(&mut out, f)?;
    }
    print!("{out}");
    Ok(())
}
