//! The webhook receivers: axum servers on loopback noting each alert's arrival.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use newsroom_testkit::api::{alerted_development, webhook_id};
use newsroom_testkit::http::start_receiver;
use newsroom_testkit::Res;

/// One request a receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    pub(crate) webhook_id: String,
    pub(crate) development: Option<String>,
    pub(crate) at: Instant,
    pub(crate) wall: DateTime<Utc>,
    pub(crate) receiver: usize,
}

/// What every receiver records into.
#[derive(Clone, Default)]
pub(crate) struct Sink {
    pub(crate) arrivals: Arc<Mutex<Vec<Arrival>>>,
    pub(crate) count: Arc<AtomicUsize>,
    /// The first alert's body, to give the baseline the same size of request.
    pub(crate) sample: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Sink {
    pub(crate) fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().expect("arrivals lock").clone()
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// How many of the `wanted` developments have arrived (once or more), counting only the
    /// arrivals `counts` accepts.
    pub(crate) fn arrived_of(
        &self,
        wanted: &HashSet<&str>,
        counts: impl Fn(&Arrival) -> bool,
    ) -> usize {
        self.arrivals
            .lock()
            .expect("arrivals lock")
            .iter()
            .filter(|a| counts(a) && a.development.as_deref().is_some_and(|d| wanted.contains(d)))
            .map(|a| a.development.clone())
            .collect::<HashSet<_>>()
            .len()
    }
}

#[derive(Clone)]
struct Receiver {
    number: usize,
    sink: Sink,
}

/// Records the arrival instant before anything else; the body has been read in full by then.
async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let wall = Utc::now();
    let webhook_id = webhook_id(&headers);
    let development = alerted_development(&body);
    if webhook_id.starts_with("msg_") {
        let mut sample = r.sink.sample.lock().expect("sample lock");
        if sample.is_none() {
            *sample = Some(body.to_vec());
        }
    }
    r.sink
        .arrivals
        .lock()
        .expect("arrivals lock")
        .push(Arrival {
            webhook_id,
            development,
            at,
            wall,
            receiver: r.number,
        });
    r.sink.count.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
}

/// `n` receivers on 127.0.0.1:0, all recording into one sink; their URLs.
pub(crate) async fn start_receivers(
    n: usize,
    sink: &Sink,
) -> Res<(Vec<String>, Vec<tokio::task::JoinHandle<()>>)> {
    let mut urls = Vec::with_capacity(n);
    let mut servers = Vec::with_capacity(n);
    for number in 0..n {
        let state = Receiver {
            number,
            sink: sink.clone(),
        };
        let (url, server) = start_receiver(format!("receiver {number}"), receive, state).await?;
        urls.push(url);
        servers.push(server);
    }
    Ok((urls, servers))
}
