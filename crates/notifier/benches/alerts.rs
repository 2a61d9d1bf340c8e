//! Alerts load benchmark: how much matching costs, how fast one alert arrives, how fast a flash
//! alert fans out.
//!
//! A custom-harness binary (`cargo bench -p newsroom-notifier --bench alerts`) that prints a
//! Markdown report on stdout (progress goes to stderr). Every figure is compared with a baseline
//! measured in the same run.
//!
//! 1. Matching cost: `SubscriptionIndex::matching` for random developments against 100,000
//!    subscriptions, against a linear scan of the same subscriptions with `Subscription::matches`.
//! 2. End-to-end latency: the whole app (`Newsroom::build`, as the end-to-end tests start it),
//!    one webhook subscriber following one story, a steady rate of `POST …/developments`:
//!    from the POST's answer to the alert's arrival at a real axum receiver on loopback. Baseline:
//!    plain HTTP POSTs of an alert-sized body straight to the same receiver, at the same rate.
//!    Then the same on a story grown to 5,000 developments, at 10 developments/s.
//! 3. Fan-out: 10,000 webhook subscribers (spread over 10 loopback receivers) following one
//!    story, one `flash` development: alerts/s and the time until the last alert arrives.
//!
//! Scale with `BENCH_SUBSCRIPTIONS` (default 100,000), `BENCH_TARGETS` (default 10,000),
//! `BENCH_RATE` (developments/s, default 50), `BENCH_SECONDS` (default 10), `BENCH_FANOUT`
//! (default 10,000), `BENCH_RECEIVERS` (default 10), `BENCH_LONG_STORY` (developments on the
//! long story of section 2, default 5,000; 0 skips it); `BENCH_SECTIONS=1,3` runs only some.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use newsroom::{Newsroom, NewsroomSettings};
use newsroom_command::Settings;
use newsroom_domain::{DevelopmentKind, Role, Urgency};
use newsroom_log::Synchronous;
use newsroom_notifier::index::{Delivery, Subscription, SubscriptionIndex, Target};
use newsroom_notifier::store::parse_ts;
use newsroom_notifier::{NotifierSettings, NotifierStore, RetryPolicy, SystemClock};
use newsroom_testkit::api::{
    alerted_development, development_with_urgency, send_development, slug, story, webhook_id,
    webhook_subscriber,
};
use newsroom_testkit::http::{answered_position, post_json_to, start_receiver, wait_for};
use newsroom_testkit::report::{
    cores, histogram, histogram_ns, load_averages, mean, ms, percentile, record, thousands, us,
    verdict,
};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::{env_num, sections};
use newsroom_testkit::{BoxError, Res};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

const STORIES: usize = 10_000;
const ACTORS: usize = 5_000;
const TAGS: usize = 500;
const EVERYTHING_CAP: usize = 500;
/// Developments filed (and alerted) before the latency measurement, unrecorded.
const WARM_UP: usize = 20;
/// Requests kept in flight while signing the fan-out's subscribers up.
const SETUP_IN_FLIGHT: usize = 32;

#[derive(Debug, Clone)]
struct Config {
    subscriptions: usize,
    targets: usize,
    rate: f64,
    seconds: f64,
    fanout: usize,
    long_story: usize,
    receivers: usize,
    sections: Vec<u8>,
}

impl Config {
    fn from_env() -> Self {
        let sections = sections(&[1, 2, 3]);
        Self {
            subscriptions: (env_num("BENCH_SUBSCRIPTIONS", 100_000.0) as usize).max(100),
            targets: (env_num("BENCH_TARGETS", 10_000.0) as usize).max(10),
            rate: env_num("BENCH_RATE", 50.0).clamp(1.0, 10_000.0),
            seconds: env_num("BENCH_SECONDS", 10.0).max(0.5),
            fanout: (env_num("BENCH_FANOUT", 10_000.0) as usize).max(1),
            long_story: std::env::var("BENCH_LONG_STORY")
                .ok()
                .and_then(|v| v.trim().replace('_', "").parse::<usize>().ok())
                .unwrap_or(5_000),
            receivers: (env_num("BENCH_RECEIVERS", 10.0) as usize).max(1),
            sections,
        }
    }

    fn runs(&self, section: u8) -> bool {
        self.sections.contains(&section)
    }
}

// =============================================================================================
// 1. Matching cost

#[derive(Debug, Default)]
struct Mix {
    story: usize,
    story_and_kind: usize,
    actor: usize,
    actor_and_kind: usize,
    kind: usize,
    tag: usize,
    everything: usize,
}

#[derive(Debug)]
struct MatchRun {
    mix: Mix,
    subscribers: usize,
    targets: usize,
    full: Pair,
    selective: Pair,
    load: (String, String),
}

/// What a random development offers to match, owned (a `Target` borrows from it).
struct TargetData {
    story: Uuid,
    tags: Vec<String>,
    kind: DevelopmentKind,
    actors: Vec<String>,
    urgency: Urgency,
}

fn min_urgency(rng: &mut StdRng) -> Urgency {
    match rng.gen_range(0..10) {
        0..=6 => Urgency::Routine,
        7 | 8 => Urgency::Priority,
        _ => Urgency::Flash,
    }
}

fn matching_cost(cfg: &Config) -> MatchRun {
    let load_start = load_averages();
    let mut rng = StdRng::seed_from_u64(0x6e65_7773_726f_6f6d);
    let stories: Vec<Uuid> = (0..STORIES).map(|_| Uuid::from_u128(rng.gen())).collect();
    let actors: Vec<String> = (0..ACTORS).map(|i| format!("actor {i}")).collect();
    let tags: Vec<String> = (0..TAGS).map(|i| format!("tag-{i}")).collect();
    let kinds = DevelopmentKind::ALL;

    let n = cfg.subscriptions;
    let everything = (n / 20).min(EVERYTHING_CAP);
    let actor_n = n * 30 / 100;
    let kind_n = n * 15 / 100;
    let tag_n = n / 10;
    // The share "everything" gives up beyond its cap goes to story subscriptions.
    let story_n = n - everything - actor_n - kind_n - tag_n;
    let subscriber_count = (n / 3).max(1);
    let mut mix = Mix::default();
    let mut subs = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = Subscription {
            id: format!("sub-{i}"),
            subscriber_id: format!("subscriber-{}", rng.gen_range(0..subscriber_count)),
            story: None,
            actor_key: None,
            kind: None,
            tag: None,
            min_urgency: min_urgency(&mut rng),
            delivery: Delivery::Immediate,
            include_related: false,
        };
        if i < story_n {
            s.story = Some(*stories.choose(&mut rng).expect("stories"));
            // A quarter follow only one kind of development on their story.
            if rng.gen_range(0..4) == 0 {
                s.kind = Some(*kinds.choose(&mut rng).expect("kinds"));
                mix.story_and_kind += 1;
            } else {
                mix.story += 1;
            }
        } else if i < story_n + actor_n {
            s.actor_key = Some(actors.choose(&mut rng).expect("actors").clone());
            if rng.gen_range(0..5) == 0 {
                s.kind = Some(*kinds.choose(&mut rng).expect("kinds"));
                mix.actor_and_kind += 1;
            } else {
                mix.actor += 1;
            }
        } else if i < story_n + actor_n + kind_n {
            s.kind = Some(*kinds.choose(&mut rng).expect("kinds"));
            mix.kind += 1;
        } else if i < story_n + actor_n + kind_n + tag_n {
            s.tag = Some(tags.choose(&mut rng).expect("tags").clone());
            mix.tag += 1;
        } else {
            mix.everything += 1;
        }
        subs.push(s);
    }

    let data: Vec<TargetData> = (0..cfg.targets)
        .map(|_| {
            let (n_tags, n_actors) = (rng.gen_range(1..=3), rng.gen_range(1..=3));
            TargetData {
                story: *stories.choose(&mut rng).expect("stories"),
                tags: tags.choose_multiple(&mut rng, n_tags).cloned().collect(),
                kind: *kinds.choose(&mut rng).expect("kinds"),
                actors: actors
                    .choose_multiple(&mut rng, n_actors)
                    .cloned()
                    .collect(),
                urgency: match rng.gen_range(0..10) {
                    0..=5 => Urgency::Routine,
                    6..=8 => Urgency::Priority,
                    _ => Urgency::Flash,
                },
            }
        })
        .collect();
    let targets: Vec<Target<'_>> = data
        .iter()
        .map(|d| Target {
            story: d.story,
            tags: &d.tags,
            kind: d.kind,
            actor_keys: d.actors.iter().map(String::as_str).collect(),
            urgency: d.urgency,
        })
        .collect();

    let full = index_vs_scan(&subs, &targets);
    // The same without the broad subscriptions (kind only, everything): what the index costs
    // when what it looks up is selective.
    let selective: Vec<Subscription> = subs
        .into_iter()
        .filter(|s| s.story.is_some() || s.actor_key.is_some() || s.tag.is_some())
        .collect();
    let selective = index_vs_scan(&selective, &targets);
    MatchRun {
        mix,
        subscribers: subscriber_count,
        targets: targets.len(),
        full,
        selective,
        load: (load_start, load_averages()),
    }
}

/// Index and linear scan over the same subscriptions, for the same developments.
#[derive(Debug)]
struct Pair {
    subscriptions: usize,
    build: Duration,
    indexed: Histogram<u64>,
    indexed_total: Duration,
    linear: Histogram<u64>,
    linear_total: Duration,
    /// Subscriptions in the buckets a development looks up (what `matching` checks).
    candidates: u64,
    matches: u64,
    max_matches: usize,
    distinct_subscribers: u64,
    mismatches: usize,
}

impl Pair {
    fn mean_indexed_ns(&self) -> f64 {
        self.indexed_total.as_nanos() as f64 / self.indexed.len().max(1) as f64
    }
    fn mean_linear_ns(&self) -> f64 {
        self.linear_total.as_nanos() as f64 / self.linear.len().max(1) as f64
    }
}

/// Each development is matched by the index and by the scan, in alternating blocks of 100
/// developments, so that both see the same machine load while each keeps its caches warm
/// within a block. Every result of the index is checked against the scan's.
fn index_vs_scan(subs: &[Subscription], targets: &[Target<'_>]) -> Pair {
    let started = Instant::now();
    let mut index = SubscriptionIndex::default();
    for s in subs {
        index.insert(s.clone());
    }
    let build = started.elapsed();
    assert_eq!(index.len(), subs.len());

    // Bucket sizes, filed as `index.rs` files them (most selective filter first).
    let mut by_story: HashMap<Uuid, u64> = HashMap::new();
    let mut by_actor: HashMap<&str, u64> = HashMap::new();
    let mut by_kind: HashMap<DevelopmentKind, u64> = HashMap::new();
    let mut by_tag: HashMap<&str, u64> = HashMap::new();
    let mut everything = 0u64;
    for s in subs {
        if let Some(story) = s.story {
            *by_story.entry(story).or_default() += 1;
        } else if let Some(actor) = &s.actor_key {
            *by_actor.entry(actor).or_default() += 1;
        } else if let Some(kind) = s.kind {
            *by_kind.entry(kind).or_default() += 1;
        } else if let Some(tag) = &s.tag {
            *by_tag.entry(tag).or_default() += 1;
        } else {
            everything += 1;
        }
    }

    // Warm-up (caches, allocator), unrecorded.
    for t in targets.iter().take(1_000) {
        black_box(index.matching(black_box(t)));
        black_box(subs.iter().filter(|s| s.matches(t)).count());
    }

    let mut run = Pair {
        subscriptions: subs.len(),
        build,
        indexed: histogram_ns(),
        indexed_total: Duration::ZERO,
        linear: histogram_ns(),
        linear_total: Duration::ZERO,
        candidates: 0,
        matches: 0,
        max_matches: 0,
        distinct_subscribers: 0,
        mismatches: 0,
    };
    for block in targets.chunks(100) {
        let mut found_sets = Vec::with_capacity(block.len());
        for t in block {
            let started = Instant::now();
            let found = index.matching(black_box(t));
            let elapsed = started.elapsed();
            run.indexed_total += elapsed;
            run.indexed
                .saturating_record((elapsed.as_nanos() as u64).max(1));
            run.matches += found.len() as u64;
            run.max_matches = run.max_matches.max(found.len());
            run.distinct_subscribers += found
                .iter()
                .map(|s| s.subscriber_id.as_str())
                .collect::<HashSet<_>>()
                .len() as u64;
            let mut ids: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
            ids.sort_unstable();
            found_sets.push(ids);
            run.candidates += by_story.get(&t.story).copied().unwrap_or(0)
                + by_kind.get(&t.kind).copied().unwrap_or(0)
                + everything
                + t.actor_keys
                    .iter()
                    .map(|a| by_actor.get(a).copied().unwrap_or(0))
                    .sum::<u64>()
                + t.tags
                    .iter()
                    .map(|g| by_tag.get(g.as_str()).copied().unwrap_or(0))
                    .sum::<u64>();
        }
        for (t, expected) in block.iter().zip(&found_sets) {
            let started = Instant::now();
            let found: Vec<&Subscription> =
                subs.iter().filter(|s| s.matches(black_box(t))).collect();
            let elapsed = started.elapsed();
            run.linear_total += elapsed;
            run.linear
                .saturating_record((elapsed.as_nanos() as u64).max(1));
            let mut ids: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
            ids.sort_unstable();
            if &ids != expected {
                run.mismatches += 1;
            }
        }
    }
    run
}

// =============================================================================================
// The app, a webhook receiver, and the HTTP calls the tests make

/// The whole newsroom, running in a task of this process.
struct App {
    base: String,
    client: reqwest::Client,
    editor: String,
    notifier: NotifierStore,
    dir: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), String>>,
}

/// Starts newsroom the way testkit's `spawn_app_with` does: port 0, files in a temporary
/// directory, the log with `synchronous = NORMAL` (the notifier's queue is always FULL),
/// webhooks allowed to reach 127.0.0.1, the system clock.
async fn start_app() -> Res<App> {
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
    async fn shutdown(self) -> Res<()> {
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

    async fn open_story(&self) -> Res<String> {
        let answer = self
            .call("/v1/stories", Some(&self.editor), story(&slug("bench")))
            .await?;
        Ok(answer["id"].as_str().ok_or("no story id")?.to_owned())
    }

    /// Signs a subscriber up, gives it a webhook to `url` and a subscription to `story`.
    async fn webhook_subscriber(&self, url: &str, story: &str) -> Res<()> {
        let subscription = json!({"story": story});
        Ok(webhook_subscriber(&self.client, &self.base, "Wire desk", url, &subscription).await?)
    }

    /// The matcher's checkpoint, read from the queue's database.
    async fn matcher_checkpoint(&self) -> Res<i64> {
        Ok(self
            .notifier
            .read(|c| {
                Ok(c.query_row(
                    "SELECT COALESCE(MAX(position), 0) FROM checkpoints WHERE name = 'matcher'",
                    newsroom_log::args![],
                    |r| r.get(0),
                )?)
            })
            .await?)
    }
}

/// One `POST …/developments`, timed.
#[derive(Debug, Clone)]
struct Posted {
    development: String,
    sent: Instant,
    returned: Instant,
    returned_wall: DateTime<Utc>,
    position: Option<i64>,
    error: Option<String>,
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

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Arrival {
    webhook_id: String,
    development: Option<String>,
    at: Instant,
    wall: DateTime<Utc>,
    receiver: usize,
}

/// What every receiver records into.
#[derive(Clone, Default)]
struct Sink {
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    count: Arc<AtomicUsize>,
    /// The first alert's body, to give the baseline the same size of request.
    sample: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Sink {
    fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().expect("arrivals lock").clone()
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// How many of the `wanted` developments have arrived (once or more), counting only the
    /// arrivals `counts` accepts.
    fn arrived_of(&self, wanted: &HashSet<&str>, counts: impl Fn(&Arrival) -> bool) -> usize {
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
async fn start_receivers(
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

/// Starts `rate × seconds` calls of `f` on a fixed schedule (open loop: a slow call does not
/// delay the next), each in its own task; their results in order.
async fn paced<T, Fut>(rate: f64, seconds: f64, f: impl Fn(usize) -> Fut) -> Res<Vec<T>>
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
fn ms_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

// =============================================================================================
// 2. End-to-end latency

#[derive(Debug)]
struct BaselineRun {
    rtt: Histogram<u64>,
    requests: usize,
    errors: usize,
}

/// Plain POSTs of `body` straight to the receiver, at the run's rate.
async fn baseline(url: &str, body: Vec<u8>, cfg: &Config, tag: &str) -> Res<BaselineRun> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let body = Bytes::from(body);
    let signature = format!("v1,{}", "A".repeat(44));
    let results = paced(cfg.rate, cfg.seconds, |i| {
        let (client, url, body, signature) = (
            client.clone(),
            url.to_owned(),
            body.clone(),
            signature.clone(),
        );
        let id = format!("base_{tag}_{i:08}");
        async move {
            let sent = Instant::now();
            let result = client
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", Utc::now().timestamp().to_string())
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await;
            let ok = match result {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            };
            (ok, sent.elapsed())
        }
    })
    .await?;
    let mut run = BaselineRun {
        rtt: histogram(),
        requests: results.len(),
        errors: 0,
    };
    for (ok, rtt) in results {
        if ok {
            record(&mut run.rtt, rtt);
        } else {
            run.errors += 1;
        }
    }
    Ok(run)
}

#[derive(Debug)]
struct LatencyRun {
    baseline_before: BaselineRun,
    baseline_after: BaselineRun,
    baseline: Histogram<u64>,
    alert: Histogram<u64>,
    command: Histogram<u64>,
    posted: usize,
    post_errors: usize,
    missing: usize,
    early: usize,
    duplicates: usize,
    retried: usize,
    alert_bytes: usize,
    /// One-row SQLite commits (WAL, `synchronous = FULL`) beside the queue's file.
    commit: Histogram<u64>,
    /// Alert latency (ms) of the first and the last fifth of the measured developments.
    drift: (Vec<f64>, Vec<f64>),
    long: Option<LongStory>,
    /// Signed ms per stage: (label, values).
    stages: Vec<(&'static str, Vec<f64>)>,
    load: (String, String),
}

async fn end_to_end(cfg: &Config) -> Res<LatencyRun> {
    let load_start = load_averages();
    let app = start_app().await?;
    let sink = Sink::default();
    let (urls, servers) = start_receivers(1, &sink).await?;
    let story = app.open_story().await?;
    app.webhook_subscriber(&urls[0], &story).await?;

    eprintln!("  warm-up: {WARM_UP} developments");
    let warm = paced(cfg.rate, WARM_UP as f64 / cfg.rate, |_| {
        post_development(
            app.client.clone(),
            app.base.clone(),
            app.editor.clone(),
            story.clone(),
            "priority",
        )
    })
    .await?;
    if let Some(e) = warm.iter().find_map(|p| p.error.clone()) {
        return Err(format!("warm-up POST failed: {e}").into());
    }
    if !wait_for(
        WARM_UP,
        Duration::from_secs(20),
        Duration::from_secs(60),
        || sink.count(),
    )
    .await
    {
        return Err(format!("only {} of {WARM_UP} warm-up alerts arrived", sink.count()).into());
    }
    let sample = sink
        .sample
        .lock()
        .expect("sample lock")
        .clone()
        .ok_or("no alert body seen")?;

    eprintln!("  baseline (before): plain POSTs to the receiver");
    let baseline_before = baseline(&urls[0], sample.clone(), cfg, "before").await?;

    eprintln!(
        "  alerts: {} developments/s for {} s",
        cfg.rate, cfg.seconds
    );
    let posted = paced(cfg.rate, cfg.seconds, |_| {
        post_development(
            app.client.clone(),
            app.base.clone(),
            app.editor.clone(),
            story.clone(),
            "priority",
        )
    })
    .await?;
    let wanted: HashSet<&str> = posted
        .iter()
        .filter(|p| p.error.is_none())
        .map(|p| p.development.as_str())
        .collect();
    let arrived_of_wanted = || sink.arrived_of(&wanted, |a| a.webhook_id.starts_with("msg_"));
    wait_for(
        wanted.len(),
        Duration::from_secs(20),
        Duration::from_secs(120),
        arrived_of_wanted,
    )
    .await;

    eprintln!("  one-row SQLite commits beside the queue");
    let probe = app.dir.path().join("commit-probe.db");
    let commit = tokio::task::spawn_blocking(move || sqlite_commits(&probe, 200)).await??;

    eprintln!("  baseline (after): plain POSTs to the receiver");
    let baseline_after = baseline(&urls[0], sample.clone(), cfg, "after").await?;

    // Per development: its first alert's arrival; any further arrival is a duplicate.
    let arrivals = sink.arrivals();
    let mut first: HashMap<&str, &Arrival> = HashMap::new();
    let mut seen_ids: HashSet<&str> = HashSet::new();
    let mut duplicates = 0;
    for a in arrivals.iter().filter(|a| a.webhook_id.starts_with("msg_")) {
        if !seen_ids.insert(a.webhook_id.as_str()) {
            duplicates += 1;
        }
        if let Some(d) = a.development.as_deref().filter(|d| wanted.contains(d)) {
            first.entry(d).or_insert(a);
        }
    }

    // The queue's own timestamps for each development's alert.
    let rows: Vec<(String, String, String, u32)> = app
        .notifier
        .read(|c| {
            Ok(c.statement(
                "SELECT a.development_id, a.created_at, d.updated_at, d.attempts
                 FROM alerts a JOIN deliveries d ON d.alert_id = a.id",
            )?
            .query_map(newsroom_log::args![], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?)
        })
        .await?;
    let queue: HashMap<String, (DateTime<Utc>, DateTime<Utc>, u32)> = rows
        .into_iter()
        .map(|(d, created, updated, attempts)| {
            (d, (parse_ts(&created), parse_ts(&updated), attempts))
        })
        .collect();

    let mut run = LatencyRun {
        baseline: histogram(),
        baseline_before,
        baseline_after,
        alert: histogram(),
        command: histogram(),
        posted: posted.len(),
        post_errors: posted.iter().filter(|p| p.error.is_some()).count(),
        missing: 0,
        early: 0,
        duplicates,
        retried: 0,
        alert_bytes: sample.len(),
        commit,
        drift: (Vec::new(), Vec::new()),
        long: None,
        stages: Vec::new(),
        load: (String::new(), String::new()),
    };
    run.baseline.add(&run.baseline_before.rtt)?;
    run.baseline.add(&run.baseline_after.rtt)?;
    let mut stage_values: [Vec<f64>; 4] = Default::default();
    // Latency (ms) by filing order, to see whether it drifts as the story grows.
    let mut in_order: Vec<f64> = Vec::new();
    for p in posted.iter().filter(|p| p.error.is_none()) {
        record(&mut run.command, p.returned - p.sent);
        let Some(a) = first.get(p.development.as_str()) else {
            run.missing += 1;
            continue;
        };
        in_order.push(
            a.at.checked_duration_since(p.returned)
                .unwrap_or_default()
                .as_secs_f64()
                * 1000.0,
        );
        match a.at.checked_duration_since(p.returned) {
            Some(d) => record(&mut run.alert, d),
            None => {
                run.early += 1;
                record(&mut run.alert, Duration::ZERO);
            }
        }
        if let Some((created, updated, attempts)) = queue.get(&p.development) {
            if *attempts > 1 {
                run.retried += 1;
            }
            let sent_wall = p.returned_wall
                - chrono::Duration::from_std(p.returned - p.sent).unwrap_or_default();
            stage_values[0].push(ms_between(sent_wall, *created));
            stage_values[1].push(ms_between(p.returned_wall, *created));
            stage_values[2].push(ms_between(*created, a.wall));
            stage_values[3].push(ms_between(a.wall, *updated));
        }
    }
    let fifth = (in_order.len() / 5).max(1).min(in_order.len());
    run.drift = (
        in_order[..fifth].to_vec(),
        in_order[in_order.len() - fifth..].to_vec(),
    );
    let [s0, s1, s2, s3] = stage_values;
    run.stages = vec![
        (
            "POST sent → matcher took the batch (`alerts.created_at`)",
            s0,
        ),
        (
            "POST returned → matcher took the batch (negative: before the answer)",
            s1,
        ),
        ("`alerts.created_at` → arrival at the receiver", s2),
        (
            "arrival → dispatcher records the outcome (`deliveries.updated_at`)",
            s3,
        ),
    ];

    if cfg.long_story > 0 {
        run.long = Some(long_story(&app, &sink, &urls[0], cfg).await?);
    }

    app.shutdown().await?;
    for s in servers {
        s.abort();
    }
    run.load = (load_start, load_averages());
    Ok(run)
}

/// Alert latency on a long story.
#[derive(Debug)]
struct LongStory {
    developments: usize,
    grow: Duration,
    grow_errors: usize,
    rate: f64,
    seconds: f64,
    alert: Histogram<u64>,
    missing: usize,
}

/// Grows a story nobody follows to `cfg.long_story` developments (32 POSTs in flight), waits
/// for the matcher to pass them, subscribes a second webhook subscriber to it, then files 10
/// developments/s on it for 5 s and times their alerts.
async fn long_story(app: &App, sink: &Sink, url: &str, cfg: &Config) -> Res<LongStory> {
    eprintln!("  long story: growing to {} developments", cfg.long_story);
    let story = app.open_story().await?;
    let started = Instant::now();
    let grown: Vec<Posted> = futures_util::stream::iter(0..cfg.long_story)
        .map(|_| {
            post_development(
                app.client.clone(),
                app.base.clone(),
                app.editor.clone(),
                story.clone(),
                "routine",
            )
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let grow_errors = grown.iter().filter(|p| p.error.is_some()).count();
    let last = grown.iter().filter_map(|p| p.position).max().unwrap_or(0);
    while app.matcher_checkpoint().await? < last {
        if started.elapsed() > Duration::from_secs(600) {
            return Err("the matcher did not catch up with the long story".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let grow = started.elapsed();
    app.webhook_subscriber(url, &story).await?;

    let (rate, seconds) = (10.0, 5.0);
    eprintln!("  long story: {rate} developments/s for {seconds} s");
    let posted = paced(rate, seconds, |_| {
        post_development(
            app.client.clone(),
            app.base.clone(),
            app.editor.clone(),
            story.clone(),
            "priority",
        )
    })
    .await?;
    let wanted: HashSet<&str> = posted
        .iter()
        .filter(|p| p.error.is_none())
        .map(|p| p.development.as_str())
        .collect();
    let arrived = || sink.arrived_of(&wanted, |_| true);
    wait_for(
        wanted.len(),
        Duration::from_secs(30),
        Duration::from_secs(300),
        arrived,
    )
    .await;
    let arrivals = sink.arrivals();
    let mut first: HashMap<&str, Instant> = HashMap::new();
    for a in &arrivals {
        if let Some(d) = a.development.as_deref().filter(|d| wanted.contains(d)) {
            first.entry(d).or_insert(a.at);
        }
    }
    let mut alert = histogram();
    let mut missing = 0;
    for p in posted.iter().filter(|p| p.error.is_none()) {
        match first.get(p.development.as_str()) {
            Some(at) => record(&mut alert, at.saturating_duration_since(p.returned)),
            None => missing += 1,
        }
    }
    Ok(LongStory {
        developments: cfg.long_story,
        grow,
        grow_errors,
        rate,
        seconds,
        alert,
        missing: missing + posted.len() - wanted.len(),
    })
}

/// `n` one-row write transactions on a fresh SQLite file with the queue's durability (WAL,
/// `synchronous = FULL`): what each of the notifier's transactions pays at least.
fn sqlite_commits(path: &std::path::Path, n: usize) -> Res<Histogram<u64>> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
        [],
    )?;
    let mut h = histogram();
    for i in 0..n {
        let started = Instant::now();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("INSERT INTO t (v) VALUES (?1)", [format!("row {i}")])?;
        tx.commit()?;
        record(&mut h, started.elapsed());
    }
    Ok(h)
}

// =============================================================================================
// 3. Fan-out

#[derive(Debug)]
struct FanoutRun {
    subscribers: usize,
    receivers: usize,
    setup: Duration,
    setup_errors: usize,
    first_error: Option<String>,
    warm_match: Option<Duration>,
    /// From the flash POST's answer.
    matcher_committed: Option<Duration>,
    first_arrival: Option<Duration>,
    last_arrival: Option<Duration>,
    command: Duration,
    distinct: usize,
    arrivals: usize,
    other_development: usize,
    per_receiver: (usize, usize),
    statuses: BTreeMap<String, usize>,
    retried: usize,
    batches: Vec<Batch>,
    /// Time the dispatcher spent between batches: last arrival of one to the first of the next.
    gaps: Vec<f64>,
    /// When the matcher took the batch, from the POST's answer (signed ms).
    created_after_post: Option<f64>,
    load: (String, String),
}

/// The deliveries the dispatcher recorded together (one `deliveries.updated_at`).
#[derive(Debug)]
struct Batch {
    size: usize,
    first: Instant,
    last: Instant,
}

async fn fanout(cfg: &Config) -> Res<FanoutRun> {
    let load_start = load_averages();
    let app = start_app().await?;
    let sink = Sink::default();
    let (urls, servers) = start_receivers(cfg.receivers, &sink).await?;
    let story = app.open_story().await?;
    let quiet_story = app.open_story().await?;

    eprintln!(
        "  setup: {} subscribers through the HTTP API, {SETUP_IN_FLIGHT} at a time",
        cfg.fanout
    );
    let started = Instant::now();
    let results: Vec<Res<()>> = futures_util::stream::iter(0..cfg.fanout)
        .map(|i| {
            let (app, url, story) = (&app, &urls[i % urls.len()], &story);
            async move { app.webhook_subscriber(url, story).await }
        })
        .buffer_unordered(SETUP_IN_FLIGHT)
        .collect()
        .await;
    let setup = started.elapsed();
    let setup_errors = results.iter().filter(|r| r.is_err()).count();
    let first_error = results
        .iter()
        .find_map(|r| r.as_ref().err().map(|e| e.to_string()));
    eprintln!(
        "  setup took {:.1} s ({setup_errors} errors)",
        setup.as_secs_f64()
    );

    // A development nobody follows, so that the matcher takes in the new subscriptions (its
    // index refreshes when it next matches something) before the measured one.
    let warm = post_development(
        app.client.clone(),
        app.base.clone(),
        app.editor.clone(),
        quiet_story.clone(),
        "routine",
    )
    .await;
    let mut warm_match = None;
    if let Some(position) = warm.position {
        loop {
            if app.matcher_checkpoint().await? >= position {
                warm_match = Some(warm.returned.elapsed());
                break;
            }
            if warm.returned.elapsed() > Duration::from_secs(120) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Watch the matcher's checkpoint: it moves in the transaction that queues the alerts.
    let before = app.matcher_checkpoint().await?;
    let notifier = app.notifier.clone();
    let watcher = tokio::spawn(async move {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(300) {
            let at: i64 = notifier
                .read(|c| {
                    Ok(c.query_row(
                        "SELECT COALESCE(MAX(position), 0) FROM checkpoints WHERE name = 'matcher'",
                        newsroom_log::args![],
                        |r| r.get(0),
                    )?)
                })
                .await
                .unwrap_or(0);
            if at > before {
                return Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        None
    });
    let arrivals_before = sink.count();

    eprintln!("  one flash development");
    let flash = post_development(
        app.client.clone(),
        app.base.clone(),
        app.editor.clone(),
        story.clone(),
        "flash",
    )
    .await;
    if let Some(e) = &flash.error {
        return Err(format!("the flash POST failed: {e}").into());
    }
    let flash_id = flash.development.clone();
    let distinct_of_flash = || {
        sink.arrivals
            .lock()
            .expect("arrivals lock")
            .iter()
            .filter(|a| a.development.as_deref() == Some(flash_id.as_str()))
            .map(|a| a.webhook_id.clone())
            .collect::<HashSet<_>>()
            .len()
    };
    wait_for(
        cfg.fanout,
        Duration::from_secs(30),
        Duration::from_secs(600),
        distinct_of_flash,
    )
    .await;
    // Anything arriving late would be a duplicate or a stray: give it a moment.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let matcher_committed = watcher
        .await?
        .map(|at| at.saturating_duration_since(flash.returned));

    let arrivals: Vec<Arrival> = sink.arrivals().split_off(arrivals_before);
    let ours: Vec<&Arrival> = arrivals
        .iter()
        .filter(|a| a.development.as_deref() == Some(flash_id.as_str()))
        .collect();
    let distinct: HashSet<&str> = ours.iter().map(|a| a.webhook_id.as_str()).collect();
    let mut per_receiver = vec![0usize; cfg.receivers];
    for a in &ours {
        per_receiver[a.receiver] += 1;
    }
    let since_post = |at: Instant| at.saturating_duration_since(flash.returned);
    let first_arrival = ours.iter().map(|a| a.at).min().map(since_post);
    let last_arrival = ours.iter().map(|a| a.at).max().map(since_post);

    // The queue's view: each delivery's status, attempts, and when its step recorded it.
    let flash_for_query = flash_id.clone();
    let rows: Vec<(String, String, String, u32, String)> = app
        .notifier
        .read(move |c| {
            Ok(c.statement(
                "SELECT a.id, a.created_at, d.updated_at, d.attempts, d.status
                 FROM alerts a JOIN deliveries d ON d.alert_id = a.id
                 WHERE a.development_id = ?1",
            )?
            .query_map(newsroom_log::args![flash_for_query], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?)
        })
        .await?;
    let mut statuses = BTreeMap::new();
    let mut retried = 0;
    let mut step_of: HashMap<&str, &str> = HashMap::new();
    for (alert, _, updated, attempts, status) in &rows {
        *statuses.entry(status.clone()).or_insert(0) += 1;
        if *attempts > 1 {
            retried += 1;
        }
        step_of.insert(alert.as_str(), updated.as_str());
    }
    let created_after_post = rows
        .first()
        .map(|r| ms_between(flash.returned_wall, parse_ts(&r.1)));
    let mut by_step: HashMap<&str, Batch> = HashMap::new();
    for a in &ours {
        let Some(step) = step_of.get(a.webhook_id.as_str()) else {
            continue;
        };
        let b = by_step.entry(step).or_insert(Batch {
            size: 0,
            first: a.at,
            last: a.at,
        });
        b.size += 1;
        b.first = b.first.min(a.at);
        b.last = b.last.max(a.at);
    }
    let mut batches: Vec<Batch> = by_step.into_values().collect();
    batches.sort_by_key(|b| b.first);
    let gaps = batches
        .windows(2)
        .map(|w| {
            w[1].first
                .checked_duration_since(w[0].last)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        })
        .collect();

    let run = FanoutRun {
        subscribers: cfg.fanout,
        receivers: cfg.receivers,
        setup,
        setup_errors,
        first_error,
        warm_match,
        matcher_committed,
        first_arrival,
        last_arrival,
        command: flash.returned - flash.sent,
        distinct: distinct.len(),
        arrivals: ours.len(),
        other_development: arrivals.len() - ours.len(),
        per_receiver: (
            per_receiver.iter().copied().min().unwrap_or(0),
            per_receiver.iter().copied().max().unwrap_or(0),
        ),
        statuses,
        retried,
        batches,
        gaps,
        created_after_post,
        load: (load_start, load_averages()),
    };
    app.shutdown().await?;
    for s in servers {
        s.abort();
    }
    Ok(run)
}

// =============================================================================================
// Report

fn opt_ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "n/a".to_owned(), ms)
}

/// Nanoseconds as microseconds with two decimals.
fn ns_as_us(v: f64) -> String {
    format!("{:.2} µs", v / 1000.0)
}

/// A latency row's cells: samples, p50, p99, max.
fn cells(h: &Histogram<u64>) -> String {
    format!(
        "{} | {} | {} | {}",
        h.len(),
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.max())
    )
}

fn report_matching(out: &mut String, r: &MatchRun) -> std::fmt::Result {
    let total = r.full.subscriptions;
    let pct = |n: usize| 100.0 * n as f64 / total as f64;
    let m = &r.mix;
    writeln!(
        out,
        "## 1. Matching cost: one development against {} subscriptions\n",
        thousands(total as f64)
    )?;
    writeln!(
        out,
        "Mix (each subscription is filed under its most selective filter): story {} ({:.1} %, of which {} also filter by kind) over {} stories; actor {} ({:.1} %, {} also by kind) over {} actors; kind only {} ({:.1} %) over {} kinds; tag {} ({:.1} %) over {} tags; everything {} ({:.1} %, capped at {EVERYTHING_CAP}; the rest of its 5 % went to story). `min_urgency` 70 % routine, 20 % priority, 10 % flash; {} subscribers. Index built (100,000 `insert`s) in {}.\n",
        thousands((m.story + m.story_and_kind) as f64), pct(m.story + m.story_and_kind), thousands(m.story_and_kind as f64), thousands(STORIES as f64),
        thousands((m.actor + m.actor_and_kind) as f64), pct(m.actor + m.actor_and_kind), thousands(m.actor_and_kind as f64), thousands(ACTORS as f64),
        thousands(m.kind as f64), pct(m.kind), DevelopmentKind::ALL.len(),
        thousands(m.tag as f64), pct(m.tag), TAGS,
        thousands(m.everything as f64), pct(m.everything),
        thousands(r.subscribers as f64),
        ms(r.full.build),
    )?;
    writeln!(
        out,
        "{} random developments (a story of the {} uniformly, 1–3 actors, 1–3 tags, a kind; urgency 60 % routine, 30 % priority, 10 % flash), each call timed alone, index and scan alternating in blocks of 100 developments, after 1,000 unrecorded warm-up calls of each; every index result checked against the scan's. Load average {} at start, {} at end.\n",
        thousands(r.targets as f64),
        thousands(STORIES as f64),
        r.load.0,
        r.load.1
    )?;
    writeln!(
        out,
        "| case | mean | p50 | p99 | max | mean matches (distinct subscribers) | candidates checked | ratio (mean) |\n|---|---|---|---|---|---|---|---|"
    )?;
    for (label, p) in [
        ("all 100,000", &r.full),
        ("without kind-only and everything", &r.selective),
    ] {
        let (mi, ml) = (p.mean_indexed_ns(), p.mean_linear_ns());
        let n = p.indexed.len().max(1) as f64;
        writeln!(
            out,
            "| `SubscriptionIndex::matching`, {label} ({} subscriptions) | {} | {} | {} | {} | {:.1} ({:.1}), max {} | {:.1} | {:.3} × scan |",
            thousands(p.subscriptions as f64),
            ns_as_us(mi),
            ns_as_us(p.indexed.value_at_quantile(0.5) as f64),
            ns_as_us(p.indexed.value_at_quantile(0.99) as f64),
            ns_as_us(p.indexed.max() as f64),
            p.matches as f64 / n,
            p.distinct_subscribers as f64 / n,
            p.max_matches,
            p.candidates as f64 / n,
            mi / ml,
        )?;
        writeln!(
            out,
            "| Baseline: linear scan with `Subscription::matches` over the same {} in a `Vec` | {} | {} | {} | {} | same | {} | 1.00 (reference) |",
            thousands(p.subscriptions as f64),
            ns_as_us(ml),
            ns_as_us(p.linear.value_at_quantile(0.5) as f64),
            ns_as_us(p.linear.value_at_quantile(0.99) as f64),
            ns_as_us(p.linear.max() as f64),
            thousands(p.subscriptions as f64),
        )?;
    }
    writeln!(out)?;
    for (label, p) in [
        ("All", &r.full),
        ("Without kind-only and everything", &r.selective),
    ] {
        let n = p.indexed.len().max(1) as f64;
        writeln!(
            out,
            "- {label}: the index costs {:.0} ns per candidate it checks, {:.0} ns per match; the scan {:.1} ns per subscription. Index and scan found the same subscriptions for {} of {} developments.",
            p.mean_indexed_ns() / (p.candidates as f64 / n).max(1.0),
            p.mean_indexed_ns() / (p.matches as f64 / n).max(1.0),
            p.mean_linear_ns() / p.subscriptions as f64,
            thousands((p.indexed.len() as usize - p.mismatches) as f64),
            thousands(n),
        )?;
    }
    writeln!(out)?;
    Ok(())
}

fn report_latency(out: &mut String, r: &LatencyRun, cfg: &Config) -> std::fmt::Result {
    let b99 = r.baseline.value_at_quantile(0.99);
    let a99 = r.alert.value_at_quantile(0.99);
    let ratio = a99 as f64 / b99.max(1) as f64;
    writeln!(
        out,
        "## 2. End-to-end latency: POST answered → webhook arrives\n"
    )?;
    writeln!(
        out,
        "One subscriber, one webhook endpoint, one subscription to the story; {} developments/s for {} s (open loop, each POST its own task), after {WARM_UP} unrecorded warm-up developments. Baseline: POSTs of the first alert's body ({} B) with webhook-style headers straight to the same receiver at the same rate and duration, once before and once after the alert run (pooled for the ratio). Load average {} at start, {} at end.\n",
        cfg.rate, cfg.seconds, r.alert_bytes, r.load.0, r.load.1
    )?;
    writeln!(
        out,
        "| case | samples | p50 | p99 | max | ratio p99 | target |\n|---|---|---|---|---|---|---|"
    )?;
    writeln!(
        out,
        "| Alert: POST …/developments answered → receiver has the alert | {} | {ratio:.2} × baseline | ≤ 5: {} |",
        cells(&r.alert),
        verdict(ratio <= 5.0)
    )?;
    writeln!(
        out,
        "| Baseline: plain POST round trip to the receiver (before + after) | {} | 1.00 (reference) | |",
        cells(&r.baseline),
    )?;
    for (label, h) in [("before", &r.baseline_before), ("after", &r.baseline_after)] {
        writeln!(
            out,
            "| Baseline, {label} the alert run only | {} | | |",
            cells(&h.rtt),
        )?;
    }
    writeln!(
        out,
        "| (for scale) one SQLite write transaction, 1 row, WAL, synchronous = FULL, beside `notifier.db` | {} | | |",
        cells(&r.commit),
    )?;
    if let Some(l) = &r.long {
        writeln!(
            out,
            "| Alert on a story of {} developments (a second subscriber; {} developments/s for {} s) | {} | {:.2} × baseline | |",
            thousands(l.developments as f64),
            l.rate,
            l.seconds,
            cells(&l.alert),
            l.alert.value_at_quantile(0.99) as f64 / b99.max(1) as f64,
        )?;
    }
    writeln!(
        out,
        "| (for scale) the POST …/developments itself | {} | | |\n",
        cells(&r.command),
    )?;
    writeln!(
        out,
        "- p50 ratio {:.2}. POSTs {} ({} failed); alerts missing {}; arrived before the POST's answer was read {}; duplicate webhook-ids {}; deliveries needing more than one attempt {}; baseline errors {} of {} before, {} of {} after.",
        r.alert.value_at_quantile(0.5) as f64 / r.baseline.value_at_quantile(0.5).max(1) as f64,
        r.posted,
        r.post_errors,
        r.missing,
        r.early,
        r.duplicates,
        r.retried,
        r.baseline_before.errors,
        r.baseline_before.requests,
        r.baseline_after.errors,
        r.baseline_after.requests,
    )?;
    writeln!(
        out,
        "- As the story grew: alert latency p50 / p99 {:.2} / {:.2} ms over the first fifth of the measured developments, {:.2} / {:.2} ms over the last fifth (the matcher's fold of the story lives in memory; nothing per story is rewritten per batch).",
        percentile(&r.drift.0, 0.5),
        percentile(&r.drift.0, 0.99),
        percentile(&r.drift.1, 0.5),
        percentile(&r.drift.1, 0.99),
    )?;
    if let Some(l) = &r.long {
        writeln!(
            out,
            "- Long story: grown through the HTTP API (32 POSTs in flight, nobody following it yet) and matched in {:.1} s ({} errors); {} of its measured alerts missing.",
            l.grow.as_secs_f64(),
            l.grow_errors,
            l.missing,
        )?;
    }
    writeln!(
        out,
        "- Stages (wall clock, the queue's own timestamps; signed ms):\n"
    )?;
    writeln!(out, "| stage | p50 | p99 | mean |\n|---|---|---|---|")?;
    for (label, v) in &r.stages {
        writeln!(
            out,
            "| {label} | {:.2} | {:.2} | {:.2} |",
            percentile(v, 0.5),
            percentile(v, 0.99),
            mean(v)
        )?;
    }
    writeln!(out)?;
    Ok(())
}

fn report_fanout(out: &mut String, r: &FanoutRun) -> std::fmt::Result {
    writeln!(
        out,
        "## 3. Fan-out: one flash development to {} webhook subscribers\n",
        thousands(r.subscribers as f64)
    )?;
    writeln!(
        out,
        "{} subscribers, each with its own webhook endpoint (spread over {} axum receivers on 127.0.0.1) and a subscription to one story, created through the HTTP API ({SETUP_IN_FLIGHT} subscribers in flight, 3 requests each) in {:.1} s ({} errors{}); then one development on another story, followed by nobody, so the matcher's index takes the new subscriptions in ({} from its POST's answer to the matcher's checkpoint passing it); then the measured `flash` development. Load average {} at start, {} at end.\n",
        thousands(r.subscribers as f64),
        r.receivers,
        r.setup.as_secs_f64(),
        r.setup_errors,
        r.first_error.as_deref().map(|e| format!("; first: {e}")).unwrap_or_default(),
        opt_ms(r.warm_match),
        r.load.0,
        r.load.1,
    )?;
    let last = r.last_arrival.unwrap_or_default().as_secs_f64();
    let window = match (r.first_arrival, r.last_arrival) {
        (Some(f), Some(l)) => (l - f).as_secs_f64(),
        _ => 0.0,
    };
    writeln!(out, "| measurement | result |\n|---|---|")?;
    writeln!(
        out,
        "| POST …/developments (flash) round trip | {} |",
        ms(r.command)
    )?;
    writeln!(
        out,
        "| POST answered → matcher's transaction (alerts + deliveries queued) visible | {} |",
        opt_ms(r.matcher_committed)
    )?;
    writeln!(
        out,
        "| POST answered → first alert arrives | {} |",
        opt_ms(r.first_arrival)
    )?;
    writeln!(
        out,
        "| POST answered → last alert arrives | {} |",
        opt_ms(r.last_arrival)
    )?;
    writeln!(
        out,
        "| Alerts/s, from the POST's answer to the last arrival | {} |",
        thousands(r.distinct as f64 / last.max(1e-9))
    )?;
    writeln!(
        out,
        "| Alerts/s, first to last arrival | {} |",
        thousands(r.distinct.saturating_sub(1) as f64 / window.max(1e-9))
    )?;
    writeln!(
        out,
        "| Distinct webhook-ids arrived / expected | {} / {} ({}) |",
        thousands(r.distinct as f64),
        thousands(r.subscribers as f64),
        if r.distinct == r.subscribers {
            "exact"
        } else {
            "**not exact**"
        }
    )?;
    writeln!(
        out,
        "| Duplicates (arrivals − distinct ids); arrivals of anything else | {}; {} |",
        r.arrivals - r.distinct,
        r.other_development
    )?;
    writeln!(
        out,
        "| Per receiver, fewest / most alerts | {} / {} |",
        r.per_receiver.0, r.per_receiver.1
    )?;
    let statuses: Vec<String> = r.statuses.iter().map(|(s, n)| format!("{s} {n}")).collect();
    writeln!(
        out,
        "| Deliveries in the queue afterwards | {}; {} needed more than one attempt |\n",
        statuses.join(", "),
        r.retried
    )?;
    let sizes: Vec<f64> = r.batches.iter().map(|b| b.size as f64).collect();
    let windows: Vec<f64> = r
        .batches
        .iter()
        .map(|b| (b.last - b.first).as_secs_f64() * 1000.0)
        .collect();
    writeln!(
        out,
        "- Where the time went: the matcher took the event {} ms after the POST's answer (`alerts.created_at`; negative = before the answer). Its transaction's deliveries were handed to the dispatcher in memory and sent up to 64 at a time, their outcomes recorded alongside in {} group commits (deliveries sharing one `updated_at`), {:.0} per commit on average; first to last arrival among one commit's deliveries took {:.1} ms on average (sum {:.0} ms); from the last arrival of one commit's deliveries to the first of the next, {:.1} ms on average (sum {:.0} ms, max {:.1} ms; 0 where they overlap).\n",
        r.created_after_post.map_or("n/a".to_owned(), |v| format!("{v:.1}")),
        r.batches.len(),
        mean(&sizes),
        mean(&windows),
        windows.iter().sum::<f64>() + 0.0,
        mean(&r.gaps),
        r.gaps.iter().sum::<f64>() + 0.0,
        r.gaps.iter().copied().fold(0.0, f64::max),
    )?;
    Ok(())
}

fn main() -> Res<()> {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let cfg = Config::from_env();
    let rt = runtime()?;
    let started = Instant::now();
    let load_start = load_averages();

    let matching = cfg.runs(1).then(|| {
        eprintln!("1. matching cost");
        let r = matching_cost(&cfg);
        eprintln!(
            "  indexed {:.2} µs, linear {:.2} µs per development",
            r.full.mean_indexed_ns() / 1000.0,
            r.full.mean_linear_ns() / 1000.0
        );
        r
    });
    let latency = if cfg.runs(2) {
        eprintln!("2. end-to-end latency");
        let r = rt.block_on(end_to_end(&cfg))?;
        eprintln!(
            "  alert p99 {}, baseline p99 {}",
            us(r.alert.value_at_quantile(0.99)),
            us(r.baseline.value_at_quantile(0.99))
        );
        Some(r)
    } else {
        None
    };
    let fan = if cfg.runs(3) {
        eprintln!("3. fan-out");
        let r = rt.block_on(fanout(&cfg))?;
        eprintln!(
            "  last of {} alerts after {}",
            r.distinct,
            opt_ms(r.last_arrival)
        );
        Some(r)
    } else {
        None
    };

    let cores = cores();
    let mut out = String::new();
    writeln!(out, "# newsroom alerts (notifier)\n")?;
    writeln!(
        out,
        "Rerun: `BENCH_SUBSCRIPTIONS={} BENCH_TARGETS={} BENCH_RATE={} BENCH_SECONDS={} BENCH_FANOUT={} BENCH_RECEIVERS={} BENCH_LONG_STORY={} cargo bench -p newsroom-notifier --bench alerts`\n",
        cfg.subscriptions, cfg.targets, cfg.rate, cfg.seconds, cfg.fanout, cfg.receivers, cfg.long_story
    )?;
    writeln!(
        out,
        "{cores} CPUs visible; SQLite {}; one tokio multi-thread runtime ({cores} workers) runs the app, its notifier, the receivers and the load client; load average {load_start} at start, {} at end; total {:.0} s.\n",
        rusqlite::version(),
        load_averages(),
        started.elapsed().as_secs_f64()
    )?;
    if let Some(r) = &matching {
        report_matching(&mut out, r)?;
    }
    if let Some(r) = &latency {
        report_latency(&mut out, r, &cfg)?;
    }
    if let Some(r) = &fan {
        report_fanout(&mut out, r)?;
    }
    print!("{out}");
    Ok(())
}
