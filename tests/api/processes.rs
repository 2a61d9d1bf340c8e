//! Fault tests of a scale-out deployment as separate processes: the `newsroom` binary (built by
//! this package from `crates/newsroom/src/main.rs`) runs once per role against a PostgreSQL log
//! and a NATS JetStream stream, and processes are killed with SIGKILL at awkward moments. What a
//! reader sees and what a subscriber's webhook receives must come out complete, each alert once
//! (receivers count by `webhook-id`).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use newsroom_command::{PgStore, Tokens};
use newsroom_domain::Role;
use newsroom_tests::receiver::{Received, WebhookReceiver};
use newsroom_tests::*;
use reqwest::Method;
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_newsroom-process");
const WAIT: Duration = Duration::from_secs(60);

/// One `newsroom serve --role …` process with its own data directory.
struct Process {
    role: &'static str,
    child: Option<Child>,
    address: String,
    dir: PathBuf,
    env: Vec<(String, String)>,
    client: reqwest::Client,
}

impl Process {
    async fn start(role: &'static str, dir: &Path, env: &[(&str, String)]) -> Self {
        let mut p = Self {
            role,
            child: None,
            address: String::new(),
            dir: dir.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            client: reqwest::Client::new(),
        };
        p.spawn().await;
        p
    }

    async fn spawn(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("data dir");
        let listen = format!("127.0.0.1:{}", free_port());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("process.log"))
            .expect("log file");
        let child = Command::new(BINARY)
            .args(["serve", "--role", self.role, "--listen", &listen])
            .env("NEWSROOM_DATA_DIR", &self.dir)
            .env("NEWSROOM_LOG", "info")
            .env("NEWSROOM_WEBHOOK_ALLOWLIST", "127.0.0.1")
            .env("NEWSROOM_WRITES_PER_TOKEN_PER_MINUTE", "0")
            .env("NEWSROOM_DELIVERY_LEASE_SECS", "2")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("the newsroom binary starts");
        self.child = Some(child);
        self.address = format!("http://{listen}");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the {} process exited ({status}):\n{}",
                    self.role,
                    self.log()
                );
            }
            let health = self
                .client
                .get(format!("{}/healthz", self.address))
                .send()
                .await;
            if matches!(&health, Ok(r) if r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the {} process did not answer /healthz:\n{}",
                self.role,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("process.log")).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no hand-back, nothing flushed.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// Starts the process again over the same data directory (a new port).
    async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// SIGTERM, then waits for the process to exit.
    async fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM runs");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("waits") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the {} process ignored SIGTERM:\n{}", self.role, self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        send(&self.client, &self.address, method, path, token, body).await
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL database, a stream of its own, and a reporter's token.
struct Deployment {
    db: TestDatabase,
    stream: newsroom_command::relay::StreamSettings,
    reporter: String,
    root: tempfile::TempDir,
}

impl Deployment {
    async fn new(db: TestDatabase) -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let log = PgStore::connect(&db.url).await.expect("PostgreSQL log");
        let reporter = Tokens::new(log)
            .create(Role::Reporter, "Rita Reporter".into())
            .await
            .expect("token")
            .token;
        Self {
            db,
            stream: newsroom_command::relay::StreamSettings {
                stream: format!("TEST_EVENTS_{tag}"),
                subject_prefix: format!("test.{tag}.events"),
                replicas: 1,
            },
            reporter,
            root: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn env(&self, nats: &str) -> Vec<(&'static str, String)> {
        vec![
            ("NEWSROOM_DATABASE_URL", self.db.url.clone()),
            ("NEWSROOM_NATS_URL", nats.to_owned()),
            ("NEWSROOM_NATS_STREAM", self.stream.stream.clone()),
            (
                "NEWSROOM_NATS_SUBJECT_PREFIX",
                self.stream.subject_prefix.clone(),
            ),
        ]
    }

    async fn start(&self, role: &'static str, name: &str, nats: &str) -> Process {
        Process::start(role, &self.root.path().join(name), &self.env(nats)).await
    }
}

async fn open_story(command: &Process, reporter: &str) -> String {
    let slug = format!("story-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    command
        .call(
            Method::POST,
            "/v1/stories",
            Some(reporter),
            Some(json!({"slug": slug, "headline": "Campaign reports a hack"})),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Records a development; returns its id and the position that recorded it.
async fn record(command: &Process, reporter: &str, story: &str) -> (String, i64) {
    let body = development("update");
    let id = body["id"].as_str().unwrap().to_owned();
    let answer = command
        .call(
            Method::POST,
            &format!("/v1/stories/{story}/developments"),
            Some(reporter),
            Some(body),
        )
        .await;
    (id, answer.ok(201)["position"].as_i64().unwrap())
}

/// Signs up a subscriber at the notifier with a webhook to `receiver`, following `stories`.
async fn follow(notifier: &Process, receiver: &WebhookReceiver, stories: &[String]) {
    let signed = notifier
        .call(
            Method::POST,
            "/v1/subscribers",
            None,
            Some(json!({"name": "Wire desk"})),
        )
        .await;
    let s = signed.ok(201);
    let (id, token) = (s["id"].as_str().unwrap(), s["token"].as_str().unwrap());
    notifier
        .call(
            Method::POST,
            &format!("/v1/subscribers/{id}/endpoints"),
            Some(token),
            Some(json!({"kind": "webhook", "url": receiver.url})),
        )
        .await
        .ok(201);
    for story in stories {
        notifier
            .call(
                Method::POST,
                &format!("/v1/subscribers/{id}/subscriptions"),
                Some(token),
                Some(json!({"story": story})),
            )
            .await
            .ok(201);
    }
}

/// The developments of `story` a projector shows once it has reached `position`.
async fn shown(projector: &Process, story: &str, position: i64) -> BTreeSet<String> {
    let view = projector
        .call(
            Method::GET,
            &format!("/v1/stories/{story}?min_position={position}"),
            None,
            None,
        )
        .await;
    if view.status == 503 {
        // Not there yet (the wait `min_position` asks for is bounded).
        return BTreeSet::new();
    }
    view.ok(200)["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until a projector shows every development of `expected` (story → development ids).
async fn wait_shown(projector: &Process, expected: &HashMap<String, BTreeSet<String>>, last: i64) {
    for (story, ids) in expected {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = shown(projector, story, last).await;
            if &got == ids {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} shows {} of {} developments of {story}:\n{}",
                projector.role,
                got.len(),
                ids.len(),
                projector.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits until the receiver accepted an alert for every development in `expected`, lets any
/// duplicate arrive, and checks each development was alerted under exactly one `webhook-id`.
async fn assert_each_alerted_once(receiver: &WebhookReceiver, expected: &BTreeSet<String>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let alerted: BTreeSet<String> = receiver
            .accepted()
            .iter()
            .map(Received::development_id)
            .collect();
        if alerted.is_superset(expected) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} developments alerted",
            alerted.intersection(expected).count(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Longer than a delivery lease: a delivery sent twice would have arrived by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut ids_per_development: HashMap<String, BTreeSet<String>> = HashMap::new();
    for r in receiver.accepted() {
        ids_per_development
            .entry(r.development_id())
            .or_default()
            .insert(r.id.clone());
    }
    let alerted: BTreeSet<String> = ids_per_development.keys().cloned().collect();
    assert_eq!(
        &alerted, expected,
        "alerts for exactly the recorded developments"
    );
    for (development, ids) in &ids_per_development {
        assert_eq!(ids.len(), 1, "development {development} alerted as {ids:?}");
    }
}

#[tokio::test]
async fn nats_restarted_under_load_and_a_command_process_killed_before_publishing_lose_nothing() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let nats_dir = tempfile::tempdir().unwrap();
    let Some(mut nats) = PrivateNats::start(free_port(), nats_dir.path()) else {
        return;
    };
    let d = Deployment::new(db).await;
    let url = nats.url();
    let mut command = d.start("command", "command", &url).await;
    let projector = d.start("projector", "projector", &url).await;
    let notifier = d.start("notifier", "notifier", &url).await;
    let receiver = WebhookReceiver::ok().await;

    let story = open_story(&command, &d.reporter).await;
    follow(&notifier, &receiver, std::slice::from_ref(&story)).await;
    // A steady write load, during which NATS is killed and started again.
    let mut recorded = BTreeSet::new();
    let mut last = 0;
    for i in 0..60 {
        let (id, position) = record(&command, &d.reporter, &story).await;
        recorded.insert(id);
        last = position;
        match i {
            10 => nats.stop(),
            30 => nats.restart(),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_shown(
        &projector,
        &HashMap::from([(story.clone(), recorded.clone())]),
        last,
    )
    .await;
    assert_each_alerted_once(&receiver, &recorded).await;

    // NATS goes away again: commands are still committed to the log, and cannot be published.
    nats.stop();
    for _ in 0..20 {
        let (id, position) = record(&command, &d.reporter, &story).await;
        recorded.insert(id);
        last = position;
    }
    let health = command.call(Method::GET, "/healthz", None, None).await;
    let published = health.ok(200)["checks"]["relay_position"].as_i64().unwrap();
    assert_eq!(health.body["head_position"], last, "{health:?}");
    assert!(published < last, "{health:?}");
    // The projector, cut off from the stream, says so and keeps serving what it has.
    let deadline = Instant::now() + WAIT;
    loop {
        let health = projector.call(Method::GET, "/healthz", None, None).await;
        let body = health.ok(200);
        if body["status"] == "degraded" {
            assert_ne!(body["checks"]["projector"], "ok", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The command process dies with those commits unpublished.
    command.kill();

    nats.restart();
    command.restart().await;
    wait_shown(
        &projector,
        &HashMap::from([(story.clone(), recorded.clone())]),
        last,
    )
    .await;
    let health = projector.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.ok(200)["checks"]["projector"], "ok", "{health:?}");
    assert_each_alerted_once(&receiver, &recorded).await;

    // The stream holds every event of the log once.
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
    let mut stream = js.get_stream(&d.stream.stream).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while stream.info().await.unwrap().state.messages != last as u64 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            stream.info().await.unwrap().state
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn projector_and_notifier_copies_killed_mid_stream_leave_nothing_lost_and_no_alert_twice() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(nats) = nats_test_url() else { return };
    let d = Deployment::new(db).await;
    let mut command = d.start("command", "command", &nats).await;
    let projector_a = d.start("projector", "projector-a", &nats).await;
    let mut projector_b = d.start("projector", "projector-b", &nats).await;
    // Two notifier copies share the alert queue in PostgreSQL.
    let mut notifier = d.start("notifier", "notifier-a", &nats).await;
    let mut notifier_b = d.start("notifier", "notifier-b", &nats).await;
    let receiver = WebhookReceiver::ok().await;

    let mut stories = Vec::new();
    for _ in 0..4 {
        stories.push(open_story(&command, &d.reporter).await);
    }
    follow(&notifier, &receiver, &stories).await;

    // A steady stream of filings; a projector copy and a notifier copy are killed mid-stream
    // and started again while it goes on; the other copies carry on meanwhile.
    let mut expected: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut in_order: HashMap<String, Vec<String>> = HashMap::new();
    let mut last = 0;
    for i in 0..120 {
        let story = &stories[i % stories.len()];
        let (id, position) = record(&command, &d.reporter, story).await;
        expected
            .entry(story.clone())
            .or_default()
            .insert(id.clone());
        in_order.entry(story.clone()).or_default().push(id);
        last = position;
        match i {
            40 => {
                projector_b.kill();
                notifier.kill();
            }
            60 => notifier.restart().await,
            90 => projector_b.restart().await,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    wait_shown(&projector_a, &expected, last).await;
    wait_shown(&projector_b, &expected, last).await;
    let all: BTreeSet<String> = expected.values().flatten().cloned().collect();
    assert_eq!(all.len(), 120);
    assert_each_alerted_once(&receiver, &all).await;
    // Per story, the alerts first arrived in the order the developments were recorded.
    let mut arrived: HashMap<String, Vec<String>> = HashMap::new();
    for r in receiver.accepted() {
        let alert = r.json();
        let story = alert["data"]["story"]["id"].as_str().unwrap().to_owned();
        let development = r.development_id();
        let seen = arrived.entry(story).or_default();
        if !seen.contains(&development) {
            seen.push(development);
        }
    }
    assert_eq!(arrived, in_order);

    // SIGTERM: each process stops taking work, hands back what it held and exits cleanly.
    for p in [
        &mut projector_b,
        &mut notifier,
        &mut notifier_b,
        &mut command,
    ] {
        let status = p.terminate().await;
        assert!(status.success(), "{} {status}:\n{}", p.role, p.log());
    }
    let js = async_nats::jetstream::new(async_nats::connect(&nats).await.unwrap());
    js.delete_stream(&d.stream.stream).await.unwrap();
}
