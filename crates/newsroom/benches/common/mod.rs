//! What the benches of this crate share: running the release `newsroom` binary as a real process
//! (its own data directory, a loopback port, a reporter token made with `newsroom token create`),
//! stopping it as an operator would (SIGTERM), and reading a process's CPU time and memory from
//! `/proc`; plus the small helpers for settings and latency histograms.
//!
//! Each bench is its own crate and uses part of this module, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use reqwest::StatusCode;
use serde_json::Value;

pub type BoxError = Box<dyn Error + Send + Sync>;
pub type Res<T> = Result<T, BoxError>;

/// The release binary cargo builds for the bench.
pub const BIN: &str = env!("CARGO_BIN_EXE_newsroom");

/// A development as the tests and the other benches file it, with a fresh id.
pub fn development(id: uuid::Uuid) -> Value {
    serde_json::json!({
        "id": id,
        "kind": "statement_issued",
        "headline": "Campaign A says its email was breached",
        "body": "The campaign said attackers had access for three weeks.",
        "occurred_at": "2026-10-01T09:30:00Z",
        "actors": ["Campaign A", "Fancy Bear"],
        "source": {"name": "Campaign spokesperson", "kind": "official_statement", "url": "https://example.org/statement"},
        "evidence": "none_provided",
        "urgency": "priority",
    })
}

/// The binary the bench runs: `BENCH_NEWSROOM_BIN` when set (a copy kept aside, e.g. to measure
/// two builds with the same bench, or when the target directory is shared and may be rebuilt
/// from another checkout meanwhile), else [`BIN`].
pub fn bin() -> String {
    std::env::var("BENCH_NEWSROOM_BIN").unwrap_or_else(|_| BIN.to_owned())
}

/// A positive number from the environment (`_` allowed as a digit separator), or `default`.
pub fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(default)
}

/// `BENCH_SECTIONS=1,3` as numbers; `all` when unset or empty.
pub fn sections(all: &[u8]) -> Vec<u8> {
    std::env::var("BENCH_SECTIONS")
        .ok()
        .map(|s| {
            s.split(',')
                .filter_map(|p| p.trim().parse::<u8>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| all.to_vec())
}

/// Microseconds, 1 µs to 10 min, 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".to_owned())
}

/// A free loopback port (bound, read, released: another process could take it in between, which
/// the health check would then reveal).
pub fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

// ---------------------------------------------------------------------------------------------
// Requests and their failures

/// Requests that failed: counted, the first few kept for the report.
#[derive(Debug, Default)]
pub struct Failures {
    count: std::sync::atomic::AtomicUsize,
    first: std::sync::Mutex<Vec<String>>,
}

impl Failures {
    pub fn add(&self, what: impl Into<String>) {
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut first = self.first.lock().expect("failures lock");
        if first.len() < 3 {
            first.push(what.into());
        }
    }

    pub fn count(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn describe(&self) -> String {
        let n = self.count();
        if n == 0 {
            return "no failed requests".into();
        }
        let first = self.first.lock().expect("failures lock");
        format!("**{n} failed requests**, first: {}", first.join(" | "))
    }
}

/// What `request` answered, or `None` once it failed or ran past `deadline` (counted in
/// `failures`; `what` names the request in the count).
pub async fn by_deadline<T>(
    deadline: Instant,
    failures: &Failures,
    what: &str,
    request: impl std::future::Future<Output = Result<T, String>>,
) -> Option<T> {
    match tokio::time::timeout_at(deadline.into(), request).await {
        Ok(Ok(answer)) => Some(answer),
        Ok(Err(e)) => {
            failures.add(e);
            None
        }
        Err(_) => {
            failures.add(format!("{what}: no answer before the deadline"));
            None
        }
    }
}

/// `POST {base}/v1/stories/{story}/developments` of `body` as `token`: the position the answer
/// gives; the error says what went wrong.
pub async fn post_development(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    story: &str,
    body: &Value,
) -> Result<i64, String> {
    let response = client
        .post(format!("{base}/v1/stories/{story}/developments"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("POST developments: {e}"))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("POST developments: {status}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "POST developments: {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ));
    }
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["position"].as_i64())
        .ok_or_else(|| "POST developments: no position in the answer".to_owned())
}

/// `GET {base}{path_and_query}`: its time when it answered 200 with a body in full.
pub async fn timed_get(
    client: &reqwest::Client,
    base: &str,
    path_and_query: &str,
) -> Result<Duration, String> {
    let sent = Instant::now();
    let response = client
        .get(format!("{base}{path_and_query}"))
        .send()
        .await
        .map_err(|e| format!("GET {path_and_query}: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET {path_and_query}: {e}"))?;
    if status != StatusCode::OK || body.is_empty() {
        return Err(format!("GET {path_and_query}: {status}"));
    }
    Ok(sent.elapsed())
}

// ---------------------------------------------------------------------------------------------
// Processes of the newsroom binary

/// What every process of one deployment shares: its `NEWSROOM_*` variables.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub vars: Vec<(String, String)>,
}

impl Env {
    /// One process, SQLite log and views in its data directory.
    pub fn embedded() -> Self {
        Self::default()
    }

    /// The same deployment with one more variable.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.vars.push((key.to_owned(), value.into()));
        self
    }

    /// A command line of the binary with this deployment's variables, the data directory `dir`,
    /// and nothing inherited from this process's own `NEWSROOM_*` variables.
    pub fn command(&self, dir: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("NEWSROOM_") {
                c.env_remove(k);
            }
        }
        c.env("NEWSROOM_DATA_DIR", dir)
            .env("NEWSROOM_WEBHOOK_ALLOWLIST", "127.0.0.1")
            .env("NEWSROOM_WRITES_PER_TOKEN_PER_MINUTE", "0")
            // One bench subscriber follows every story (BENCH_STORIES may pass the default cap).
            .env("NEWSROOM_SUBSCRIPTIONS_PER_SUBSCRIBER", "1000000")
            .env("NEWSROOM_LOG", "warn");
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        // `BENCH_SERVER_ENV="NEWSROOM_A=1 NEWSROOM_B=2"`: settings to try on the server.
        if let Ok(extra) = std::env::var("BENCH_SERVER_ENV") {
            for pair in extra.split_whitespace() {
                if let Some((k, v)) = pair.split_once('=') {
                    c.env(k, v);
                }
            }
        }
        c
    }

    /// A reporter token, made with `newsroom token create` against this deployment's log.
    pub fn reporter_token(&self, dir: &Path) -> Res<String> {
        std::fs::create_dir_all(dir)?;
        let out = self
            .command(dir)
            .args([
                "token",
                "create",
                "--role",
                "reporter",
                "--name",
                "Bench Reporter",
            ])
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "newsroom token create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let issued: Value = serde_json::from_slice(&out.stdout)?;
        Ok(issued["token"]
            .as_str()
            .ok_or("no token in the output of newsroom token create")?
            .to_owned())
    }

    /// Starts `newsroom serve --role <role>` with the data directory `root/name` (the same
    /// directory again on a restart) on a fresh loopback port.
    pub fn spawn(&self, role: &str, root: &Path, name: &str) -> Res<Proc> {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let log = dir.join("process.log");
        // Appended, so a restart keeps what the previous run said.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = self
            .command(&dir)
            .env("NEWSROOM_LISTEN", format!("127.0.0.1:{port}"))
            .args(["serve", "--role", role])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
            log,
            spawned: Instant::now(),
        })
    }
}

/// One running `newsroom serve` process; killed if dropped while running.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub base: String,
    pub port: u16,
    pub log: PathBuf,
    pub spawned: Instant,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until `/healthz` answers 200 (`ok` or `degraded`); how long since the spawn.
    pub async fn healthy(&mut self, client: &reqwest::Client) -> Res<Duration> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "the {} process exited ({status}):\n{}",
                    self.name,
                    self.log_tail()
                )
                .into());
            }
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await {
                if r.status() == StatusCode::OK {
                    return Ok(self.spawned.elapsed());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the {} process did not become healthy:\n{}",
                    self.name,
                    self.log_tail()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// SIGTERM, then SIGKILL if it has not stopped after 10 s. True when it stopped on SIGTERM.
    pub async fn stop(mut self) -> bool {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return true;
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!(
            "  the {} process did not stop within 10 s; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /proc: CPU time in clock ticks (USER_HZ = 100 on Linux), memory in kB

pub const TICKS_PER_SECOND: f64 = 100.0;

/// One process's `/proc/<pid>/stat`: its command name, start time and user + system ticks (all
/// its threads). A pid is the same process while its start time is the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcTicks {
    pub comm: String,
    pub start: u64,
    pub ticks: u64,
}

pub fn proc_ticks(stat_path: &Path) -> Option<ProcTicks> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // pid (comm) state ppid … utime stime … starttime: the name may hold spaces, so split at
    // the last ')'.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let comm = stat[open + 1..close].to_owned();
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |i: usize| rest.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(ProcTicks {
        comm,
        start: field(19)?,
        ticks: field(11)? + field(12)?,
    })
}

/// CPU seconds (user + system) a running process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    proc_ticks(Path::new(&format!("/proc/{pid}/stat"))).map(|t| t.ticks as f64 / TICKS_PER_SECOND)
}

/// A running process's resident memory (`VmRSS`), in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

// ---------------------------------------------------------------------------------------------
// Report helpers

pub fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn us(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.1} ms", v as f64 / 1000.0)
    } else if v >= 1000 {
        format!("{:.2} ms", v as f64 / 1000.0)
    } else {
        format!("{v} µs")
    }
}

pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// p50, p99 and max, or dashes when nothing was recorded.
pub fn quantiles(h: &Histogram<u64>) -> (String, String, String) {
    if h.is_empty() {
        return ("–".into(), "–".into(), "–".into());
    }
    (
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.max()),
    )
}

/// The commit the bench was built from (`git rev-parse --short HEAD`), or "unknown".
pub fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// `POST url` with a JSON body (and a bearer token): the answer's JSON, or an error naming the
/// status and the answer's text.
pub async fn call(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> Res<Value> {
    let mut request = client.post(&url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        return Err(format!("POST {url}: {status}: {text}").into());
    }
    Ok(serde_json::from_str(&text)?)
}
