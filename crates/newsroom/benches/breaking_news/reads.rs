//! Section 4: reads of the long story against the short one, and the first write after a restart.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use newsroom_testkit::http::Failures;
use newsroom_testkit::report::{histogram, record};

use crate::common::*;

use crate::fill::Filled;
use crate::server::Server;
use crate::{Config, GETS, RESTARTS, SHORT};

#[derive(Debug)]
pub(crate) struct Reads {
    pub(crate) current: [Histogram<u64>; 2],
    pub(crate) as_of: [Histogram<u64>; 2],
    pub(crate) cpu: f64,
    pub(crate) timed_out: bool,
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

pub(crate) async fn reads(
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
pub(crate) struct Restarts {
    /// First-write times after a restart: long story, short story.
    pub(crate) first: [Vec<Duration>; 2],
    pub(crate) killed: usize,
    pub(crate) timed_out: bool,
}

/// Per restart: SIGTERM, start, one write to `warm` (the process's own first write), then the
/// timed first write to the story measured; the stories take turns.
pub(crate) async fn restarts(
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
