//! Breaking-news benchmark: what a long story and thousands of live readers cost the server, each
//! figure as a ratio against a baseline measured in the same run (issue 13, "Measured").
//!
//! A custom-harness binary (`cargo bench -p newsroom --bench breaking_news`) that prints a Markdown
//! report on stdout (progress goes to stderr). It starts the release `newsroom` binary cargo builds
//! for the bench (`CARGO_BIN_EXE_newsroom`) as a real process, `serve --role all` in embedded mode
//! (SQLite) in a temporary directory on a free loopback port, with a reporter token made by
//! `newsroom token create`, rate limits off and the live-stream caps raised
//! (`NEWSROOM_LIVE_STREAMS_PER_ADDRESS` and `NEWSROOM_LIVE_STREAMS_TOTAL` = 1,000,000, and no cap
//! on connections per address) so that every
//! reader is let in. The load clients run in this process. A live reader is a raw tokio
//! `TcpStream` speaking HTTP/1.1 (`GET /v1/stories/{id}/stream`) with a small parser for chunked
//! transfer coding and server-sent events that notes when each event's `id:` arrived; it is cheap
//! enough that 10,000 of them fit here. The server's CPU time is its utime + stime from
//! `/proc/<pid>/stat`; its memory is `VmRSS` from `/proc/<pid>/status`.
//!
//! Set-up: a long story of `BENCH_LONG` developments (default 10,000), filed over HTTP as fast as
//! it goes by `BENCH_FILL_REPORTERS` reporters (default 4), and a short one of 10.
//!
//! 1. **Unrelated writes**: 200 sequential developments on a fresh short story, server CPU per write
//!    (CPU delta from the first write until the server is back to what it used before them — at
//!    most 30 s —, ÷ writes answered), with `BENCH_STREAMS` (default 1,000) streams open on the
//!    long story ÷ the same with none. Target ≤ 1.2.
//! 2. **Fan-out**: with the streams open, 20 developments on the long story, 250 ms apart (the next
//!    one waits for the previous answer if that is later); per development the time from sending
//!    the POST to each stream receiving the event whose `id:` is the position the POST answered;
//!    p50/p99 over all (stream, development) pairs, the streams that received all 20, and server CPU
//!    per delivered event per stream (CPU delta from the first POST until every stream had every
//!    event, ÷ (20 × streams)), and per event per further stream (that CPU less the baseline's, ÷
//!    (20 × (streams − 1))). Targets p99 ≤ 250 ms, all streams, ≤ 10 µs. Baseline: the same 20
//!    developments on a short story with one stream open on it (before the others open). The
//!    floor: the same number of streams on a bare broadcast server (this bench's executable run
//!    again as a child process: a tokio runtime, a task per connection, one `write` of each
//!    event's chunk per stream, events of the size newsroom's streams received), its CPU per
//!    event per stream measured the same way; newsroom's ÷ the floor.
//! 3. **Memory**: server RSS idle after the set-up, idle again right before the streams open
//!    (after the baselines' writes), with them open (and the peak while sections 1 and 2 ran), and
//!    3 s after they all closed. Targets: open < 1 GB; after ≤ 1.1 × idle right before they opened.
//!    Then a second cycle (idle, the streams open, the same 20-development fan-out, closed): RSS 3 s
//!    after ÷ idle right before, telling memory the streams keep from a high-water mark the
//!    first cycle left (page caches, the allocator's).
//! 4. **Reads, long vs short**: `GET /v1/stories/{id}?limit=5` p50/p99 (200 requests each,
//!    alternating between the two stories: pages of the same size, so that the ratio shows what
//!    the story's length costs),
//!    `GET /v1/stories/{id}?as_of=<when the story was half filed>&limit=5` likewise (the short
//!    story then had 5 developments); the first write after a restart (SIGTERM, start on the same data, one write to a
//!    third story to warm the process, then the timed POST on the story measured; median of 3
//!    restarts per story). Targets: long ÷ short ≤ 1.5; `as_of` ÷ current ≤ 2.
//! 5. **Sustained** (`BENCH_SUSTAINED_SECS`, default 60; 0 skips): 16 reporters on 16 fresh
//!    stories, each keeping one POST in flight; developments/s over the whole window ÷ over its first
//!    10 s. Target ≥ 0.8.
//!
//! Every request that fails is counted and its first messages printed. Each measured phase has its
//! own deadline (`BENCH_TIMEOUT_SECS`, default 300; the long fill `BENCH_FILL_TIMEOUT_SECS`, default
//! 900): a phase that runs out says so and reports what it saw by then. A guard kills the server if
//! its RSS passes `BENCH_MAX_RSS_MB` (default 8,000), so a server that grows with its readers cannot
//! take the machine down; what the killed process could not finish is reported as not run, and
//! sections 4 and 5 run on a new process started on the same data. `BENCH_SECTIONS=1,2,3,4,5`
//! picks sections; `BENCH_NEWSROOM_BIN` runs another build of the server than the one cargo made;
//! `BENCH_SERVER_ENV="NEWSROOM_A=1 NEWSROOM_B=2"` sets variables on the server.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use newsroom_testkit::api::{development, post_development, slug, story};
use newsroom_testkit::http::{by_deadline, post_json_to, timed_get, Failures};
use newsroom_testkit::process::{announce_port, spawn_self};
use newsroom_testkit::procfs::{cpu_seconds, rss_bytes, settle, Settled};
use newsroom_testkit::report::{
    closing, cores, histogram, median, met_cell, quantile, quantile_us, ratio, ratio_cell, record,
    secs, table_head, table_row, thousands, Started,
};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::{env_num, sections, sections_setting};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use uuid::Uuid;

use common::*;

/// Developments of the short stories.
const SHORT: usize = 10;
/// Sequential writes per case of section 1.
const WRITES: usize = 200;
/// Developments recorded while the streams watch (section 2).
const FANOUT: usize = 20;
const FANOUT_GAP: Duration = Duration::from_millis(250);
/// Requests per story and kind of GET (section 4).
const GETS: usize = 200;
/// Restarts per story for the first write after a restart (section 4).
const RESTARTS: usize = 3;
/// Reporters (and stories) of the sustained section.
const SUSTAINED_REPORTERS: usize = 16;
const FIRST_WINDOW: Duration = Duration::from_secs(10);
/// How long after the streams closed the memory is read.
const AFTER_CLOSE: Duration = Duration::from_secs(3);
/// Readers connecting at once (the rest wait), so the server's accept backlog never overflows.
const CONNECTING: usize = 256;
/// Why a case was not measured after the guard stepped in.
const KILLED: &str = "the server was killed by the RSS guard";
/// The longest wait for the server to go idle after a measured phase.
const SETTLE_CAP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Config {
    long: usize,
    streams: usize,
    sustained: Duration,
    fill_reporters: usize,
    timeout: Duration,
    fill_timeout: Duration,
    max_rss: u64,
    sections: Vec<u8>,
}

impl Config {
    fn from_env() -> Self {
        // 0 is a valid setting here (skip the section), which `env_num` does not accept.
        let sustained = std::env::var("BENCH_SUSTAINED_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| *v >= 0.0)
            .unwrap_or(60.0);
        Self {
            long: (env_num("BENCH_LONG", 10_000.0) as usize).max(SHORT),
            streams: (env_num("BENCH_STREAMS", 1_000.0) as usize).max(1),
            sustained: Duration::from_secs_f64(sustained),
            fill_reporters: (env_num("BENCH_FILL_REPORTERS", 4.0) as usize).max(1),
            timeout: Duration::from_secs_f64(env_num("BENCH_TIMEOUT_SECS", 300.0)),
            fill_timeout: Duration::from_secs_f64(env_num("BENCH_FILL_TIMEOUT_SECS", 900.0)),
            max_rss: (env_num("BENCH_MAX_RSS_MB", 8_000.0) * 1024.0 * 1024.0) as u64,
            sections: sections(&[1, 2, 3, 4, 5]),
        }
    }

    fn runs(&self, section: u8) -> bool {
        self.sections.contains(&section)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }
}

// =============================================================================================
// The server under test

/// Watches the server's RSS: keeps the peak, and kills the server past the limit.
#[derive(Debug, Default)]
struct Guard {
    pid: AtomicU32,
    peak: AtomicU64,
    tripped: AtomicBool,
}

impl Guard {
    fn watch(self: Arc<Self>, limit: u64) {
        tokio::spawn(async move {
            loop {
                let pid = self.pid.load(Ordering::Relaxed);
                if pid != 0 {
                    if let Some(rss) = rss_bytes(pid) {
                        self.peak.fetch_max(rss, Ordering::Relaxed);
                        if rss > limit && !self.tripped.swap(true, Ordering::Relaxed) {
                            eprintln!(
                                "  the server's RSS reached {} MB (limit {} MB): killing it",
                                rss >> 20,
                                limit >> 20
                            );
                            let _ = std::process::Command::new("kill")
                                .args(["-KILL", &pid.to_string()])
                                .status();
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    /// The peak since the last call.
    fn take_peak(&self) -> u64 {
        self.peak.swap(0, Ordering::Relaxed)
    }
}

struct Server {
    env: Env,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
    token: String,
    client: reqwest::Client,
    guard: Arc<Guard>,
    /// Wall time from spawn to healthy, per start.
    starts: Vec<Duration>,
}

/// One answered (or failed) `POST …/developments`.
#[derive(Debug, Clone, Copy)]
struct Posted {
    sent: Instant,
    took: Duration,
    position: i64,
}

impl Server {
    async fn start(cfg: &Config) -> Res<Self> {
        let dir = tempfile::tempdir()?;
        let env = Env::embedded()
            .with("NEWSROOM_LIVE_STREAMS_PER_ADDRESS", "1000000")
            .with("NEWSROOM_LIVE_STREAMS_TOTAL", "1000000")
            // The bench's readers all come from 127.0.0.1.
            .with("NEWSROOM_CONNECTIONS_PER_ADDRESS", "0");
        let token = env.reporter_token(&dir.path().join("all"))?;
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .pool_max_idle_per_host(64)
            .build()?;
        let guard = Arc::new(Guard::default());
        guard.clone().watch(cfg.max_rss);
        let mut server = Self {
            env,
            dir,
            proc: None,
            token,
            client,
            guard,
            starts: Vec::new(),
        };
        server.spawn().await?;
        Ok(server)
    }

    async fn spawn(&mut self) -> Res<()> {
        let mut proc = self.env.spawn("all", self.dir.path(), "all")?;
        let took = proc.healthy(&self.client).await?;
        self.guard.pid.store(proc.pid(), Ordering::Relaxed);
        self.starts.push(took);
        self.proc = Some(proc);
        Ok(())
    }

    /// SIGTERM, then a new process on the same data. False when it had to be killed.
    async fn restart(&mut self) -> Res<bool> {
        let clean = match self.proc.take() {
            Some(p) => {
                self.guard.pid.store(0, Ordering::Relaxed);
                p.stop().await
            }
            None => true,
        };
        self.spawn().await?;
        Ok(clean)
    }

    async fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            self.guard.pid.store(0, Ordering::Relaxed);
            p.stop().await;
        }
    }

    fn killed(&self) -> bool {
        self.guard.tripped.load(Ordering::Relaxed)
    }

    fn proc(&self) -> &Proc {
        self.proc.as_ref().expect("the server is running")
    }

    fn base(&self) -> &str {
        &self.proc().base
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.proc().port))
    }

    fn cpu(&self) -> f64 {
        cpu_seconds(self.proc().pid()).unwrap_or(f64::NAN)
    }

    fn rss(&self) -> u64 {
        rss_bytes(self.proc().pid()).unwrap_or(0)
    }

    /// Waits until the server is quiet: over a whole second it used at most 5% of a core above
    /// `floor` ticks (what it uses idle in this state, e.g. with streams open), for at most `cap`.
    /// Work a phase caused after its last answer (readers catching up) is so counted with it.
    /// Returns how long it waited, whether it got quiet, and the ticks of the last second.
    async fn settle(&self, cap: Duration, floor: u64) -> Settled {
        let Some(pid) = self.proc.as_ref().map(Proc::pid) else {
            return Settled::default();
        };
        settle(pid, cap, floor).await.unwrap_or_default()
    }

    async fn open_story(&self) -> Res<String> {
        let answer = post_json_to(
            &self.client,
            self.base(),
            "/v1/stories",
            Some(&self.token),
            &story(&slug("breaking")),
        )
        .await?;
        Ok(answer["id"].as_str().ok_or("no story id")?.to_owned())
    }

    /// One development with a fresh id; the error says what went wrong.
    async fn post(&self, story: &str) -> Result<Posted, String> {
        let body = development(Uuid::new_v4());
        let sent = Instant::now();
        let position =
            post_development(&self.client, self.base(), &self.token, story, &body).await?;
        Ok(Posted {
            sent,
            took: sent.elapsed(),
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
}

// =============================================================================================
// Filling stories

/// A story filed to its length: its id, when half of it was filed, the fill's cost.
#[derive(Debug)]
struct Filled {
    id: String,
    developments: usize,
    middle: DateTime<Utc>,
    took: Duration,
    cpu: f64,
    timed_out: bool,
}

/// Files `n` developments on a new story with `reporters` reporters at once; a failed filing is
/// counted and filed again.
async fn fill(
    server: &Arc<Server>,
    n: usize,
    reporters: usize,
    deadline: Instant,
    failures: &Arc<Failures>,
    progress: bool,
) -> Res<Filled> {
    let id = server.open_story().await?;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let middle = Arc::new(Mutex::new(None::<DateTime<Utc>>));
    let (started, cpu0) = (Instant::now(), server.cpu());
    let mut tasks = Vec::new();
    for _ in 0..reporters.min(n) {
        let (server, id, next, done, middle, failures) = (
            server.clone(),
            id.clone(),
            next.clone(),
            done.clone(),
            middle.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                loop {
                    if Instant::now() >= deadline {
                        return;
                    }
                    if server.post_by(&id, deadline, &failures).await.is_some() {
                        break;
                    }
                    if server.killed() {
                        return;
                    }
                }
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d == n / 2 {
                    *middle.lock().expect("middle lock") = Some(Utc::now());
                }
                if progress && d % 1000 == 0 {
                    eprintln!(
                        "  {d} of {n} developments filed ({:.0} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let developments = done.load(Ordering::Relaxed);
    let middle = middle.lock().expect("middle lock").unwrap_or_else(Utc::now);
    Ok(Filled {
        id,
        developments,
        middle,
        took: started.elapsed(),
        cpu: server.cpu() - cpu0,
        timed_out: developments < n,
    })
}

// =============================================================================================
// Live readers: raw HTTP/1.1 connections reading server-sent events

/// When each event id arrived on one stream.
#[derive(Debug, Default)]
struct ReaderLog {
    arrivals: Mutex<Vec<(i64, Instant)>>,
}

/// What a group of readers saw, together.
#[derive(Debug, Default)]
struct Shared {
    /// Answered 200 and are reading.
    open: AtomicUsize,
    /// Never got a 200 (connection refused, a 429/503 answer, …).
    refused: AtomicUsize,
    /// Ended after opening, while the bench still wanted them open.
    ended: AtomicUsize,
    /// Events with an id received by the group.
    events: AtomicUsize,
    /// Body bytes received by the group (chunk framing included).
    bytes: AtomicUsize,
    /// Why readers were refused or ended, and events of names no change has.
    reasons: Mutex<BTreeMap<String, usize>>,
}

impl Shared {
    fn note(&self, reason: String) {
        *self
            .reasons
            .lock()
            .expect("reasons lock")
            .entry(reason)
            .or_default() += 1;
    }
}

/// The change names a story's stream sends today (`changes_since`).
const CHANGE_NAMES: [&str; 6] = [
    "added",
    "corrected",
    "retracted",
    "story_revised",
    "story_closed",
    "story_reopened",
];

/// Decodes the body of an SSE answer as it arrives: the chunked transfer coding (when the answer
/// uses it), then the event stream's lines.
#[derive(Debug, Default)]
struct SseDecoder {
    chunked: bool,
    /// Undecoded chunked framing.
    raw: Vec<u8>,
    chunk: ChunkState,
    /// Event-stream bytes not yet split into lines.
    text: Vec<u8>,
    /// The event being read: its id and name.
    id: Option<i64>,
    event: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// The last chunk arrived: the server ended the stream.
    Done,
}

/// One complete event of the stream.
#[derive(Debug, PartialEq, Eq)]
struct SseEvent {
    id: Option<i64>,
    event: Option<String>,
}

impl SseDecoder {
    fn new(chunked: bool) -> Self {
        Self {
            chunked,
            ..Self::default()
        }
    }

    /// Feeds bytes of the body; the events completed by them. An error is a framing the decoder
    /// cannot follow.
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, String> {
        if self.chunked {
            self.raw.extend_from_slice(bytes);
            self.unchunk()?;
        } else {
            self.text.extend_from_slice(bytes);
        }
        Ok(self.lines())
    }

    fn done(&self) -> bool {
        self.chunk == ChunkState::Done
    }

    fn unchunk(&mut self) -> Result<(), String> {
        let mut at = 0;
        loop {
            match self.chunk {
                ChunkState::Size => {
                    let Some(end) = find(&self.raw[at..], b"\r\n") else {
                        break;
                    };
                    let line = std::str::from_utf8(&self.raw[at..at + end])
                        .map_err(|_| "a chunk size that is not text")?;
                    let hex = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(hex, 16)
                        .map_err(|_| format!("a bad chunk size {line:?}"))?;
                    at += end + 2;
                    self.chunk = if size == 0 {
                        ChunkState::Done
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    let n = left.min(self.raw.len() - at);
                    if n == 0 {
                        break;
                    }
                    self.text.extend_from_slice(&self.raw[at..at + n]);
                    at += n;
                    self.chunk = if n == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n)
                    };
                }
                ChunkState::DataEnd => {
                    if self.raw.len() - at < 2 {
                        break;
                    }
                    if &self.raw[at..at + 2] != b"\r\n" {
                        return Err("no CRLF after a chunk".into());
                    }
                    at += 2;
                    self.chunk = ChunkState::Size;
                }
                ChunkState::Done => break,
            }
        }
        self.raw.drain(..at);
        Ok(())
    }

    /// Splits the complete lines off `text` and interprets them (the SSE parsing rules: a blank
    /// line ends an event, `:` starts a comment, one space after the field's colon is dropped).
    fn lines(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let mut at = 0;
        while let Some(end) = self.text[at..].iter().position(|b| *b == b'\n') {
            let mut line = &self.text[at..at + end];
            at += end + 1;
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if line.is_empty() {
                if self.id.is_some() || self.event.is_some() {
                    events.push(SseEvent {
                        id: self.id.take(),
                        event: self.event.take(),
                    });
                }
                continue;
            }
            if line[0] == b':' {
                continue;
            }
            let (field, value) = match line.iter().position(|b| *b == b':') {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (line, &b""[..]),
            };
            let value = String::from_utf8_lossy(value);
            match field {
                b"id" => self.id = value.trim().parse::<i64>().ok(),
                b"event" => self.event = Some(value.into_owned()),
                _ => {}
            }
        }
        self.text.drain(..at);
        events
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The status and whether the body is chunked, from an answer's head (without the blank line).
fn parse_head(head: &[u8]) -> Result<(u16, bool), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| "an answer without a status line".to_owned())?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    });
    Ok((status, chunked))
}

/// One reader: connects, asks for the stream, and notes every event id's arrival until the
/// server ends the stream or the task is aborted.
async fn read_stream(
    addr: SocketAddr,
    path: Arc<str>,
    log: Arc<ReaderLog>,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
) {
    let permit = gate.acquire_owned().await;
    let refuse = |why: String| {
        shared.refused.fetch_add(1, Ordering::Relaxed);
        shared.note(format!("refused: {why}"));
    };
    let mut conn = match TcpStream::connect(addr).await {
        Ok(c) => c,
        Err(e) => return refuse(format!("connect: {}", e.kind())),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    );
    if let Err(e) = conn.write_all(request.as_bytes()).await {
        return refuse(format!("write: {}", e.kind()));
    }
    let mut buf = [0u8; 4096];
    let mut head = Vec::new();
    let body_start = loop {
        match conn.read(&mut buf).await {
            Ok(0) => return refuse("closed before answering".into()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return refuse(format!("read: {}", e.kind())),
        }
        if let Some(end) = find(&head, b"\r\n\r\n") {
            break end;
        }
        if head.len() > 64 * 1024 {
            return refuse("an answer head over 64 KiB".into());
        }
    };
    let (status, chunked) = match parse_head(&head[..body_start]) {
        Ok(h) => h,
        Err(e) => return refuse(e),
    };
    if status != 200 {
        return refuse(format!("status {status}"));
    }
    shared.open.fetch_add(1, Ordering::Relaxed);
    drop(permit);
    let mut decoder = SseDecoder::new(chunked);
    let mut pending = head.split_off(body_start + 4);
    drop(head);
    let end = loop {
        let at = Instant::now();
        let events = match decoder.feed(&pending) {
            Ok(e) => e,
            Err(e) => break format!("ended: {e}"),
        };
        pending.clear();
        for e in events {
            if let Some(name) = &e.event {
                if !CHANGE_NAMES.contains(&name.as_str()) {
                    shared.note(format!("event `{name}`"));
                }
            }
            if let Some(id) = e.id {
                log.arrivals.lock().expect("arrivals lock").push((id, at));
                shared.events.fetch_add(1, Ordering::Relaxed);
            }
        }
        if decoder.done() {
            break "ended: the server ended the stream".into();
        }
        match conn.read(&mut buf).await {
            Ok(0) => break "ended: the server closed the connection".into(),
            Ok(n) => {
                shared.bytes.fetch_add(n, Ordering::Relaxed);
                pending.extend_from_slice(&buf[..n]);
            }
            Err(e) => break format!("ended: read: {}", e.kind()),
        }
    };
    shared.ended.fetch_add(1, Ordering::Relaxed);
    shared.note(end);
}

/// A group of readers of one story's stream.
struct Readers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    logs: Vec<Arc<ReaderLog>>,
    shared: Arc<Shared>,
    /// How long until every reader was answered (or gave up).
    opening: Duration,
    timed_out: bool,
}

impl Readers {
    async fn open(addr: SocketAddr, story: &str, n: usize, deadline: Instant) -> Self {
        let path: Arc<str> = Arc::from(format!("/v1/stories/{story}/stream"));
        let shared = Arc::new(Shared::default());
        let gate = Arc::new(Semaphore::new(CONNECTING));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        let mut logs = Vec::with_capacity(n);
        for _ in 0..n {
            let log = Arc::new(ReaderLog::default());
            logs.push(log.clone());
            tasks.push(tokio::spawn(read_stream(
                addr,
                path.clone(),
                log,
                shared.clone(),
                gate.clone(),
            )));
        }
        let answered =
            || shared.open.load(Ordering::Relaxed) + shared.refused.load(Ordering::Relaxed);
        let mut timed_out = false;
        while answered() < n {
            if Instant::now() >= deadline {
                timed_out = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self {
            tasks,
            logs,
            shared,
            opening: started.elapsed(),
            timed_out,
        }
    }

    fn open_now(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed) - self.shared.ended.load(Ordering::Relaxed)
    }

    fn events(&self) -> usize {
        self.shared.events.load(Ordering::Relaxed)
    }

    fn bytes(&self) -> usize {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// (stream, position) pairs received, over `positions`.
    fn delivered(&self, positions: &[i64]) -> usize {
        self.logs
            .iter()
            .map(|log| {
                let arrivals = log.arrivals.lock().expect("arrivals lock");
                positions
                    .iter()
                    .filter(|p| arrivals.iter().any(|(id, _)| id == *p))
                    .count()
            })
            .sum()
    }

    fn describe(&self) -> String {
        let reasons = self.shared.reasons.lock().expect("reasons lock");
        let mut out = format!(
            "{} of {} streams answered 200 in {}{}; {} refused; {} ended while wanted",
            self.shared.open.load(Ordering::Relaxed),
            self.tasks.len(),
            secs(self.opening),
            if self.timed_out {
                " (**timed out** opening)"
            } else {
                ""
            },
            self.shared.refused.load(Ordering::Relaxed),
            self.shared.ended.load(Ordering::Relaxed),
        );
        if !reasons.is_empty() {
            let r: Vec<String> = reasons.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            write!(out, " ({})", r.join(", ")).expect("writing to a String");
        }
        out
    }

    /// Closes every connection (the tasks are aborted, their sockets dropped).
    async fn close(self) -> String {
        let described = self.describe();
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        described
    }
}

// =============================================================================================
// 1. Unrelated writes

#[derive(Debug, Default)]
struct WriteRun {
    ok: usize,
    cpu: f64,
    latency: Option<Histogram<u64>>,
    settle: Duration,
    settled: bool,
    timed_out: bool,
    /// The RSS guard killed the server during the phase.
    killed: bool,
}

impl WriteRun {
    fn cpu_per_write(&self) -> f64 {
        self.cpu / self.ok.max(1) as f64
    }
}

/// `WRITES` sequential developments on a fresh short story; CPU from the first until the server
/// is idle again.
async fn unrelated_writes(
    server: &Arc<Server>,
    cfg: &Config,
    failures: &Arc<Failures>,
    floor: u64,
) -> Res<WriteRun> {
    let story = fill(server, SHORT, 1, cfg.deadline(), failures, false)
        .await?
        .id;
    server.settle(SETTLE_CAP, floor).await;
    let deadline = cfg.deadline();
    let mut latency = histogram();
    let cpu0 = server.cpu();
    let mut ok = 0;
    let mut timed_out = false;
    for _ in 0..WRITES {
        if Instant::now() >= deadline || server.killed() {
            timed_out = true;
            break;
        }
        if let Some(p) = server.post_by(&story, deadline, failures).await {
            ok += 1;
            record(&mut latency, p.took);
        }
    }
    let after = server.settle(SETTLE_CAP, floor).await;
    Ok(WriteRun {
        ok,
        cpu: server.cpu() - cpu0,
        latency: Some(latency),
        settle: after.waited,
        settled: after.quiet,
        timed_out,
        killed: server.killed(),
    })
}

// =============================================================================================
// 2. Fan-out

#[derive(Debug, Default)]
struct FanOut {
    streams: usize,
    posted: usize,
    latency: Option<Histogram<u64>>,
    pairs: usize,
    missing: usize,
    complete: usize,
    cpu: f64,
    took: Duration,
    /// Bytes each stream received per event, on average (chunk framing included).
    frame_bytes: usize,
    timed_out: bool,
    killed: bool,
}

impl FanOut {
    /// Server CPU per delivered event per stream (the brief's measure: ÷ (20 × streams)).
    fn cpu_per_delivery(&self) -> f64 {
        self.cpu / (FANOUT * self.streams).max(1) as f64
    }
}

/// Where the events of a fan-out come from: developments filed on a newsroom story, or frames
/// the bare broadcast server is told to send.
enum Source<'a> {
    Newsroom(&'a Server, &'a str),
    Bare(&'a Bare),
}

impl Source<'_> {
    async fn post(&self, deadline: Instant, failures: &Failures) -> Option<Posted> {
        match self {
            Source::Newsroom(server, story) => server.post_by(story, deadline, failures).await,
            Source::Bare(bare) => match bare.publish().await {
                Ok(p) => Some(p),
                Err(e) => {
                    failures.add(format!("bare server: {e}"));
                    None
                }
            },
        }
    }

    fn cpu(&self) -> f64 {
        match self {
            Source::Newsroom(server, _) => server.cpu(),
            Source::Bare(bare) => cpu_seconds(bare.pid).unwrap_or(f64::NAN),
        }
    }

    fn killed(&self) -> bool {
        match self {
            Source::Newsroom(server, _) => server.killed(),
            Source::Bare(_) => false,
        }
    }
}

/// `FANOUT` developments (or frames), `FANOUT_GAP` apart, with `readers` open on their story.
async fn fan_out(
    source: &Source<'_>,
    readers: &Readers,
    deadline: Instant,
    failures: &Arc<Failures>,
) -> FanOut {
    let streams = readers.tasks.len();
    let watching = readers.open_now();
    let events0 = readers.events();
    let bytes0 = readers.bytes();
    let cpu0 = source.cpu();
    let started = Instant::now();
    let mut posted = Vec::new();
    let mut next = Instant::now();
    let mut timed_out = false;
    for _ in 0..FANOUT {
        tokio::time::sleep_until(next.into()).await;
        if Instant::now() >= deadline || source.killed() {
            timed_out = true;
            break;
        }
        next = Instant::now() + FANOUT_GAP;
        if let Some(p) = source.post(deadline, failures).await {
            posted.push(p);
        }
    }
    // The count of events is a cheap sign that delivery may be complete; only the positions
    // tell (a POST that timed out may still have been recorded, and its event counts too).
    let goal = events0 + posted.len() * watching;
    let positions: Vec<i64> = posted.iter().map(|p| p.position).collect();
    loop {
        if source.killed() {
            break;
        }
        let counted = readers.events() >= goal;
        if counted && readers.delivered(&positions) >= posted.len() * watching {
            break;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
        // The scan of every stream's arrivals is not repeated every 2 ms.
        let pause = if counted { 50 } else { 2 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    let took = started.elapsed();
    let cpu = source.cpu() - cpu0;
    let received = readers.events() - events0;
    let frame_bytes = (readers.bytes() - bytes0) / received.max(1);
    let mut latency = histogram();
    let (mut pairs, mut missing, mut complete) = (0, 0, 0);
    for log in &readers.logs {
        let arrivals = log.arrivals.lock().expect("arrivals lock");
        let first: HashMap<i64, Instant> =
            arrivals.iter().rev().map(|(id, at)| (*id, *at)).collect();
        let mut all = posted.len() == FANOUT;
        for p in &posted {
            match first.get(&p.position) {
                Some(at) => {
                    pairs += 1;
                    record(&mut latency, at.saturating_duration_since(p.sent));
                }
                None => {
                    missing += 1;
                    all = false;
                }
            }
        }
        if all {
            complete += 1;
        }
    }
    FanOut {
        streams,
        posted: posted.len(),
        latency: Some(latency),
        pairs,
        missing,
        complete,
        cpu,
        took,
        frame_bytes,
        timed_out,
        killed: source.killed(),
    }
}

// =============================================================================================
// 2. The floor: a bare broadcast server

/// A child process of this bench (`BENCH_BARE_SSE` set, see [`bare_serve`]): the least a server
/// can do to hand one event to many open streams — a multi-thread tokio runtime like the
/// server's, a task per connection, one `write` of the chunk per stream — so that its CPU per
/// event per stream, measured the same way as the server's, is the machine's floor for it:
/// mostly the kernel's TCP work, which on loopback includes the receiving side's (the receiver's
/// stack runs in the sender's softirq and is charged to the sender).
struct Bare {
    child: tokio::process::Child,
    stdin: tokio::sync::Mutex<tokio::process::ChildStdin>,
    pid: u32,
    port: u16,
    /// Bytes of each frame's event (the chunk framing comes on top).
    size: usize,
    next: std::sync::atomic::AtomicI64,
}

impl Bare {
    async fn start(size: usize) -> Res<Self> {
        let (mut child, port) = spawn_self(&[("BENCH_BARE_SSE", "1")]).await?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let pid = child.id().ok_or("no pid")?;
        Ok(Self {
            child,
            stdin: tokio::sync::Mutex::new(stdin),
            pid,
            port,
            size,
            next: std::sync::atomic::AtomicI64::new(1),
        })
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Tells the server to send the next frame to every stream.
    async fn publish(&self) -> Res<Posted> {
        let position = self.next.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let mut stdin = self.stdin.lock().await;
        stdin
            .write_all(format!("{position} {}\n", self.size).as_bytes())
            .await?;
        stdin.flush().await?;
        Ok(Posted {
            sent,
            took: sent.elapsed(),
            position,
        })
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The bare broadcast server's process: prints its port, then sends a frame of `size` bytes with
/// id `n` to every open stream for each line `n size` read from stdin; exits when stdin closes.
fn bare_serve() -> Res<()> {
    use tokio::io::AsyncBufReadExt;
    let rt = runtime()?;
    rt.block_on(async {
        let listener = announce_port().await?;
        let (tx, _) = tokio::sync::broadcast::channel::<Arc<[u8]>>(1024);
        let frames = tx.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut words = line.split_whitespace();
                let (Some(id), Some(size)) = (words.next(), words.next()) else {
                    continue;
                };
                let size: usize = size.parse().unwrap_or(1_000);
                let head = format!("id: {id}\nevent: added\ndata: {{\"pad\":\"");
                let pad = size.saturating_sub(head.len() + 4);
                let event = format!("{head}{}\"}}\n\n", "x".repeat(pad));
                let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                let _ = frames.send(Arc::from(chunk.into_bytes()));
            }
            std::process::exit(0);
        });
        loop {
            let (mut conn, _) = listener.accept().await?;
            let _ = conn.set_nodelay(true);
            let mut rx = tx.subscribe();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while find(&head, b"\r\n\r\n").is_none() {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
                if conn.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                while let Ok(frame) = rx.recv().await {
                    if conn.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            });
        }
    })
}

// =============================================================================================
// 4. Reads and the first write after a restart

#[derive(Debug)]
struct Reads {
    current: [Histogram<u64>; 2],
    as_of: [Histogram<u64>; 2],
    cpu: f64,
    timed_out: bool,
}

/// `GETS` GETs of `paths[0]` and `paths[1]`, alternating.
async fn gets(
    server: &Server,
    paths: [&str; 2],
    deadline: Instant,
    failures: &Failures,
) -> ([Histogram<u64>; 2], bool) {
    let mut h = [histogram(), histogram()];
    for _ in 0..GETS {
        for (i, path) in paths.iter().enumerate() {
            if Instant::now() >= deadline || server.killed() {
                return (h, true);
            }
            match tokio::time::timeout_at(deadline.into(), server.get(path)).await {
                Ok(Ok(took)) => record(&mut h[i], took),
                Ok(Err(e)) => failures.add(e),
                Err(_) => failures.add(format!("GET {path}: no answer before the deadline")),
            }
        }
    }
    (h, false)
}

async fn reads(
    server: &Server,
    long: &Filled,
    short: &Filled,
    cfg: &Config,
    failures: &Failures,
) -> Reads {
    let deadline = cfg.deadline();
    let cpu0 = server.cpu();
    // Pages of one size everywhere: the short story as of when it was half filed holds
    // SHORT / 2 developments, so every page (current and `as_of`, long and short) holds that many.
    let page = SHORT / 2;
    let (l, s) = (
        format!("/v1/stories/{}?limit={page}", long.id),
        format!("/v1/stories/{}?limit={page}", short.id),
    );
    let (current, t1) = gets(server, [&l, &s], deadline, failures).await;
    let (la, sa) = (
        format!("{l}&as_of={}", as_of_param(long.middle)),
        format!("{s}&as_of={}", as_of_param(short.middle)),
    );
    let (as_of, t2) = gets(server, [&la, &sa], deadline, failures).await;
    Reads {
        current,
        as_of,
        cpu: server.cpu() - cpu0,
        timed_out: t1 || t2,
    }
}

#[derive(Debug, Default)]
struct Restarts {
    /// First-write times after a restart: long story, short story.
    first: [Vec<Duration>; 2],
    killed: usize,
    timed_out: bool,
}

/// Per restart: SIGTERM, start, one write to `warm` (the process's own first write), then the
/// timed first write to the story measured; the stories take turns.
async fn restarts(
    server: &mut Server,
    stories: [&str; 2],
    warm: &str,
    cfg: &Config,
    failures: &Failures,
) -> Res<Restarts> {
    let deadline = cfg.deadline();
    let mut out = Restarts::default();
    for _ in 0..RESTARTS {
        for (i, story) in stories.iter().enumerate() {
            if Instant::now() >= deadline || server.killed() {
                out.timed_out = true;
                return Ok(out);
            }
            if !server.restart().await? {
                out.killed += 1;
            }
            server.post_by(warm, deadline, failures).await;
            if let Some(p) = server.post_by(story, deadline, failures).await {
                out.first[i].push(p.took);
            }
        }
    }
    Ok(out)
}

// =============================================================================================
// 5. Sustained

#[derive(Debug, Default)]
struct Sustained {
    first: usize,
    first_cpu: f64,
    all: usize,
    cpu: f64,
    window: Duration,
}

impl Sustained {
    fn first_rate(&self) -> f64 {
        self.first as f64 / FIRST_WINDOW.min(self.window).as_secs_f64()
    }

    fn rate(&self) -> f64 {
        self.all as f64 / self.window.as_secs_f64()
    }
}

async fn sustained(server: &Arc<Server>, cfg: &Config, failures: &Arc<Failures>) -> Res<Sustained> {
    let mut stories = Vec::new();
    for _ in 0..SUSTAINED_REPORTERS {
        stories.push(server.open_story().await?);
    }
    let window = cfg.sustained;
    let first_window = FIRST_WINDOW.min(window);
    let started = Instant::now();
    let end = started + window;
    let cpu0 = server.cpu();
    let answered = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let mut tasks = Vec::new();
    for story in stories {
        let (server, answered, failures) = (server.clone(), answered.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            // A POST still in flight at the end is let finish but not counted.
            while Instant::now() < end && !server.killed() {
                if server
                    .post_by(&story, end + Duration::from_secs(30), &failures)
                    .await
                    .is_some()
                {
                    let at = Instant::now();
                    if at <= end {
                        answered.lock().expect("answered lock").push(at);
                    }
                }
            }
        }));
    }
    tokio::time::sleep_until((started + first_window).into()).await;
    let first_cpu = server.cpu() - cpu0;
    for t in tasks {
        t.await?;
    }
    let cpu = server.cpu() - cpu0;
    let answered = answered.lock().expect("answered lock");
    Ok(Sustained {
        first: answered
            .iter()
            .filter(|a| **a <= started + first_window)
            .count(),
        first_cpu,
        all: answered.len(),
        cpu,
        window,
    })
}

// =============================================================================================
// Report

#[derive(Debug)]
struct Row {
    case: String,
    result: String,
    baseline: String,
    ratio: Option<f64>,
    target: String,
    met: Option<bool>,
}

impl Row {
    fn new(case: impl Into<String>, result: impl Into<String>) -> Self {
        Self {
            case: case.into(),
            result: result.into(),
            baseline: "–".into(),
            ratio: None,
            target: "–".into(),
            met: None,
        }
    }

    fn baseline(mut self, b: impl Into<String>) -> Self {
        self.baseline = b.into();
        self
    }

    fn ratio(mut self, r: f64) -> Self {
        if r.is_finite() {
            self.ratio = Some(r);
        }
        self
    }

    fn target(mut self, t: impl Into<String>, met: bool) -> Self {
        self.target = t.into();
        self.met = Some(met);
        self
    }
}

fn ms(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "–".into();
    }
    let micros = seconds * 1e6;
    if micros < 1000.0 {
        format!("{micros:.1} µs")
    } else if micros < 1e6 {
        format!("{:.2} ms", micros / 1000.0)
    } else {
        format!("{seconds:.2} s")
    }
}

fn mb(bytes: u64) -> String {
    format!("{} MB", thousands((bytes >> 20) as f64))
}

fn div(a: Option<u64>, b: Option<u64>) -> f64 {
    ratio(a, b).unwrap_or(f64::NAN)
}

/// Everything the sections found, for the report.
#[derive(Debug, Default)]
struct Findings {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Findings {
    fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    fn note(&mut self, s: impl Into<String>) {
        let s = s.into();
        eprintln!("  {s}");
        self.notes.push(s);
    }

    fn skipped(&mut self, section: &str, why: &str) {
        self.row(Row::new(section, format!("not run: {why}")));
    }

    /// A case the server could not be measured on because it failed (killed, timed out): the
    /// target is missed.
    fn failed(&mut self, case: &str, why: &str, target: &str) {
        self.row(Row::new(case, format!("**not measured**: {why}")).target(target, false));
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = table_head(&["case", "result", "baseline", "ratio", "target", "met"]);
    for r in rows {
        let row = table_row(&[
            r.case.as_str(),
            &r.result,
            &r.baseline,
            &ratio_cell(r.ratio),
            &r.target,
            met_cell(r.met),
        ]);
        writeln!(out, "{row}").expect("writing to a String");
    }
    out
}

// =============================================================================================
// The run

async fn run(cfg: &Config, f: &mut Findings) -> Res<()> {
    eprintln!("starting the server (embedded, SQLite) with the live-stream caps raised");
    let mut server = Arc::new(Server::start(cfg).await?);
    f.note(format!(
        "The server started in {} with `NEWSROOM_LIVE_STREAMS_PER_ADDRESS=1000000 NEWSROOM_LIVE_STREAMS_TOTAL=1000000` set; idle RSS {}.",
        secs(server.starts[0]),
        mb(server.rss())
    ));

    let needs_long = [1, 2, 3, 4].iter().any(|s| cfg.runs(*s));
    let needs_streams = [1, 2, 3].iter().any(|s| cfg.runs(*s));
    let (mut long, mut short) = (None, None);
    if needs_long {
        eprintln!(
            "filling the long story: {} developments, {} reporters",
            cfg.long, cfg.fill_reporters
        );
        let failures = Arc::new(Failures::default());
        let deadline = Instant::now() + cfg.fill_timeout;
        let l = fill(
            &server,
            cfg.long,
            cfg.fill_reporters,
            deadline,
            &failures,
            true,
        )
        .await?;
        f.note(format!(
            "Set-up: long story of {} developments filed in {} ({:.0} developments/s, server CPU {:.1} s){}; {}.",
            thousands(l.developments as f64),
            secs(l.took),
            l.developments as f64 / l.took.as_secs_f64(),
            l.cpu,
            if l.timed_out { " — **fill timed out**" } else { "" },
            failures.describe()
        ));
        let failures = Arc::new(Failures::default());
        let s = fill(&server, SHORT, 1, cfg.deadline(), &failures, false).await?;
        f.note(format!(
            "Set-up: short story of {} developments; {}.",
            s.developments,
            failures.describe()
        ));
        long = Some(l);
        short = Some(s);
    }

    let idle = if needs_streams {
        server.settle(SETTLE_CAP, 0).await;
        Some(server.rss())
    } else {
        None
    };

    // Baselines first, with no stream open anywhere.
    let failures1 = Arc::new(Failures::default());
    let failures2 = Arc::new(Failures::default());
    let mut write_base = None;
    let mut floor = 0;
    if cfg.runs(1) {
        eprintln!("1. unrelated writes, no stream open");
        write_base = Some(unrelated_writes(&server, cfg, &failures1, floor).await?);
    }
    let mut fan_base = None;
    if cfg.runs(2) {
        eprintln!("2. fan-out baseline: one stream on a short story");
        let story = fill(&server, SHORT, 1, cfg.deadline(), &failures2, false)
            .await?
            .id;
        let readers = Readers::open(server.addr(), &story, 1, cfg.deadline()).await;
        server.settle(SETTLE_CAP, 0).await;
        let run = fan_out(
            &Source::Newsroom(&server, &story),
            &readers,
            cfg.deadline(),
            &failures2,
        )
        .await;
        let described = readers.close().await;
        f.note(format!("2. Baseline stream: {described}."));
        fan_base = Some(run);
    }

    let (mut write_streams, mut fan) = (None, None);
    let (mut open_rss, mut peak_rss, mut after_rss) = (None, None, None);
    // (idle, after) of the second open/close cycle.
    let mut second_cycle = None;
    // Idle again right before the streams open, after the baselines' writes warmed the server's
    // caches: what the streams are compared with when they are gone.
    let mut idle_before = None;
    if needs_streams {
        let long = long.as_ref().expect("the long story was filled");
        server.settle(SETTLE_CAP, 0).await;
        idle_before = Some(server.rss());
        eprintln!("opening {} streams on the long story", cfg.streams);
        let readers = Readers::open(server.addr(), &long.id, cfg.streams, cfg.deadline()).await;
        let opened = server.settle(SETTLE_CAP, 0).await;
        // What the open streams cost with nothing happening: later phases wait for that, not 0.
        floor = opened.ticks;
        if !server.killed() {
            open_rss = Some(server.rss());
        }
        f.note(format!(
            "Streams: {}; {} after they opened the server was {} ({} % of a core in the last second).",
            readers.describe(),
            secs(opened.waited),
            if opened.quiet { "quiet" } else { "still busy" },
            opened.ticks
        ));
        server.guard.take_peak();
        if cfg.runs(1) && !server.killed() {
            eprintln!("1. unrelated writes, {} streams open", cfg.streams);
            write_streams = Some(unrelated_writes(&server, cfg, &failures1, floor).await?);
        }
        if cfg.runs(2) && !server.killed() {
            eprintln!("2. fan-out to {} streams", cfg.streams);
            let run = fan_out(
                &Source::Newsroom(&server, &long.id),
                &readers,
                cfg.deadline(),
                &failures2,
            )
            .await;
            fan = Some(run);
        }
        peak_rss = Some(server.guard.take_peak());
        let described = readers.close().await;
        f.note(format!("Streams at the end: {described}."));
        if !server.killed() {
            tokio::time::sleep(AFTER_CLOSE).await;
            after_rss = Some(server.rss());
        }
        // A second cycle on the same server: idle, the streams open, the same fan-out, closed.
        // What the first cycle left that a second one does not add to is a high-water mark
        // (caches, the allocator's), not memory the streams keep.
        if cfg.runs(3) && !server.killed() {
            eprintln!(
                "3. a second cycle: {} streams open and close again",
                cfg.streams
            );
            server.settle(SETTLE_CAP, 0).await;
            let idle = server.rss();
            let readers = Readers::open(server.addr(), &long.id, cfg.streams, cfg.deadline()).await;
            server.settle(SETTLE_CAP, 0).await;
            fan_out(
                &Source::Newsroom(&server, &long.id),
                &readers,
                cfg.deadline(),
                &failures2,
            )
            .await;
            readers.close().await;
            if !server.killed() {
                tokio::time::sleep(AFTER_CLOSE).await;
                second_cycle = Some((idle, server.rss()));
            }
        }
    }
    // The floor of section 2: the same streams and events on a bare broadcast server.
    let mut floor_run = None;
    if let (true, Some(run)) = (cfg.runs(2), fan.as_ref()) {
        // The event's bytes without the chunk framing (size line and two CRLFs).
        let size = run.frame_bytes.saturating_sub(8).max(64);
        eprintln!(
            "2. the floor: a bare broadcast server, {} streams, frames of {size} B",
            cfg.streams
        );
        let bare = Bare::start(size).await?;
        let readers = Readers::open(bare.addr(), "bare", cfg.streams, cfg.deadline()).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let run = fan_out(&Source::Bare(&bare), &readers, cfg.deadline(), &failures2).await;
        let described = readers.close().await;
        f.note(format!("2. Floor streams: {described}."));
        bare.stop().await;
        floor_run = Some((size, run));
    }

    // 1.
    if cfg.runs(1) {
        let base = write_base.as_ref().expect("measured");
        let case = format!(
            "1. CPU per write to a short story, {} streams open on a {}-development story",
            thousands(cfg.streams as f64),
            thousands(long.as_ref().map_or(0, |l| l.developments) as f64)
        );
        match &write_streams {
            Some(w) if w.ok == 0 => f.failed(
                &case,
                if w.killed {
                    KILLED
                } else {
                    "no write answered before the deadline"
                },
                "≤ 1.2",
            ),
            Some(w) => {
                let ratio = w.cpu_per_write() / base.cpu_per_write();
                // A phase cut short by its deadline or the guard missed, whatever its ratio.
                let met = ratio <= 1.2 && !w.timed_out && !w.killed;
                f.row(
                    Row::new(
                        case,
                        format!(
                            "{} ({} writes, server CPU {:.2} s)",
                            ms(w.cpu_per_write()),
                            w.ok,
                            w.cpu
                        ),
                    )
                    .baseline(format!(
                        "{} ({} writes, no streams, server CPU {:.2} s)",
                        ms(base.cpu_per_write()),
                        base.ok,
                        base.cpu
                    ))
                    .ratio(ratio)
                    .target("≤ 1.2", met),
                );
                let (wl, bl) = (
                    w.latency.as_ref().expect("measured"),
                    base.latency.as_ref().expect("measured"),
                );
                f.row(
                    Row::new(
                        "1. write latency p50 / p99 (same writes)",
                        format!("{} / {}", quantile_us(wl, 0.5), quantile_us(wl, 0.99)),
                    )
                    .baseline(format!(
                        "{} / {}",
                        quantile_us(bl, 0.5),
                        quantile_us(bl, 0.99)
                    ))
                    .ratio(div(quantile(wl, 0.99), quantile(bl, 0.99))),
                );
            }
            None => f.failed(&case, KILLED, "≤ 1.2"),
        }
        if let (Some(row), true) = (
            f.rows.last_mut(),
            write_streams.as_ref().is_none_or(|w| w.ok == 0),
        ) {
            row.baseline = format!(
                "{} ({} writes, no streams, server CPU {:.2} s)",
                ms(base.cpu_per_write()),
                base.ok,
                base.cpu
            );
        }
        let runs = [
            ("no streams", Some(base)),
            ("streams open", write_streams.as_ref()),
        ];
        for (name, run) in runs {
            let Some(run) = run else { continue };
            if run.killed {
                f.note(format!(
                    "1. {name}: {} of {WRITES} writes answered before {KILLED}.",
                    run.ok
                ));
                continue;
            }
            f.note(format!(
                "1. {name}: {} of {WRITES} writes in time{}; CPU counted until the server was {} ({} after the last answer).",
                run.ok,
                if run.timed_out { " (**timed out**)" } else { "" },
                if run.settled { "quiet" } else { "**still busy** (cut off)" },
                secs(run.settle)
            ));
        }
        f.note(format!("1. {}.", failures1.describe()));
    }

    // 2.
    if cfg.runs(2) {
        let base = fan_base.as_ref().expect("measured");
        let bl = base.latency.as_ref().expect("measured");
        match &fan {
            Some(r) => {
                let l = r.latency.as_ref().expect("measured");
                let p99 = quantile(l, 0.99);
                // Every development posted and delivered, neither deadline nor guard stepping in.
                let whole = r.posted == FANOUT && r.missing == 0 && !r.timed_out && !r.killed;
                f.row(
                    Row::new(
                        format!(
                            "2. fan-out p99: POST → every stream's `id:` ({} streams, {} developments)",
                            thousands(r.streams as f64),
                            r.posted
                        ),
                        quantile_us(l, 0.99),
                    )
                    .baseline(format!("{} (1 stream, short story)", quantile_us(bl, 0.99)))
                    .ratio(div(p99, quantile(bl, 0.99)))
                    .target(
                        "≤ 250 ms",
                        whole && p99.is_some_and(|v| v <= 250_000),
                    ),
                );
                f.row(
                    Row::new("2. fan-out p50", quantile_us(l, 0.5))
                        .baseline(format!("{} (1 stream)", quantile_us(bl, 0.5)))
                        .ratio(div(quantile(l, 0.5), quantile(bl, 0.5))),
                );
                f.row(
                    Row::new(
                        format!("2. streams that received all {FANOUT} events"),
                        format!(
                            "{} of {} ({} pairs missing)",
                            thousands(r.complete as f64),
                            thousands(r.streams as f64),
                            thousands(r.missing as f64)
                        ),
                    )
                    .baseline(format!("{} of {}", base.complete, base.streams))
                    .target("all", whole && r.complete == r.streams),
                );
                let per = r.cpu_per_delivery();
                f.row(
                    Row::new(
                        "2. server CPU per delivered event per stream",
                        format!("{} (server CPU {:.2} s)", ms(per), r.cpu),
                    )
                    .baseline(format!(
                        "{} per development with 1 stream (server CPU {:.2} s)",
                        ms(base.cpu_per_delivery()),
                        base.cpu
                    ))
                    .ratio(per / base.cpu_per_delivery())
                    .target("≤ 10 µs", whole && per <= 10e-6),
                );
                // What each further stream adds: the server CPU beyond the baseline's (the same
                // developments written with one stream open), per event per further stream.
                let beyond = (r.cpu - base.cpu).max(0.0)
                    / (FANOUT * r.streams.saturating_sub(1)).max(1) as f64;
                f.row(
                    Row::new(
                        "2. server CPU per event per further stream (beyond the writes' own)",
                        ms(beyond),
                    )
                    .baseline(format!(
                        "server CPU {:.2} s with 1 stream, {:.2} s with {}",
                        base.cpu,
                        r.cpu,
                        thousands(r.streams as f64)
                    ))
                    .target("≤ 10 µs", whole && beyond <= 10e-6),
                );
                if let Some((size, floor)) = &floor_run {
                    let bare = floor.cpu_per_delivery();
                    let complete = floor.complete == floor.streams && floor.missing == 0;
                    f.row(
                        Row::new(
                            format!(
                                "2. the floor: CPU per event per stream of a bare broadcast server ({} streams, events of {size} B)",
                                thousands(floor.streams as f64)
                            ),
                            format!(
                                "{} (CPU {:.2} s; {} of {} streams got all {FANOUT})",
                                ms(bare),
                                floor.cpu,
                                thousands(floor.complete as f64),
                                thousands(floor.streams as f64)
                            ),
                        )
                        .baseline(format!("{} per delivered event per stream, newsroom", ms(per)))
                        .ratio(if complete { per / bare } else { f64::NAN }),
                    );
                }
                f.note(format!(
                    "2. {} of {FANOUT} developments answered; {} of {} (stream, development) pairs delivered in {}{}.",
                    r.posted,
                    thousands(r.pairs as f64),
                    thousands((r.posted * r.streams) as f64),
                    secs(r.took),
                    if r.killed {
                        " (**the server was killed by the RSS guard**)"
                    } else if r.timed_out {
                        " (**timed out** waiting)"
                    } else {
                        ""
                    }
                ));
            }
            None => f.failed("2. fan-out", KILLED, "≤ 250 ms, all streams, ≤ 10 µs"),
        }
        f.note(format!("2. {}.", failures2.describe()));
    }

    // 3.
    if cfg.runs(3) {
        let idle = idle.unwrap_or(0);
        match open_rss {
            Some(open) => f.row(
                Row::new(
                    format!("3. RSS with {} streams open", thousands(cfg.streams as f64)),
                    mb(open),
                )
                .baseline(format!("{} idle", mb(idle)))
                .ratio(open as f64 / idle as f64)
                .target("< 1 GB", open < 1 << 30),
            ),
            None => f.failed("3. RSS with streams open", KILLED, "< 1 GB"),
        }
        if let Some(peak) = peak_rss.filter(|p| *p > 0) {
            let desc = if server.killed() {
                " (**killed by the RSS guard**)"
            } else {
                ""
            };
            f.row(
                Row::new(
                    "3. peak RSS while sections 1–2 ran with the streams open",
                    format!("{}{desc}", mb(peak)),
                )
                .baseline(format!("{} idle", mb(idle)))
                .ratio(peak as f64 / idle as f64)
                .target("< 1 GB", peak < 1 << 30),
            );
        }
        match after_rss {
            Some(after) => {
                let before = idle_before.unwrap_or(idle);
                let ratio = after as f64 / before as f64;
                f.row(
                    Row::new(
                        format!(
                            "3. RSS {} s after the streams closed",
                            AFTER_CLOSE.as_secs()
                        ),
                        mb(after),
                    )
                    .baseline(format!(
                        "{} idle right before they opened ({} idle after the set-up, before the baselines' writes)",
                        mb(before),
                        mb(idle)
                    ))
                    .ratio(ratio)
                    .target("≤ 1.1", ratio <= 1.1),
                );
            }
            None => f.failed("3. RSS after the streams closed", KILLED, "≤ 1.1"),
        }
        if let Some((idle2, after2)) = second_cycle {
            let ratio = after2 as f64 / idle2 as f64;
            f.row(
                Row::new(
                    format!(
                        "3. second cycle: RSS {} s after the streams closed again",
                        AFTER_CLOSE.as_secs()
                    ),
                    mb(after2),
                )
                .baseline(format!("{} idle right before they opened again", mb(idle2)))
                .ratio(ratio)
                .target("≤ 1.1", ratio <= 1.1),
            );
        }
    }

    // 4. and 5. run on a new process (same data) if the guard killed the first one.
    if server.killed() && (cfg.runs(4) || cfg.runs(5)) {
        let s = Arc::get_mut(&mut server).expect("no other holder of the server");
        s.restart().await?;
        s.guard.tripped.store(false, Ordering::Relaxed);
        f.note("The RSS guard had killed the server: sections 4 and 5 ran on a new process started on the same data.");
    }

    if cfg.runs(4) {
        let (long, short) = (
            long.as_ref().expect("filled"),
            short.as_ref().expect("filled"),
        );
        eprintln!("4. reads on the long and the short story");
        let quiet = server.settle(SETTLE_CAP, 0).await;
        if !quiet.quiet {
            f.note(format!(
                "4. The server was still busy ({} % of a core) {} after the streams closed.",
                quiet.ticks,
                secs(quiet.waited)
            ));
        }
        let failures = Failures::default();
        let r = reads(&server, long, short, cfg, &failures).await;
        let [cl, cs] = &r.current;
        let [al, as_] = &r.as_of;
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            let ratio = div(quantile(cl, q), quantile(cs, q));
            f.row(
                Row::new(
                    format!("4. GET story {name}, long ÷ short"),
                    format!("{} (long)", quantile_us(cl, q)),
                )
                .baseline(format!("{} (short)", quantile_us(cs, q)))
                .ratio(ratio)
                .target("≤ 1.5", ratio <= 1.5),
            );
        }
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            let ratio = div(quantile(al, q), quantile(as_, q));
            f.row(
                Row::new(
                    format!("4. GET story `as_of` {name}, long ÷ short"),
                    format!("{} (long)", quantile_us(al, q)),
                )
                .baseline(format!("{} (short)", quantile_us(as_, q)))
                .ratio(ratio)
                .target("≤ 1.5", ratio <= 1.5),
            );
        }
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            let ratio = div(quantile(al, q), quantile(cl, q));
            f.row(
                Row::new(
                    format!("4. GET `as_of` ÷ current GET {name}, long story"),
                    format!("{} (`as_of`)", quantile_us(al, q)),
                )
                .baseline(format!("{} (current)", quantile_us(cl, q)))
                .ratio(ratio)
                .target("≤ 2", ratio <= 2.0),
            );
        }
        f.note(format!(
            "4. {} + {} current GETs, {} + {} `as_of` GETs (long + short; `as_of` = when each story was half filed), server CPU {:.2} s{}.",
            cl.len(),
            cs.len(),
            al.len(),
            as_.len(),
            r.cpu,
            if r.timed_out { " (**timed out**)" } else { "" }
        ));
        let warm = fill(
            &server,
            0,
            1,
            cfg.deadline(),
            &Arc::new(Failures::default()),
            false,
        )
        .await?
        .id;
        let server_mut = Arc::get_mut(&mut server).expect("no other holder of the server");
        let rs = restarts(server_mut, [&long.id, &short.id], &warm, cfg, &failures).await?;
        let (ml, msh) = (median(&rs.first[0]), median(&rs.first[1]));
        let ratio = match (ml, msh) {
            (Some(a), Some(b)) => a.as_secs_f64() / b.as_secs_f64(),
            _ => f64::NAN,
        };
        f.row(
            Row::new(
                "4. first write after a restart, long ÷ short (median)",
                format!(
                    "{} (long)",
                    ml.map_or_else(|| "–".into(), |d| ms(d.as_secs_f64()))
                ),
            )
            .baseline(format!(
                "{} (short)",
                msh.map_or_else(|| "–".into(), |d| ms(d.as_secs_f64()))
            ))
            .ratio(ratio)
            .target("≤ 1.5", ratio <= 1.5),
        );
        let all = |v: &[Duration]| {
            v.iter()
                .map(|d| ms(d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        f.note(format!(
            "4. First writes after a restart: long {}; short {}; start-up to healthy {}{}{}; {}.",
            all(&rs.first[0]),
            all(&rs.first[1]),
            server
                .starts
                .iter()
                .skip(1)
                .map(|d| secs(*d))
                .collect::<Vec<_>>()
                .join(", "),
            if rs.killed > 0 {
                format!("; **{} stops needed SIGKILL**", rs.killed)
            } else {
                String::new()
            },
            if rs.timed_out { " (**timed out**)" } else { "" },
            failures.describe()
        ));
    }

    if cfg.runs(5) {
        if cfg.sustained.is_zero() {
            f.skipped("5. sustained", "BENCH_SUSTAINED_SECS=0");
        } else {
            eprintln!(
                "5. sustained: {SUSTAINED_REPORTERS} reporters for {} s",
                cfg.sustained.as_secs_f64()
            );
            server.settle(SETTLE_CAP, 0).await;
            let failures = Arc::new(Failures::default());
            let s = sustained(&server, cfg, &failures).await?;
            let ratio = s.rate() / s.first_rate();
            f.row(
                Row::new(
                    format!(
                        "5. sustained developments/s, {SUSTAINED_REPORTERS} reporters, whole {} s ÷ first {} s",
                        s.window.as_secs_f64(),
                        FIRST_WINDOW.min(s.window).as_secs_f64()
                    ),
                    format!(
                        "{:.0}/s ({} developments, server CPU {:.1} s)",
                        s.rate(),
                        thousands(s.all as f64),
                        s.cpu
                    ),
                )
                .baseline(format!(
                    "{:.0}/s ({} developments, server CPU {:.1} s)",
                    s.first_rate(),
                    thousands(s.first as f64),
                    s.first_cpu
                ))
                .ratio(ratio)
                .target("≥ 0.8", ratio >= 0.8),
            );
            f.note(format!("5. {}.", failures.describe()));
        }
    }

    if let Some(s) = Arc::get_mut(&mut server) {
        s.stop().await;
    }
    Ok(())
}

/// The stream parser on a known answer, split at every byte: `harness = false` benches run no
/// `#[test]`s, and a parser that missed ids would make every fan-out figure wrong, so the bench
/// checks it before it starts.
fn self_check() -> Res<()> {
    let chunk = |s: &str| format!("{:x}\r\n{s}\r\n", s.len());
    let body = [
        chunk("id: 41\nevent: added\ndata: {}\n"),
        chunk("\n: keep-alive\n\n"),
        chunk("id:42\r\nevent: added\r\ndata: x\r\n\r"),
        chunk("\n"),
        "0\r\n\r\n".to_owned(),
    ]
    .concat();
    let body = body.as_bytes();
    for split in 0..=body.len() {
        let mut d = SseDecoder::new(true);
        let mut events = d.feed(&body[..split])?;
        events.extend(d.feed(&body[split..])?);
        let ids: Vec<Option<i64>> = events.iter().map(|e| e.id).collect();
        if ids != [Some(41), Some(42)] || !d.done() {
            return Err(format!("the stream parser read {ids:?} when split at {split}").into());
        }
    }
    if SseDecoder::new(true).feed(b"zz\r\n").is_ok() {
        return Err("the stream parser took a bad chunk size".into());
    }
    let head = parse_head(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked",
    )?;
    let refused = parse_head(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 10")?;
    if head != (200, true) || refused != (429, false) {
        return Err("the answer-head parser misread a head".into());
    }
    Ok(())
}

fn main() -> Res<()> {
    if std::env::var_os("BENCH_BARE_SSE").is_some() {
        return bare_serve();
    }
    // `cargo bench` passes `--bench`; filters are not supported (see `BENCH_SECTIONS`).
    self_check()?;
    let cfg = Config::from_env();
    let rt = runtime()?;
    let started = Started::now();
    let mut findings = Findings::default();
    let outcome = rt.block_on(run(&cfg, &mut findings));

    let cores = cores();
    let env = format!(
        "BENCH_LONG={} BENCH_STREAMS={} BENCH_SUSTAINED_SECS={} BENCH_TIMEOUT_SECS={}",
        cfg.long,
        cfg.streams,
        cfg.sustained.as_secs_f64(),
        cfg.timeout.as_secs_f64()
    ) + &sections_setting(&cfg.sections, &[1, 2, 3, 4, 5]);
    let mut out = opening("Breaking news", &env, "breaking_news");
    writeln!(
        out,
        "{cores} CPUs visible; one `newsroom serve` process (embedded, SQLite, logging at `warn`, rate limits off) and the bench's clients on this machine; {}.\n",
        started.summary()
    )?;
    out.push_str(&table(&findings.rows));
    out.push('\n');
    out.push_str(&closing(&findings.notes, &outcome));
    print!("{out}");
    outcome
}
