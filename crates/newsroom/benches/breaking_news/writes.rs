//! Section 1, unrelated writes: server CPU per write on a fresh short story.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use newsroom_testkit::http::Failures;
use newsroom_testkit::report::{histogram, record};

use crate::common::*;

use crate::fill::fill;
use crate::server::Server;
use crate::{Config, SETTLE_CAP, SHORT, WRITES};

#[derive(Debug, Default)]
pub(crate) struct WriteRun {
    pub(crate) ok: usize,
    pub(crate) cpu: f64,
    pub(crate) latency: Option<Histogram<u64>>,
    pub(crate) settle: Duration,
    pub(crate) settled: bool,
    pub(crate) timed_out: bool,
    /// The RSS guard killed the server during the phase.
    pub(crate) killed: bool,
}

impl WriteRun {
    pub(crate) fn cpu_per_write(&self) -> f64 {
        self.cpu / self.ok.max(1) as f64
    }
}

/// `WRITES` sequential developments on a fresh short story; CPU from the first until the server
/// is idle again.
pub(crate) async fn unrelated_writes(
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
