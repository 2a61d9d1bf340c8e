//! A real webhook receiver for tests: an axum server on 127.0.0.1:0 that records every request
//! and answers with whatever status the test scripts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    /// The status the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("alert bodies are JSON")
    }

    /// The id of the development the alert is about.
    pub fn development_id(&self) -> String {
        self.json()["data"]["development"]["id"]
            .as_str()
            .expect("an alert names its development")
            .to_owned()
    }
}

type Script = dyn Fn(usize) -> (u16, Option<u64>) + Send + Sync;

#[derive(Clone)]
struct Inner {
    received: Arc<Mutex<Vec<Received>>>,
    count: Arc<AtomicUsize>,
    script: Arc<Script>,
    delay: Duration,
}

/// The receiver; stops when dropped.
#[allow(missing_debug_implementations)] // holds a scripted closure
pub struct WebhookReceiver {
    pub url: String,
    inner: Inner,
    _server: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self._server.abort();
    }
}

async fn receive(State(inner): State<Inner>, headers: HeaderMap, body: Bytes) -> Response {
    tokio::time::sleep(inner.delay).await;
    let n = inner.count.fetch_add(1, Ordering::SeqCst);
    let (status, retry_after) = (inner.script)(n);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    inner.received.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: body.to_vec(),
        status,
    });
    let status = StatusCode::from_u16(status).unwrap();
    match retry_after {
        Some(s) => (status, [("retry-after", s.to_string())]).into_response(),
        None => status.into_response(),
    }
}

impl WebhookReceiver {
    /// A receiver answering 200 to everything.
    pub async fn ok() -> Self {
        Self::scripted(|_| (200, None)).await
    }

    /// A receiver answering request `n` (from 0) with `script(n)`: status and `Retry-After`.
    pub async fn scripted(
        script: impl Fn(usize) -> (u16, Option<u64>) + Send + Sync + 'static,
    ) -> Self {
        Self::start(script, Duration::ZERO).await
    }

    /// A receiver answering 200 after `delay`, like a slow service.
    pub async fn slow(delay: Duration) -> Self {
        Self::start(|_| (200, None), delay).await
    }

    async fn start(
        script: impl Fn(usize) -> (u16, Option<u64>) + Send + Sync + 'static,
        delay: Duration,
    ) -> Self {
        let inner = Inner {
            received: Arc::default(),
            count: Arc::default(),
            script: Arc::new(script),
            delay,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/newsroom", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/hooks/newsroom", post(receive))
            .with_state(inner.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            inner,
            _server: server,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Requests answered 2xx: what the receiver accepted.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// Waits until `n` requests were accepted, or panics after `timeout`.
    pub async fn wait_for_accepted(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n {
                return accepted;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "expected {n} accepted webhooks, got {}: {:#?}",
                    accepted.len(),
                    self.received()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
