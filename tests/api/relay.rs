//! The relay to NATS JetStream, against real servers: the machine's NATS for publishing and
//! re-publishing, and a private `nats-server` process (own port, own `-sd` folder) that the test
//! stops and starts again while commands keep being accepted.

use std::process::{Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use newsroom_log::relay::{Relay, StreamSettings, POSITION_HEADER};
use newsroom_testkit::prelude::*;
use uuid::Uuid;

/// Every message of the stream: (Nats-Msg-Id, position header, subject).
async fn stream_contents(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Vec<(String, i64, String)> {
    let mut stream = js.get_stream(&settings.stream).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let m = stream.get_raw_message(seq).await.unwrap();
        out.push((
            m.headers.get("Nats-Msg-Id").unwrap().as_str().to_owned(),
            m.headers
                .get(POSITION_HEADER)
                .unwrap()
                .as_str()
                .parse()
                .unwrap(),
            m.subject.to_string(),
        ));
    }
    out
}

/// What the stream must hold: every event of the log once, in position order.
async fn expected(app: &TestApp, settings: &StreamSettings) -> Vec<(String, i64, String)> {
    app.feed()
        .await
        .iter()
        .map(|e| {
            let story = e["story_id"].as_str().unwrap();
            (
                format!("{story}:{}", e["sequence"]),
                e["position"].as_i64().unwrap(),
                settings.subject(story),
            )
        })
        .collect()
}

async fn publish_all(relay: &Relay) -> (i64, u64, u64) {
    let mut at = relay.prepare().await.unwrap();
    let (mut events, mut duplicates) = (0, 0);
    loop {
        let (to, counts) = relay.publish_after(at).await.unwrap();
        events += counts.events;
        duplicates += counts.duplicates;
        if to == at {
            return (to, events, duplicates);
        }
        at = to;
    }
}

async fn some_events(app: &TestApp, stories: usize) {
    for _ in 0..stories {
        let story = app.open_story(false).await;
        app.record(&story, development("hack_reported"))
            .await
            .ok(201);
        app.record(&story, development("update")).await.ok(201);
    }
}

#[tokio::test]
async fn the_relay_publishes_every_event_once_in_order_and_a_restart_republishes_safely() {
    let Some(url) = nats_test_url() else { return };
    let app = spawn_app().await;
    some_events(&app, 5).await;
    let settings = private_stream();
    let client = async_nats::connect(&url).await.unwrap();
    let js = jetstream::new(client.clone());

    let relay = Relay::new(
        app.app_state.store.clone(),
        client.clone(),
        settings.clone(),
    );
    let (head, events, duplicates) = publish_all(&relay).await;
    let want = expected(&app, &settings).await;
    assert_eq!(head, want.last().unwrap().1);
    assert_eq!(events as usize, want.len());
    assert_eq!(duplicates, 0);
    assert_eq!(stream_contents(&js, &settings).await, want);

    // A new relay starts where the stream ends: nothing is sent again.
    let restarted = Relay::new(
        app.app_state.store.clone(),
        client.clone(),
        settings.clone(),
    );
    assert_eq!(restarted.prepare().await.unwrap(), head);
    let (_, again, _) = publish_all(&restarted).await;
    assert_eq!(again, 0);

    // A relay that lost its place (it died between publishing and learning the acks) sends
    // everything again: the server drops every copy by its Nats-Msg-Id.
    let (to, counts) = restarted.publish_after(0).await.unwrap();
    assert!(counts.events > 0);
    assert_eq!(
        counts.duplicates, counts.events,
        "every re-publish was a duplicate"
    );
    assert!(to <= head);
    assert_eq!(stream_contents(&js, &settings).await, want);

    // New commands are published as they come, by the running relay.
    let running = Relay::new(
        app.app_state.store.clone(),
        client.clone(),
        settings.clone(),
    );
    let mut published = running.positions();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(running.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    some_events(&app, 2).await;
    let head = app.feed().await.last().unwrap()["position"]
        .as_i64()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), published.wait_for(|p| *p >= head))
        .await
        .expect("the running relay publishes new events")
        .unwrap();
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(
        stream_contents(&js, &settings).await,
        expected(&app, &settings).await
    );
    js.delete_stream(&settings.stream).await.unwrap();
}

async fn health(app: &TestApp) -> serde_json::Value {
    app.call(reqwest::Method::GET, "/healthz", None, None)
        .await
        .ok(200)
        .clone()
}

/// Waits until `/healthz` says the relay published up to `head` (and NATS is fine).
async fn wait_published(app: &TestApp, head: i64, what: &str) {
    for _ in 0..600 {
        let h = health(app).await;
        if h["checks"]["relay_position"].as_i64() >= Some(head) && h["checks"]["nats"] == "ok" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {:#}", health(app).await);
}

#[tokio::test]
async fn commands_are_accepted_while_nats_is_down_and_the_relay_catches_up() {
    // This test runs its own server; it needs the machine's NATS install, not its address.
    if nats_test_url().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some(mut server) = PrivateNats::start(port, dir.path()) else {
        return;
    };
    let url = format!("nats://127.0.0.1:{port}");
    let settings = private_stream();
    let relay = newsroom::RelaySettings {
        nats_url: url.clone(),
        stream: settings.clone(),
    };
    // newsroom with NEWSROOM_NATS_URL set: it runs the relay.
    let app = spawn_app_with(move |s| s.relay = Some(relay)).await;
    some_events(&app, 2).await;
    let head = app.feed().await.last().unwrap()["position"]
        .as_i64()
        .unwrap();
    wait_published(&app, head, "published while NATS is up").await;
    assert_eq!(health(&app).await["status"], "ok");

    // NATS goes away: commands are still accepted and stored; /healthz names NATS as the problem.
    server.stop();
    some_events(&app, 3).await;
    let head = app.feed().await.last().unwrap()["position"]
        .as_i64()
        .unwrap();
    let mut degraded = serde_json::Value::Null;
    for _ in 0..100 {
        degraded = health(&app).await;
        if degraded["status"] == "degraded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(degraded["status"], "degraded", "{degraded:#}");
    assert_eq!(degraded["checks"]["event_store"], "ok");
    assert_ne!(degraded["checks"]["nats"], "ok");
    assert!(degraded["checks"]["relay_position"].as_i64().unwrap() < head);

    // NATS comes back with its data: the relay catches up, every event once, in order.
    server.restart();
    wait_published(&app, head, "the relay catches up after NATS returns").await;
    assert_eq!(health(&app).await["status"], "ok");
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    assert_eq!(
        stream_contents(&js, &settings).await,
        expected(&app, &settings).await
    );
}

/// The 3-node cluster of `deploy/local-cluster.sh`, stopped on drop.
struct LocalCluster {
    dir: tempfile::TempDir,
    urls: String,
}

impl LocalCluster {
    fn script() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local-cluster.sh")
    }

    fn run(args: &[&str]) -> String {
        let out = Command::new("bash")
            .arg(Self::script())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("deploy/local-cluster.sh runs");
        assert!(
            out.status.success(),
            "local-cluster.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Three client ports and three route ports above a free base.
        let base = loop {
            let p = free_port();
            if (1024..60000).contains(&p)
                && (1..=3).all(|n| {
                    std::net::TcpListener::bind(("127.0.0.1", p + n)).is_ok()
                        && std::net::TcpListener::bind(("127.0.0.1", p + 100 + n)).is_ok()
                })
            {
                break p;
            }
        };
        let urls = Self::run(&["start", dir.path().to_str().unwrap(), &base.to_string()]);
        Self { dir, urls }
    }

    fn kill_node(&self, n: u8) {
        Self::run(&[
            "kill-node",
            &n.to_string(),
            self.dir.path().to_str().unwrap(),
        ]);
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .args(["stop", self.dir.path().to_str().unwrap()])
            .stdin(Stdio::null())
            .output();
    }
}

#[tokio::test]
async fn a_stream_replicated_on_three_nodes_loses_nothing_when_a_node_is_killed_under_load() {
    if nats_test_url().is_none() || !std::path::Path::new("/usr/sbin/nats-server").exists() {
        if nats_test_url().is_some() {
            skip_or_fail("nats-server is not installed at /usr/sbin/nats-server");
        }
        return;
    }
    let cluster = LocalCluster::start();
    let settings = StreamSettings {
        replicas: 3,
        ..private_stream()
    };
    let relay = newsroom::RelaySettings {
        nats_url: cluster.urls.clone(),
        stream: settings.clone(),
    };
    let app = spawn_app_with(move |s| s.relay = Some(relay)).await;

    // A steady write load; one node is killed (kill -9) in the middle of it.
    let writer = {
        let address = app.address.clone();
        let reporter = app.reporter.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut stories = Vec::new();
            for i in 0..30 {
                let opened: serde_json::Value = client
                    .post(format!("{address}/v1/stories"))
                    .bearer_auth(&reporter)
                    .json(&serde_json::json!({
                        "slug": format!("load-{i}-{}", Uuid::new_v4().simple()),
                        "headline": "Campaign reports a hack",
                        "summary": "", "tags": [],
                    }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let id = opened["id"].as_str().unwrap().to_owned();
                for _ in 0..3 {
                    let r = client
                        .post(format!("{address}/v1/stories/{id}/developments"))
                        .bearer_auth(&reporter)
                        .json(&development("update"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                }
                stories.push(id);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            stories
        })
    };
    // Kill a node once the stream has taken part of the load.
    for _ in 0..600 {
        let h = health(&app).await;
        if h["checks"]["relay_position"].as_i64().unwrap_or(0) >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.kill_node(2);
    let stories = writer.await.unwrap();
    assert_eq!(stories.len(), 30);
    let head = app.feed().await.last().unwrap()["position"]
        .as_i64()
        .unwrap();
    assert_eq!(head, 30 * 4, "every command was stored");
    wait_published(
        &app,
        head,
        "the relay publishes everything with a node down",
    )
    .await;

    // The two remaining nodes hold every event once, in order, replicated three times.
    let urls: Vec<&str> = cluster.urls.split(',').collect();
    let client = async_nats::connect(vec![urls[0], urls[2]]).await.unwrap();
    let js = jetstream::new(client);
    // The cluster may still be electing a new metadata leader if the killed node was it: its
    // API answers once that is done.
    let mut replicas = None;
    for _ in 0..60 {
        if let Ok(mut stream) = js.get_stream(&settings.stream).await {
            if let Ok(info) = stream.info().await {
                replicas = Some(info.config.num_replicas);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(replicas, Some(3), "the stream answers, replicated 3 times");
    assert_eq!(
        stream_contents(&js, &settings).await,
        expected(&app, &settings).await
    );
}

#[tokio::test]
async fn a_durable_consumer_hands_out_the_feed_in_order_and_resumes_after_what_was_committed() {
    let Some(url) = nats_test_url() else { return };
    let app = spawn_app().await;
    some_events(&app, 4).await;
    let settings = private_stream();
    let client = async_nats::connect(&url).await.unwrap();
    let relay = Relay::new(
        app.app_state.store.clone(),
        client.clone(),
        settings.clone(),
    );
    publish_all(&relay).await;
    let feed = app.feed().await;
    let positions: Vec<i64> = feed
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();

    let log = app.app_state.store.clone();
    let open = || {
        newsroom_log::consumer::JetStreamFeed::open(
            client.clone(),
            &settings,
            "projector-test",
            log.clone(),
        )
    };
    // The first half, committed.
    let mut consumer = open().await.unwrap();
    let js = jetstream::new(client.clone());
    let info = js
        .get_stream(&settings.stream)
        .await
        .unwrap()
        .consumer_info("projector-test")
        .await
        .unwrap()
        .clone();
    assert_eq!(
        info.config.inactive_threshold,
        newsroom_log::consumer::INACTIVE_FOR,
        "the server keeps an abandoned consumer for a day only"
    );
    let half = positions.len() / 2;
    let first = consumer
        .next_batch(0, half, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|e| e.position).collect::<Vec<_>>(),
        positions[..half]
    );
    consumer.commit().await.unwrap();
    // The rest handed out but not committed, then handed back (a graceful stop).
    let at = first.last().unwrap().position;
    let rest = consumer
        .next_batch(at, 1000, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(rest.len(), positions.len() - half);
    consumer.give_back().await.unwrap();
    drop(consumer);

    // The next consumer under the same name gets exactly what was not committed, in order.
    let mut again = open().await.unwrap();
    let resumed = again
        .next_batch(at, 1000, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        resumed.iter().map(|e| e.position).collect::<Vec<_>>(),
        positions[half..],
        "only what was not committed, in order, each once"
    );
    // Each event carries what the log holds.
    for (got, want) in resumed.iter().zip(&feed[half..]) {
        assert_eq!(got.story_id, want["story_id"].as_str().unwrap());
        assert_eq!(got.sequence, want["sequence"].as_i64().unwrap());
        assert_eq!(got.event_type, want["event_type"].as_str().unwrap());
    }
    again.commit().await.unwrap();

    // A consumer that reads the stream from its start (a new name) drops everything at or below
    // the caller's checkpoint: re-delivery cannot apply an event twice.
    let mut fresh = newsroom_log::consumer::JetStreamFeed::open(
        client.clone(),
        &settings,
        "projector-fresh",
        log.clone(),
    )
    .await
    .unwrap();
    let last = *positions.last().unwrap();
    let replay = fresh
        .next_batch(last, 1000, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(replay.is_empty(), "{replay:?}");
    jetstream::new(client)
        .delete_stream(&settings.stream)
        .await
        .unwrap();
}

#[tokio::test]
async fn events_the_stream_lacks_are_read_from_the_log() {
    let Some(url) = nats_test_url() else { return };
    let app = spawn_app().await;
    some_events(&app, 3).await;
    let feed = app.feed().await;
    let positions: Vec<i64> = feed
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    let settings = private_stream();
    let client = async_nats::connect(&url).await.unwrap();
    // A stream that only has the events after the fourth (its start was lost).
    let relay = Relay::new(
        app.app_state.store.clone(),
        client.clone(),
        settings.clone(),
    );
    relay.prepare().await.unwrap();
    relay.publish_after(positions[3]).await.unwrap();
    let mut consumer = newsroom_log::consumer::JetStreamFeed::open(
        client.clone(),
        &settings,
        "gap",
        app.app_state.store.clone(),
    )
    .await
    .unwrap();
    let got = consumer
        .next_batch(0, 1000, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|e| e.position).collect::<Vec<_>>(),
        positions
    );
    consumer.commit().await.unwrap();
    jetstream::new(client)
        .delete_stream(&settings.stream)
        .await
        .unwrap();
}

#[tokio::test]
async fn two_command_processes_relay_one_log_and_the_stream_holds_each_event_once_in_order() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(nats) = nats_test_url() else { return };
    let settings = private_stream();
    let on = || {
        let (url, relay) = (
            db.url.clone(),
            newsroom::RelaySettings {
                nats_url: nats.clone(),
                stream: settings.clone(),
            },
        );
        move |s: &mut newsroom::NewsroomSettings| {
            s.command.database_url = Some(url);
            s.role = newsroom::ProcessRole::Command;
            s.relay = Some(relay);
        }
    };
    let copies = [spawn_app_with(on()).await, spawn_app_with(on()).await];
    // Both copies take commands on the same stories, interleaved; each relays the whole log.
    let mut stories = Vec::new();
    for copy in &copies {
        stories.push(copy.open_story(false).await);
    }
    for i in 0..30 {
        let copy = &copies[i % 2];
        copy.record(&stories[(i / 2) % 2], development("update"))
            .await
            .ok(201);
    }
    let js = jetstream::new(async_nats::connect(&nats).await.unwrap());
    let want = expected(&copies[0], &settings).await;
    assert_eq!(want.len(), 32);
    for _ in 0..200 {
        if stream_contents(&js, &settings).await.len() >= want.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the slower relay finish too: its publishes are dropped as duplicates.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = stream_contents(&js, &settings).await;
    assert_eq!(got, want, "every event once, in position order");
    js.delete_stream(&settings.stream).await.unwrap();
}
