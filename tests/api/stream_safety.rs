//! The event stream in a scale-out deployment (PostgreSQL log, the machine's NATS): nothing a
//! subscriber registers can put messages into it, a message on it that is not an event is set
//! aside (terminated, counted, logged) instead of failing every batch that holds it, and a
//! follower that cannot advance says so in `/healthz`, and keeps saying so.

use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use newsroom::ProcessRole;
use newsroom_log::relay::{StreamSettings, POSITION_HEADER};
use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

/// Settings of one process of a scale-out deployment on `db`, following `stream` on `nats`.
fn role(
    db: &TestDatabase,
    nats: &str,
    stream: &StreamSettings,
    role: ProcessRole,
) -> impl FnOnce(&mut newsroom::NewsroomSettings) {
    let (url, nats, stream) = (db.url.clone(), nats.to_owned(), stream.clone());
    move |s: &mut newsroom::NewsroomSettings| {
        s.command.database_url = Some(url);
        s.role = role;
        s.notifier.nats_url = Some(nats.clone());
        s.relay = Some(newsroom::RelaySettings {
            nats_url: nats,
            stream,
        });
    }
}

/// Waits until the command process's relay has published everything up to its log's head.
async fn relayed(command: &TestApp) -> i64 {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = command
            .call(Method::GET, "/healthz", None, None)
            .await
            .ok(200)
            .clone();
        if last["checks"]["relay_position"] == last["head_position"] {
            return last["head_position"].as_i64().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the relay did not catch up: {last}");
}

/// Every message of the stream: (subject, position header if any).
async fn stream_contents(
    js: &jetstream::Context,
    stream: &StreamSettings,
) -> Vec<(String, Option<i64>)> {
    let mut s = js.get_stream(&stream.stream).await.unwrap();
    let last = s.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let m = s.get_raw_message(seq).await.unwrap();
        let position = m
            .headers
            .get(POSITION_HEADER)
            .and_then(|v| v.as_str().parse().ok());
        out.push((m.subject.to_string(), position));
    }
    out
}

/// The story as the projector shows it once it reached `position` (`None` if it did not within
/// the read's own wait).
async fn story_at(projector: &TestApp, story: &str, position: i64) -> Option<Value> {
    let answer = projector.read_story_at(story, position).await;
    (answer.status == 200).then_some(answer.body)
}

/// The count of messages set aside by consumers of `stream` whose name starts with `part`, as
/// the process's `/metrics` says.
async fn set_aside(app: &TestApp, stream: &StreamSettings, part: &str) -> f64 {
    let text = app.call(Method::GET, "/metrics", None, None).await;
    let text = text.body.as_str().unwrap_or_default().to_owned();
    text.lines()
        .filter(|l| l.starts_with("newsroom_stream_messages_set_aside_total{"))
        .filter(|l| l.contains(&format!("stream=\"{}\"", stream.stream)))
        .filter(|l| l.contains(&format!("consumer=\"{part}-")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_subscribers_nats_subject_lives_under_its_own_root_and_never_enters_the_event_stream() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(nats) = nats_test_url() else { return };
    let stream = private_stream();
    let command = spawn_app_with(role(&db, &nats, &stream, ProcessRole::Command)).await;
    let projector = spawn_app_with(role(&db, &nats, &stream, ProcessRole::Projector)).await;
    let notifier = spawn_app_with(role(&db, &nats, &stream, ProcessRole::Notifier)).await;
    let client = async_nats::connect(&nats).await.unwrap();
    let js = jetstream::new(client.clone());

    // An anonymous subscriber aims its NATS endpoint at the event stream's own subjects.
    let story = command.open_story(false).await;
    let reader = notifier.sign_up("Mallory").await;
    let aimed = format!("{}.{story}", stream.subject_prefix);
    let mut inbox = client
        .subscribe(format!("newsroom.alerts.{}.>", reader.id))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let endpoint = notifier
        .add_endpoint(&reader, json!({"kind": "nats", "subject": aimed}))
        .await;
    let endpoint = endpoint.ok(201).clone();
    notifier
        .subscribe(&reader, json!({"story": story}))
        .await
        .ok(201);
    let first = command.record(&story, development("hack_reported")).await;
    let first = first.ok(201)["position"].as_i64().unwrap();

    // The alert is sent...
    let mut deliveries = Value::Null;
    for _ in 0..200 {
        deliveries = notifier
            .subscriber_get(&reader, "/deliveries")
            .await
            .ok(200)
            .clone();
        if deliveries[0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(deliveries[0]["status"], "delivered", "{deliveries}");
    // ... and the stream holds the relay's events, each once, and nothing else.
    let second = command.record(&story, development("update")).await;
    let second = second.ok(201)["position"].as_i64().unwrap();
    let head = relayed(&command).await;
    let contents = stream_contents(&js, &stream).await;
    let want: Vec<(String, Option<i64>)> = (1..=head)
        .zip(command.feed().await)
        .map(|(p, e)| (stream.subject(e["story_id"].as_str().unwrap()), Some(p)))
        .collect();
    assert_eq!(
        contents, want,
        "only the relay publishes into the event stream"
    );

    // The alert went to the subscriber's own namespace: the root, its id, then its subject.
    let delivered = format!("newsroom.alerts.{}.{aimed}", reader.id);
    assert_eq!(endpoint["subject"], delivered.as_str(), "{endpoint}");
    let message = tokio::time::timeout(WAIT, inbox.next())
        .await
        .expect("the alert on the subscriber's subject")
        .unwrap();
    assert_eq!(message.subject.as_str(), delivered);
    let alert: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(alert["type"], "story.hack_reported");

    // The projector shows every development, the later one included.
    let view = story_at(&projector, &story, second)
        .await
        .expect("the projector caught up");
    assert_eq!(view["timeline"].as_array().unwrap().len(), 2, "{view}");
    assert!(first < second);
    let health = projector.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.ok(200)["status"], "ok", "{:?}", health.body);
    js.delete_stream(&stream.stream).await.unwrap();
}

#[tokio::test]
async fn a_message_on_the_event_stream_that_is_not_an_event_is_set_aside_counted_and_passed() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(nats) = nats_test_url() else { return };
    let stream = private_stream();
    let command = spawn_app_with(role(&db, &nats, &stream, ProcessRole::Command)).await;
    let client = async_nats::connect(&nats).await.unwrap();
    let js = jetstream::new(client.clone());

    // An event, then two messages that are not events (one shaped like an alert, one not even
    // JSON), then another event — all in the stream before any follower reads it, so that the
    // followers' first batch holds them all.
    let story = command.open_story(false).await;
    command
        .record(&story, development("hack_reported"))
        .await
        .ok(201);
    relayed(&command).await;
    let garbage = [
        json!({"type": "story.hack_reported", "data": {}}).to_string(),
        "\u{0}not json".to_owned(),
    ];
    for body in garbage {
        js.publish(format!("{}.{story}", stream.subject_prefix), body.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let later = command.record(&story, development("update")).await;
    let later = later.ok(201)["position"].as_i64().unwrap();
    relayed(&command).await;

    let projector = spawn_app_with(role(&db, &nats, &stream, ProcessRole::Projector)).await;
    let notifier = spawn_app_with(role(&db, &nats, &stream, ProcessRole::Notifier)).await;

    // The projector shows the later development as well.
    let view = story_at(&projector, &story, later)
        .await
        .expect("the projector passed the messages that are not events");
    assert_eq!(view["timeline"].as_array().unwrap().len(), 2, "{view}");

    // Both followers set the two messages aside (terminated: never delivered again), counted
    // them, and acknowledged everything.
    let last = js
        .get_stream(&stream.stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence;
    let mut consumers = Vec::new();
    for _ in 0..200 {
        let s = js.get_stream(&stream.stream).await.unwrap();
        consumers = s
            .consumers()
            .map(|c| c.unwrap())
            .map(|c| {
                let part = c.name.split('-').next().unwrap().to_owned();
                (part, c.ack_floor.stream_sequence, c.num_ack_pending)
            })
            .collect::<Vec<_>>()
            .await;
        consumers.sort();
        if consumers.len() == 2 && consumers.iter().all(|c| c.1 == last && c.2 == 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        consumers,
        vec![
            ("notifier".to_owned(), last, 0),
            ("projector".to_owned(), last, 0)
        ]
    );
    assert_eq!(set_aside(&projector, &stream, "projector").await, 2.0);
    assert_eq!(set_aside(&notifier, &stream, "notifier").await, 2.0);
    for app in [&projector, &notifier] {
        let health = app.call(Method::GET, "/healthz", None, None).await;
        assert_eq!(health.ok(200)["status"], "ok", "{:?}", health.body);
    }

    // A command process starting while such a message is the stream's last finds where the
    // relay got to behind it, and goes on publishing.
    js.publish(format!("{}.{story}", stream.subject_prefix), "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    command.stop().await;
    let command = spawn_app_with(role(&db, &nats, &stream, ProcessRole::Command)).await;
    let after_restart = command.record(&story, development("update")).await;
    let after_restart = after_restart.ok(201)["position"].as_i64().unwrap();
    let view = story_at(&projector, &story, after_restart)
        .await
        .expect("the restarted relay publishes");
    assert_eq!(view["timeline"].as_array().unwrap().len(), 3, "{view}");
    js.delete_stream(&stream.stream).await.unwrap();
}

#[tokio::test]
async fn a_follower_that_cannot_advance_says_so_in_healthz_and_keeps_saying_so() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(nats) = nats_test_url() else { return };
    let stream = private_stream();
    let command = spawn_app_with(role(&db, &nats, &stream, ProcessRole::Command)).await;
    let projector = spawn_app_with(role(&db, &nats, &stream, ProcessRole::Projector)).await;
    let story = command.open_story(false).await;
    let first = command.record(&story, development("hack_reported")).await;
    let first = first.ok(201)["position"].as_i64().unwrap();
    story_at(&projector, &story, first)
        .await
        .expect("the projector follows");

    // An event this code cannot read (as a newer release might log) stops the projector there:
    // the log is the record, so it must not skip it.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO events (position, aggregate_type, aggregate_id, sequence, event_type,
            event_version, payload, metadata, recorded_at)
         SELECT MAX(position) + 1, 'story', $1, 1, 'StoryOpened', '99.0', '{}', '{}', now()
         FROM events",
    )
    .bind(Uuid::new_v4().to_string())
    .execute(&pool)
    .await
    .unwrap();
    let later = command.record(&story, development("update")).await;
    let later = later.ok(201)["position"].as_i64().unwrap();
    relayed(&command).await;

    // Health names the projector and what is wrong...
    let stuck = |body: &Value| body["checks"]["projector"] != "ok";
    let mut health = Value::Null;
    for _ in 0..200 {
        health = projector
            .call(Method::GET, "/healthz", None, None)
            .await
            .ok(200)
            .clone();
        if stuck(&health) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stuck(&health), "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    // ... and keeps saying so while the projector retries (each retry waits for the stream
    // and finds nothing new: that is not progress).
    for _ in 0..40 {
        let now = projector.call(Method::GET, "/healthz", None, None).await;
        let now = now.ok(200).clone();
        assert!(stuck(&now), "the projector cannot advance, yet: {now}");
        let said = now["checks"]["projector"].as_str().unwrap().to_owned();
        assert!(said.contains(&format!("position {first}")), "{said}");
        assert!(said.contains("version"), "the reason: {said}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(story_at(&projector, &story, later).await.is_none());
}

#[tokio::test]
async fn a_root_for_nats_alerts_that_meets_the_event_streams_subjects_is_refused_at_start() {
    let stream = private_stream();
    for root in [
        stream.subject_prefix.clone(),
        format!("{}.alerts", stream.subject_prefix),
        stream.subject_prefix.split('.').next().unwrap().to_owned(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut notifier = test_notifier_settings(&dir);
        notifier.nats_alert_root = root.clone();
        let settings = newsroom::NewsroomSettings {
            command: test_settings(&dir),
            views_path: dir.path().join("views.db"),
            notifier,
            clock: std::sync::Arc::new(newsroom_notifier::SystemClock),
            relay: Some(newsroom::RelaySettings {
                nats_url: "nats://127.0.0.1:1".into(),
                stream: stream.clone(),
            }),
            role: ProcessRole::Notifier,
            live: Default::default(),
            front_page_marks: Default::default(),
            desk_undo: None,
        };
        let refused = newsroom::Newsroom::build(settings).await.unwrap_err();
        let said = format!("{refused:#}");
        assert!(said.contains("NEWSROOM_NATS_ALERT_ROOT"), "{root}: {said}");
        assert!(said.contains("overlaps"), "{root}: {said}");
    }
}
