//! The application under test: [`spawn_app`] starts the real `Newsroom` on port 0 with
//! temporary SQLite files and a token for each role ([`TestApp`]'s `admin`, `editor`,
//! `reporter`), [`spawn_app_on_postgres`] the same on a fresh database of the machine's
//! PostgreSQL; [`TestApp`] has a helper per endpoint and [`Answer`] the checks of an answer.
//! Tracing is shown only when `TEST_LOG` is set.

use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::Duration;

use newsroom::{Newsroom, NewsroomSettings};
use newsroom_command::Settings;
use newsroom_domain::Role;
use newsroom_log::Synchronous;
use newsroom_notifier::{NotifierSettings, RetryPolicy, SystemClock};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::services::TestDatabase;

static TRACING: Once = Once::new();

fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("TEST_LOG")
                        .unwrap_or_else(|_| "debug".into()),
                )
                .with_test_writer()
                .init();
        }
    });
}

/// A client for the newsroom under test. Its pooled connections are let go of before the
/// server's idle timeout (10 s) would close them, so a request never races the server's close
/// of a kept-alive connection (hyper then fails it with `IncompleteMessage`).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("client")
}

/// Sends a request to the newsroom at `address` with an optional token and JSON body.
pub async fn send(
    client: &reqwest::Client,
    address: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut request = client.request(method, format!("{address}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    TestApp::answer(request.send().await.expect("request sent")).await
}

/// A running application and tokens for each role.
#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub admin: String,
    pub editor: String,
    pub reporter: String,
    pub database_path: PathBuf,
    pub app_state: newsroom_command::http::AppState,
    pub views: newsroom_projection::ViewStore,
    pub notifier: newsroom_notifier::NotifierStore,
    /// The hub alert streams are served from (`None` in a role without the notifier).
    pub alert_hub: Option<newsroom_notifier::streams::AlertHub>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    dir: Option<tempfile::TempDir>,
}

/// An answer: status, headers and JSON body (or `Value::Null`).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Asserts the answer is a problem+json with `status`, and returns its body.
    #[track_caller]
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {self:#?}");
        assert_eq!(
            self.content_type, "application/problem+json",
            "errors are problem details: {self:#?}"
        );
        assert_eq!(self.body["status"], status, "{self:#?}");
        assert!(self.body["type"].is_string(), "{self:#?}");
        assert!(self.body["title"].is_string(), "{self:#?}");
        assert!(self.body["detail"].is_string(), "{self:#?}");
        &self.body
    }

    /// Asserts a problem answer names `field`.
    #[track_caller]
    pub fn problem_for_field(&self, status: u16, field: &str) -> &Value {
        let body = self.problem(status);
        assert_eq!(
            body["field"], field,
            "expected the problem to name `{field}`: {self:#?}"
        );
        body
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {self:#?}");
        &self.body
    }
}

/// Settings for a test app: its own temporary store, port 0.
pub fn test_settings(dir: &tempfile::TempDir) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        database_path: dir.path().join("newsroom.db"),
        // Tests don't need power-loss durability; the code path is the same.
        synchronous: Synchronous::Normal,
        ..Settings::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// [`spawn_app`] with one story opened by its reporter (needing review or not): the app and the
/// story's id.
pub async fn spawn_app_with_story(review_required: bool) -> (TestApp, String) {
    let app = spawn_app().await;
    let story = app.open_story(review_required).await;
    (app, story)
}

/// Settings of the notifier in tests: webhooks may reach loopback, retries come fast.
pub fn test_notifier_settings(dir: &tempfile::TempDir) -> NotifierSettings {
    NotifierSettings {
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
    }
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut NewsroomSettings)) -> TestApp {
    spawn_app_in(tempfile::tempdir().expect("temp dir"), configure).await
}

/// The settings of one role of a scale-out deployment on the PostgreSQL log at `url`.
pub fn postgres_role(url: &str, role: newsroom::ProcessRole) -> impl FnOnce(&mut NewsroomSettings) {
    let url = url.to_owned();
    move |s| {
        s.command.database_url = Some(url);
        s.role = role;
    }
}

/// Starts the app over the data directory `dir`, which may hold the files of an app that was
/// stopped ([`TestApp::stop`]): a restart. Tokens for each role are created afresh.
pub async fn spawn_app_in(
    dir: tempfile::TempDir,
    configure: impl FnOnce(&mut NewsroomSettings),
) -> TestApp {
    init_tracing();
    let mut settings = NewsroomSettings {
        command: test_settings(&dir),
        views_path: dir.path().join("views.db"),
        notifier: test_notifier_settings(&dir),
        clock: Arc::new(SystemClock),
        relay: None,
        role: newsroom::ProcessRole::All,
        live: Default::default(),
        front_page_marks: Default::default(),
        desk_undo: None,
    };
    configure(&mut settings);
    let database_path = settings.command.database_path.clone();
    let app = Newsroom::build(settings).await.expect("app builds");
    let address = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    // A process of another role has no views or queue of its own: the harness opens empty ones
    // beside it, so every TestApp has both (nothing writes to them).
    let views = match app.views() {
        Some(v) => v.clone(),
        None => newsroom_projection::ViewStore::open(&dir.path().join("absent-views.db"))
            .expect("views open"),
    };
    let notifier = match app.notifier_store() {
        Some(n) => n.clone(),
        None => newsroom_notifier::NotifierStore::open(&dir.path().join("absent-notifier.db"))
            .expect("queue opens"),
    };
    let alert_hub = app.alert_hub().cloned();
    let admin = match state.tokens.bootstrap_admin().await.expect("bootstrap") {
        Some(first) => first,
        // A restarted app already has its first admin, whose token was not kept.
        None => state
            .tokens
            .create(Role::Admin, "Ada Admin".into())
            .await
            .unwrap(),
    };
    let editor = state
        .tokens
        .create(Role::Editor, "Eda Editor".into())
        .await
        .unwrap();
    let reporter = state
        .tokens
        .create(Role::Reporter, "Rita Reporter".into())
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestApp {
        address,
        client: http_client(),
        admin: admin.token,
        editor: editor.token,
        reporter: reporter.token,
        database_path,
        app_state: state,
        views,
        notifier,
        alert_hub,
        shutdown: Some(tx),
        server: Some(server),
        dir: Some(dir),
    }
}

impl TestApp {
    /// Sends a request with an optional token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        send(&self.client, &self.address, method, path, token, body).await
    }

    /// Sends raw bytes as the body, with the given content type.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.address, path))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Self::answer(request.send().await.expect("request sent")).await
    }

    pub async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        });
        Answer {
            status,
            content_type,
            headers,
            body,
        }
    }

    pub async fn open_story_as(&self, token: &str, body: Value) -> Answer {
        self.call(Method::POST, "/v1/stories", Some(token), Some(body))
            .await
    }

    /// Opens a story with a unique slug and returns its id.
    pub async fn open_story(&self, review_required: bool) -> String {
        let mut story = crate::api::story(&crate::api::slug("story"));
        story["review_required"] = json!(review_required);
        let answer = self.open_story_as(&self.reporter, story).await;
        answer.ok(201)["id"].as_str().unwrap().to_owned()
    }

    pub async fn record_as(&self, token: &str, story: &str, body: Value) -> Answer {
        self.call(
            Method::POST,
            &format!("/v1/stories/{story}/developments"),
            Some(token),
            Some(body),
        )
        .await
    }

    pub async fn record(&self, story: &str, body: Value) -> Answer {
        self.record_as(&self.reporter, story, body).await
    }

    pub async fn development_action(
        &self,
        token: &str,
        story: &str,
        development: &str,
        action: &str,
        body: Value,
    ) -> Answer {
        self.call(
            Method::POST,
            &format!("/v1/stories/{story}/developments/{development}/{action}"),
            Some(token),
            Some(body),
        )
        .await
    }

    /// An editor's `action` on a development ([`Self::development_action`] as `editor`).
    pub async fn editor_action(
        &self,
        story: &str,
        development: &str,
        action: &str,
        body: Value,
    ) -> Answer {
        self.development_action(&self.editor, story, development, action, body)
            .await
    }

    pub async fn story_events(&self, story: &str) -> Vec<Value> {
        let answer = self
            .call(
                Method::GET,
                &format!("/v1/stories/{story}/events"),
                Some(&self.editor),
                None,
            )
            .await;
        answer.ok(200).as_array().unwrap().clone()
    }

    /// The whole global feed, paging through it.
    pub async fn feed(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let answer = self
                .call(
                    Method::GET,
                    &format!("/v1/events?after={after}&limit=1000"),
                    Some(&self.admin),
                    None,
                )
                .await;
            let body = answer.ok(200);
            let events = body["events"].as_array().unwrap();
            if events.is_empty() {
                return all;
            }
            all.extend(events.iter().cloned());
            after = body["next_after"].as_i64().unwrap();
        }
    }

    pub async fn create_token(&self, role: &str, name: &str) -> IssuedTokenAnswer {
        let answer = self
            .call(
                Method::POST,
                "/v1/tokens",
                Some(&self.admin),
                Some(json!({"role": role, "name": name})),
            )
            .await;
        let body = answer.ok(201);
        IssuedTokenAnswer {
            id: body["id"].as_str().unwrap().to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    /// The log's newest position, as `/healthz` reports it (after checking the app is healthy).
    pub async fn head(&self) -> i64 {
        let answer = self.call(Method::GET, "/healthz", None, None).await;
        let body = answer.ok(200);
        assert_eq!(body["status"], "ok", "{body}");
        body["head_position"].as_i64().expect("a head position")
    }

    /// Signs up a subscriber (no token needed) and returns its id and its own token.
    pub async fn sign_up(&self, name: &str) -> SignedUp {
        let answer = self
            .call(
                Method::POST,
                "/v1/subscribers",
                None,
                Some(json!({"name": name})),
            )
            .await;
        let body = answer.ok(201);
        SignedUp {
            id: body["id"].as_str().unwrap().to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    /// Signs up a subscriber whose webhook goes to `url`, following `story`.
    pub async fn follow_story_by_webhook(&self, url: &str, story: &str) -> SignedUp {
        let s = self.sign_up("Wire desk").await;
        self.add_endpoint(&s, json!({"kind": "webhook", "url": url}))
            .await
            .ok(201);
        self.subscribe(&s, json!({"story": story})).await.ok(201);
        s
    }

    /// Waits (`?min_position=`, at most 5 s) until the views hold every event written so far
    /// and returns that position; asserts the read answers 200.
    pub async fn views_at_head(&self) -> i64 {
        let head = self.head().await;
        self.call(
            Method::GET,
            &format!("/v1/stories?min_position={head}"),
            None,
            None,
        )
        .await
        .ok(200);
        head
    }

    /// A reader's GET of a story once the views hold `position` (or 5 s have passed).
    pub async fn read_story_at(&self, story: &str, position: i64) -> Answer {
        let path = format!("/v1/stories/{story}?min_position={position}");
        self.call(Method::GET, &path, None, None).await
    }

    /// A reader's GET of a story, as the views hold it now.
    pub async fn read_story(&self, story: &str) -> Answer {
        let path = format!("/v1/stories/{story}");
        self.call(Method::GET, &path, None, None).await
    }

    /// A staff member's POST (as `token`) to `/v1/stories/{story}/{action}`: close, reopen,
    /// relations.
    pub async fn story_action(
        &self,
        token: &str,
        story: &str,
        action: &str,
        body: Option<Value>,
    ) -> Answer {
        let path = format!("/v1/stories/{story}/{action}");
        self.call(Method::POST, &path, Some(token), body).await
    }

    /// A story as readers see it once the views hold `position` (asserting a 200).
    pub async fn story_at(&self, story: &str, position: i64) -> Value {
        self.read_story_at(story, position).await.ok(200).clone()
    }

    /// Files, for each case, a valid development with `field` set to `value`, and asserts each
    /// is refused with a 422 naming the field.
    pub async fn refuses_each_field(&self, story: &str, cases: Vec<(&str, Value)>) {
        for (field, value) in cases {
            let mut filing = development("update");
            filing[field] = value;
            self.record(story, filing)
                .await
                .problem_for_field(422, field);
        }
    }

    /// An admin's revocation of the token `id`.
    pub async fn revoke_token(&self, id: &str) -> Answer {
        let path = format!("/v1/tokens/{id}");
        self.call(Method::DELETE, &path, Some(&self.admin), None)
            .await
    }

    /// A subscriber's own request to `/v1/subscribers/{id}{rest}`, with its token.
    pub async fn subscriber_call(
        &self,
        s: &SignedUp,
        method: Method,
        rest: &str,
        body: Option<Value>,
    ) -> Answer {
        let path = format!("/v1/subscribers/{}{rest}", s.id);
        self.call(method, &path, Some(&s.token), body).await
    }

    /// A subscriber adds a subscription (`filters`).
    pub async fn subscribe(&self, s: &SignedUp, filters: Value) -> Answer {
        self.subscriber_call(s, Method::POST, "/subscriptions", Some(filters))
            .await
    }

    /// A subscriber adds an endpoint.
    pub async fn add_endpoint(&self, s: &SignedUp, endpoint: Value) -> Answer {
        self.subscriber_call(s, Method::POST, "/endpoints", Some(endpoint))
            .await
    }

    /// A subscriber's GET of one of its lists (`/alerts`, `/endpoints`, ...).
    pub async fn subscriber_get(&self, s: &SignedUp, rest: &str) -> Answer {
        self.subscriber_call(s, Method::GET, rest, None).await
    }

    /// Stops the server, waits for in-flight requests, and hands over the data directory (which
    /// lives on until the returned guard is dropped).
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
        self.dir.take().expect("the data directory is still there")
    }

    /// Whether the application is still running: none of its parts (server, projector,
    /// notifier, relay) has ended.
    pub fn is_running(&self) -> bool {
        self.server.as_ref().is_some_and(|s| !s.is_finished())
    }
}

/// A subscriber that signed up: its id and the token that manages it.
#[derive(Debug, Clone)]
pub struct SignedUp {
    pub id: String,
    pub token: String,
}

#[derive(Debug)]
pub struct IssuedTokenAnswer {
    pub id: String,
    pub token: String,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A valid filing of `kind`, with a fresh id.
pub fn development(kind: &str) -> Value {
    let mut filing = crate::api::development(Uuid::new_v4());
    filing["kind"] = json!(kind);
    filing
}

/// The path of the confirmation link a confirmation mail carries (quoted-printable soft line
/// breaks undone).
pub fn confirmation_path(mail: &crate::smtp_sink::Received) -> String {
    let body = mail.body().replace("=\r\n", "");
    let link = body
        .split_whitespace()
        .find(|w| w.contains("/v1/email-confirmations/"))
        .unwrap_or_else(|| panic!("a confirmation link in: {body}"));
    link[link.find("/v1/").expect("a path")..].to_owned()
}

impl TestApp {
    /// Confirms an email endpoint as a person does with its confirmation mail: opens the link
    /// (a page, whose form POSTs to the same path), then presses the button.
    pub async fn confirm_from_mail(&self, mail: &crate::smtp_sink::Received) {
        let path = confirmation_path(mail);
        let url = format!("{}{path}", self.address);
        let page = self.client.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains(&format!(r#"<form method="post" action="{path}""#)),
            "{html}"
        );
        let confirmed = self.client.post(&url).send().await.unwrap();
        assert_eq!(confirmed.status(), 200);
    }
}

/// A JetStream stream and subjects of one test alone.
pub fn private_stream() -> newsroom_log::relay::StreamSettings {
    let tag = Uuid::new_v4().simple().to_string();
    newsroom_log::relay::StreamSettings {
        stream: format!("TEST_EVENTS_{tag}"),
        subject_prefix: format!("test.{tag}.events"),
        replicas: 1,
    }
}

/// The app over a fresh PostgreSQL database (log and views), or `None` after saying the test is
/// skipped. The database is dropped with the guard, after the app.
pub async fn spawn_app_on_postgres() -> Option<(TestApp, TestDatabase)> {
    let db = TestDatabase::create().await?;
    let url = db.url.clone();
    let app = spawn_app_with(move |s| s.command.database_url = Some(url)).await;
    Some((app, db))
}
