//! Bounded reader state: alerts are pruned after the retention period (with their deliveries
//! and delivery logs, never a delivery still pending), and a subscriber who asks to be forgotten
//! leaves no row behind — on SQLite and on PostgreSQL.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use newsroom_log::args;
use newsroom_notifier::retention::Retention;
use newsroom_notifier::store::ts;
use newsroom_notifier::{NotifierStore, SystemClock};
use newsroom_testkit::prelude::*;
use newsroom_testkit::receiver::WebhookReceiver;
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

/// A subscriber with a webhook to `receiver`, following `story` as it happens and `other` in an
/// hourly digest.
async fn follower(app: &TestApp, receiver: &WebhookReceiver, story: &str, other: &str) -> SignedUp {
    let s = app.sign_up("Wire desk").await;
    let path = |p: &str| format!("/v1/subscribers/{}/{p}", s.id);
    app.call(
        Method::POST,
        &path("endpoints"),
        Some(&s.token),
        Some(json!({"kind": "webhook", "url": receiver.url})),
    )
    .await
    .ok(201);
    for filter in [
        json!({"story": story}),
        json!({"story": other, "delivery": "digest", "digest_minutes": 60}),
    ] {
        app.call(
            Method::POST,
            &path("subscriptions"),
            Some(&s.token),
            Some(filter),
        )
        .await
        .ok(201);
    }
    s
}

/// Every id a row of each notifier table holds, as `table.column` → values (the columns of one
/// table in the same row order, so that they pair up).
async fn ids(store: &NotifierStore) -> BTreeMap<&'static str, Vec<String>> {
    const COLUMNS: &[(&str, &str)] = &[
        ("subscribers.id", "SELECT id FROM subscribers"),
        (
            "endpoints.subscriber_id",
            "SELECT subscriber_id FROM endpoints ORDER BY id",
        ),
        ("endpoints.id", "SELECT id FROM endpoints ORDER BY id"),
        (
            "subscriptions.subscriber_id",
            "SELECT subscriber_id FROM subscriptions ORDER BY id",
        ),
        (
            "subscriptions.id",
            "SELECT id FROM subscriptions ORDER BY id",
        ),
        (
            "subscription_changes.subscriber_id",
            "SELECT subscriber_id FROM subscription_changes WHERE subscriber_id IS NOT NULL",
        ),
        (
            "alerts.subscriber_id",
            "SELECT subscriber_id FROM alerts ORDER BY seq",
        ),
        ("alerts.id", "SELECT id FROM alerts ORDER BY seq"),
        (
            "deliveries.alert_id",
            "SELECT alert_id FROM deliveries ORDER BY seq",
        ),
        (
            "deliveries.endpoint_id",
            "SELECT endpoint_id FROM deliveries ORDER BY seq",
        ),
        (
            "deliveries.seq",
            "SELECT CAST(seq AS TEXT) FROM deliveries ORDER BY seq",
        ),
        (
            "delivery_log.delivery_seq",
            "SELECT CAST(delivery_seq AS TEXT) FROM delivery_log",
        ),
        ("alerted.subscriber_id", "SELECT subscriber_id FROM alerted"),
    ];
    store
        .read(|c| {
            let mut all = BTreeMap::new();
            for (name, sql) in COLUMNS {
                let values: Vec<String> = c
                    .statement(sql)?
                    .query_map(args![], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                all.insert(*name, values);
            }
            Ok(all)
        })
        .await
        .unwrap()
}

/// How many rows of each kind hold something of the subscriber whose own ids are `own`.
fn theirs(
    all: &BTreeMap<&'static str, Vec<String>>,
    own: &HashSet<String>,
) -> BTreeMap<String, usize> {
    all.iter()
        .map(|(name, values)| {
            (
                (*name).to_owned(),
                values.iter().filter(|v| own.contains(*v)).count(),
            )
        })
        .collect()
}

/// The ids that are the subscriber's: their own, their endpoints', subscriptions', alerts' and
/// deliveries' (found through their endpoints).
fn own_ids(all: &BTreeMap<&'static str, Vec<String>>, id: &str) -> HashSet<String> {
    let mut own: HashSet<String> = HashSet::from([id.to_owned()]);
    let pairs = |a: &str, b: &str| -> Vec<(String, String)> {
        all[a].iter().cloned().zip(all[b].iter().cloned()).collect()
    };
    for (subscriber, endpoint) in pairs("endpoints.subscriber_id", "endpoints.id") {
        if subscriber == id {
            own.insert(endpoint);
        }
    }
    for (subscriber, subscription) in pairs("subscriptions.subscriber_id", "subscriptions.id") {
        if subscriber == id {
            own.insert(subscription);
        }
    }
    for (subscriber, alert) in pairs("alerts.subscriber_id", "alerts.id") {
        if subscriber == id {
            own.insert(alert);
        }
    }
    for (endpoint, seq) in pairs("deliveries.endpoint_id", "deliveries.seq") {
        if own.contains(&endpoint) {
            own.insert(seq);
        }
    }
    own
}

async fn forgetting_leaves_nothing_of_the_subscriber(app: TestApp) {
    let receiver = WebhookReceiver::ok().await;
    let story = app.open_story(false).await;
    let other = app.open_story(false).await;
    let ada = follower(&app, &receiver, &story, &other).await;
    let bo = follower(&app, &receiver, &story, &other).await;
    for s in [&story, &story, &other] {
        app.record(s, development("hack_reported")).await.ok(201);
    }
    // Two immediate alerts each, delivered (a delivery log each), one digest alert each waiting.
    receiver.wait_for_accepted(4, WAIT).await;
    let mut before = ids(&app.notifier).await;
    for _ in 0..100 {
        if before["delivery_log.delivery_seq"].len() >= 4 && before["alerts.id"].len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        before = ids(&app.notifier).await;
    }
    let ada_ids = own_ids(&before, &ada.id);
    let bo_ids = own_ids(&before, &bo.id);
    let ada_before = theirs(&before, &ada_ids);
    for table in [
        "subscribers.id",
        "endpoints.subscriber_id",
        "subscriptions.subscriber_id",
        "subscription_changes.subscriber_id",
        "alerts.subscriber_id",
        "deliveries.endpoint_id",
        "delivery_log.delivery_seq",
        "alerted.subscriber_id",
    ] {
        assert!(
            ada_before[table] > 0,
            "Ada has rows in {table} to forget: {ada_before:?}"
        );
    }
    let bo_before = theirs(&before, &bo_ids);

    app.subscriber_call(&ada, Method::DELETE, "", None).await;
    let after = ids(&app.notifier).await;
    let ada_after = theirs(&after, &ada_ids);
    assert!(
        ada_after.values().all(|n| *n == 0),
        "nothing of the forgotten subscriber stays: {ada_after:?}"
    );
    assert_eq!(
        theirs(&after, &bo_ids),
        bo_before,
        "the other subscriber keeps everything"
    );
    // Her token no longer works, and new developments reach the other subscriber only.
    let me = app.subscriber_get(&ada, "").await;
    assert_eq!(me.status, 401);
    app.record(&story, development("hack_reported"))
        .await
        .ok(201);
    let delivered = receiver.wait_for_accepted(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.accepted().len(),
        delivered.len(),
        "one more, for the other subscriber only"
    );
    let last = ids(&app.notifier).await;
    assert!(theirs(&last, &ada_ids).values().all(|n| *n == 0));
}

#[tokio::test]
async fn forgetting_a_subscriber_removes_every_row_of_theirs_on_sqlite() {
    forgetting_leaves_nothing_of_the_subscriber(spawn_app().await).await;
}

#[tokio::test]
async fn forgetting_a_subscriber_removes_every_row_of_theirs_on_postgres() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    forgetting_leaves_nothing_of_the_subscriber(app).await;
}

/// Queues `n` alerts for `subscriber` made at `at`, each with one delivery of `status` (and a
/// log line); returns nothing, they are counted by table.
async fn old_alerts(
    store: &NotifierStore,
    subscriber: &str,
    endpoint: &str,
    tag: &str,
    n: usize,
    at: chrono::DateTime<Utc>,
    status: &'static str,
) {
    let (subscriber, endpoint, tag) = (subscriber.to_owned(), endpoint.to_owned(), tag.to_owned());
    store
        .write(move |tx| {
            for i in 0..n {
                let id = format!("msg_{tag}_{i}");
                tx.execute(
                    "INSERT INTO alerts (id, subscriber_id, position, story_id, type, payload,
                        mode, created_at)
                     VALUES (?1, ?2, NULL, 's', 'story.update', '{}', 'immediate', ?3)",
                    args![id, subscriber, ts(at)],
                )?;
                // A pending one is due later: the dispatcher leaves it alone meanwhile.
                let due = if status == "pending" {
                    Utc::now() + chrono::Duration::days(1)
                } else {
                    at
                };
                let seq: i64 = tx.query_row(
                    "INSERT INTO deliveries (alert_id, endpoint_id, story_id, status,
                        next_attempt_at, created_at, updated_at)
                     VALUES (?1, ?2, 's', ?3, ?5, ?4, ?4) RETURNING seq",
                    args![id, endpoint, status, ts(at), ts(due)],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT INTO delivery_log (delivery_seq, at, status) VALUES (?1, ?2, ?3)",
                    args![seq, ts(at), status],
                )?;
                tx.execute(
                    "INSERT INTO alerted (development_id, subscriber_id) VALUES (?1, ?2)",
                    args![format!("dev_{tag}_{i}"), subscriber],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

async fn count(store: &NotifierStore, sql: &'static str) -> i64 {
    store
        .read(move |c| Ok(c.query_row(sql, args![], |r| r.get(0))?))
        .await
        .unwrap()
}

async fn expired_alerts_go_in_batches_and_pending_ones_stay(app: TestApp) {
    let s = app.sign_up("Archive").await;
    let endpoint = app
        .add_endpoint(
            &s,
            json!({"kind": "email", "address": "archive@example.org"}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let store = &app.notifier;
    let now = Utc::now();
    let old = now - chrono::Duration::days(31);
    old_alerts(store, &s.id, &endpoint, "old", 25, old, "delivered").await;
    old_alerts(store, &s.id, &endpoint, "failed", 5, old, "failed").await;
    // Old but still to be sent (a retry is due later): kept until it is settled.
    old_alerts(store, &s.id, &endpoint, "pending", 3, old, "pending").await;
    old_alerts(
        store,
        &s.id,
        &endpoint,
        "new",
        4,
        now - chrono::Duration::days(29),
        "delivered",
    )
    .await;
    assert_eq!(count(store, "SELECT COUNT(*) FROM alerts").await, 37);

    let retention = Retention::new(
        store.clone(),
        Arc::new(SystemClock),
        chrono::Duration::days(30),
        10,
    );
    assert_eq!(
        retention.prune_batch().await.unwrap(),
        10,
        "one bounded batch"
    );
    assert_eq!(count(store, "SELECT COUNT(*) FROM alerts").await, 27);
    assert_eq!(
        retention.prune().await.unwrap(),
        20,
        "the rest, batch by batch"
    );
    assert_eq!(retention.prune().await.unwrap(), 0);

    assert_eq!(
        count(store, "SELECT COUNT(*) FROM alerts").await,
        7,
        "3 pending + 4 recent"
    );
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM alerts WHERE id LIKE 'msg_old%' OR id LIKE 'msg_failed%'"
        )
        .await,
        0
    );
    assert_eq!(count(store, "SELECT COUNT(*) FROM deliveries").await, 7);
    assert_eq!(count(store, "SELECT COUNT(*) FROM delivery_log").await, 7);
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM delivery_log WHERE delivery_seq NOT IN (SELECT seq FROM deliveries)").await,
        0,
        "no log outlives its delivery"
    );
    // Who was alerted to what stays: a late correction still reaches them.
    assert_eq!(count(store, "SELECT COUNT(*) FROM alerted").await, 37);

    // Once the pending ones are settled, they go too.
    store
        .write(|tx| {
            tx.execute(
                "UPDATE deliveries SET status = 'delivered' WHERE status = 'pending'",
                args![],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(retention.prune().await.unwrap(), 3);
    assert_eq!(count(store, "SELECT COUNT(*) FROM alerts").await, 4);
}

// The app's own pruner is off in these two: the test's `Retention` is the only one deleting, so
// what it counts is what it did (the app's first prune could otherwise run between the inserts
// and the count).

#[tokio::test]
async fn expired_alerts_are_pruned_in_batches_but_pending_deliveries_stay_on_sqlite() {
    let app = spawn_app_with(|s| s.notifier.alert_retention = None).await;
    expired_alerts_go_in_batches_and_pending_ones_stay(app).await;
}

#[tokio::test]
async fn expired_alerts_are_pruned_in_batches_but_pending_deliveries_stay_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let url = db.url.clone();
    let app = spawn_app_with(move |s| {
        s.command.database_url = Some(url);
        s.notifier.alert_retention = None;
    })
    .await;
    expired_alerts_go_in_batches_and_pending_ones_stay(app).await;
}

#[tokio::test]
async fn the_running_notifier_prunes_expired_alerts_by_itself() {
    let app = spawn_app_with(|s| {
        s.notifier.alert_retention = Some(newsroom_notifier::service::DAY);
        s.notifier.prune_every = Duration::from_millis(50);
    })
    .await;
    let s = app.sign_up("Archive").await;
    let endpoint: Value = app
        .add_endpoint(
            &s,
            json!({"kind": "email", "address": "archive@example.org"}),
        )
        .await
        .ok(201)
        .clone();
    let endpoint = endpoint["id"].as_str().unwrap();
    let now = Utc::now();
    old_alerts(
        &app.notifier,
        &s.id,
        endpoint,
        "old",
        1200,
        now - chrono::Duration::days(2),
        "delivered",
    )
    .await;
    old_alerts(&app.notifier, &s.id, endpoint, "new", 2, now, "delivered").await;
    let mut left = 0;
    for _ in 0..200 {
        left = count(&app.notifier, "SELECT COUNT(*) FROM alerts").await;
        if left == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 2, "only the alerts younger than a day are left");
    assert_eq!(
        count(&app.notifier, "SELECT COUNT(*) FROM deliveries").await,
        2
    );
}
