//! Per-development benchmark: what recording one development over HTTP costs newsroom, against
//! the machine's ceiling for accepting a development durably (issue 17).
//!
//! A custom-harness binary (`cargo bench -p newsroom --bench per_development`) that prints a
//! Markdown report on stdout (progress goes to stderr). The ceiling is a **durable bare server**
//! built into this bench: this executable run again as a child process (`BENCH_BARE_DURABLE=FULL`
//! or `NORMAL`), an axum server on a multi-thread tokio runtime like newsroom's that parses the same
//! development JSON into typed fields (`deny_unknown_fields`, a UUID, an RFC 3339 time), serialises
//! it once, and hands it to one writer thread that group-commits whatever is queued into SQLite
//! (WAL, `synchronous` FULL or NORMAL, one prepared insert per development, one commit per batch,
//! SQLite's own automatic checkpoints) before answering 201 with the development's position. It
//! checks no token, keeps no per-story sequence, no hash chain, no views and no alerts: it is what
//! the durable append alone costs through the same HTTP stack.
//!
//! newsroom is the release binary cargo builds for the bench (`CARGO_BIN_EXE_newsroom`), started
//! as a real process, `serve --role all` in embedded mode (SQLite log, views and notifier queue) in
//! a temporary directory, with a reporter token made by `newsroom token create`, rate limits off
//! and no cap on connections per address; a fresh process and directory per case.
//!
//! The load is the same for both: `BENCH_REPORTERS` (default 16) reporters, each on its own story
//! (opened through the API on newsroom, tagged `elections`), each keeping one
//! `POST /v1/stories/{id}/developments` in flight, with the same reqwest client code, for
//! `BENCH_WARMUP_SECS` (default 3) and then a measured window of `BENCH_SECS` (default 10). Per
//! case: developments/s answered in the window, p50/p99 latency of the POSTs sent in it, and the
//! server's CPU (utime + stime of `/proc/<pid>/stat`, all threads) per development: over the
//! window ÷ developments answered in it, and from the window's start until the server is quiet
//! again (at most 5% of a core over a second, waited for at most `BENCH_SETTLE_SECS`, default 30;
//! what the projector and the notifier do after the last answer is counted) ÷ developments answered
//! from the window's start; and the bytes the server handed to `write`-like calls over the same
//! span (`wchar` of `/proc/<pid>/io`: database files, WAL and temporary files, and sockets) ÷ the
//! same developments. After each newsroom case a note gives, from its `/metrics`, how many
//! commands the log's writer committed per transaction and how many events the projector and the
//! matcher took per batch, over the whole run.
//!
//! 1. **FULL** (newsroom's default): the bare server at FULL, then newsroom at its defaults.
//!    Targets: rate ≥ 0.5× bare; CPU per development to quiet ≤ 100 µs.
//! 2. **NORMAL**: the bare server at NORMAL, then newsroom with `NEWSROOM_SQLITE_SYNCHRONOUS=normal`.
//!    Target: rate ≥ 0.5× bare at NORMAL.
//! 3. **100 subscribers** (`BENCH_SUBSCRIBERS`): newsroom at FULL with that many subscribers
//!    signed up through the subscriber API, each with a webhook endpoint on a receiver in this
//!    process (axum on 127.0.0.1) and a subscription to the tag `elections`, so every development
//!    matches every one of them; a development is sent (and all its webhooks awaited) before the
//!    load to know the matcher has them all. CPU per development with the alerts not counted as
//!    developments. Targets: CPU per development ≤ 150 µs; rate ≥ 0.5× the bare server at FULL of
//!    section 1.
//!
//! `BENCH_SECTIONS=1,3` picks sections; `BENCH_NEWSROOM_BIN` runs another build of the server;
//! `BENCH_SERVER_ENV="NEWSROOM_A=1"` sets variables on newsroom. `BENCH_PERF=<file>` records
//! `perf record -g` of the newsroom process over section 1's measured window into that file
//! (`perf report -i <file>` afterwards; `BENCH_PERF_ARGS="--call-graph dwarf -F 499"` instead of
//! `-g` unwinds the Rust frames, which have no frame pointers). The machine is shared with other work: the report gives
//! the 1-minute load average at the start and the end.

mod common;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use newsroom_testkit::api::{development, post_development, slug, story, webhook_subscriber};
use newsroom_testkit::http::{by_deadline, post_json_to, start_receiver, Failures};
use newsroom_testkit::process::{announce_port, spawn_self};
use newsroom_testkit::procfs::{cpu_seconds, settle, written_bytes};
use newsroom_testkit::report::{
    closing, cores, histogram, quantile_us, record, secs, table_head, thousands, verdict, Started,
};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::{env_num, sections, sections_setting};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use common::*;

/// The tag every bench story carries and every bench subscription follows.
const TAG: &str = "elections";
/// How long the matcher may take to know every subscriber.
const MATCHER_CAP: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Config {
    reporters: usize,
    warm_up: Duration,
    window: Duration,
    settle: Duration,
    subscribers: usize,
    sections: Vec<u8>,
    perf: Option<String>,
}

impl Config {
    fn from_env() -> Self {
        Self {
            reporters: (env_num("BENCH_REPORTERS", 16.0) as usize).max(1),
            warm_up: Duration::from_secs_f64(env_num("BENCH_WARMUP_SECS", 3.0)),
            window: Duration::from_secs_f64(env_num("BENCH_SECS", 10.0)),
            settle: Duration::from_secs_f64(env_num("BENCH_SETTLE_SECS", 30.0)),
            subscribers: (env_num("BENCH_SUBSCRIBERS", 100.0) as usize).max(1),
            sections: sections(&[1, 2, 3]),
            perf: std::env::var("BENCH_PERF").ok().filter(|p| !p.is_empty()),
        }
    }

    fn runs(&self, section: u8) -> bool {
        self.sections.contains(&section)
    }
}

// =============================================================================================
// The durable bare server

/// A development's source, as the API takes it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BareSource {
    name: String,
    kind: String,
    #[serde(default)]
    url: Option<String>,
}

/// A development as the API takes it, parsed into typed fields.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BareDevelopment {
    id: Uuid,
    kind: String,
    headline: String,
    body: String,
    occurred_at: DateTime<Utc>,
    actors: Vec<String>,
    source: BareSource,
    evidence: String,
    urgency: String,
}

/// One append for the writer: the story, the serialised development, where to answer.
type Append = (
    String,
    Vec<u8>,
    tokio::sync::oneshot::Sender<Result<i64, String>>,
);

/// The most appends one commit takes.
const BARE_BATCH: usize = 1024;

/// The writer thread: waits for an append, takes whatever else is queued, inserts them all in
/// one transaction and answers each once the commit returned.
fn bare_writer(mut conn: rusqlite::Connection, rx: std::sync::mpsc::Receiver<Append>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BARE_BATCH {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        let committed = (|| -> rusqlite::Result<Vec<i64>> {
            let tx = conn.transaction()?;
            let mut positions = Vec::with_capacity(batch.len());
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO events (story, body) VALUES (?1, ?2) RETURNING position",
                )?;
                for (story, body, _) in &batch {
                    positions.push(insert.query_row((story, body), |r| r.get(0))?);
                }
            }
            tx.commit()?;
            Ok(positions)
        })();
        match committed {
            Ok(positions) => {
                for ((_, _, answer), p) in batch.into_iter().zip(positions) {
                    let _ = answer.send(Ok(p));
                }
            }
            Err(e) => {
                for (_, _, answer) in batch {
                    let _ = answer.send(Err(e.to_string()));
                }
            }
        }
    }
}

async fn bare_record(
    State(appends): State<std::sync::mpsc::Sender<Append>>,
    UrlPath(story): UrlPath<Uuid>,
    Json(development): Json<BareDevelopment>,
) -> (StatusCode, Json<Value>) {
    let body = serde_json::to_vec(&development).expect("a development serialises");
    let (answer, answered) = tokio::sync::oneshot::channel();
    if appends.send((story.to_string(), body, answer)).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({})));
    }
    match answered.await {
        Ok(Ok(position)) => (
            StatusCode::CREATED,
            Json(json!({"id": development.id, "position": position})),
        ),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({}))),
    }
}

/// The bare server's process: opens `BENCH_BARE_DIR/bare.db`, prints its port, serves until
/// stdin closes.
fn bare_serve(synchronous: &str) -> Res<()> {
    let dir = std::env::var("BENCH_BARE_DIR")?;
    let conn = rusqlite::Connection::open(std::path::Path::new(&dir).join("bare.db"))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS events (
             position INTEGER PRIMARY KEY AUTOINCREMENT,
             story TEXT NOT NULL,
             body BLOB NOT NULL
         )",
    )?;
    let (appends, rx) = std::sync::mpsc::channel::<Append>();
    std::thread::Builder::new()
        .name("bare-writer".into())
        .spawn(move || bare_writer(conn, rx))?;
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(0);
    });
    let rt = runtime()?;
    rt.block_on(async {
        let listener = announce_port().await?;
        let app = Router::new()
            .route("/v1/stories/{id}/developments", post(bare_record))
            .with_state(appends);
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// The bare server, run as a child process of this bench.
struct Bare {
    child: tokio::process::Child,
    pid: u32,
    base: String,
    _dir: tempfile::TempDir,
}

impl Bare {
    async fn start(synchronous: &str) -> Res<Self> {
        let dir = tempfile::tempdir()?;
        let envs = [
            ("BENCH_BARE_DURABLE", std::ffi::OsStr::new(synchronous)),
            ("BENCH_BARE_DIR", dir.path().as_os_str()),
        ];
        let (child, port) = spawn_self(&envs).await?;
        let pid = child.id().ok_or("no pid")?;
        Ok(Self {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        })
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

// =============================================================================================
// newsroom

struct Newsroom {
    proc: Proc,
    token: String,
    _dir: tempfile::TempDir,
}

impl Newsroom {
    async fn start(client: &reqwest::Client, env: &Env) -> Res<Self> {
        let dir = tempfile::tempdir()?;
        let token = env.reporter_token(&dir.path().join("all"))?;
        let mut proc = env.spawn("all", dir.path(), "all")?;
        proc.healthy(client).await?;
        Ok(Self {
            proc,
            token,
            _dir: dir,
        })
    }

    async fn open_story(&self, client: &reqwest::Client) -> Res<String> {
        let mut body = story(&slug("perdev"));
        body["tags"] = json!([TAG, "cyber"]);
        let answer = post_json_to(
            client,
            &self.proc.base,
            "/v1/stories",
            Some(&self.token),
            &body,
        )
        .await?;
        Ok(answer["id"].as_str().ok_or("no story id")?.to_owned())
    }

    /// `n` subscribers, each with a webhook endpoint at `url` and a subscription to [`TAG`].
    async fn sign_up(&self, client: &reqwest::Client, n: usize, url: &str) -> Res<()> {
        for i in 0..n {
            let name = format!("Desk {i}");
            webhook_subscriber(client, &self.proc.base, &name, url, &json!({"tag": TAG})).await?;
        }
        Ok(())
    }

    async fn stop(self) {
        self.proc.stop().await;
    }
}

// =============================================================================================
// The webhook receiver

async fn receive(State(count): State<Arc<AtomicUsize>>) -> StatusCode {
    count.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

// =============================================================================================
// The load

/// What one server under load did.
#[derive(Debug)]
struct Load {
    window: Duration,
    /// Developments answered inside the window.
    in_window: usize,
    /// Developments answered from the window's start (the last ones in flight included).
    from_start: usize,
    latency: Histogram<u64>,
    cpu_window: f64,
    cpu_to_quiet: f64,
    /// Bytes the server wrote (files and sockets, `wchar`) from the window's start until quiet.
    written_to_quiet: u64,
    quiet: bool,
    waited: Duration,
    /// What newsroom's `/metrics` said of its stages' batching (none for the bare server).
    batching: Option<String>,
    /// Webhooks the receiver got in the window, and from its start until the server was quiet.
    hooks_window: usize,
    hooks_to_quiet: usize,
    failures: Arc<Failures>,
}

impl Load {
    fn rate(&self) -> f64 {
        self.in_window as f64 / self.window.as_secs_f64()
    }

    fn cpu_per_window(&self) -> f64 {
        self.cpu_window / self.in_window.max(1) as f64
    }

    fn cpu_per_to_quiet(&self) -> f64 {
        self.cpu_to_quiet / self.from_start.max(1) as f64
    }
}

/// `perf record -g` of `pid` into `path`, until [`stop_perf`].
fn start_perf(pid: u32, path: &str) -> Option<std::process::Child> {
    // BENCH_PERF_ARGS replaces `-g`, e.g. "--call-graph dwarf -F 499" to unwind Rust frames.
    let how = std::env::var("BENCH_PERF_ARGS").unwrap_or_else(|_| "-g".to_owned());
    match std::process::Command::new("perf")
        .arg("record")
        .args(how.split_whitespace())
        .args(["-q", "-o", path, "-p", &pid.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("  perf did not start: {e}");
            None
        }
    }
}

fn stop_perf(child: Option<std::process::Child>) {
    if let Some(mut c) = child {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status();
        let _ = c.wait();
    }
}

/// One reporter per story, each keeping one POST in flight through the warm-up and the window;
/// then waits for the server to be quiet.
#[allow(clippy::too_many_arguments)]
async fn drive(
    client: &reqwest::Client,
    base: &str,
    pid: u32,
    token: &str,
    stories: &[String],
    cfg: &Config,
    hooks: Option<&Arc<AtomicUsize>>,
    perf: Option<&str>,
) -> Load {
    let failures = Arc::new(Failures::default());
    let start = Instant::now() + cfg.warm_up;
    let end = start + cfg.window;
    let mut tasks = Vec::new();
    for story in stories {
        let (client, base, token, story, failures) = (
            client.clone(),
            base.to_owned(),
            token.to_owned(),
            story.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            while Instant::now() < end {
                let body = development(Uuid::new_v4());
                let sent = Instant::now();
                let posted = by_deadline(
                    end + Duration::from_secs(30),
                    &failures,
                    "POST developments",
                    post_development(&client, &base, &token, &story, &body),
                )
                .await;
                if posted.is_some() {
                    answered.push((sent, Instant::now()));
                }
            }
            answered
        }));
    }
    let hook_count = || hooks.map_or(0, |h| h.load(Ordering::Relaxed));
    tokio::time::sleep_until(start.into()).await;
    let cpu0 = cpu_seconds(pid).unwrap_or(f64::NAN);
    let written0 = written_bytes(pid).unwrap_or(0);
    let hooks0 = hook_count();
    let recording = perf.and_then(|p| start_perf(pid, p));
    tokio::time::sleep_until(end.into()).await;
    let cpu1 = cpu_seconds(pid).unwrap_or(f64::NAN);
    let hooks1 = hook_count();
    stop_perf(recording);
    let mut latency = histogram();
    let (mut in_window, mut from_start) = (0, 0);
    for t in tasks {
        for (sent, at) in t.await.unwrap_or_default() {
            if sent >= start && sent < end {
                record(&mut latency, at - sent);
            }
            if at >= start {
                from_start += 1;
                if at <= end {
                    in_window += 1;
                }
            }
        }
    }
    let settling = Instant::now();
    let (quiet, waited) = match settle(pid, cfg.settle, 0).await {
        Some(s) => (s.quiet, s.waited),
        None => (false, settling.elapsed()),
    };
    Load {
        window: cfg.window,
        in_window,
        from_start,
        latency,
        cpu_window: cpu1 - cpu0,
        cpu_to_quiet: cpu_seconds(pid).unwrap_or(f64::NAN) - cpu0,
        written_to_quiet: written_bytes(pid).unwrap_or(0).saturating_sub(written0),
        quiet,
        waited,
        batching: None,
        hooks_window: hooks1 - hooks0,
        hooks_to_quiet: hook_count() - hooks0,
        failures,
    }
}

async fn load_bare(client: &reqwest::Client, cfg: &Config, synchronous: &str) -> Res<Load> {
    eprintln!("bare server at {synchronous}");
    let bare = Bare::start(synchronous).await?;
    let stories: Vec<String> = (0..cfg.reporters)
        .map(|_| Uuid::new_v4().to_string())
        .collect();
    let load = drive(
        client, &bare.base, bare.pid, "bare", &stories, cfg, None, None,
    )
    .await;
    bare.stop().await;
    Ok(load)
}

/// newsroom with `env`, `subscribers` webhook subscribers (0: none).
async fn load_newsroom(
    client: &reqwest::Client,
    cfg: &Config,
    env: &Env,
    subscribers: usize,
    perf: Option<&str>,
    notes: &mut Vec<String>,
) -> Res<Load> {
    let server = Newsroom::start(client, env).await?;
    let mut stories = Vec::new();
    for _ in 0..cfg.reporters {
        stories.push(server.open_story(client).await?);
    }
    let hooks = Arc::new(AtomicUsize::new(0));
    if subscribers > 0 {
        let (url, _) =
            start_receiver("the webhook receiver".into(), receive, hooks.clone()).await?;
        let signing = Instant::now();
        server.sign_up(client, subscribers, &url).await?;
        // One development, all its webhooks awaited: the matcher then knows every subscriber.
        let probe = development(Uuid::new_v4());
        post_development(
            client,
            &server.proc.base,
            &server.token,
            &stories[0],
            &probe,
        )
        .await?;
        let cap = Instant::now() + MATCHER_CAP;
        while hooks.load(Ordering::Relaxed) < subscribers && Instant::now() < cap {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let got = hooks.load(Ordering::Relaxed);
        notes.push(format!(
            "{subscribers} subscribers signed up and the probe development's {got} webhooks received in {}.",
            secs(signing.elapsed())
        ));
        if got < subscribers {
            return Err(format!(
                "the probe development reached {got} of {subscribers} webhooks in {} s",
                MATCHER_CAP.as_secs()
            )
            .into());
        }
    }
    let (pid, base, token) = (
        server.proc.pid(),
        server.proc.base.clone(),
        server.token.clone(),
    );
    let mut load = drive(
        client,
        &base,
        pid,
        &token,
        &stories,
        cfg,
        (subscribers > 0).then_some(&hooks),
        perf,
    )
    .await;
    load.batching = batching(client, &base).await;
    server.stop().await;
    Ok(load)
}

/// How many events each stage took per transaction over the whole run, from `/metrics`.
async fn batching(client: &reqwest::Client, base: &str) -> Option<String> {
    let metrics = Metrics::read(client, base).await?;
    let value = |name: &str| metrics.sum(name).unwrap_or(0.0);
    let per = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let events = value("newsroom_projection_events_total");
    Some(format!(
        "batching over the whole run: the log's writer {:.1} commands per transaction ({} transactions); \
         the projector {:.1} events per batch ({} batches); the matcher {:.1} events per batch ({} batches).",
        per(value("newsroom_store_batch_size_sum"), value("newsroom_store_batch_size_count")),
        thousands(value("newsroom_store_batch_size_count")),
        per(events, value("newsroom_projection_batches_total")),
        thousands(value("newsroom_projection_batches_total")),
        per(events, value("newsroom_matcher_batches_total")),
        thousands(value("newsroom_matcher_batches_total")),
    ))
}

// =============================================================================================
// Report

fn micros(seconds: f64) -> String {
    if seconds.is_finite() {
        format!("{:.1} µs", seconds * 1e6)
    } else {
        "–".into()
    }
}

#[derive(Debug, Default)]
struct Report {
    /// Rows of the measurements table.
    loads: Vec<String>,
    /// Rows of the targets table.
    targets: Vec<String>,
    notes: Vec<String>,
}

impl Report {
    fn load(&mut self, case: &str, l: &Load) {
        if let Some(batching) = &l.batching {
            self.notes.push(format!("{case}: {batching}"));
        }
        let quiet = if l.quiet {
            format!(
                "{} (quiet after {})",
                micros(l.cpu_per_to_quiet()),
                secs(l.waited)
            )
        } else {
            format!(
                "{} (**not quiet** after {})",
                micros(l.cpu_per_to_quiet()),
                secs(l.waited)
            )
        };
        let hooks = if l.hooks_to_quiet > 0 {
            format!(
                "{} in the window, {} to quiet",
                thousands(l.hooks_window as f64),
                thousands(l.hooks_to_quiet as f64)
            )
        } else {
            "–".into()
        };
        let row = format!(
            "| {case} | {} | {} | {} | {} | {:.2} CPU-s | {} | {quiet} | {:.1} kB | {hooks} | {} |",
            thousands(l.rate()),
            thousands(l.in_window as f64),
            quantile_us(&l.latency, 0.5),
            quantile_us(&l.latency, 0.99),
            l.cpu_window,
            micros(l.cpu_per_window()),
            l.written_to_quiet as f64 / l.from_start.max(1) as f64 / 1000.0,
            l.failures.describe()
        );
        eprintln!("  {row}");
        self.loads.push(row);
    }

    fn target(&mut self, what: &str, result: String, target: &str, met: bool) {
        self.targets.push(format!(
            "| {what} | {result} | {target} | {} |",
            verdict(met)
        ));
    }

    fn ratio(&mut self, what: &str, newsroom: &Load, bare: &Load) {
        let r = newsroom.rate() / bare.rate();
        self.target(
            what,
            format!(
                "{:.2}× ({} ÷ {} /s)",
                r,
                thousands(newsroom.rate()),
                thousands(bare.rate())
            ),
            "≥ 0.5×",
            r >= 0.5,
        );
    }

    fn cpu(&mut self, what: &str, l: &Load, limit_us: f64) {
        let v = l.cpu_per_to_quiet() * 1e6;
        self.target(
            what,
            format!(
                "{} to quiet ({} in the window)",
                micros(l.cpu_per_to_quiet()),
                micros(l.cpu_per_window())
            ),
            &format!("≤ {limit_us:.0} µs"),
            l.quiet && v <= limit_us,
        );
    }
}

// =============================================================================================
// The run

async fn run(cfg: &Config, r: &mut Report) -> Res<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .build()?;
    let env = Env::embedded().with("NEWSROOM_CONNECTIONS_PER_ADDRESS", "0");
    let mut bare_full = None;
    if cfg.runs(1) {
        eprintln!("section 1: FULL");
        let bare = load_bare(&client, cfg, "FULL").await?;
        r.load("bare server, FULL", &bare);
        eprintln!("newsroom at FULL");
        let newsroom =
            load_newsroom(&client, cfg, &env, 0, cfg.perf.as_deref(), &mut r.notes).await?;
        r.load("newsroom, FULL (default)", &newsroom);
        r.ratio("write rate, FULL: newsroom ÷ bare", &newsroom, &bare);
        r.cpu(
            "CPU per development, FULL, no subscribers",
            &newsroom,
            100.0,
        );
        if let Some(p) = &cfg.perf {
            r.notes.push(format!(
                "`perf record -g` of newsroom over section 1's window: `{p}`."
            ));
        }
        bare_full = Some(bare);
    }
    if cfg.runs(2) {
        eprintln!("section 2: NORMAL");
        let bare = load_bare(&client, cfg, "NORMAL").await?;
        r.load("bare server, NORMAL", &bare);
        eprintln!("newsroom at NORMAL");
        let normal = env.clone().with("NEWSROOM_SQLITE_SYNCHRONOUS", "normal");
        let newsroom = load_newsroom(&client, cfg, &normal, 0, None, &mut r.notes).await?;
        r.load("newsroom, NORMAL", &newsroom);
        r.ratio("write rate, NORMAL: newsroom ÷ bare", &newsroom, &bare);
    }
    if cfg.runs(3) {
        eprintln!("section 3: {} subscribers", cfg.subscribers);
        let newsroom =
            load_newsroom(&client, cfg, &env, cfg.subscribers, None, &mut r.notes).await?;
        let case = format!("newsroom, FULL, {} webhook subscribers", cfg.subscribers);
        r.load(&case, &newsroom);
        r.cpu(
            &format!(
                "CPU per development, FULL, {} subscribers (alerts not counted)",
                cfg.subscribers
            ),
            &newsroom,
            150.0,
        );
        if let Some(bare) = &bare_full {
            r.ratio(
                &format!(
                    "write rate, FULL, {} subscribers: newsroom ÷ bare",
                    cfg.subscribers
                ),
                &newsroom,
                bare,
            );
        }
    }
    Ok(())
}

fn main() -> Res<()> {
    if let Ok(synchronous) = std::env::var("BENCH_BARE_DURABLE") {
        return bare_serve(&synchronous);
    }
    // `cargo bench` passes `--bench`; filters are not supported (see `BENCH_SECTIONS`).
    let cfg = Config::from_env();
    let rt = runtime()?;
    let started = Started::now();
    let mut report = Report::default();
    let outcome = rt.block_on(run(&cfg, &mut report));

    let cores = cores();
    let env = format!(
        "BENCH_REPORTERS={} BENCH_WARMUP_SECS={} BENCH_SECS={} BENCH_SUBSCRIBERS={}",
        cfg.reporters,
        cfg.warm_up.as_secs_f64(),
        cfg.window.as_secs_f64(),
        cfg.subscribers
    ) + &sections_setting(&cfg.sections, &[1, 2, 3]);
    let mut out = opening("Per development", &env, "per_development");
    writeln!(
        out,
        "{cores} CPUs visible, shared with other work; one server process at a time (the bare server or `newsroom serve --role all`, embedded, logging at `warn`, rate limits off), the bench's clients (and webhook receiver) in the bench's process on this machine; {}.\n",
        started.summary()
    )?;
    out.push_str(&table_head(&[
        "case",
        "developments/s",
        "in the window",
        "p50",
        "p99",
        "server CPU in the window",
        "CPU / development, window",
        "CPU / development, to quiet",
        "written / development, to quiet",
        "webhooks",
        "failures",
    ]));
    for row in &report.loads {
        writeln!(out, "{row}")?;
    }
    out.push('\n');
    out.push_str(&table_head(&["target", "result", "target", "met"]));
    for row in &report.targets {
        writeln!(out, "{row}")?;
    }
    out.push('\n');
    out.push_str(&closing(&report.notes, &outcome));
    print!("{out}");
    outcome
}
