//! `newsroom serve --role …`: one PostgreSQL log shared by a command process, a projector process
//! and a notifier process, each serving only its part.

use std::collections::HashSet;
use std::time::Duration;

use newsroom::ProcessRole;
use newsroom_testkit::prelude::*;
use newsroom_testkit::receiver::WebhookReceiver;
use reqwest::Method;
use serde_json::json;

async fn subscribe(notifier: &TestApp, reader: &SignedUp, filter: serde_json::Value) {
    let path = format!("/v1/subscribers/{}/subscriptions", reader.id);
    notifier
        .call(Method::POST, &path, Some(&reader.token), Some(filter))
        .await
        .ok(201);
}

/// The reader's alerts, once there are `n` of them (or after 10 s).
async fn alerts_of(notifier: &TestApp, reader: &SignedUp, n: usize) -> Vec<serde_json::Value> {
    let path = format!("/v1/subscribers/{}/alerts", reader.id);
    let mut alerts = Vec::new();
    for _ in 0..200 {
        let answer = notifier
            .call(Method::GET, &path, Some(&reader.token), None)
            .await;
        alerts = answer.ok(200).as_array().unwrap().clone();
        if alerts.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    alerts
}

#[tokio::test]
async fn command_projector_and_notifier_processes_share_one_postgres_log() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let on = |role| postgres_role(&db.url, role);
    let command = spawn_app_with(on(ProcessRole::Command)).await;
    let projector = spawn_app_with(on(ProcessRole::Projector)).await;
    let notifier = spawn_app_with(on(ProcessRole::Notifier)).await;

    // Each process serves its part only (every one answers /healthz).
    for app in [&command, &projector, &notifier] {
        app.call(Method::GET, "/healthz", None, None).await.ok(200);
    }
    let refused = projector
        .open_story_as(&projector.reporter, json!({"slug": "x", "headline": "X"}))
        .await;
    assert!(
        matches!(refused.status.as_u16(), 404 | 405),
        "a projector takes no commands: {refused:?}"
    );
    let no_views = command.call(Method::GET, "/v1/stories", None, None).await;
    assert!(
        matches!(no_views.status.as_u16(), 404 | 405),
        "a command process serves no views: {no_views:?}"
    );
    let no_subscribers = command
        .call(
            Method::POST,
            "/v1/subscribers",
            None,
            Some(json!({"name": "Ada"})),
        )
        .await;
    assert_eq!(no_subscribers.status.as_u16(), 404);

    // A reader follows a story through the notifier process...
    let story = command.open_story(false).await;
    let reader = notifier.sign_up("Ada Reader").await;
    subscribe(&notifier, &reader, json!({"story": story})).await;

    // ... a reporter records through the command process ...
    let recorded = command.record(&story, development("hack_reported")).await;
    let position = recorded.ok(201)["position"].as_i64().unwrap();

    // ... the projector process shows it (read-your-writes by position) ...
    let view = projector.read_story_at(&story, position).await;
    assert_eq!(view.ok(200)["timeline"].as_array().unwrap().len(), 1);

    // ... and the notifier process alerts the reader.
    let alerts = alerts_of(&notifier, &reader, 1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["type"], "story.hack_reported");
}

#[tokio::test]
async fn projector_copies_and_the_notifier_follow_the_jetstream_event_stream() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(nats) = nats_test_url() else { return };
    let stream = private_stream();
    let on = |role: ProcessRole| {
        let url = db.url.clone();
        let relay = newsroom::RelaySettings {
            nats_url: nats.clone(),
            stream: stream.clone(),
        };
        move |s: &mut newsroom::NewsroomSettings| {
            s.command.database_url = Some(url);
            s.role = role;
            s.relay = Some(relay);
        }
    };
    let command = spawn_app_with(on(ProcessRole::Command)).await;
    let copies = [
        spawn_app_with(on(ProcessRole::Projector)).await,
        spawn_app_with(on(ProcessRole::Projector)).await,
    ];
    let notifier = spawn_app_with(on(ProcessRole::Notifier)).await;
    let reader = notifier.sign_up("Ada Reader").await;
    subscribe(&notifier, &reader, json!({"tag": "cyber"})).await;
    let mut stories = Vec::new();
    let mut last = 0;
    for _ in 0..5 {
        let story = command.open_story(false).await;
        for kind in ["hack_reported", "update"] {
            last = command.record(&story, development(kind)).await.ok(201)["position"]
                .as_i64()
                .unwrap();
        }
        stories.push(story);
    }
    // Every copy reaches the last position and shows each story's developments in order.
    for copy in &copies {
        for story in &stories {
            let view = copy.read_story_at(story, last).await;
            let timeline = view.ok(200)["timeline"].as_array().unwrap().clone();
            assert_eq!(timeline.len(), 2, "{timeline:?}");
        }
        let front = copy.call(Method::GET, "/v1/stories", None, None).await;
        assert_eq!(front.ok(200)["stories"].as_array().unwrap().len(), 5);
    }
    // The notifier alerted the reader to each development.
    let alerts = alerts_of(&notifier, &reader, 10).await.len();
    assert_eq!(alerts, 10);
    // Each copy and the notifier followed the stream through their own durable consumers, and
    // acknowledged every event once applied.
    let js = async_nats::jetstream::new(async_nats::connect(&nats).await.unwrap());
    let events = command.feed().await.len() as u64;
    let s = js.get_stream(&stream.stream).await.unwrap();
    let mut acked = Vec::new();
    for _ in 0..100 {
        use futures_util::StreamExt;
        acked = s
            .consumers()
            .map(|c| c.unwrap())
            .map(|c| {
                (
                    c.name.split('-').next().unwrap().to_owned(),
                    c.ack_floor.stream_sequence,
                )
            })
            .collect::<Vec<_>>()
            .await;
        acked.sort();
        if acked.len() == 3 && acked.iter().all(|a| a.1 == events) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = |name: &str| (name.to_owned(), events);
    assert_eq!(
        acked,
        vec![all("notifier"), all("projector"), all("projector")],
        "three consumers acked all {events} events"
    );
    js.delete_stream(&stream.stream).await.unwrap();
}

/// A story as a copy serves it; with `at`, once its views hold that position.
async fn story_on(app: &TestApp, story: &str, at: Option<i64>) -> serde_json::Value {
    let path = match at {
        Some(position) => format!("/v1/stories/{story}?min_position={position}"),
        None => format!("/v1/stories/{story}"),
    };
    app.call(Method::GET, &path, None, None)
        .await
        .ok(200)
        .clone()
}

/// Waits (at most 10 s) until `app` has heard the views' commits up to `position`.
async fn hears(app: &TestApp, position: i64) {
    for _ in 0..200 {
        if app.views.heard_position().is_some_and(|p| p >= position) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the copy heard {:?}, not {position}",
        app.views.heard_position()
    );
}

fn related_headlines(story: &serde_json::Value) -> Vec<String> {
    story["relations"]
        .as_array()
        .expect("relations")
        .iter()
        .map(|r| r["headline"].as_str().unwrap().to_owned())
        .collect()
}

/// Projector copies sharing PostgreSQL views hear each other's commits: a story's body is served
/// from memory while no commit changed it, and a read of a later position gets the change
/// whichever copy applied it — a development of the story, and the headline of a story it shows
/// as related.
#[tokio::test]
async fn projector_copies_serve_a_story_from_memory_until_a_commit_they_hear_changes_it() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let on = |role| postgres_role(&db.url, role);
    let command = spawn_app_with(on(ProcessRole::Command)).await;
    let copies = [
        spawn_app_with(on(ProcessRole::Projector)).await,
        spawn_app_with(on(ProcessRole::Projector)).await,
    ];
    let open = |slug: &'static str, headline: &'static str| {
        let command = &command;
        async move {
            command
                .open_story_as(&command.editor, json!({"slug": slug, "headline": headline}))
                .await
                .ok(201)["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let hack = open("campaign-hack", "Campaign reports a hack").await;
    let charges = open("charges", "Prosecutors weigh charges").await;
    let linked = command
        .story_action(
            &command.editor,
            &hack,
            "relations",
            Some(json!({"story": charges, "relation": "follow_up"})),
        )
        .await;
    let linked = linked.ok(200)["position"].as_i64().unwrap();

    for copy in &copies {
        let story = story_on(copy, &hack, Some(linked)).await;
        assert_eq!(related_headlines(&story), ["Prosecutors weigh charges"]);
        // Once heard, the same body again comes from memory, with no query.
        hears(copy, linked).await;
        story_on(copy, &hack, None).await;
        let before = copy.views.bodies_read_from_memory();
        let again = story_on(copy, &hack, None).await;
        assert_eq!(again, story);
        assert_eq!(copy.views.bodies_read_from_memory(), before + 1);
    }

    // A development of the story: whichever copy applied it, both serve it.
    let recorded = command.record(&hack, development("hack_reported")).await;
    let recorded = recorded.ok(201)["position"].as_i64().unwrap();
    for copy in &copies {
        let story = story_on(copy, &hack, Some(recorded)).await;
        assert_eq!(story["timeline"].as_array().unwrap().len(), 1, "{story}");
    }

    // The related story's new headline changes the body of the story that shows it.
    let revised = command
        .call(
            Method::PATCH,
            &format!("/v1/stories/{charges}"),
            Some(&command.editor),
            Some(json!({"headline": "Prosecutors file charges"})),
        )
        .await;
    let revised = revised.ok(200)["position"].as_i64().unwrap();
    for copy in &copies {
        let story = story_on(copy, &hack, Some(revised)).await;
        assert_eq!(related_headlines(&story), ["Prosecutors file charges"]);
        // And so does a read that asks for no position, once the copy heard the change.
        hears(copy, revised).await;
        let story = story_on(copy, &hack, None).await;
        assert_eq!(related_headlines(&story), ["Prosecutors file charges"]);
        assert_eq!(story["timeline"].as_array().unwrap().len(), 1, "{story}");
    }
}

/// Which backend (`pid`) holds each partition of the notifier's work, from `pg_locks`.
async fn partition_owners(pool: &sqlx::PgPool) -> std::collections::HashMap<i64, i32> {
    let rows: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT l.objid::int8, l.pid FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
           AND l.classid::int8 = $1 AND l.database = (
               SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(i64::from(newsroom_notifier::partitions::PARTITION_SPACE))
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().collect()
}

/// A subscriber with a webhook to `receiver` and one subscription (`filter`).
async fn webhook_follower(
    notifier: &TestApp,
    receiver: &WebhookReceiver,
    filter: serde_json::Value,
) {
    let reader = notifier.sign_up("Wire desk").await;
    notifier
        .add_endpoint(&reader, json!({"kind": "webhook", "url": receiver.url}))
        .await
        .ok(201);
    subscribe(notifier, &reader, filter).await;
}

/// Two notifier copies share one PostgreSQL queue. A flash development to a few hundred webhook
/// endpoints, spread over the partitions of both: the copy that matches it sends to its own
/// endpoints at once, and the other copy claims the deliveries of its partitions from the queue —
/// every endpoint gets the alert once, under one `webhook-id`.
#[tokio::test]
async fn a_flash_fan_out_reaches_every_endpoint_once_whichever_copy_owns_its_partition() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let on = |role| postgres_role(&db.url, role);
    let command = spawn_app_with(on(ProcessRole::Command)).await;
    let _projector = spawn_app_with(on(ProcessRole::Projector)).await;
    let a = spawn_app_with(on(ProcessRole::Notifier)).await;
    let _b = spawn_app_with(on(ProcessRole::Notifier)).await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    // Both copies hold a share of the partitions.
    let mut owners = Default::default();
    for _ in 0..400 {
        owners = partition_owners(&pool).await;
        let copies: HashSet<i32> = owners.values().copied().collect();
        if owners.len() == 64 && copies.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let copies: HashSet<i32> = owners.values().copied().collect();
    assert_eq!((owners.len(), copies.len()), (64, 2), "{owners:?}");

    let receiver = WebhookReceiver::ok().await;
    const ENDPOINTS: usize = 300;
    for _ in 0..ENDPOINTS {
        webhook_follower(&a, &receiver, json!({"everything": true})).await;
    }
    let story = command.open_story(false).await;
    // The endpoints' subscribers lie in partitions of both copies, the story's matcher's and the
    // other's.
    let matcher = owners[&i64::from(newsroom_notifier::partitions::story_partition(&story))];
    let (theirs, others): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE notifier_partition(subscriber_id) = ANY($1)),
                count(*) FILTER (WHERE NOT notifier_partition(subscriber_id) = ANY($1))
         FROM endpoints",
    )
    .bind(
        owners
            .iter()
            .filter(|(_, pid)| **pid == matcher)
            .map(|(p, _)| *p as i32)
            .collect::<Vec<i32>>(),
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(theirs > 0 && others > 0, "{theirs} / {others}");

    let mut flash = development("hack_reported");
    flash["urgency"] = json!("flash");
    // `flash` needs an editor (a reporter's waits for approval).
    command
        .record_as(&command.editor, &story, flash)
        .await
        .ok(201);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while receiver.accepted().len() < ENDPOINTS {
        if tokio::time::Instant::now() > deadline {
            let queue: Vec<(String, bool, i64)> = sqlx::query_as(
                "SELECT status, leased_until IS NOT NULL, count(*) FROM deliveries GROUP BY 1, 2",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            let (alerts,): (i64,) = sqlx::query_as("SELECT count(*) FROM alerts")
                .fetch_one(&pool)
                .await
                .unwrap();
            panic!(
                "{} of {ENDPOINTS} endpoints received the alert; {alerts} alerts, deliveries (status, leased, count): {queue:?}",
                receiver.accepted().len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Longer than a delivery's lease (5 s in tests): an alert sent again would be here by now.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let received = receiver.accepted().len();
    let ids: HashSet<String> = receiver.accepted().into_iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), ENDPOINTS, "one webhook-id per endpoint");
    assert_eq!(received, ENDPOINTS, "none sent twice");
    // Each subscriber once: the token of the unsubscribe link says whose alert it is.
    let recipients: HashSet<String> = receiver
        .accepted()
        .iter()
        .map(|r| {
            let alert = r.json();
            assert_eq!(alert["data"]["story"]["id"], story.as_str());
            let link = alert["data"]["links"]["unsubscribe"].as_str().unwrap();
            link.rsplit('/').next().unwrap().to_owned()
        })
        .collect();
    assert_eq!(recipients.len(), ENDPOINTS);
    let (pending,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM deliveries WHERE status <> 'delivered'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(pending, 0);
    pool.close().await;
}

/// `followers` webhook followers of the actor "Fancy Bear" and one of "Unit 26165" sign up at
/// `notifier`; a flash naming the first is recorded at `command` and corrected at once to name
/// the second. Each follower gets the flash and then the correction, once each under one
/// `webhook-id`, and the newly matching subscriber the correction alone.
async fn flash_then_correction(command: &TestApp, notifier: &TestApp, followers: usize) {
    let receiver = WebhookReceiver::ok().await;
    for i in 0..=followers {
        // The last one follows only the actor the correction names.
        let actor = if i < followers {
            "Fancy Bear"
        } else {
            "Unit 26165"
        };
        webhook_follower(notifier, &receiver, json!({"actor": actor})).await;
    }
    let story = command.open_story(false).await;
    let mut flash = development("hack_reported");
    flash["urgency"] = json!("flash");
    let id = flash["id"].as_str().unwrap().to_owned();
    command
        .record_as(&command.editor, &story, flash)
        .await
        .ok(201);
    command
        .development_action(
            &command.editor,
            &story,
            &id,
            "corrections",
            json!({"note": "A unit, not the group.", "changes": {"actors": ["Unit 26165"]}}),
        )
        .await
        .ok(200);

    let expected = followers * 2 + 1;
    let got = receiver
        .wait_for_accepted(expected, Duration::from_secs(60))
        .await;
    // Longer than a delivery's lease (5 s in tests): an alert sent again would be here by now.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let got_now = receiver.accepted();
    assert_eq!(got_now.len(), expected, "none sent twice");
    let ids: HashSet<String> = got.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), expected, "one webhook-id per alert");
    // In arrival order, per subscriber (the unsubscribe link's token says whose it is).
    let mut heard: std::collections::HashMap<String, Vec<String>> = Default::default();
    for r in &got_now {
        let alert = r.json();
        let link = alert["data"]["links"]["unsubscribe"].as_str().unwrap();
        heard
            .entry(link.rsplit('/').next().unwrap().to_owned())
            .or_default()
            .push(alert["type"].as_str().unwrap().to_owned());
    }
    let mut orders: Vec<Vec<String>> = heard.into_values().collect();
    orders.sort();
    let mut wanted = vec![vec!["story.correction".to_owned()]];
    wanted.extend((0..followers).map(|_| {
        vec![
            "story.hack_reported".to_owned(),
            "story.correction".to_owned(),
        ]
    }));
    wanted.sort();
    assert_eq!(orders, wanted);
}

/// Two notifier copies; an event alerting at least `chunk_from` subscribers is queued in chunks
/// by subscriber partition, which each copy turns into alerts for the partitions it owns. A flash
/// to 60 followers goes out that way, and so does its correction, recorded at once (while the
/// flash's chunks may still wait): each follower gets the flash and then the correction, once
/// each, and a subscriber the correction newly matches gets the correction alone.
#[tokio::test]
async fn a_big_fan_out_is_queued_in_chunks_every_copy_takes_and_its_correction_follows_in_order() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let on = |role| postgres_role(&db.url, role);
    let chunked = |s: &mut newsroom::NewsroomSettings| {
        postgres_role(&db.url, ProcessRole::Notifier)(s);
        s.notifier.chunk_from = 20;
    };
    let command = spawn_app_with(on(ProcessRole::Command)).await;
    let _projector = spawn_app_with(on(ProcessRole::Projector)).await;
    let a = spawn_app_with(chunked).await;
    let _b = spawn_app_with(chunked).await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    for _ in 0..400 {
        let owners = partition_owners(&pool).await;
        if owners.len() == 64 && owners.values().collect::<HashSet<_>>().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    flash_then_correction(&command, &a, 60).await;

    // The alerts came from chunks (counted by PostgreSQL's statistics of the table), and none
    // is left.
    let mut inserted = 0;
    for _ in 0..100 {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(sum(n_tup_ins), 0)::int8 FROM pg_stat_user_tables
             WHERE relname = 'fanouts'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        inserted = n;
        if inserted > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(inserted > 0, "no chunk was written");
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM fanouts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    pool.close().await;
}

/// Embedded: an event alerting more than `chunk_from` subscribers is queued that many per
/// transaction, each part sent as it commits, the checkpoint moved with the last. A flash to 61
/// followers at 20 a part, and its correction at once: the same alerts as from one transaction,
/// once each and in order.
#[tokio::test]
async fn an_embedded_big_fan_out_is_queued_in_parts_and_its_correction_follows_in_order() {
    let app = spawn_app_with(|s| s.notifier.chunk_from = 20).await;
    let before = alert_parts(&app).await;
    flash_then_correction(&app, &app, 60).await;
    // 61 recipients each (in one batch or two): at least 7 parts of 20. No other test of this
    // binary alerts more than the default 1,000 subscribers at once.
    let parts = alert_parts(&app).await - before;
    assert!(parts >= 7.0, "queued in {parts} parts");
}

/// `newsroom_alert_parts_total`, as the process's `/metrics` says.
async fn alert_parts(app: &TestApp) -> f64 {
    let text = app.call(Method::GET, "/metrics", None, None).await;
    text.body
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("newsroom_alert_parts_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
