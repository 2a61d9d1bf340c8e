//! The HTTP side of a load client: JSON POSTs, timed GETs, a fixed-concurrency GET load, failed
//! requests counted for the report, waiting for a count to reach its goal, and webhook
//! receivers on loopback.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use reqwest::StatusCode;
use serde_json::Value;

use crate::report::{histogram, record};

/// Why a JSON POST failed; each says it as the benches always have.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
    #[error("POST {what}: {status}: {text}")]
    Status {
        what: String,
        status: StatusCode,
        text: String,
    },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The answer lacks what the caller needs of it.
    #[error("{0}")]
    Missing(&'static str),
}

/// `POST url` with a JSON body (and a bearer token): the answer's JSON, or an error naming the
/// URL, the status and the answer's text.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<Value, CallError> {
    post_json_named(client, url, url, token, body).await
}

/// `POST {base}{path}` as [`post_json`], the error naming only the path.
pub async fn post_json_to(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<Value, CallError> {
    post_json_named(client, &format!("{base}{path}"), path, token, body).await
}

async fn post_json_named(
    client: &reqwest::Client,
    url: &str,
    what: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<Value, CallError> {
    let mut request = client.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        return Err(CallError::Status {
            what: what.to_owned(),
            status,
            text,
        });
    }
    Ok(serde_json::from_str(&text)?)
}

/// The `position` of a POST's JSON answer once the whole answer has arrived, when `accepted`
/// says its status is the one expected; otherwise what went wrong (`{status}: {text}` or the
/// transport's error).
pub async fn answered_position(
    sent: Result<reqwest::Response, reqwest::Error>,
    accepted: impl Fn(StatusCode) -> bool,
) -> (Option<i64>, Option<String>) {
    match sent {
        Ok(r) if accepted(r.status()) => match r.bytes().await {
            Ok(b) => (
                serde_json::from_slice::<Value>(&b)
                    .ok()
                    .and_then(|v| v["position"].as_i64()),
                None,
            ),
            Err(e) => (None, Some(e.to_string())),
        },
        Ok(r) => {
            let status = r.status();
            (
                None,
                Some(format!("{status}: {}", r.text().await.unwrap_or_default())),
            )
        }
        Err(e) => (None, Some(e.to_string())),
    }
}

/// `GET {base}{path_and_query}`: its time when it answered 200 with a body in full.
pub async fn timed_get(
    client: &reqwest::Client,
    base: &str,
    path_and_query: &str,
) -> Result<Duration, String> {
    let sent = Instant::now();
    let response = client
        .get(format!("{base}{path_and_query}"))
        .send()
        .await
        .map_err(|e| format!("GET {path_and_query}: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET {path_and_query}: {e}"))?;
    if status != StatusCode::OK || body.is_empty() {
        return Err(format!("GET {path_and_query}: {status}"));
    }
    Ok(sent.elapsed())
}

/// A free loopback port (bound, read, released: another process could take it in between, which
/// a health check would then reveal).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

// ---------------------------------------------------------------------------------------------
// Failures

/// Requests that failed: counted, the first few kept for the report.
#[derive(Debug, Default)]
pub struct Failures {
    count: std::sync::atomic::AtomicUsize,
    first: std::sync::Mutex<Vec<String>>,
}

impl Failures {
    pub fn add(&self, what: impl Into<String>) {
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut first = self.first.lock().expect("failures lock");
        if first.len() < 3 {
            first.push(what.into());
        }
    }

    pub fn count(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn describe(&self) -> String {
        let n = self.count();
        if n == 0 {
            return "no failed requests".into();
        }
        let first = self.first.lock().expect("failures lock");
        format!("**{n} failed requests**, first: {}", first.join(" | "))
    }
}

/// What `request` answered, or `None` once it failed or ran past `deadline` (counted in
/// `failures`; `what` names the request in the count).
pub async fn by_deadline<T>(
    deadline: Instant,
    failures: &Failures,
    what: &str,
    request: impl std::future::Future<Output = Result<T, String>>,
) -> Option<T> {
    match tokio::time::timeout_at(deadline.into(), request).await {
        Ok(Ok(answer)) => Some(answer),
        Ok(Err(e)) => {
            failures.add(e);
            None
        }
        Err(_) => {
            failures.add(format!("{what}: no answer before the deadline"));
            None
        }
    }
}

/// Waits until `progress()` reaches `goal`; gives up after `idle` without progress or `cap`.
pub async fn wait_for(
    goal: usize,
    idle: Duration,
    cap: Duration,
    progress: impl Fn() -> usize,
) -> bool {
    let started = Instant::now();
    let (mut last, mut last_change) = (progress(), Instant::now());
    loop {
        let now = progress();
        if now >= goal {
            return true;
        }
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
        if last_change.elapsed() > idle || started.elapsed() > cap {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// A GET load

/// Why a GET load could not be added up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Worker(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Histogram(#[from] hdrhistogram::errors::AdditionError),
}

/// Workers GETting back to back: started by [`GetLoad::start`], added up by
/// [`GetLoad::finish`].
#[derive(Debug)]
pub struct GetLoad {
    /// When the unrecorded warm-up second ends and the measured window starts.
    pub warm_until: Instant,
    until: Instant,
    workers: Vec<tokio::task::JoinHandle<WorkerTally>>,
}

/// One GET worker's latencies, good and bad answers, and when it stopped.
type WorkerTally = (Histogram<u64>, u64, u64, Instant);

/// What a GET load's workers did in the measured window.
#[derive(Debug)]
pub struct GetTally {
    /// Requests sent in the window, the bad ones included.
    pub requests: u64,
    /// Requests that did not answer 200 with a body of the expected length.
    pub errors: u64,
    pub latency: Histogram<u64>,
    /// From the window's start until the last worker's last answer.
    pub window: Duration,
}

impl GetLoad {
    /// `in_flight` workers GET back to back, worker i on `urls[i % len]`, for a warm-up second
    /// and then `seconds`; a request counts as good when its whole answer arrived, 200 and of
    /// `expected_len` bytes.
    pub fn start(
        client: &reqwest::Client,
        urls: &[String],
        expected_len: usize,
        in_flight: usize,
        seconds: f64,
    ) -> Self {
        let warm_until = Instant::now() + Duration::from_secs(1);
        let until = warm_until + Duration::from_secs_f64(seconds);
        let workers = (0..in_flight)
            .map(|i| {
                let (client, url) = (client.clone(), urls[i % urls.len()].clone());
                tokio::spawn(async move {
                    let mut latency = histogram();
                    let (mut ok, mut errors) = (0u64, 0u64);
                    loop {
                        let t = Instant::now();
                        if t >= until {
                            break;
                        }
                        let good = match client.get(&url).send().await {
                            Ok(r) if r.status() == StatusCode::OK => {
                                matches!(r.bytes().await, Ok(b) if b.len() == expected_len)
                            }
                            Ok(r) => {
                                let _ = r.bytes().await;
                                false
                            }
                            Err(_) => false,
                        };
                        if t < warm_until {
                            continue;
                        }
                        record(&mut latency, t.elapsed());
                        if good {
                            ok += 1;
                        } else {
                            errors += 1;
                        }
                    }
                    (latency, ok, errors, Instant::now())
                })
            })
            .collect();
        Self {
            warm_until,
            until,
            workers,
        }
    }

    /// Waits for the workers and adds up what they did.
    pub async fn finish(self) -> Result<GetTally, LoadError> {
        let mut tally = GetTally {
            requests: 0,
            errors: 0,
            latency: histogram(),
            window: Duration::ZERO,
        };
        let mut last_done = self.until;
        for w in self.workers {
            let (h, ok, errors, done) = w.await?;
            tally.latency.add(h)?;
            tally.requests += ok + errors;
            tally.errors += errors;
            last_done = last_done.max(done);
        }
        tally.window = last_done - self.warm_until;
        Ok(tally)
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook receivers

/// A webhook receiver on 127.0.0.1, port 0: `handler` answers `POST /hooks/newsroom` with
/// `state`. Its URL and its task; a failure of the server is printed, naming it `name`.
pub async fn start_receiver<H, T, S>(
    name: String,
    handler: H,
    state: S,
) -> std::io::Result<(String, tokio::task::JoinHandle<()>)>
where
    H: axum::handler::Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks/newsroom", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/hooks/newsroom", axum::routing::post(handler))
        .with_state(state);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("  {name} failed: {e}");
        }
    });
    Ok((url, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_the_first_three_and_count_all() {
        let f = Failures::default();
        assert_eq!(f.describe(), "no failed requests");
        for i in 1..=5 {
            f.add(format!("e{i}"));
        }
        assert_eq!(f.count(), 5);
        assert_eq!(f.describe(), "**5 failed requests**, first: e1 | e2 | e3");
    }

    #[tokio::test]
    async fn by_deadline_counts_errors_and_lateness() {
        let f = Failures::default();
        let soon = Instant::now() + Duration::from_secs(5);
        assert_eq!(by_deadline(soon, &f, "x", async { Ok(1) }).await, Some(1));
        assert_eq!(
            by_deadline(soon, &f, "x", async { Err::<u8, _>("refused".into()) }).await,
            None
        );
        let past = Instant::now();
        let never = std::future::pending::<Result<u8, String>>();
        assert_eq!(by_deadline(past, &f, "GET /", never).await, None);
        assert_eq!(
            f.describe(),
            "**2 failed requests**, first: refused | GET /: no answer before the deadline"
        );
    }

    #[tokio::test]
    async fn wait_for_gives_up_without_progress() {
        let done = wait_for(1, Duration::from_millis(20), Duration::from_secs(5), || 0).await;
        assert!(!done);
        assert!(wait_for(3, Duration::ZERO, Duration::ZERO, || 3).await);
    }

    #[tokio::test]
    async fn a_receiver_answers_posts_with_its_handler() {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        async fn receive(
            axum::extract::State(c): axum::extract::State<
                std::sync::Arc<std::sync::atomic::AtomicUsize>,
            >,
        ) -> StatusCode {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            StatusCode::ACCEPTED
        }
        let (url, server) = start_receiver("the test receiver".into(), receive, count.clone())
            .await
            .expect("receiver");
        let client = reqwest::Client::new();
        let answer = client.post(&url).send().await.expect("answer");
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
        let refused = post_json(
            &client,
            &url.replace("/hooks/newsroom", "/nowhere"),
            None,
            &Value::Null,
        )
        .await;
        assert!(
            matches!(&refused, Err(CallError::Status { status, .. }) if *status == StatusCode::NOT_FOUND),
            "{refused:?}"
        );
        server.abort();
    }
}
