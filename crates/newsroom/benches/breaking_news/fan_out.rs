//! Section 2, fan-out: from a development's POST to every open stream's receiving its event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use newsroom_testkit::http::Failures;
use newsroom_testkit::procfs::cpu_seconds;
use newsroom_testkit::report::{histogram, record};

use crate::bare::Bare;
use crate::readers::Readers;
use crate::server::{Posted, Server};
use crate::{FANOUT, FANOUT_GAP};

#[derive(Debug, Default)]
pub(crate) struct FanOut {
    pub(crate) streams: usize,
    pub(crate) posted: usize,
    pub(crate) latency: Option<Histogram<u64>>,
    pub(crate) pairs: usize,
    pub(crate) missing: usize,
    pub(crate) complete: usize,
    pub(crate) cpu: f64,
    pub(crate) took: Duration,
    /// Bytes each stream received per event, on average (chunk framing included).
    pub(crate) frame_bytes: usize,
    pub(crate) timed_out: bool,
    pub(crate) killed: bool,
}

impl FanOut {
    /// Server CPU per delivered event per stream (the brief's measure: ÷ (20 × streams)).
    pub(crate) fn cpu_per_delivery(&self) -> f64 {
        self.cpu / (FANOUT * self.streams).max(1) as f64
    }
}

/// Where the events of a fan-out come from: developments filed on a newsroom story, or frames
/// the bare broadcast server is told to send.
pub(crate) enum Source<'a> {
    Newsroom(&'a Server, &'a str),
    Bare(&'a Bare),
}

impl Source<'_> {
    pub(crate) async fn post(&self, deadline: Instant, failures: &Failures) -> Option<Posted> {
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

    pub(crate) fn cpu(&self) -> f64 {
        match self {
            Source::Newsroom(server, _) => server.cpu(),
            Source::Bare(bare) => cpu_seconds(bare.pid).unwrap_or(f64::NAN),
        }
    }

    pub(crate) fn killed(&self) -> bool {
        match self {
            Source::Newsroom(server, _) => server.killed(),
            Source::Bare(_) => false,
        }
    }
}

/// `FANOUT` developments (or frames), `FANOUT_GAP` apart, with `readers` open on their story.
pub(crate) async fn fan_out(
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
