//! The app under test (`Newsroom::build`, as the end-to-end tests start it), the HTTP calls the
//! sections make to it, and the pace they make them at.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use newsroom::{Newsroom, NewsroomSettings};
use newsroom_command::Settings;
use newsroom_domain::Role;
use newsroom_log::Synchronous;
use newsroom_notifier::{NotifierSettings, NotifierStore, RetryPolicy, SystemClock};
use newsroom_testkit::api::{
    development_with_urgency, send_development, slug, story, webhook_subscriber,
};
use newsroom_testkit::http::{answered_position, post_json_to};
use newsroom_testkit::{BoxError, Res};
use serde_json::{json, Value};
use uuid::Uuid;

/// The whole newsroom, running in a task of this process.
pub(crate) struct App {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    pub(crate) editor: String,
    pub(crate) notifier: NotifierStore,
    pub(crate) dir: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), String>>,
}

/// Starts newsroom the way testkit's `spawn_app_with` does: port 0, files in a temporary
/// directory, the log with `synchronous = NORMAL` (the notifier's queue is always FULL),
/// webhooks allowed to reach 127.0.0.1, the system clock.
pub(crate) async fn start_app() -> Res<App> {
    let dir = tempfile::tempdir()?;
    let settings = NewsroomSettings {
        command: Settings {
            listen: "127.0.0.1:0".into(),
            database_path: dir.path().join("newsroom.db"),
            synchronous: Synchronous::Normal,
            ..Settings::default()
        },
        views_path: dir.path().join("views.db"),
        notifier: NotifierSettings {
            path: dir.path().join("notifier.db"),
            public_url: "http://newsroom.test".into(),
            smtp_url: None,
            mail_from: "alerts@newsroom.test".into(),
            nats_url: None,
            nats_alert_root: newsroom_notifier::subjects::DEFAULT_ROOT.into(),
            webhook_allowlist: "127.0.0.1".into(),
            retry: RetryPolicy {
                max_attempts: 5,
                base_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(400),
                lease: Duration::from_secs(5),
                disable_after: chrono::Duration::hours(24),
                timeout: Duration::from_secs(5),
            },
            digest_every: Duration::from_millis(50),
            alert_retention: Some(newsroom_notifier::service::DAY * 30),
            prune_every: Duration::from_secs(600),
            alert_streams_per_address: newsroom_notifier::api::ALERT_STREAMS_PER_ADDRESS,
            alert_streams_total: newsroom_notifier::api::ALERT_STREAMS_TOTAL,
            endpoints_per_subscriber: newsroom_notifier::api::ENDPOINTS_PER_SUBSCRIBER,
            subscriptions_per_subscriber: newsroom_notifier::api::SUBSCRIPTIONS_PER_SUBSCRIBER,
            chunk_from: newsroom_notifier::fanout::CHUNK_FROM,
        },
        clock: Arc::new(SystemClock),
        relay: None,
        role: newsroom::ProcessRole::All,
        live: Default::default(),
        front_page_marks: Default::default(),
        desk_undo: None,
    };
    let app = Newsroom::build(settings).await?;
    let base = format!("http://{}", app.local_addr());
    let notifier = app.notifier_store().expect("role all notifies").clone();
    let tokens = app.state().tokens.clone();
    tokens
        .bootstrap_admin()
        .await?
        .ok_or("a fresh store already had an admin")?;
    // An editor: its `flash` development publishes at once (a reporter's waits for approval).
    let editor = tokens
        .create(Role::Editor, "Bench Editor".into())
        .await?
        .token;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = stopped.await;
        })
        .await
        .map_err(|e| format!("{e:#}"))
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    Ok(App {
        base,
        client,
        editor,
        notifier,
        dir,
        stop,
        server,
    })
}

impl App {
    pub(crate) async fn shutdown(self) -> Res<()> {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(10), self.server).await {
            Ok(joined) => joined?.map_err(BoxError::from)?,
            Err(_) => eprintln!("  the app did not stop within 10 s; leaving it"),
        }
        drop(self.dir);
        Ok(())
    }

    async fn call(&self, path: &str, token: Option<&str>, body: Value) -> Res<Value> {
        Ok(post_json_to(&self.client, &self.base, path, token, &body).await?)
    }

    pub(crate) async fn open_story(&self) -> Res<String> {
        let answer = self
            .call("/v1/stories", Some(&self.editor), story(&slug("bench")))
            .await?;
        Ok(answer["id"].as_str().ok_or("no story id")?.to_owned())
    }

    /// Signs a subscriber up, gives it a webhook to `url` and a subscription to `story`.
    pub(crate) async fn webhook_subscriber(&self, url: &str, story: &str) -> Res<()> {
        let subscription = json!({"story": story});
        Ok(webhook_subscriber(&self.client, &self.base, "Wire desk", url, &subscription).await?)
    }

    /// The matcher's checkpoint, read from the queue's database.
    pub(crate) async fn matcher_checkpoint(&self) -> Res<i64> {
        matcher_checkpoint(&self.notifier).await
    }

    /// [`post_development`] of a development of `urgency` on `story`, by the editor: a future
    /// that owns what it sends, to be spawned.
    pub(crate) fn post(
        &self,
        story: &str,
        urgency: &'static str,
    ) -> impl Future<Output = Posted> + Send + 'static {
        post_development(
            self.client.clone(),
            self.base.clone(),
            self.editor.clone(),
            story.to_owned(),
            urgency,
        )
    }
}

/// The matcher's checkpoint in the queue's database `notifier`.
pub(crate) async fn matcher_checkpoint(notifier: &NotifierStore) -> Res<i64> {
    Ok(notifier
        .read(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(MAX(position), 0) FROM checkpoints WHERE name = 'matcher'",
                newsroom_log::args![],
                |r| r.get(0),
            )?)
        })
        .await?)
}

/// One `POST …/developments`, timed.
#[derive(Debug, Clone)]
pub(crate) struct Posted {
    pub(crate) development: String,
    pub(crate) sent: Instant,
    pub(crate) returned: Instant,
    pub(crate) returned_wall: DateTime<Utc>,
    pub(crate) position: Option<i64>,
    pub(crate) error: Option<String>,
}

async fn post_development(
    client: reqwest::Client,
    base: String,
    token: String,
    story: String,
    urgency: &'static str,
) -> Posted {
    let id = Uuid::new_v4();
    let body = development_with_urgency(id, urgency);
    let sent = Instant::now();
    let result = send_development(&client, &base, &token, &story, &body).await;
    // The POST has returned when its whole answer has arrived.
    let (position, error) = answered_position(result, |s| s == StatusCode::CREATED).await;
    Posted {
        development: id.to_string(),
        sent,
        returned: Instant::now(),
        returned_wall: Utc::now(),
        position,
        error,
    }
}

/// Starts `rate × seconds` calls of `f` on a fixed schedule (open loop: a slow call does not
/// delay the next), each in its own task; their results in order.
pub(crate) async fn paced<T, Fut>(rate: f64, seconds: f64, f: impl Fn(usize) -> Fut) -> Res<Vec<T>>
where
    T: Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let n = (rate * seconds).round().max(1.0) as usize;
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = tokio::time::Instant::now() + Duration::from_millis(5);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tokio::time::sleep_until(start + period.mul_f64(i as f64)).await;
        tasks.push(tokio::spawn(f(i)));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await?);
    }
    Ok(out)
}

/// Signed milliseconds from `a` to `b`.
pub(crate) fn ms_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}
