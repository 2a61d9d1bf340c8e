//! The webhook receiver: an axum server in this process noting when each development's alert
//! arrived.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use newsroom_testkit::api::{alerted_development, webhook_id};
use newsroom_testkit::http::{self};

use crate::common::*;

#[derive(Clone, Default)]
pub(crate) struct Sink {
    pub(crate) inner: Arc<Mutex<Arrivals>>,
    pub(crate) count: Arc<AtomicUsize>,
}

#[derive(Default)]
pub(crate) struct Arrivals {
    /// The first arrival of each development's alert.
    pub(crate) first: HashMap<String, Instant>,
    webhook_ids: HashSet<String>,
    /// The same `webhook-id` again (a retry, or a re-send after a redelivery).
    pub(crate) duplicates: usize,
    /// Another alert for a development already alerted, under another id.
    pub(crate) repeats: usize,
    /// Requests without a development id in the payload.
    pub(crate) unparsed: usize,
}

impl Sink {
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// Records the arrival instant first; the body has been read in full by then.
async fn receive(State(sink): State<Sink>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let webhook_id = webhook_id(&headers);
    let development = alerted_development(&body);
    {
        let mut a = sink.inner.lock().expect("arrivals lock");
        if !a.webhook_ids.insert(webhook_id) {
            a.duplicates += 1;
        } else {
            match development {
                Some(d) => {
                    if a.first.insert(d, at).is_some() {
                        a.repeats += 1;
                    }
                }
                None => a.unparsed += 1,
            }
        }
    }
    sink.count.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
}

pub(crate) async fn start_receiver(sink: &Sink) -> Res<(String, tokio::task::JoinHandle<()>)> {
    Ok(http::start_receiver("the webhook receiver".into(), receive, sink.clone()).await?)
}
