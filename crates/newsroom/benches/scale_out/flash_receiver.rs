//! Section 4's webhook receivers: this executable run again as a child process with
//! `BENCH_FLASH_RECEIVER` set, counting each alert once by `webhook-id`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use newsroom_testkit::api::webhook_id;
use newsroom_testkit::runtime;
use newsroom_testkit::BoxError;
use serde_json::{json, Value};

use crate::common::*;

/// The variable that makes this executable the flash receiver process (section 4).
pub(crate) const RECEIVER_ENV: &str = "BENCH_FLASH_RECEIVER";
/// The tag every other bench subscriber follows (the story's first tag; the rest follow the
/// story itself).
pub(crate) const FLASH_TAG: &str = "elections";

/// What the receiver process has seen since its last reset.
#[derive(Default)]
pub(crate) struct FlashTally {
    seen: HashSet<String>,
    /// Microseconds since the Unix epoch of each first arrival (the clock the parent reads too).
    times: Vec<u64>,
    /// The same `webhook-id` again.
    pub(crate) duplicates: usize,
}

type SharedTally = Arc<Mutex<FlashTally>>;

pub(crate) fn epoch_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Any POST but the control routes: a webhook, counted by its `webhook-id`.
async fn flash_receive(
    State(t): State<SharedTally>,
    headers: HeaderMap,
    _body: Bytes,
) -> StatusCode {
    let at = epoch_micros();
    let id = webhook_id(&headers);
    let mut t = t.lock().expect("tally lock");
    if t.seen.insert(id) {
        t.times.push(at);
    } else {
        t.duplicates += 1;
    }
    StatusCode::OK
}

async fn flash_count(State(t): State<SharedTally>) -> axum::Json<Value> {
    let t = t.lock().expect("tally lock");
    axum::Json(json!({"unique": t.seen.len(), "duplicates": t.duplicates}))
}

async fn flash_times(State(t): State<SharedTally>) -> axum::Json<Value> {
    let t = t.lock().expect("tally lock");
    axum::Json(json!({"unique": t.seen.len(), "duplicates": t.duplicates, "times": t.times}))
}

async fn flash_reset(State(t): State<SharedTally>) -> StatusCode {
    *t.lock().expect("tally lock") = FlashTally::default();
    StatusCode::NO_CONTENT
}

/// The receiver process: webhooks on any path, `GET /tally/count`, `GET /tally/times`,
/// `POST /tally/reset`; it ends when its standard input closes (the parent went away).
pub(crate) fn run_flash_receiver() -> Res<()> {
    use tokio::io::AsyncReadExt as _;
    runtime()?.block_on(async {
        let listener = newsroom_testkit::process::announce_port().await?;
        let app = axum::Router::new()
            .route("/tally/count", axum::routing::get(flash_count))
            .route("/tally/times", axum::routing::get(flash_times))
            .route("/tally/reset", axum::routing::post(flash_reset))
            .fallback(flash_receive)
            .with_state(SharedTally::default());
        let parent_gone = async {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        };
        tokio::select! {
            served = std::future::IntoFuture::into_future(axum::serve(listener, app)) => served?,
            _ = parent_gone => {}
        }
        Ok::<(), BoxError>(())
    })
}
