//! Long-history benchmark: what a 100,000-development story in a 1M-event log costs against a
//! 10-development story in a 10k-event log, each figure large ÷ small in one run (issue 13,
//! "Measured": write p50/p99, projector lag, alert latency, GET, `as_of` GET and the first write
//! after a restart ≤ 1.5; `as_of` GET ÷ current GET ≤ 2).
//!
//! A custom-harness binary (`cargo bench -p newsroom --bench long_history`) that prints a
//! Markdown report on stdout (progress goes to stderr). It runs two real `newsroom serve --role
//! all` processes of the release binary cargo builds for the bench (`CARGO_BIN_EXE_newsroom`),
//! embedded (SQLite), each in its own temporary directory on a free loopback port, with a
//! reporter token made by `newsroom token create` and rate limits off:
//!
//! - **small**: a log of `BENCH_SMALL_EVENTS` events (default 10,000), one story of 10
//!   developments, the measured one;
//! - **large**: a log of `BENCH_LOG_EVENTS` events (default 1,000,000), the measured story of
//!   `BENCH_LONG` developments (default 100,000).
//!
//! In both logs the rest is spread over one other story per 1,000 events (1,000 stories in the
//! large log, 10 in the small one), so an average story has the same shape in both and only the
//! log's length and the measured story's differ. Both logs are filled over HTTP: the stories are
//! opened, then `POST /v1/stories/{id}/developments` with `BENCH_FILL_REPORTERS` (default 16) in
//! flight, the measured story's developments spread evenly through the fill (one in ten at the
//! default sizes). The fill's time and rate are printed; then the bench waits for the server to
//! go quiet (the projector and the notifier caught up).
//!
//! Then, on each server and its measured story, in this order (each phase on the small server,
//! then the large one, the other idle):
//!
//! 1. **Reads**: `GET /v1/stories/{id}?limit=5` and `GET …?as_of=<when the story was half
//!    filed>&limit=5` (the small story then had 5 developments), 200 each, the two servers
//!    alternating; p50/p99, and `as_of` ÷ current.
//! 2. **First write after a restart**: SIGTERM, start on the same data, one write to another
//!    story (the process's own first write), then the timed POST to the measured story; median of
//!    3 restarts per server.
//! 3. **Writes**: 200 sequential POSTs to the measured story, p50/p99.
//! 4. **Projector lag and alert latency**: one subscriber signed up through the subscriber API
//!    with a webhook endpoint (an axum receiver in this process on 127.0.0.1, port 0) and a
//!    subscription to the measured story, and one SSE stream open on the story
//!    (`/v1/stories/{id}/stream`). After 5 unrecorded warm-up developments (the first webhook
//!    tells that the matcher has the subscription), 200 developments one at a time, each once
//!    the previous one's event and webhook arrived: projector lag is from the POST's answer to
//!    its event's `id:` on the stream (the views hold it: the stream reads committed changes);
//!    alert latency is from the POST's sending to its webhook's arrival (matched by the
//!    development id in the payload).
//!
//! Server RSS (after the fill and at the end) and the data directory's files are printed too.
//! Each phase has a deadline (`BENCH_TIMEOUT_SECS`, default 300; the fill
//! `BENCH_FILL_TIMEOUT_SECS`, default 3,600). `BENCH_NEWSROOM_BIN` runs another build of the
//! server; `BENCH_SERVER_ENV="NEWSROOM_A=1"` sets variables on both servers.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use newsroom_testkit::api::{
    alerted_development, development, post_development, slug, story, webhook_subscriber,
};
use newsroom_testkit::http::{by_deadline, post_json_to, start_receiver, timed_get, Failures};
use newsroom_testkit::procfs::{cpu_seconds, rss_bytes, settle};
use newsroom_testkit::report::{
    closing, cores, histogram, median, met_cell, quantile, ratio, ratio_cell, record, secs,
    table_head, table_row, thousands, us, Started,
};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::env_num;
use serde_json::json;
use uuid::Uuid;

use common::*;

/// Developments of the small log's measured story.
const SHORT: usize = 10;
/// Events per other story (one other story per this many events of the log).
const EVENTS_PER_STORY: usize = 1_000;
/// At most this many other stories.
const MAX_OTHERS: usize = 1_000;
/// Page size of the reads: the small story as of its middle holds 5 developments.
const PAGE: usize = SHORT / 2;
const GETS: usize = 200;
const RESTARTS: usize = 3;
const WRITES: usize = 200;
const PACED: usize = 200;
const WARM_UP: usize = 5;
/// How long one paced development may take to reach the stream and the webhook.
const ARRIVAL_CAP: Duration = Duration::from_secs(15);
/// The longest wait for a server to go quiet after a fill.
const SETTLE_CAP: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
struct Config {
    large_events: usize,
    long: usize,
    small_events: usize,
    reporters: usize,
    timeout: Duration,
    fill_timeout: Duration,
}

impl Config {
    fn from_env() -> Self {
        Self {
            large_events: env_num("BENCH_LOG_EVENTS", 1_000_000.0) as usize,
            long: (env_num("BENCH_LONG", 100_000.0) as usize).max(SHORT),
            small_events: env_num("BENCH_SMALL_EVENTS", 10_000.0) as usize,
            reporters: (env_num("BENCH_FILL_REPORTERS", 16.0) as usize).max(1),
            timeout: Duration::from_secs_f64(env_num("BENCH_TIMEOUT_SECS", 300.0)),
            fill_timeout: Duration::from_secs_f64(env_num("BENCH_FILL_TIMEOUT_SECS", 3_600.0)),
        }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }
}

// =============================================================================================
// A server under test

struct Server {
    name: &'static str,
    env: Env,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
    token: String,
    client: reqwest::Client,
    /// Wall time from spawn to healthy, per start.
    starts: Vec<Duration>,
}

/// One answered `POST …/developments`.
#[derive(Debug, Clone, Copy)]
struct Posted {
    id: Uuid,
    sent: Instant,
    answered: Instant,
    position: i64,
}

impl Posted {
    fn took(&self) -> Duration {
        self.answered - self.sent
    }
}

impl Server {
    async fn start(name: &'static str, cfg: &Config) -> Res<Self> {
        let dir = tempfile::tempdir()?;
        let env = Env::embedded().with("NEWSROOM_CONNECTIONS_PER_ADDRESS", "0");
        let token = env.reporter_token(&dir.path().join(name))?;
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .pool_max_idle_per_host(64)
            .build()?;
        let mut server = Self {
            name,
            env,
            dir,
            proc: None,
            token,
            client,
            starts: Vec::new(),
        };
        server.spawn().await?;
        Ok(server)
    }

    async fn spawn(&mut self) -> Res<()> {
        let mut proc = self.env.spawn("all", self.dir.path(), self.name)?;
        let took = proc.healthy(&self.client).await?;
        self.starts.push(took);
        self.proc = Some(proc);
        Ok(())
    }

    /// SIGTERM, then a new process on the same data. False when it had to be killed.
    async fn restart(&mut self) -> Res<bool> {
        let clean = match self.proc.take() {
            Some(p) => p.stop().await,
            None => true,
        };
        self.spawn().await?;
        Ok(clean)
    }

    async fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            p.stop().await;
        }
    }

    fn proc(&self) -> &Proc {
        self.proc.as_ref().expect("the server is running")
    }

    fn base(&self) -> &str {
        &self.proc().base
    }

    fn cpu(&self) -> f64 {
        cpu_seconds(self.proc().pid()).unwrap_or(f64::NAN)
    }

    fn rss(&self) -> u64 {
        rss_bytes(self.proc().pid()).unwrap_or(0)
    }

    fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join(self.name)
    }

    /// Waits until the server used at most 5 % of a core over a whole second, for at most `cap`;
    /// how long it waited and whether it got quiet.
    async fn settle(&self, cap: Duration) -> (Duration, bool) {
        let started = Instant::now();
        match settle(self.proc().pid(), cap, 0).await {
            Some(s) => (s.waited, s.quiet),
            None => (started.elapsed(), false),
        }
    }

    async fn open_story(&self, prefix: &str) -> Res<String> {
        let answer = post_json_to(
            &self.client,
            self.base(),
            "/v1/stories",
            Some(&self.token),
            &story(&slug(prefix)),
        )
        .await?;
        Ok(answer["id"].as_str().ok_or("no story id")?.to_owned())
    }

    /// One development with a fresh id; the error says what went wrong.
    async fn post(&self, story: &str) -> Result<Posted, String> {
        let id = Uuid::new_v4();
        let body = development(id);
        let sent = Instant::now();
        let position =
            post_development(&self.client, self.base(), &self.token, story, &body).await?;
        Ok(Posted {
            id,
            sent,
            answered: Instant::now(),
            position,
        })
    }

    /// `post`, counted in `failures` when it fails or runs past `deadline` (then `None`).
    async fn post_by(&self, story: &str, deadline: Instant, failures: &Failures) -> Option<Posted> {
        by_deadline(deadline, failures, "POST developments", self.post(story)).await
    }

    /// One GET; its time when it answered 200 in full.
    async fn get(&self, path_and_query: &str) -> Result<Duration, String> {
        timed_get(&self.client, self.base(), path_and_query).await
    }

    /// The data directory's files and their sizes, largest first.
    fn files(&self) -> Vec<(String, u64)> {
        let mut files: Vec<(String, u64)> = std::fs::read_dir(self.data_dir())
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| {
                        let meta = e.metadata().ok()?;
                        (meta.is_file() && meta.len() > 0)
                            .then(|| (e.file_name().to_string_lossy().into_owned(), meta.len()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort_by_key(|f| std::cmp::Reverse(f.1));
        files
    }
}

// =============================================================================================
// Filling a log

/// A log filled to its size: its measured story, when half of that story was filed, the cost.
#[derive(Debug)]
struct Filled {
    story: String,
    /// Another story (the process's own first write after a restart goes there).
    other: String,
    others: usize,
    developments: usize,
    long: usize,
    middle: DateTime<Utc>,
    took: Duration,
    cpu: f64,
    catch_up: Duration,
    caught_up: bool,
    timed_out: bool,
    failures: String,
}

impl Filled {
    fn events(&self) -> usize {
        self.developments + self.others + 1
    }
}

/// Opens the measured story and the others, then files developments until the log holds
/// `events` events, `long` of them on the measured story, spread evenly through the fill.
async fn fill(server: &Arc<Server>, events: usize, long: usize, cfg: &Config) -> Res<Filled> {
    let others = events.div_ceil(EVENTS_PER_STORY).clamp(1, MAX_OTHERS);
    let started = Instant::now();
    let cpu0 = server.cpu();
    let story = server.open_story("measured").await?;
    let mut other = Vec::with_capacity(others);
    for _ in 0..others {
        other.push(server.open_story("other").await?);
    }
    let total = events.saturating_sub(others + 1);
    let long = long.min(total);
    let (story, other) = (Arc::new(story), Arc::new(other));
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let long_done = Arc::new(AtomicUsize::new(0));
    let middle = Arc::new(Mutex::new(None::<DateTime<Utc>>));
    let failures = Arc::new(Failures::default());
    let deadline = Instant::now() + cfg.fill_timeout;
    let step = (total / 10).max(1);
    let mut tasks = Vec::new();
    for _ in 0..cfg.reporters.min(total) {
        let (server, story, other, next, done, long_done, middle, failures) = (
            server.clone(),
            story.clone(),
            other.clone(),
            next.clone(),
            done.clone(),
            long_done.clone(),
            middle.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                // Bresenham: item i is the measured story's when ⌊i·long/total⌋ steps.
                let measured = (i * long / total) != ((i + 1) * long / total);
                let target = if measured {
                    story.as_str()
                } else {
                    other[i % other.len()].as_str()
                };
                loop {
                    if Instant::now() >= deadline {
                        return;
                    }
                    if server.post_by(target, deadline, &failures).await.is_some() {
                        break;
                    }
                }
                if measured {
                    let l = long_done.fetch_add(1, Ordering::Relaxed) + 1;
                    if l == long / 2 {
                        *middle.lock().expect("middle lock") = Some(Utc::now());
                    }
                }
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d % step == 0 {
                    let s = started.elapsed().as_secs_f64();
                    eprintln!(
                        "  {}: {d} of {total} developments filed ({s:.0} s, {:.0}/s)",
                        server.name,
                        d as f64 / s
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let took = started.elapsed();
    let cpu = server.cpu() - cpu0;
    eprintln!(
        "  {}: filled in {}; waiting for the server to go quiet",
        server.name,
        secs(took)
    );
    let (catch_up, caught_up) = server.settle(SETTLE_CAP).await;
    let developments = done.load(Ordering::Relaxed);
    let middle = middle.lock().expect("middle lock").unwrap_or_else(Utc::now);
    Ok(Filled {
        story: story.to_string(),
        other: other[0].clone(),
        others,
        developments,
        long: long_done.load(Ordering::Relaxed),
        middle,
        took,
        cpu,
        catch_up,
        caught_up,
        timed_out: developments < total,
        failures: failures.describe(),
    })
}

// =============================================================================================
// 1. Reads

#[derive(Debug)]
struct Reads {
    current: Histogram<u64>,
    as_of: Histogram<u64>,
}

/// `GETS` GETs of each path on each server, alternating between the servers.
async fn reads(
    servers: [&Server; 2],
    fills: [&Filled; 2],
    cfg: &Config,
    failures: &Failures,
) -> [Reads; 2] {
    let deadline = cfg.deadline();
    let mut out = [
        Reads {
            current: histogram(),
            as_of: histogram(),
        },
        Reads {
            current: histogram(),
            as_of: histogram(),
        },
    ];
    for as_of in [false, true] {
        let paths: Vec<String> = fills
            .iter()
            .map(|f| {
                let mut p = format!("/v1/stories/{}?limit={PAGE}", f.story);
                if as_of {
                    write!(p, "&as_of={}", as_of_param(f.middle)).expect("writing to a String");
                }
                p
            })
            .collect();
        for _ in 0..GETS {
            for (i, server) in servers.iter().enumerate() {
                if Instant::now() >= deadline {
                    failures.add("reads: the deadline passed");
                    return out;
                }
                match server.get(&paths[i]).await {
                    Ok(took) => {
                        let h = if as_of {
                            &mut out[i].as_of
                        } else {
                            &mut out[i].current
                        };
                        record(h, took);
                    }
                    Err(e) => failures.add(e),
                }
            }
        }
    }
    out
}

// =============================================================================================
// 2. The first write after a restart

#[derive(Debug, Default)]
struct Restarts {
    /// The measured story's first write after each restart.
    story: Vec<Duration>,
    /// The process's own first write (to another story), before it.
    process: Vec<Duration>,
    killed: usize,
}

async fn restarts(
    servers: [&mut Server; 2],
    fills: [&Filled; 2],
    cfg: &Config,
    failures: &Failures,
) -> Res<[Restarts; 2]> {
    let mut out = [Restarts::default(), Restarts::default()];
    let [a, b] = servers;
    let servers = [a, b];
    for _ in 0..RESTARTS {
        for i in 0..2 {
            let (server, fill) = (&mut *servers[i], fills[i]);
            let deadline = cfg.deadline();
            if !server.restart().await? {
                out[i].killed += 1;
            }
            if let Some(p) = server.post_by(&fill.other, deadline, failures).await {
                out[i].process.push(p.took());
            }
            if let Some(p) = server.post_by(&fill.story, deadline, failures).await {
                out[i].story.push(p.took());
            }
        }
    }
    Ok(out)
}

// =============================================================================================
// 3. Writes

async fn writes(server: &Server, story: &str, cfg: &Config, failures: &Failures) -> Histogram<u64> {
    let deadline = cfg.deadline();
    let mut h = histogram();
    for _ in 0..WRITES {
        if let Some(p) = server.post_by(story, deadline, failures).await {
            record(&mut h, p.took());
        }
    }
    h
}

// =============================================================================================
// 4. Projector lag and alert latency

/// When each development's webhook and each position's stream event arrived.
#[derive(Debug, Default)]
struct Arrivals {
    webhooks: Mutex<HashMap<String, Instant>>,
    events: Mutex<HashMap<i64, Instant>>,
    webhook_count: AtomicUsize,
}

async fn receive(State(arrivals): State<Arc<Arrivals>>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    if let Some(id) = alerted_development(&body) {
        arrivals
            .webhooks
            .lock()
            .expect("webhooks lock")
            .entry(id)
            .or_insert(at);
    }
    arrivals.webhook_count.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

/// Reads a story's SSE stream (reqwest undoes the chunked coding) and notes when each `id:`
/// arrived, until the stream ends or the task is aborted.
async fn read_stream(mut response: reqwest::Response, arrivals: Arc<Arrivals>) {
    let mut text = Vec::<u8>::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let at = Instant::now();
        text.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = text[start..].iter().position(|b| *b == b'\n') {
            let line = &text[start..start + end];
            start += end + 1;
            if let Some(value) = line.strip_prefix(b"id:") {
                if let Ok(id) = String::from_utf8_lossy(value).trim().parse::<i64>() {
                    arrivals
                        .events
                        .lock()
                        .expect("events lock")
                        .entry(id)
                        .or_insert(at);
                }
            }
        }
        text.drain(..start);
    }
}

#[derive(Debug)]
struct Paced {
    lag: Histogram<u64>,
    alert: Histogram<u64>,
    /// Events that arrived on the stream before the POST's answer was read.
    early: usize,
    missing_events: usize,
    missing_webhooks: usize,
    warm_up: Duration,
}

async fn paced(
    server: &Server,
    story: &str,
    url: &str,
    arrivals: &Arc<Arrivals>,
    failures: &Failures,
) -> Res<Paced> {
    webhook_subscriber(
        &server.client,
        server.base(),
        "Wire desk",
        url,
        &json!({"story": story}),
    )
    .await?;
    // The stream's client has no overall timeout.
    let streaming = reqwest::Client::new();
    let response = streaming
        .get(format!("{}/v1/stories/{story}/stream", server.base()))
        .header("accept", "text/event-stream")
        .send()
        .await?;
    if response.status() != StatusCode::OK {
        return Err(format!("the story's stream answered {}", response.status()).into());
    }
    let reader = tokio::spawn(read_stream(response, arrivals.clone()));

    let wait = |posted: Posted| {
        let arrivals = arrivals.clone();
        async move {
            let cap = Instant::now() + ARRIVAL_CAP;
            let key = posted.id.to_string();
            loop {
                let event = arrivals
                    .events
                    .lock()
                    .expect("events lock")
                    .get(&posted.position)
                    .copied();
                let webhook = arrivals
                    .webhooks
                    .lock()
                    .expect("webhooks lock")
                    .get(&key)
                    .copied();
                if (event.is_some() && webhook.is_some()) || Instant::now() >= cap {
                    return (event, webhook);
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
    };

    let warm_started = Instant::now();
    for _ in 0..WARM_UP {
        let deadline = Instant::now() + ARRIVAL_CAP;
        if let Some(p) = server.post_by(story, deadline, failures).await {
            wait(p).await;
        }
    }
    let warm_up = warm_started.elapsed();

    let mut out = Paced {
        lag: histogram(),
        alert: histogram(),
        early: 0,
        missing_events: 0,
        missing_webhooks: 0,
        warm_up,
    };
    for _ in 0..PACED {
        let deadline = Instant::now() + ARRIVAL_CAP;
        let Some(p) = server.post_by(story, deadline, failures).await else {
            continue;
        };
        let (event, webhook) = wait(p).await;
        match event {
            Some(at) => {
                if at < p.answered {
                    out.early += 1;
                }
                record(&mut out.lag, at.saturating_duration_since(p.answered));
            }
            None => out.missing_events += 1,
        }
        match webhook {
            Some(at) => record(&mut out.alert, at.saturating_duration_since(p.sent)),
            None => out.missing_webhooks += 1,
        }
    }
    reader.abort();
    let _ = reader.await;
    Ok(out)
}

// =============================================================================================
// Report

fn mb(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MB", bytes as f64 / (1u64 << 20) as f64)
    }
}

fn ms(d: Duration) -> String {
    us((d.as_micros() as u64).max(1))
}

#[derive(Debug)]
struct Row {
    case: String,
    small: String,
    large: String,
    ratio: Option<f64>,
    target: &'static str,
    met: Option<bool>,
}

#[derive(Debug, Default)]
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    fn note(&mut self, s: impl Into<String>) {
        let s = s.into();
        eprintln!("  {s}");
        self.notes.push(s);
    }

    /// A row of two microsecond figures, large ÷ small against `limit`.
    fn micros(
        &mut self,
        case: impl Into<String>,
        small: Option<u64>,
        large: Option<u64>,
        limit: f64,
    ) {
        let ratio = ratio(large, small);
        let text = |v: Option<u64>| v.map_or_else(|| "–".into(), us);
        self.rows.push(Row {
            case: case.into(),
            small: text(small),
            large: text(large),
            ratio,
            target: if limit == 2.0 { "≤ 2" } else { "≤ 1.5" },
            met: Some(ratio.is_some_and(|r| r <= limit)),
        });
    }

    fn info(&mut self, case: impl Into<String>, small: String, large: String) {
        self.rows.push(Row {
            case: case.into(),
            small,
            large,
            ratio: None,
            target: "–",
            met: None,
        });
    }

    fn table(&self) -> String {
        let mut out = table_head(&["case", "small", "large", "large ÷ small", "target", "met"]);
        for r in &self.rows {
            let row = table_row(&[
                r.case.as_str(),
                &r.small,
                &r.large,
                &ratio_cell(r.ratio),
                r.target,
                met_cell(r.met),
            ]);
            writeln!(out, "{row}").expect("writing to a String");
        }
        out
    }
}

fn files_text(files: &[(String, u64)]) -> String {
    files
        .iter()
        .filter(|(_, size)| *size >= 1 << 20)
        .map(|(name, size)| format!("{name} {}", mb(*size)))
        .collect::<Vec<_>>()
        .join(", ")
}

// =============================================================================================
// The run

async fn run(cfg: &Config, r: &mut Report) -> Res<()> {
    eprintln!("starting the two servers (embedded, SQLite)");
    let mut small = Arc::new(Server::start("small", cfg).await?);
    let mut large = Arc::new(Server::start("large", cfg).await?);

    eprintln!("filling the small log: {} events", cfg.small_events);
    let fs = fill(&small, cfg.small_events, SHORT, cfg).await?;
    eprintln!(
        "filling the large log: {} events, {} on the measured story",
        cfg.large_events, cfg.long
    );
    let fl = fill(&large, cfg.large_events, cfg.long, cfg).await?;
    for (server, f) in [(&small, &fs), (&large, &fl)] {
        r.note(format!(
            "Fill, {}: {} events ({} developments on the measured story, {} on {} other stories) over HTTP, {} reporters in flight, in {} ({:.0} events/s, server CPU {:.0} s); quiet {} later{}{}; {}. RSS after the fill {}; files {}.",
            server.name,
            thousands(f.events() as f64),
            thousands(f.long as f64),
            thousands((f.developments - f.long) as f64),
            thousands(f.others as f64),
            cfg.reporters,
            secs(f.took),
            f.events() as f64 / f.took.as_secs_f64(),
            f.cpu,
            secs(f.catch_up),
            if f.caught_up { "" } else { " (**still busy**)" },
            if f.timed_out { " — **fill timed out**" } else { "" },
            f.failures,
            mb(server.rss()),
            files_text(&server.files()),
        ));
    }

    // 1. Reads
    eprintln!("1. reads");
    let failures = Failures::default();
    let [rs, rl] = reads([&*small, &*large], [&fs, &fl], cfg, &failures).await;
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        r.micros(
            format!("GET story `?limit={PAGE}` {name}"),
            quantile(&rs.current, q),
            quantile(&rl.current, q),
            1.5,
        );
    }
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        r.micros(
            format!("GET story `?as_of=<half filed>&limit={PAGE}` {name}"),
            quantile(&rs.as_of, q),
            quantile(&rl.as_of, q),
            1.5,
        );
    }
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        let as_of_ratio = |x: &Reads| ratio(quantile(&x.as_of, q), quantile(&x.current, q));
        let (s, l) = (as_of_ratio(&rs), as_of_ratio(&rl));
        let text = |v: Option<f64>| v.map_or_else(|| "–".into(), |v| format!("{v:.2}"));
        r.rows.push(Row {
            case: format!("`as_of` GET ÷ current GET {name} (ratio column: the large story's)"),
            small: text(s),
            large: text(l),
            ratio: l,
            target: "≤ 2",
            met: Some(l.is_some_and(|v| v <= 2.0)),
        });
    }
    r.note(format!(
        "1. {GETS} GETs per story and kind, the servers alternating; `as_of` = when the story's middle development was answered; {}.",
        failures.describe()
    ));

    // 2. Restarts
    eprintln!("2. the first write after a restart");
    let failures = Failures::default();
    let starts_before = [small.starts.len(), large.starts.len()];
    let [ts, tl] = restarts(
        [
            Arc::get_mut(&mut small).expect("one holder"),
            Arc::get_mut(&mut large).expect("one holder"),
        ],
        [&fs, &fl],
        cfg,
        &failures,
    )
    .await?;
    r.micros(
        "first write to the story after a restart (median of 3)",
        median(&ts.story).map(|d| d.as_micros() as u64),
        median(&tl.story).map(|d| d.as_micros() as u64),
        1.5,
    );
    let list = |v: &[Duration]| v.iter().map(|d| ms(*d)).collect::<Vec<_>>().join(", ");
    r.info(
        "the process's own first write (another story), each restart",
        list(&ts.process),
        list(&tl.process),
    );
    r.info(
        "start to healthy, each restart",
        list(&small.starts[starts_before[0]..]),
        list(&large.starts[starts_before[1]..]),
    );
    r.note(format!(
        "2. First writes to the story after each restart: small {}; large {}{}; {}.",
        list(&ts.story),
        list(&tl.story),
        if ts.killed + tl.killed > 0 {
            format!("; **{} stops needed SIGKILL**", ts.killed + tl.killed)
        } else {
            String::new()
        },
        failures.describe()
    ));

    // 3. Writes
    eprintln!("3. sequential writes");
    let failures = Failures::default();
    let ws = writes(&small, &fs.story, cfg, &failures).await;
    let wl = writes(&large, &fl.story, cfg, &failures).await;
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        r.micros(
            format!("write (POST development) {name}, {WRITES} sequential"),
            quantile(&ws, q),
            quantile(&wl, q),
            1.5,
        );
    }
    r.note(format!("3. {}.", failures.describe()));

    // 4. Projector lag and alerts
    eprintln!("4. projector lag and alert latency");
    let failures = Failures::default();
    let arrivals = Arc::new(Arrivals::default());
    let (url, _) = start_receiver("the webhook receiver".into(), receive, arrivals.clone()).await?;
    let ps = paced(&small, &fs.story, &url, &arrivals, &failures).await?;
    let pl = paced(&large, &fl.story, &url, &arrivals, &failures).await?;
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        r.micros(
            format!(
                "projector lag {name} (POST answered → the event's `id:` on the story's stream)"
            ),
            quantile(&ps.lag, q),
            quantile(&pl.lag, q),
            1.5,
        );
    }
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        r.micros(
            format!("alert latency {name} (POST sent → webhook received)"),
            quantile(&ps.alert, q),
            quantile(&pl.alert, q),
            1.5,
        );
    }
    for (server, p) in [(&small, &ps), (&large, &pl)] {
        r.note(format!(
            "4. {}: {} events and {} webhooks of {PACED} developments measured ({} events missing, {} webhooks missing after {} s each; {} events arrived before the POST's answer was read, counted as 0); warm-up of {WARM_UP} developments {}.",
            server.name,
            p.lag.len(),
            p.alert.len(),
            p.missing_events,
            p.missing_webhooks,
            ARRIVAL_CAP.as_secs(),
            p.early,
            secs(p.warm_up),
        ));
    }
    r.note(format!(
        "4. {}; webhooks received in all {}.",
        failures.describe(),
        arrivals.webhook_count.load(Ordering::Relaxed)
    ));

    r.info("server RSS at the end", mb(small.rss()), mb(large.rss()));
    r.info(
        "data files (≥ 1 MB)",
        files_text(&small.files()),
        files_text(&large.files()),
    );
    for s in [&mut small, &mut large] {
        if let Some(s) = Arc::get_mut(s) {
            s.stop().await;
        }
    }
    Ok(())
}

fn main() -> Res<()> {
    // `cargo bench` passes `--bench`; filters are not supported.
    let cfg = Config::from_env();
    let rt = runtime()?;
    let started = Started::now();
    let mut report = Report::default();
    let outcome = rt.block_on(run(&cfg, &mut report));

    let cores = cores();
    let env = format!(
        "BENCH_LOG_EVENTS={} BENCH_LONG={} BENCH_SMALL_EVENTS={} BENCH_FILL_REPORTERS={}",
        cfg.large_events, cfg.long, cfg.small_events, cfg.reporters,
    );
    let mut out = opening("Long history", &env, "long_history");
    writeln!(
        out,
        "{cores} CPUs visible; two `newsroom serve` processes (embedded, SQLite, logging at `warn`, rate limits off) and the bench's clients on this machine; {}. Small: {} events, measured story of {SHORT} developments; large: {} events, measured story of {} developments.\n",
        started.summary(),
        thousands(cfg.small_events as f64),
        thousands(cfg.large_events as f64),
        thousands(cfg.long as f64),
    )?;
    out.push_str(&report.table());
    out.push('\n');
    out.push_str(&closing(&report.notes, &outcome));
    print!("{out}");
    outcome
}
