//! Web Push end to end: a push service stand-in (axum on port 0) receives what the running
//! notifier sends; Python's `http_ece` decrypts it and `cryptography` checks the VAPID token's
//! signature (tests/python/push_check.py), so neither the encryption nor the signature is judged
//! by the code that made it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use newsroom_notifier::{Clock, ManualClock};
use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

/// The Python that has `http_ece` (CI's venv, `.ci/venv`): `NEWSROOM_TEST_PYTHON`, else the
/// repository's `target/contract-venv`.
fn python() -> Option<PathBuf> {
    let python = std::env::var_os("NEWSROOM_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/contract-venv/bin/python")
        });
    let works = std::process::Command::new(&python)
        .args(["-c", "import http_ece, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        skip_or_fail("no Python with http_ece (run .ci/venv, or set NEWSROOM_TEST_PYTHON)");
        return None;
    }
    Some(python)
}

fn run_python(python: &PathBuf, command: &str, input: Option<Value>) -> Value {
    use std::io::Write as _;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/push_check.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .arg(command)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    if let Some(input) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "push_check.py {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One request the push service got.
#[derive(Debug, Clone)]
struct Pushed {
    headers: HeaderMap,
    body: Vec<u8>,
    at: tokio::time::Instant,
}

impl Pushed {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

type Script = dyn Fn(usize) -> u16 + Send + Sync;

#[derive(Clone)]
struct Service {
    got: Arc<Mutex<Vec<Pushed>>>,
    count: Arc<AtomicUsize>,
    script: Arc<Script>,
}

/// A push service: takes pushes at `/push/<anything>` and answers what `script` says.
struct PushService {
    origin: String,
    service: Service,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for PushService {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Takes a push and answers what the script says; a 429 asks for a second's pause
/// (`Retry-After`), as push services do when a sender goes too fast.
async fn take(State(s): State<Service>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let n = s.count.fetch_add(1, Ordering::SeqCst);
    s.got.lock().unwrap().push(Pushed {
        headers,
        body: body.to_vec(),
        at: tokio::time::Instant::now(),
    });
    let status = StatusCode::from_u16((s.script)(n)).unwrap();
    let mut answer = HeaderMap::new();
    if status == StatusCode::TOO_MANY_REQUESTS {
        answer.insert(axum::http::header::RETRY_AFTER, "1".parse().unwrap());
    }
    (status, answer)
}

impl PushService {
    async fn start(script: impl Fn(usize) -> u16 + Send + Sync + 'static) -> Self {
        let service = Service {
            got: Arc::default(),
            count: Arc::default(),
            script: Arc::new(script),
        };
        let app = Router::new()
            .route("/push/{id}", post(take))
            .with_state(service.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            origin,
            service,
            server,
        }
    }

    fn got(&self) -> Vec<Pushed> {
        self.service.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Pushed> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the push service got {} of {n} pushes",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

type Reader = SignedUp;

async fn sign_up(app: &TestApp) -> Reader {
    app.sign_up("Phone reader").await
}

async fn add_endpoint(app: &TestApp, r: &Reader, body: Value) -> Answer {
    app.add_endpoint(r, body).await
}

/// A reader signed up with one device (its push `endpoint`, its `keys`), following a new story.
async fn following_a_story(app: &TestApp, endpoint: &str, keys: &Value) -> (Reader, String) {
    following_with(app, endpoint, keys, |story| json!({"story": story})).await
}

/// A reader signed up with one device, following a new story with the subscription `follow`
/// makes of the story's id.
async fn following_with(
    app: &TestApp,
    endpoint: &str,
    keys: &Value,
    follow: impl FnOnce(&str) -> Value,
) -> (Reader, String) {
    let reader = sign_up(app).await;
    let story = app.open_story(false).await;
    add_endpoint(app, &reader, subscription(endpoint, keys))
        .await
        .ok(201);
    app.subscribe(&reader, follow(&story)).await.ok(201);
    (reader, story)
}

fn subscription(endpoint: &str, keys: &Value) -> Value {
    json!({"kind": "web_push", "subscription": {
        "endpoint": endpoint,
        "expirationTime": null,
        "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]},
    }})
}

/// What the browser would read from a push, and what the push service checked of its token.
fn open(python: &PathBuf, keys: &Value, pushed: &Pushed) -> (Value, Value) {
    let checked = run_python(
        python,
        "check",
        Some(json!({
            "private": keys["private"],
            "auth": keys["auth"],
            "body": base64::engine::general_purpose::STANDARD.encode(&pushed.body),
            "authorization": pushed.header("authorization"),
        })),
    );
    let message: Value = serde_json::from_str(checked["plaintext"].as_str().unwrap()).unwrap();
    (message, checked)
}

#[tokio::test]
async fn pushes_are_encrypted_for_the_browser_signed_with_vapid_and_a_correction_replaces_its_original(
) {
    let Some(python) = python() else { return };
    let app = spawn_app().await;
    let service = PushService::start(|_| 201).await;
    let keys = run_python(&python, "keygen", None);
    let (_, story) =
        following_a_story(&app, &format!("{}/push/device-1", service.origin), &keys).await;
    let vapid = app
        .call(Method::GET, "/v1/push/key", None, None)
        .await
        .ok(200)["public_key"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut flash = development("charges_filed");
    flash["urgency"] = json!("flash");
    flash["headline"] = json!("Justice Department charges Pakistani national with Iran ties");
    let id = flash["id"].as_str().unwrap().to_owned();
    // A flash is published by an editor (a reporter's waits for review).
    app.record_as(&app.editor, &story, flash).await.ok(201);
    app.editor_action(
        &story,
        &id,
        "corrections",
        json!({"note": "He is a dual national.", "changes": {"body": "He holds two passports."}}),
    )
    .await
    .ok(200);
    let mut routine = development("update");
    routine["urgency"] = json!("routine");
    app.record(&story, routine).await.ok(201);

    let got = service.wait_for(3).await;
    let started = chrono::Utc::now().timestamp();
    let mut messages = Vec::new();
    for pushed in &got {
        assert_eq!(pushed.header("content-encoding"), "aes128gcm");
        assert_eq!(pushed.header("ttl"), "43200");
        let topic = pushed.header("topic");
        assert!(
            (1..=32).contains(&topic.len())
                && topic
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{topic}"
        );
        assert!(pushed.body.len() <= 4096, "{}", pushed.body.len());
        let (message, checked) = open(&python, &keys, pushed);
        assert_eq!(checked["signature_valid"], true, "{checked}");
        assert_eq!(checked["header"]["alg"], "ES256");
        assert_eq!(checked["k"], vapid.as_str(), "signed with the served key");
        let claims = &checked["claims"];
        assert_eq!(claims["aud"], service.origin.as_str(), "{claims}");
        assert_eq!(claims["sub"], "mailto:alerts@newsroom.test");
        let exp = claims["exp"].as_i64().unwrap();
        assert!(
            exp > started && exp <= started + 24 * 3600,
            "{exp} vs {started}"
        );
        messages.push((pushed.header("urgency"), topic, message));
    }
    let (urgency, topic, original) = &messages[0];
    assert_eq!(urgency, "high", "flash");
    assert_eq!(
        original["headline"],
        "Justice Department charges Pakistani national with Iran ties"
    );
    assert_eq!(original["story"], "Campaign reports a hack");
    assert_eq!(original["kind"], "charges_filed");
    assert_eq!(original["correction"], false);
    let link = original["link"].as_str().unwrap();
    assert!(
        link.starts_with("http://newsroom.test/stories/")
            && link.ends_with(&format!("#development-{id}")),
        "{link}"
    );
    let (urgency, correction_topic, correction) = &messages[1];
    assert_eq!(urgency, "high");
    assert_eq!(
        correction_topic, topic,
        "the correction replaces the original"
    );
    assert_eq!(correction["correction"], true);
    assert_eq!(correction["tag"], original["tag"]);
    assert_eq!(correction["link"], original["link"]);
    assert_eq!(correction["body"], "Correction: He is a dual national.");
    let (urgency, other_topic, _) = &messages[2];
    assert_eq!(urgency, "low", "routine");
    assert_ne!(other_topic, topic, "another development, another topic");
}

#[tokio::test]
async fn a_push_service_saying_gone_or_not_found_removes_the_subscription() {
    let Some(python) = python() else { return };
    let app = spawn_app().await;
    let keys = run_python(&python, "keygen", None);
    // RFC 8030 §7.3: a subscription that expired is 404 or 410.
    for status in [410, 404] {
        let service = PushService::start(move |_| status).await;
        let (reader, story) =
            following_a_story(&app, &format!("{}/push/gone", service.origin), &keys).await;
        app.record(&story, development("update")).await.ok(201);
        service.wait_for(1).await;
        let path = format!("/v1/subscribers/{}/endpoints", reader.id);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let list = app
                .call(Method::GET, &path, Some(&reader.token), None)
                .await
                .ok(200)
                .clone();
            if list.as_array().unwrap().is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{status}: still there: {list}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let p = app.record(&story, development("update")).await.ok(201)["position"]
            .as_i64()
            .unwrap();
        app.wait_for_matcher(p, WAIT).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(service.got().len(), 1, "{status}: nothing more goes to it");
    }
}

#[tokio::test]
async fn a_push_service_that_is_busy_or_asks_for_a_pause_is_tried_again() {
    let Some(python) = python() else { return };
    let app = spawn_app().await;
    let keys = run_python(&python, "keygen", None);
    for status in [503, 429] {
        let service = PushService::start(move |n| if n == 0 { status } else { 201 }).await;
        let (_, story) =
            following_a_story(&app, &format!("{}/push/busy", service.origin), &keys).await;
        app.record(&story, development("update")).await.ok(201);
        let got = service.wait_for(2).await;
        let (first, _) = open(&python, &keys, &got[0]);
        let (again, _) = open(&python, &keys, &got[1]);
        assert_eq!(first, again, "{status}: the same message, encrypted afresh");
        assert_ne!(got[0].body, got[1].body);
        if status == 429 {
            // The test policy's own pause is 50 ms: the second is the push service's.
            let waited = got[1].at - got[0].at;
            assert!(
                waited >= Duration::from_millis(950),
                "Retry-After: 1 honoured, waited {waited:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_retraction_replaces_its_original_and_says_so() {
    let Some(python) = python() else { return };
    let app = spawn_app().await;
    let service = PushService::start(|_| 201).await;
    let keys = run_python(&python, "keygen", None);
    let (_, story) =
        following_a_story(&app, &format!("{}/push/retracted", service.origin), &keys).await;
    let d = development("statement_issued");
    let id = d["id"].as_str().unwrap().to_owned();
    app.record(&story, d).await.ok(201);
    app.editor_action(
        &story,
        &id,
        "retraction",
        json!({"reason": "The statement was forged."}),
    )
    .await
    .ok(200);
    let got = service.wait_for(2).await;
    let (original, _) = open(&python, &keys, &got[0]);
    let (retraction, _) = open(&python, &keys, &got[1]);
    assert_eq!(got[0].header("topic"), got[1].header("topic"));
    assert!(!got[0].header("topic").is_empty());
    assert_eq!(original["retraction"], false);
    assert_eq!(retraction["retraction"], true, "{retraction}");
    assert_eq!(retraction["tag"], original["tag"]);
    assert_eq!(retraction["link"], original["link"]);
    assert_eq!(retraction["headline"], original["headline"]);
    assert_eq!(retraction["body"], "Retracted: The statement was forged.");
}

#[tokio::test]
async fn min_urgency_holds_back_pushes_below_it() {
    let Some(python) = python() else { return };
    let app = spawn_app().await;
    let service = PushService::start(|_| 201).await;
    let keys = run_python(&python, "keygen", None);
    let (_, story) = following_with(
        &app,
        &format!("{}/push/flash-only", service.origin),
        &keys,
        |story| json!({"story": story, "min_urgency": "flash"}),
    )
    .await;
    let mut routine = development("update");
    routine["urgency"] = json!("routine");
    app.record(&story, routine).await.ok(201);
    app.record(&story, development("statement_issued"))
        .await
        .ok(201); // priority
    let mut flash = development("charges_filed");
    flash["urgency"] = json!("flash");
    flash["headline"] = json!("Charges filed");
    let p = app.record_as(&app.editor, &story, flash).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    let got = service.wait_for(1).await;
    app.wait_for_matcher(p, WAIT).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(service.got().len(), 1, "only the flash");
    assert_eq!(got[0].header("urgency"), "high");
    let (message, _) = open(&python, &keys, &got[0]);
    assert_eq!(message["headline"], "Charges filed");
}

#[tokio::test]
async fn a_digest_is_one_push_that_leads_to_the_alerts_page() {
    let Some(python) = python() else { return };
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app_clock: Arc<dyn Clock> = clock.clone();
    let app = spawn_app_with(move |s| s.clock = app_clock).await;
    let service = PushService::start(|_| 201).await;
    let keys = run_python(&python, "keygen", None);
    let (_, story) = following_with(
        &app,
        &format!("{}/push/digest", service.origin),
        &keys,
        |story| json!({"story": story, "delivery": "digest", "digest_minutes": 15}),
    )
    .await;
    app.record(&story, development("update")).await.ok(201);
    let p = app
        .record(&story, development("statement_issued"))
        .await
        .ok(201)["position"]
        .as_i64()
        .unwrap();
    app.wait_for_matcher(p, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(service.got().is_empty(), "nothing before the window ends");

    clock.advance(chrono::Duration::minutes(16));
    let got = service.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(service.got().len(), 1, "one push for the window");
    assert_eq!(got[0].header("urgency"), "low");
    assert_eq!(got[0].header("topic"), "digest");
    let (message, checked) = open(&python, &keys, &got[0]);
    assert_eq!(checked["signature_valid"], true);
    // The token is valid from the notifier's clock, which the test moved.
    let exp = checked["claims"]["exp"].as_i64().unwrap();
    let now = clock.now().timestamp();
    assert!(exp > now && exp <= now + 24 * 3600, "{exp} vs {now}");
    assert_eq!(message["kind"], "digest");
    assert_eq!(message["headline"], "2 new in the stories you follow");
    assert_eq!(message["link"], "http://newsroom.test/alerts");
    assert_eq!(message["story"], "Campaign reports a hack");
}

#[tokio::test]
async fn push_subscriptions_are_checked_naming_the_field() {
    let app = spawn_app().await;
    let reader = sign_up(&app).await;
    // The RFC 8291 example's keys.
    let keys = json!({
        "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        "auth": "BTBZMqHH6r4Tts7J_aSIgg",
    });
    let endpoint = "http://127.0.0.1:9/push/one";
    for (bad, field) in [
        (
            json!({"p256dh": "BCVx", "auth": keys["auth"]}),
            "subscription.keys.p256dh",
        ),
        (
            json!({"p256dh": keys["p256dh"], "auth": "c2hvcnQ"}),
            "subscription.keys.auth",
        ),
    ] {
        add_endpoint(&app, &reader, subscription(endpoint, &bad))
            .await
            .problem_for_field(422, field);
    }
    // A private address is as refused to a push endpoint as to a webhook.
    add_endpoint(&app, &reader, subscription("http://10.1.2.3/push/x", &keys))
        .await
        .problem_for_field(422, "subscription.endpoint");
    add_endpoint(&app, &reader, subscription("ftp://127.0.0.1/push", &keys))
        .await
        .problem_for_field(422, "subscription.endpoint");
    let made = add_endpoint(&app, &reader, subscription(endpoint, &keys)).await;
    let made = made.ok(201);
    assert_eq!(made["kind"], "web_push");
    assert!(
        made.get("secret").is_none(),
        "the keys are never shown back"
    );
    add_endpoint(&app, &reader, subscription(endpoint, &keys))
        .await
        .problem_for_field(409, "subscription.endpoint");
}

#[tokio::test]
async fn the_vapid_key_is_made_once_and_kept_across_restarts() {
    let app = spawn_app().await;
    let key = app
        .call(Method::GET, "/v1/push/key", None, None)
        .await
        .ok(200)["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let point = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&key)
        .expect("base64url without padding");
    assert_eq!(
        (point.len(), point[0]),
        (65, 4),
        "an uncompressed P-256 point"
    );
    let private: String = app
        .notifier
        .read(|c| {
            Ok(c.query_row(
                "SELECT value FROM installation_secrets WHERE name = 'vapid_private_key'",
                newsroom_log::args![],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&private)
            .unwrap()
            .len(),
        32
    );
    let dir = app.stop().await;
    let app = spawn_app_in(dir, |_| {}).await;
    let again = app.call(Method::GET, "/v1/push/key", None, None).await;
    assert_eq!(again.ok(200)["public_key"], key.as_str());
    let doc = app.call(Method::GET, "/openapi.json", None, None).await;
    assert!(doc.ok(200)["paths"]["/v1/push/key"]["get"].is_object());
}

#[tokio::test]
async fn notifier_copies_sharing_postgresql_sign_with_one_vapid_key() {
    let Some(python) = python() else { return };
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let on = |role| postgres_role(&db.url, role);
    let command = spawn_app_with(on(newsroom::ProcessRole::Command)).await;
    // The notifier reads what a story looked like from the views.
    let _projector = spawn_app_with(on(newsroom::ProcessRole::Projector)).await;
    // Two notifier copies starting at once, each making a key pair of its own: one is kept.
    let (first, second) = tokio::join!(
        spawn_app_with(on(newsroom::ProcessRole::Notifier)),
        spawn_app_with(on(newsroom::ProcessRole::Notifier)),
    );
    let key = public_key(&first).await;
    assert_eq!(
        public_key(&second).await,
        key,
        "one key for the installation"
    );
    let rows: i64 = first
        .notifier
        .read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM installation_secrets WHERE name = 'vapid_private_key'",
                newsroom_log::args![],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(rows, 1);

    // Whichever copy sends a push signs it with that key.
    let service = PushService::start(|_| 201).await;
    let keys = run_python(&python, "keygen", None);
    let reader = sign_up(&second).await;
    add_endpoint(
        &second,
        &reader,
        subscription(&format!("{}/push/shared", service.origin), &keys),
    )
    .await
    .ok(201);
    let story = command.open_story(false).await;
    second
        .subscribe(&reader, json!({"story": story}))
        .await
        .ok(201);
    command.record(&story, development("update")).await.ok(201);
    let got = service.wait_for(1).await;
    let (message, checked) = open(&python, &keys, &got[0]);
    assert_eq!(checked["signature_valid"], true, "{checked}");
    assert_eq!(checked["k"], key.as_str());
    assert_eq!(
        message["headline"],
        "Campaign A says its email was breached"
    );
}

async fn public_key(app: &TestApp) -> String {
    app.call(Method::GET, "/v1/push/key", None, None)
        .await
        .ok(200)["public_key"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A DevTools command, sent through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"cmd": self.cmd, "params": self.params}).to_string()),
        )
    }
}

async fn cdp(client: &fantoccini::Client, cmd: &'static str, params: Value) -> Value {
    client
        .issue_cmd(Cdp { cmd, params })
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

/// The notifications the page's worker shows.
async fn notifications(client: &fantoccini::Client) -> Value {
    client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             navigator.serviceWorker.getRegistration('/alerts')
               .then((r) => r ? r.getNotifications() : [])
               .then((ns) => done(ns.map((n) => ({title: n.title, body: n.body, tag: n.tag,
                                                  link: n.data && n.data.link}))))
               .catch((e) => done(String(e)));",
            vec![],
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn the_alerts_page_registers_its_worker_and_the_worker_shows_a_push_as_a_notification() {
    use newsroom_testkit::chrome::{browser, driver, press, type_into, wait_for};
    let Some(driver) = driver() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let story = app.open_story(false).await;
    let reader = browser(&driver).await;
    reader
        .goto(&format!("{base}/alerts/follow?story={story}"))
        .await
        .unwrap();
    wait_for(&reader, "//input[@id='follow-name']", "the follow form").await;
    type_into(&reader, "#follow-name", "Ada Reader").await;
    press(&reader, "form.follow-form button[type=submit]").await;
    wait_for(
        &reader,
        "//div[@role='status' and contains(., 'You are following it')]",
        "the alerts page",
    )
    .await;
    cdp(
        &reader,
        "Browser.grantPermissions",
        json!({"permissions": ["notifications"], "origin": base}),
    )
    .await;
    let button = wait_for(
        &reader,
        "//section[@id='push' and not(@hidden)]//button[.='Notify me on this device']",
        "the page offers notifications on this device",
    )
    .await;
    // The key the page subscribes with is the installation's.
    let key = app.call(Method::GET, "/v1/push/key", None, None).await;
    let section = reader
        .find(fantoccini::Locator::Css("section#push"))
        .await
        .unwrap();
    assert_eq!(
        section.attr("data-key").await.unwrap().as_deref(),
        key.ok(200)["public_key"].as_str()
    );
    button.click().await.unwrap();
    wait_for(
        &reader,
        "//section[@id='push' and @data-worker='registered']",
        "the worker is registered",
    )
    .await;
    let scope = reader
        .execute_async(
            "const done = arguments[arguments.length - 1];
             navigator.serviceWorker.getRegistration('/alerts')
               .then((r) => done(r && r.active ? r.scope : null));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        scope,
        json!(format!("{base}/alerts")),
        "same origin, /alerts"
    );

    // A push, as the push service would hand it to the browser, decrypted: straight to the
    // worker through DevTools. Registration ids are not exposed to a page; a fresh profile
    // numbers them from 0, and a push to an id that does not exist goes nowhere.
    let link = format!("{base}/stories/x#development-d1");
    let original = json!({"headline": "Justice Department charges a man", "story": "Charges",
        "body": "Charges", "link": link, "tag": "T1", "correction": false, "retraction": false});
    let shown = push_until(&reader, &base, &original, |n| {
        n.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert_eq!(
        shown[0]["title"], "Justice Department charges a man",
        "{shown}"
    );
    assert_eq!(shown[0]["link"], link.as_str());
    assert_eq!(shown[0]["tag"], "T1");
    // Its correction, under the same tag, takes its place, marked as a correction.
    let correction = json!({"headline": "Justice Department charges a man", "story": "Charges",
        "body": "Correction: he is a dual national.", "link": link, "tag": "T1",
        "correction": true, "retraction": false});
    let shown = push_until(&reader, &base, &correction, |n| {
        n.as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["title"] == "Correction: Justice Department charges a man")
        })
    })
    .await;
    assert_eq!(
        shown.as_array().unwrap().len(),
        1,
        "replaced, not added: {shown}"
    );
    assert_eq!(shown[0]["body"], "Correction: he is a dual national.");
    assert_eq!(shown[0]["link"], link.as_str());
}

/// Hands `message` to the page's worker as a decrypted push, through DevTools. Registration ids
/// are not exposed to a page; a fresh profile numbers them from 0, and a push to an id that does
/// not exist goes nowhere.
async fn deliver(client: &fantoccini::Client, origin: &str, message: &Value) {
    cdp(client, "ServiceWorker.enable", json!({})).await;
    for id in 0..8 {
        let _ = client
            .issue_cmd(Cdp {
                cmd: "ServiceWorker.deliverPushMessage",
                params: json!({"origin": origin, "registrationId": id.to_string(),
                               "data": message.to_string()}),
            })
            .await;
    }
}

/// Delivers `message` until the notifications are `done` (a busy machine may have the worker
/// take a push before DevTools knows the registration; showing it twice is harmless, as the tag
/// replaces).
async fn push_until(
    client: &fantoccini::Client,
    origin: &str,
    message: &Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut next = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next {
            deliver(client, origin, message).await;
            next = tokio::time::Instant::now() + Duration::from_secs(2);
        }
        let shown = notifications(client).await;
        if done(&shown) {
            return shown;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such notification: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
