//! What the benches of this crate share beyond `newsroom-testkit`: running the release
//! `newsroom` binary as a real process (its own data directory, a loopback port, a reporter token
//! made with `newsroom token create`) and stopping it as an operator would (SIGTERM); and the
//! `as_of` parameter of the story reads.
//!
//! Each bench is its own crate and uses part of this module, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use newsroom_testkit::http::free_port;
use reqwest::StatusCode;
use serde_json::Value;

pub use newsroom_testkit::Res;

/// The release binary cargo builds for the bench.
pub const BIN: &str = env!("CARGO_BIN_EXE_newsroom");

/// The binary the bench runs: `BENCH_NEWSROOM_BIN` when set (a copy kept aside, e.g. to measure
/// two builds with the same bench, or when the target directory is shared and may be rebuilt
/// from another checkout meanwhile), else [`BIN`].
pub fn bin() -> String {
    std::env::var("BENCH_NEWSROOM_BIN").unwrap_or_else(|_| BIN.to_owned())
}

/// A report's opening: its `title`, and how to run `bench` again with the settings `env`, at
/// which commit and with which server binary it ran.
pub fn opening(title: &str, env: &str, bench: &str) -> String {
    format!(
        "## {title}\n\nRerun: `{env} cargo bench -p newsroom --bench {bench}` (bench at commit {}; server binary {})\n\n",
        newsroom_testkit::report::commit(),
        bin()
    )
}

/// A moment as the `as_of` parameter of `GET /v1/stories/{id}` takes it.
pub fn as_of_param(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
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
        self.token(dir, "reporter", "Bench Reporter")
    }

    /// An editor token (an editor's `flash` is published at once, a reporter's waits for review).
    pub fn editor_token(&self, dir: &Path) -> Res<String> {
        self.token(dir, "editor", "Bench Editor")
    }

    /// A token of `role` named `name`, made with `newsroom token create` against this
    /// deployment's log.
    pub fn token(&self, dir: &Path, role: &str, name: &str) -> Res<String> {
        std::fs::create_dir_all(dir)?;
        let out = self
            .command(dir)
            .args(["token", "create", "--role", role, "--name", name])
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

/// The base URL of the started process named `name` among `procs`.
pub fn base_of(procs: &[Proc], name: &str) -> String {
    procs
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.base.clone())
        .expect("the process was started")
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

/// A process's `/metrics` (Prometheus text), as read once.
pub struct Metrics(String);

impl Metrics {
    /// Reads `base`'s `/metrics`; `None` if it does not answer.
    pub async fn read(client: &reqwest::Client, base: &str) -> Option<Self> {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(Self(text))
    }

    /// The sum of the samples named `name` over all their labels (`None`: no such sample).
    pub fn sum(&self, name: &str) -> Option<f64> {
        let values: Vec<f64> = self
            .0
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }
}
