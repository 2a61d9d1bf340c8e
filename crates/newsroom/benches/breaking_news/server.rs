//! The server under test: the `newsroom serve` process the bench starts, stops and restarts on
//! the same data, and the guard that keeps its peak RSS and kills it past `BENCH_MAX_RSS_MB`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use newsroom_testkit::api::{development, post_development, slug, story};
use newsroom_testkit::http::{by_deadline, post_json_to, timed_get, Failures};
use newsroom_testkit::procfs::{cpu_seconds, rss_bytes, settle, Settled};
use uuid::Uuid;

use crate::common::*;

use crate::Config;

/// Watches the server's RSS: keeps the peak, and kills the server past the limit.
#[derive(Debug, Default)]
pub(crate) struct Guard {
    pub(crate) pid: AtomicU32,
    peak: AtomicU64,
    pub(crate) tripped: AtomicBool,
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
    pub(crate) fn take_peak(&self) -> u64 {
        self.peak.swap(0, Ordering::Relaxed)
    }
}

pub(crate) struct Server {
    env: Env,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
    token: String,
    client: reqwest::Client,
    pub(crate) guard: Arc<Guard>,
    /// Wall time from spawn to healthy, per start.
    pub(crate) starts: Vec<Duration>,
}

/// One answered (or failed) `POST …/developments`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Posted {
    pub(crate) sent: Instant,
    pub(crate) took: Duration,
    pub(crate) position: i64,
}

impl Server {
    pub(crate) async fn start(cfg: &Config) -> Res<Self> {
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

    pub(crate) async fn spawn(&mut self) -> Res<()> {
        let mut proc = self.env.spawn("all", self.dir.path(), "all")?;
        let took = proc.healthy(&self.client).await?;
        self.guard.pid.store(proc.pid(), Ordering::Relaxed);
        self.starts.push(took);
        self.proc = Some(proc);
        Ok(())
    }

    /// SIGTERM, then a new process on the same data. False when it had to be killed.
    pub(crate) async fn restart(&mut self) -> Res<bool> {
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

    pub(crate) async fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            self.guard.pid.store(0, Ordering::Relaxed);
            p.stop().await;
        }
    }

    pub(crate) fn killed(&self) -> bool {
        self.guard.tripped.load(Ordering::Relaxed)
    }

    fn proc(&self) -> &Proc {
        self.proc.as_ref().expect("the server is running")
    }

    fn base(&self) -> &str {
        &self.proc().base
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.proc().port))
    }

    pub(crate) fn cpu(&self) -> f64 {
        cpu_seconds(self.proc().pid()).unwrap_or(f64::NAN)
    }

    pub(crate) fn rss(&self) -> u64 {
        rss_bytes(self.proc().pid()).unwrap_or(0)
    }

    /// Waits until the server is quiet: over a whole second it used at most 5% of a core above
    /// `floor` ticks (what it uses idle in this state, e.g. with streams open), for at most `cap`.
    /// Work a phase caused after its last answer (readers catching up) is so counted with it.
    /// Returns how long it waited, whether it got quiet, and the ticks of the last second.
    pub(crate) async fn settle(&self, cap: Duration, floor: u64) -> Settled {
        let Some(pid) = self.proc.as_ref().map(Proc::pid) else {
            return Settled::default();
        };
        settle(pid, cap, floor).await.unwrap_or_default()
    }

    pub(crate) async fn open_story(&self) -> Res<String> {
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
    pub(crate) async fn post(&self, story: &str) -> Result<Posted, String> {
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
    pub(crate) async fn post_by(
        &self,
        story: &str,
        deadline: Instant,
        failures: &Failures,
    ) -> Option<Posted> {
        by_deadline(deadline, failures, "POST developments", self.post(story)).await
    }

    /// One GET; its time when it answered 200 in full.
    pub(crate) async fn get(&self, path_and_query: &str) -> Result<Duration, String> {
        timed_get(&self.client, self.base(), path_and_query).await
    }
}
