//! Section 5, sustained: reporters each keeping one POST in flight, developments/s over the
//! window against its first 10 s.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use newsroom_testkit::http::Failures;

use crate::common::*;

use crate::server::Server;
use crate::{Config, FIRST_WINDOW, SUSTAINED_REPORTERS};

#[derive(Debug, Default)]
pub(crate) struct Sustained {
    pub(crate) first: usize,
    pub(crate) first_cpu: f64,
    pub(crate) all: usize,
    pub(crate) cpu: f64,
    pub(crate) window: Duration,
}

impl Sustained {
    pub(crate) fn first_rate(&self) -> f64 {
        self.first as f64 / FIRST_WINDOW.min(self.window).as_secs_f64()
    }

    pub(crate) fn rate(&self) -> f64 {
        self.all as f64 / self.window.as_secs_f64()
    }
}

pub(crate) async fn sustained(
    server: &Arc<Server>,
    cfg: &Config,
    failures: &Arc<Failures>,
) -> Res<Sustained> {
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
