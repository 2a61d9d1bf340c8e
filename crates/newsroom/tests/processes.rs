//! Fault tests of a scale-out deployment as separate processes: the `newsroom` binary (built by
//! this package from `crates/newsroom/src/main.rs`) runs once per role against a PostgreSQL log
//! and a NATS JetStream stream, and processes are killed with SIGKILL at awkward moments. What a
//! reader sees and what a subscriber's webhook receives must come out complete, each alert once
//! (receivers count by `webhook-id`).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use newsroom_domain::Role;
use newsroom_log::PgStore;
use newsroom_testkit::prelude::*;
use newsroom_testkit::receiver::{Received, WebhookReceiver};
use newsroom_web::Tokens;
use reqwest::Method;
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_newsroom");
/// How long a test waits for every alert: a copy killed mid-fan-out has its partitions taken
/// over only when its lease lapses, and a machine under load (CI beside other builds) may need
/// a minute beyond that to send what it left.
const WAIT: Duration = Duration::from_secs(120);

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
            client: http_client(),
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
    stream: newsroom_log::relay::StreamSettings,
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
            stream: newsroom_log::relay::StreamSettings {
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

/// The sum of a metric's samples (any labels) in a process's `/metrics`.
async fn metric(p: &Process, name: &str) -> f64 {
    let answer = p.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer
        .body
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Signs up `n` subscribers at `notifier`, each with a webhook to `receiver`, following
/// everything.
async fn sign_up_everyone(notifier: &Process, receiver: &WebhookReceiver, n: usize) {
    for _ in 0..n {
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
        notifier
            .call(
                Method::POST,
                &format!("/v1/subscribers/{id}/subscriptions"),
                Some(token),
                Some(json!({"everything": true})),
            )
            .await
            .ok(201);
    }
}

/// Who an alert went to: the token of its unsubscribe link (the link's base is the public URL
/// of the copy that matched it).
fn recipient(alert: &Value) -> String {
    let link = alert["data"]["links"]["unsubscribe"].as_str().unwrap();
    link.rsplit('/').next().unwrap().to_owned()
}

/// What one subscriber received of one development: who, which development, and under which
/// `webhook-id`s.
fn received_pairs(receiver: &WebhookReceiver) -> HashMap<(String, String), BTreeSet<String>> {
    let mut pairs: HashMap<(String, String), BTreeSet<String>> = HashMap::new();
    for r in receiver.accepted() {
        let subscriber = recipient(&r.json());
        pairs
            .entry((subscriber, r.development_id()))
            .or_default()
            .insert(r.id.clone());
    }
    pairs
}

/// Waits until every one of `subscribers` received every development of `developments`.
async fn wait_all_received(
    receiver: &WebhookReceiver,
    subscribers: usize,
    developments: &BTreeSet<String>,
    copies: &[&Process],
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let pairs = received_pairs(receiver);
        let got = pairs
            .keys()
            .filter(|(_, d)| developments.contains(d))
            .count();
        if got == subscribers * developments.len() {
            return;
        }
        if Instant::now() > deadline {
            let mut per_development: HashMap<&String, usize> = HashMap::new();
            for (_, d) in pairs.keys() {
                *per_development.entry(d).or_default() += 1;
            }
            let short: Vec<_> = developments
                .iter()
                .map(|d| per_development.get(d).copied().unwrap_or(0))
                .filter(|n| *n < subscribers)
                .collect();
            let logs: Vec<String> = copies
                .iter()
                .map(|p| {
                    let log = p.log();
                    log[log.len().saturating_sub(4_000)..].to_owned()
                })
                .collect();
            panic!(
                "{got} of {} alerts received; developments short: {short:?}\n{}",
                subscribers * developments.len(),
                logs.join("\n-----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three notifier copies share the 64 partitions: each matches the stories and sends to the
/// endpoints of its own (each does some of the work), and one killed with SIGKILL in the middle
/// of a fan-out has its partitions and its leased deliveries taken over by the others: every
/// subscriber still gets every alert, each under one `webhook-id`, a story's in order.
#[tokio::test]
async fn notifier_copies_share_the_partitions_and_one_killed_mid_fan_out_loses_no_alert() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(nats) = nats_test_url() else { return };
    let d = Deployment::new(db).await;
    let command = d.start("command", "command", &nats).await;
    let _projector = d.start("projector", "projector", &nats).await;
    let copies = [
        d.start("notifier", "notifier-a", &nats).await,
        d.start("notifier", "notifier-b", &nats).await,
        d.start("notifier", "notifier-c", &nats).await,
    ];
    let [a, mut b, c] = copies;
    // A slow receiver, so that a fan-out is still under way when a copy dies.
    let receiver = WebhookReceiver::slow(Duration::from_millis(300)).await;
    const SUBSCRIBERS: usize = 30;
    sign_up_everyone(&a, &receiver, SUBSCRIBERS).await;
    // Each copy holds a share of the partitions.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut shares = Vec::new();
        for p in [&a, &b, &c] {
            shares.push(metric(p, "newsroom_notifier_partitions_owned").await);
        }
        if shares.iter().all(|s| *s > 0.0) && shares.iter().sum::<f64>() == 64.0 {
            break;
        }
        assert!(Instant::now() < deadline, "partitions owned: {shares:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Stories enough that every copy owns the partition of some.
    let mut stories = Vec::new();
    for _ in 0..24 {
        stories.push(open_story(&command, &d.reporter).await);
    }
    let mut in_order: HashMap<String, Vec<String>> = HashMap::new();
    let mut first = BTreeSet::new();
    for story in &stories {
        let (id, _) = record(&command, &d.reporter, story).await;
        in_order.entry(story.clone()).or_default().push(id.clone());
        first.insert(id);
    }
    wait_all_received(&receiver, SUBSCRIBERS, &first, &[&a, &b, &c]).await;
    for p in [&a, &b, &c] {
        let queued = metric(p, "newsroom_alerts_queued_total").await;
        let sent = metric(p, "newsroom_deliveries_total").await;
        assert!(
            queued > 0.0 && sent > 0.0,
            "each copy matches and sends some: {queued} queued, {sent} sent"
        );
    }

    // The next round: one copy dies once the receiver has taken the first of its alerts.
    let before = receiver.accepted().len();
    let mut second = BTreeSet::new();
    for story in &stories {
        let (id, _) = record(&command, &d.reporter, story).await;
        in_order.entry(story.clone()).or_default().push(id.clone());
        second.insert(id);
    }
    let deadline = Instant::now() + WAIT;
    while receiver.accepted().len() == before {
        assert!(Instant::now() < deadline, "no alert of the second round");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    b.kill();
    let killed_at = receiver.accepted().len() - before;
    wait_all_received(&receiver, SUBSCRIBERS, &second, &[&a, &c]).await;
    // The survivors hold every partition between them.
    let deadline = Instant::now() + WAIT;
    loop {
        let held = metric(&a, "newsroom_notifier_partitions_owned").await
            + metric(&c, "newsroom_notifier_partitions_owned").await;
        if held == 64.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{held} partitions held");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Longer than a delivery lease: an alert sent again would have arrived by now.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let pairs = received_pairs(&receiver);
    let all: BTreeSet<String> = first.union(&second).cloned().collect();
    let recipients: BTreeSet<&String> = pairs.keys().map(|(s, _)| s).collect();
    assert_eq!(recipients.len(), SUBSCRIBERS);
    assert_eq!(
        pairs.len(),
        SUBSCRIBERS * all.len(),
        "one alert per (subscriber, development)"
    );
    for ((subscriber, development), ids) in &pairs {
        assert!(all.contains(development), "{development}");
        assert_eq!(ids.len(), 1, "{subscriber} got {development} as {ids:?}");
    }
    let resent = receiver.accepted().len() - pairs.len();
    eprintln!(
        "{} alerts; killed after {killed_at} of the second round's {}; {resent} sent again",
        pairs.len(),
        SUBSCRIBERS * second.len()
    );
    // Per subscriber and story, the alerts first arrived in the order they were recorded.
    let mut arrived: HashMap<(String, String), Vec<String>> = HashMap::new();
    for r in receiver.accepted() {
        let alert = r.json();
        let key = (
            recipient(&alert),
            alert["data"]["story"]["id"].as_str().unwrap().to_owned(),
        );
        let seen = arrived.entry(key).or_default();
        let development = r.development_id();
        if !seen.contains(&development) {
            seen.push(development);
        }
    }
    assert_eq!(arrived.len(), SUBSCRIBERS * stories.len());
    for ((_, story), got) in &arrived {
        assert_eq!(got, &in_order[story]);
    }
}

/// The desk of a scale-out deployment: a `--role web` process serves it (and the alert pages),
/// writing through the shared log and reading the views a projector process keeps. A
/// reporter signs in there, files a development, lands on the story's desk page showing it
/// (the web process waits for the views through their commit announcements), and readers see
/// it on the projector's read API.
#[tokio::test]
async fn the_desk_runs_in_a_web_process_beside_the_projector_of_a_scale_out_deployment() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let nats_dir = tempfile::tempdir().unwrap();
    let Some(nats) = PrivateNats::start(free_port(), nats_dir.path()) else {
        return;
    };
    let d = Deployment::new(db).await;
    let url = nats.url();
    let command = d.start("command", "command", &url).await;
    let projector = d.start("projector", "projector", &url).await;
    let mut env = d.env(&url);
    env.push(("NEWSROOM_DESK_UNDO_SECS", "0".to_owned()));
    let web = Process::start("web", &d.root.path().join("web"), &env).await;
    let story = open_story(&command, &d.reporter).await;

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: String, cookie: Option<String>| {
        let mut request = client.get(format!("{}{path}", web.address));
        if let Some(c) = cookie {
            request = request.header(reqwest::header::COOKIE, c);
        }
        request.send()
    };
    let post = |path: String, cookie: String, fields: Vec<(&'static str, String)>| {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        client
            .post(format!("{}{path}", web.address))
            .header(reqwest::header::COOKIE, cookie)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
    };
    // Sign in with the reporter's token, as the sign-in form does.
    let form = get("/desk/sign-in".into(), None).await.unwrap();
    assert_eq!(form.status(), 200);
    let login = cookie_pair(form.headers(), "newsroom_desk_login").expect("a login cookie");
    let csrf = hidden_field(&form.text().await.unwrap(), "csrf").expect("csrf");
    let fields = vec![
        ("csrf", csrf),
        ("next", "/desk".to_owned()),
        ("token", d.reporter.clone()),
    ];
    let signed = post("/desk/sign-in".into(), login, fields).await.unwrap();
    assert_eq!(signed.status(), 303);
    let session = cookie_pair(signed.headers(), "newsroom_desk").expect("a session cookie");

    // The story the command process opened, on the web process's desk (its views are the
    // projector's).
    let page = get(format!("/desk/stories/{story}/file"), Some(session.clone()))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    let csrf = hidden_field(&page, "csrf").expect("csrf");
    let id = hidden_field(&page, "id").expect("the form carries a fresh id");
    let headline = "Prosecutors file charges, the web desk reports";
    let fields = vec![
        ("csrf", csrf),
        ("id", id.clone()),
        ("kind", "charges_filed".to_owned()),
        ("headline", headline.to_owned()),
        ("body", "Filed at the desk of a web process.".to_owned()),
        ("occurred_at", "2026-10-01T09:30".to_owned()),
        ("actors", "Justice Department".to_owned()),
        ("evidence", "documentary".to_owned()),
        ("urgency", "priority".to_owned()),
        ("confirm", "file".to_owned()),
    ];
    let filed = post(
        format!("/desk/stories/{story}/developments"),
        session.clone(),
        fields,
    )
    .await
    .unwrap();
    assert_eq!(filed.status(), 303, "{}", filed.text().await.unwrap());
    let location = filed.headers()["location"].to_str().unwrap().to_owned();
    // Where the desk sends the reporter shows the filing: the web process waited for the
    // projector process's views to hold it.
    let landed = get(location.clone(), Some(session.clone())).await.unwrap();
    assert_eq!(landed.status(), 200, "{location}");
    let landed = landed.text().await.unwrap();
    assert!(landed.contains(headline), "{location}: {landed}");

    // Readers see it on the projector's read API.
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = projector
            .call(Method::GET, &format!("/v1/stories/{story}"), None, None)
            .await;
        let body = answer.ok(200);
        let ids: Vec<&str> = body["timeline"]
            .as_array()
            .map(|ds| ds.iter().filter_map(|d| d["id"].as_str()).collect())
            .unwrap_or_default();
        if ids.contains(&id.as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "not shown to readers: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The web process projects and matches nothing: no follower of the log of its own.
    let health = web.call(Method::GET, "/healthz", None, None).await;
    let health = health.ok(200);
    let checks = &health["checks"];
    assert!(checks["event_store"].is_string(), "{health}");
    assert!(checks.get("projector").is_none(), "{health}");
    assert!(checks.get("notifier").is_none(), "{health}");
    drop(nats);
}
