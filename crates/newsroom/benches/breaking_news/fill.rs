//! Filling stories: developments filed over HTTP by several reporters at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use newsroom_testkit::http::Failures;

use crate::common::*;

use crate::server::Server;

/// A story filed to its length: its id, when half of it was filed, the fill's cost.
#[derive(Debug)]
pub(crate) struct Filled {
    pub(crate) id: String,
    pub(crate) developments: usize,
    pub(crate) middle: DateTime<Utc>,
    pub(crate) took: Duration,
    pub(crate) cpu: f64,
    pub(crate) timed_out: bool,
}

/// Files `n` developments on a new story with `reporters` reporters at once; a failed filing is
/// counted and filed again.
pub(crate) async fn fill(
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
