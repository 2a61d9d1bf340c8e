//! The PostgreSQL event log against the machine's real server (`NEWSROOM_TEST_DATABASE_URL`),
//! each test in a database of its own.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use newsroom_command::http::{OpenStoryRequest, RecordDevelopmentRequest};
use newsroom_command::{CommandService, ServiceOptions};
use newsroom_domain::{Role, StoryId};
use newsroom_log::{EventLog, PgStore};
use newsroom_testkit::prelude::*;
use newsroom_web::Principal;
use reqwest::Method;
use serde_json::json;

fn reporter() -> Principal {
    Principal {
        token_id: "pg-test".into(),
        name: "Rita Reporter".into(),
        role: Role::Reporter,
    }
}

fn open_command(id: StoryId, slug: &str) -> newsroom_domain::StoryCommand {
    serde_json::from_value::<OpenStoryRequest>(json!({"slug": slug, "headline": "A story"}))
        .unwrap()
        .parse(id)
        .unwrap()
}

fn filing() -> newsroom_domain::StoryCommand {
    serde_json::from_value::<RecordDevelopmentRequest>(development("statement_issued"))
        .unwrap()
        .parse()
        .unwrap()
}

/// Several "processes" (separate stores and pools) write concurrently while a follower reads the
/// feed by "position > last": it must see every event exactly once, in each story's order —
/// the property a bare sequence breaks when transactions commit out of order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_postgres_never_make_a_follower_skip_an_event() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let mut processes = Vec::new();
    for _ in 0..3 {
        let log: EventLog = PgStore::connect(&db.url).await.unwrap().into();
        let service = Arc::new(CommandService::new(log.clone(), ServiceOptions::default()));
        processes.push((log, service));
    }
    let mut stories = Vec::new();
    for n in 0..6 {
        let id = StoryId::new();
        processes[0]
            .1
            .execute(id, &reporter(), open_command(id, &format!("pg-story-{n}")))
            .await
            .unwrap();
        stories.push(id);
    }

    // The follower reads while the writers write.
    let follower_log = processes[1].0.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower_done = done.clone();
    let follower = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let finished = follower_done.load(std::sync::atomic::Ordering::SeqCst);
            let page = follower_log.read_feed(after, 100).await.unwrap();
            if let Some(last) = page.last() {
                after = last.position;
            }
            let empty = page.is_empty();
            seen.extend(page);
            if finished && empty {
                return seen;
            }
            tokio::task::yield_now().await;
        }
    });

    let mut writers = Vec::new();
    for w in 0..18 {
        let service = processes[w % processes.len()].1.clone();
        let story = stories[w % stories.len()];
        writers.push(tokio::spawn(async move {
            let mut accepted = 0;
            for _ in 0..15 {
                match service.execute(story, &reporter(), filing()).await {
                    Ok(_) => accepted += 1,
                    // Several processes race for one story: the bounded retry may give up.
                    Err(newsroom_command::CommandError::Conflict) => {}
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for w in writers {
        accepted += w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = follower.await.unwrap();

    let all = processes[2].0.read_feed(0, 100_000).await.unwrap();
    assert_eq!(
        all.len(),
        6 + accepted,
        "every accepted command is in the log"
    );
    assert!(accepted > 200, "most commands got through: {accepted}");
    let positions: Vec<i64> = all.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        (1..=all.len() as i64).collect::<Vec<_>>(),
        "gap-free"
    );
    let seen_positions: Vec<i64> = seen.iter().map(|e| e.position).collect();
    assert_eq!(
        seen_positions, positions,
        "the follower saw every event once, in order"
    );
    let mut next: HashMap<String, i64> = HashMap::new();
    for e in &all {
        let expected = next.entry(e.story_id.clone()).or_insert(1);
        assert_eq!(
            e.sequence, *expected,
            "each story's events in sequence order"
        );
        *expected += 1;
    }
}

#[tokio::test]
async fn slugs_stay_unique_and_snapshots_reload_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let a: EventLog = PgStore::connect(&db.url).await.unwrap().into();
    let b: EventLog = PgStore::connect(&db.url).await.unwrap().into();
    let options = || ServiceOptions {
        snapshot_every: 5,
        cache_capacity: 10,
    };
    let first = CommandService::new(a.clone(), options());
    let second = CommandService::new(b.clone(), options());
    let id = StoryId::new();
    first
        .execute(id, &reporter(), open_command(id, "same-slug"))
        .await
        .unwrap();
    let other = StoryId::new();
    let taken = second
        .execute(other, &reporter(), open_command(other, "same-slug"))
        .await;
    assert!(
        matches!(taken, Err(newsroom_command::CommandError::SlugTaken(_))),
        "{taken:?}"
    );
    assert!(
        a.read_feed(0, 10).await.unwrap().len() == 1,
        "the refused story left nothing"
    );

    for _ in 0..12 {
        first.execute(id, &reporter(), filing()).await.unwrap();
    }
    // A fresh service on the other pool loads snapshot + tail and continues the sequence.
    let third = CommandService::new(b.clone(), options());
    let outcome = third.execute(id, &reporter(), filing()).await.unwrap();
    assert_eq!(outcome.sequence, 14);
    assert_eq!(
        b.story_by_slug("same-slug".into()).await.unwrap(),
        Some(id.to_string())
    );
}

#[tokio::test]
async fn the_whole_newsroom_runs_on_a_postgres_log() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    let story = app.open_story(false).await;
    let filing = development("hack_reported");
    let p = app.record(&story, filing.clone()).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.record(&story, filing).await.ok(200)["position"],
        p,
        "idempotent on PostgreSQL"
    );
    let body = app.read_story_at(&story, p).await;
    assert_eq!(body.ok(200)["timeline"].as_array().unwrap().len(), 1);
    let feed = app.feed().await;
    let positions: HashSet<i64> = feed
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, HashSet::from([1, 2]));
    // JSONB reorders keys; the hash chain is over canonical JSON and still verifies.
    let report = newsroom_log::verify::verify_log(&app.app_state.store)
        .await
        .unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let health = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.ok(200)["head_position"], 2);
    // Tokens live in PostgreSQL too: a revoked one stops working.
    let issued = app.create_token("reporter", "Temp").await;
    app.revoke_token(&issued.id).await.ok(204);
    app.open_story_as(&issued.token, json!({"slug": "nope", "headline": "No"}))
        .await
        .problem(401);
}

/// Every story's view, the front page and every actor's list, as one value to compare.
async fn everything_in(
    views: &newsroom_projection::ViewStore,
    stories: &[uuid::Uuid],
    actors: &[String],
) -> (
    Vec<Option<newsroom_readmodel::StoryView>>,
    Vec<newsroom_readmodel::FrontPageEntry>,
    Vec<Vec<newsroom_readmodel::ActorEntry>>,
) {
    let mut views_of = Vec::new();
    for id in stories {
        views_of.push(views.story(*id).await.unwrap());
    }
    let mut lists = Vec::new();
    for key in actors {
        lists.push(views.actor(key.clone(), 500).await.unwrap());
    }
    (views_of, views.front_page(100).await.unwrap(), lists)
}

/// With the log in PostgreSQL the views are there too, shared: two projectors (this app's and
/// a second one, as a second projector process runs) apply the same feed to the same tables
/// while reporters and editors write, and the result equals a rebuild of the log into a fresh
/// SQLite file — corrections, retractions, pending and approved developments, actors. A rebuild
/// in PostgreSQL gives the same again, and the desk reads its queue from these tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn views_in_postgres_shared_by_two_projectors_equal_a_rebuild_of_the_log() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let url = db.url.clone();
    let app = Arc::new(spawn_app_with(move |s| s.command.database_url = Some(url)).await);
    assert!(app.views.path().is_none(), "the views follow the log");
    let log = app.app_state.store.clone();

    let dir = tempfile::tempdir().unwrap();
    let second_views = newsroom_projection::ViewStore::beside(&log, &dir.path().join("unused.db"))
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The second keeps one story between batches with windows of newest times as short as can
    // be: it reads stories back from the rows (windows, developments by id) at almost every batch.
    let second = tokio::spawn(
        newsroom_projection::Projector::new(log.clone(), second_views.clone())
            .with_memory(std::num::NonZeroUsize::MIN, 1)
            .run_until_stopped(async {
                let _ = stopped.await;
            }),
    );

    let mut stories = Vec::new();
    for review in [false, true, false, true] {
        stories.push(app.open_story(review).await);
    }
    let mut writers = Vec::new();
    for (n, story) in stories.iter().cloned().enumerate() {
        let app = app.clone();
        writers.push(tokio::spawn(async move {
            let mut filed = Vec::new();
            for i in 0..20 {
                let mut body = development("statement_issued");
                body["headline"] = json!(format!("Story {n} development {i}"));
                if i % 3 == 0 {
                    body["actors"] = json!([format!("Actor {}", i % 4), "Fancy Bear"]);
                }
                app.record(&story, body.clone()).await.ok(201);
                filed.push(body["id"].as_str().unwrap().to_owned());
            }
            (story, filed)
        }));
    }
    let mut filed = Vec::new();
    for w in writers {
        filed.push(w.await.unwrap());
    }
    // Editors act on a story without review and on one with it.
    let (open, open_devs) = &filed[0];
    let (reviewed, reviewed_devs) = &filed[1];
    app.editor_action(
        open,
        &open_devs[0],
        "corrections",
        json!({"note": "A unit, not the group.", "changes": {"actors": ["Unit 26165"]}}),
    )
    .await
    .ok(200);
    app.editor_action(
        open,
        &open_devs[1],
        "retraction",
        json!({"reason": "Withdrawn"}),
    )
    .await
    .ok(200);
    for dev in &reviewed_devs[..5] {
        app.editor_action(reviewed, dev, "approval", json!({}))
            .await
            .ok(200);
    }
    app.editor_action(
        reviewed,
        &reviewed_devs[5],
        "rejection",
        json!({"reason": "No source"}),
    )
    .await
    .ok(200);

    let head = app.head().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.views.position().await.unwrap() < head {
        assert!(
            std::time::Instant::now() < deadline,
            "the views never reached {head}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    second.await.unwrap().unwrap();

    let rebuilt = newsroom_projection::ViewStore::open(&dir.path().join("rebuilt.db")).unwrap();
    let report = newsroom_projection::rebuild(&log, &rebuilt, &[], None)
        .await
        .unwrap();
    assert_eq!(report.position, head);
    let ids: Vec<uuid::Uuid> = stories.iter().map(|s| s.parse().unwrap()).collect();
    let mut actors: Vec<String> = Vec::new();
    for id in &ids {
        for d in rebuilt.story(*id).await.unwrap().unwrap().developments {
            actors.extend(d.actors.iter().map(|a| a.key().to_owned()));
        }
    }
    actors.sort();
    actors.dedup();
    assert!(actors.len() >= 6, "{actors:?}");
    let expected = everything_in(&rebuilt, &ids, &actors).await;
    assert_eq!(expected.0.iter().flatten().count(), 4);
    assert_eq!(
        expected.0[0].as_ref().unwrap().developments.len(),
        20,
        "every development of the first story"
    );
    assert_eq!(everything_in(&app.views, &ids, &actors).await, expected);
    assert_eq!(everything_in(&second_views, &ids, &actors).await, expected);

    // The desk's review queue comes from the same tables: pending developments of the
    // reviewed stories, not the approved or rejected ones.
    let session = app.desk_sign_in(&app.editor).await;
    let page = app.desk_get(Some(&session), "/desk/review").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Story 1 development 19"), "{html}");
    assert!(html.contains("Story 3 development 0"), "{html}");
    assert!(!html.contains("Story 1 development 4"), "approved: {html}");
    assert!(!html.contains("Story 1 development 5"), "rejected: {html}");
    // ...and the reporter's desk lists the rejected one, from the same tables.
    let reporter = app.desk_sign_in(&app.reporter).await;
    let home = app.desk_get(Some(&reporter), "/desk").await;
    assert_eq!(home.status(), 200);
    let home = home.text().await.unwrap();
    assert!(home.contains("Your rejected filings"), "{home}");
    assert!(home.contains("Story 1 development 5"), "{home}");

    // A rebuild in PostgreSQL replaces the rows in one transaction and gives the same views.
    let report = newsroom_projection::rebuild(&log, &app.views, &[], None)
        .await
        .unwrap();
    assert_eq!(report.position, head);
    assert_eq!(app.views.position().await.unwrap(), head);
    assert_eq!(everything_in(&app.views, &ids, &actors).await, expected);
    // ...and so does one holding next to nothing in memory (every development let go of after
    // each small page and read back from the transaction's rows when a later event changes it),
    // of all views and of the actors view alone (its developments in a scratch table).
    let squeeze = newsroom_projection::rebuild::RebuildLimits {
        page_events: 3,
        held_bytes: 0,
        rows_per_write: 2,
    };
    for only in [&[][..], &[newsroom_projection::ViewName::Actors][..]] {
        let report =
            newsroom_projection::rebuild::rebuild_within(&log, &app.views, only, None, squeeze)
                .await
                .unwrap();
        assert_eq!(report.position, head);
        assert_eq!(
            everything_in(&app.views, &ids, &actors).await,
            expected,
            "{only:?}"
        );
    }
    // Views already of the code's shape are not rebuilt again on start.
    assert!(newsroom_projection::rebuild_outdated(&log, &app.views)
        .await
        .unwrap()
        .is_none());
}

/// The statements the notifier writes once run on PostgreSQL through `newsroom_log::sql`: typed NULLs,
/// booleans stored as integers, `?N` reused, `ON CONFLICT DO NOTHING RETURNING` answering no row,
/// and columns of the types PostgreSQL gives back (BIGINT, INTEGER, BOOLEAN, BYTEA, TEXT). Write
/// transactions of several handles take turns on the advisory lock, so identity sequences come in
/// commit order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_statements_run_on_postgres_and_writes_take_turns() {
    use newsroom_log::args;
    use newsroom_log::sql::{OptionalRow, SqlDb};
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    sqlx::query(
        "CREATE TABLE t (seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            name TEXT UNIQUE, n BIGINT, blob BYTEA)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let store = SqlDb::Postgres {
        pool: pool.clone(),
        lock: 42,
    };
    let none: Option<&str> = None;
    let (first, again, absent) = store
        .write(false, move |tx| {
            let first: i64 = tx.query_row(
                "INSERT INTO t (name, n, blob) VALUES (?1, ?2, ?3) RETURNING seq",
                args!["a", true, vec![1u8, 2, 3]],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO t (name, n) VALUES (?1, ?2)",
                args![none, None::<i64>],
            )?;
            let again: Option<i64> = tx
                .query_row(
                    "INSERT INTO t (name) VALUES (?1) ON CONFLICT DO NOTHING RETURNING seq",
                    args!["a"],
                    |r| r.get(0),
                )
                .optional()?;
            let absent: Option<String> = tx
                .query_row("SELECT name FROM t WHERE name = ?1", args!["zzz"], |r| {
                    r.get(0)
                })
                .optional()?;
            Ok::<_, newsroom_log::DbError>((first, again, absent))
        })
        .await
        .unwrap();
    assert_eq!((again, absent), (None, None));
    let row = store
        .read(move |c| {
            c.query_row(
                "SELECT n, blob, n::INTEGER, n = 1, name, ?1 || name FROM t WHERE seq = ?2 AND name = ?3",
                args!["x-", first, "a"],
                |r| {
                    Ok((
                        r.get::<bool>(0)?,
                        r.get::<Vec<u8>>(1)?,
                        r.get::<u32>(2)?,
                        r.get::<bool>(3)?,
                        r.get::<String>(4)?,
                        r.get::<String>(5)?,
                    ))
                },
            )
        })
        .await
        .unwrap();
    assert_eq!(
        row,
        (
            true,
            vec![1, 2, 3],
            1,
            true,
            "a".to_owned(),
            "x-a".to_owned()
        )
    );

    // (The insert that did nothing still took a sequence value: one row closes that gap.)
    sqlx::query("INSERT INTO t (name) VALUES ('b')")
        .execute(&pool)
        .await
        .unwrap();
    // Writers on separate handles: each transaction reads the largest sequence committed before
    // it, then inserts a row. Under the lock no other transaction holds a sequence meanwhile, so
    // each row's is exactly the next one: sequences are handed out, and committed, in order.
    let mut writers = Vec::new();
    for w in 0..8 {
        let store = SqlDb::Postgres {
            pool: pool.clone(),
            lock: 42,
        };
        writers.push(tokio::spawn(async move {
            for i in 0..20 {
                store
                    .write(true, move |tx| {
                        let before: i64 =
                            tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM t", args![], |r| {
                                r.get(0)
                            })?;
                        let seq: i64 = tx.query_row(
                            "INSERT INTO t (name) VALUES (?1) RETURNING seq",
                            args![format!("w{w}-{i}")],
                            |r| r.get(0),
                        )?;
                        assert_eq!(seq, before + 1, "a sequence taken by an uncommitted row");
                        Ok::<_, newsroom_log::DbError>(())
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 3 + 8 * 20);
}

/// What `ownership` owns now, as a set.
fn owned(ownership: &newsroom_notifier::partitions::Ownership) -> HashSet<u32> {
    ownership.current().iter().copied().collect()
}

/// Waits until the copies' partitions are disjoint, cover all 64 and have the sizes `sizes`
/// (in any order).
async fn wait_for_shares(copies: &[&newsroom_notifier::partitions::Ownership], sizes: &[usize]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let sets: Vec<HashSet<u32>> = copies.iter().map(|o| owned(o)).collect();
        let mut got: Vec<usize> = sets.iter().map(HashSet::len).collect();
        got.sort_unstable();
        let mut want = sizes.to_vec();
        want.sort_unstable();
        let union: HashSet<u32> = sets.iter().flatten().copied().collect();
        let total: usize = sets.iter().map(HashSet::len).sum();
        if got == want && union.len() == 64 && total == 64 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "shares {got:?} (want {want:?}), {} partitions covered, {total} held",
            union.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Notifier copies split the 64 partitions evenly between them through advisory session locks:
/// each copy that joins gets its share, nobody holds a partition another holds, and the
/// partitions of a copy that dies (its session cut, nothing handed back) are taken over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifier_copies_lease_even_shares_of_the_partitions_and_take_over_a_dead_copy_s() {
    use newsroom_notifier::partitions::Leases;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let every = std::time::Duration::from_millis(50);
    let copy = |name: &'static str| {
        let url = db.url.clone();
        async move {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            let (leases, ownership) = Leases::new(pool, every);
            let task = tokio::spawn(async move {
                leases
                    .run_until_stopped(std::future::pending::<()>())
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
            });
            (task, ownership)
        }
    };
    let (_a, a) = copy("a").await;
    wait_for_shares(&[&a], &[64]).await;
    let (_b, b) = copy("b").await;
    wait_for_shares(&[&a, &b], &[32, 32]).await;
    let (c_task, c) = copy("c").await;
    wait_for_shares(&[&a, &b, &c], &[22, 22, 20]).await;
    let of_c = owned(&c);
    // The third copy dies: its task and its connection are gone, nothing is let go of.
    c_task.abort();
    let _ = c_task.await;
    wait_for_shares(&[&a, &b], &[32, 32]).await;
    let taken: HashSet<u32> = owned(&a).union(&owned(&b)).copied().collect();
    assert!(of_c.is_subset(&taken));
}

/// Copies queue alerts side by side (the matcher's transactions only share a lock), so an
/// alert's `seq` may be taken early and committed late. A reader that follows alerts by `seq`
/// up to `alert_horizon` — as alert streams and the alert list do — still sees every alert,
/// each once, in `seq` order; one that followed up to the newest committed `seq` would skip
/// those that committed late.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_following_alerts_below_the_horizon_skips_none_that_commit_late() {
    use newsroom_log::args;
    use newsroom_notifier::store::alert_horizon;
    use newsroom_notifier::NotifierStore;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let store = NotifierStore::open_postgres(pool).await.unwrap();
    const WRITERS: usize = 6;
    const EACH: usize = 15;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..EACH {
                store
                    .write_alerts(move |tx| {
                        tx.execute(
                            "INSERT INTO alerts (id, subscriber_id, position, story_id, type,
                                payload, mode, created_at)
                             VALUES (?1, ?2, ?3, 's', 'story.update', '{}', 'immediate', 'now')",
                            args![format!("msg_{w}_{i}"), format!("sub-{w}"), i as i64],
                        )?;
                        // Commit late, while other writers take and commit later `seq`s.
                        std::thread::sleep(std::time::Duration::from_millis(
                            ((w * 7 + i * 13) % 25) as u64,
                        ));
                        Ok(())
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    // Follow while they write, and once more after the last has committed.
    let mut seen: Vec<i64> = Vec::new();
    let mut last = 0;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let page: Vec<i64> =
            store
                .read(move |c| {
                    let horizon = alert_horizon(c)?;
                    Ok(c.statement(
                        "SELECT seq FROM alerts WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
                    )?
                    .query_map(args![last, horizon], |r| r.get(0))?
                    .collect::<Result<_, _>>()?)
                })
                .await
                .unwrap();
        if let Some(newest) = page.last() {
            last = *newest;
        }
        seen.extend(page);
        if done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    for w in writers {
        w.await.unwrap();
    }
    let all: Vec<i64> = store
        .read(|c| {
            Ok(c.statement("SELECT seq FROM alerts ORDER BY seq")?
                .query_map(args![], |r| r.get(0))?
                .collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(all.len(), WRITERS * EACH);
    assert_eq!(seen, all, "every alert seen once, in order");
}

/// On PostgreSQL the matcher writes a batch's alerts and deliveries by a constant number of
/// statements (arrays, `unnest`): a development alerting 200 subscribers costs the same round
/// trips as one alerting 5 — not, as one statement per row would, forty times as many.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn matching_costs_the_same_statements_for_two_hundred_recipients_as_for_five() {
    use newsroom_notifier::matcher::Matcher;
    use newsroom_notifier::partitions::Leases;
    use newsroom_notifier::queue::Links;
    use newsroom_notifier::{NotifierStore, SystemClock};
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = PgStore::connect(&db.url).await.unwrap();
    let pool = store.pool().clone();
    let log: EventLog = store.into();
    let service = CommandService::new(log.clone(), ServiceOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let views = newsroom_projection::ViewStore::beside(&log, &dir.path().join("views.db"))
        .await
        .unwrap();
    let mut projector = newsroom_projection::Projector::new(log.clone(), views.clone());
    let queue = NotifierStore::open_postgres(pool.clone()).await.unwrap();
    let (leases, ownership) = Leases::new(pool.clone(), std::time::Duration::from_millis(50));
    tokio::spawn(leases.run_until_stopped(std::future::pending::<()>()));
    while ownership.current().len() < 64 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut matcher = Matcher::new(
        log.clone(),
        queue.clone(),
        Arc::new(newsroom::NotifierViews {
            log: log.clone(),
            views: views.clone(),
        }),
        Arc::new(SystemClock),
        Links {
            base: "https://newsroom.test".into(),
        },
    )
    .partitioned(ownership);
    let mut stories = Vec::new();
    for n in 0..3 {
        let id = StoryId::new();
        service
            .execute(id, &reporter(), open_command(id, &format!("pg-batch-{n}")))
            .await
            .unwrap();
        stories.push(id);
    }
    let (quiet, a, b) = (stories[0], stories[1], stories[2]);
    let mut costs = Vec::new();
    for (followers, story) in [(5usize, a), (200, b)] {
        for i in 0..followers {
            let id = format!("sub-{story}-{i}");
            let mut tx = pool.begin().await.unwrap();
            for (sql, binds) in [
                (
                    "INSERT INTO subscribers (id, name, token_hash, unsubscribe_token, created_at)
                     VALUES ($1, 'Reader', $2::bytea, $3, '2026-01-01T00:00:00.000000Z')",
                    vec![
                        id.clone(),
                        format!("\\x{:064x}", i + followers * 1000),
                        format!("u-{id}"),
                    ],
                ),
                (
                    "INSERT INTO endpoints (id, subscriber_id, kind, target, secret, created_at)
                     VALUES ($1, $2, 'webhook', 'https://receiver.test/hook',
                        'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD', '2026-01-01T00:00:00.000000Z')",
                    vec![format!("ep-{id}"), id.clone()],
                ),
                (
                    "INSERT INTO subscriptions (id, subscriber_id, story_id, min_urgency, delivery,
                        created_at)
                     VALUES ($1, $2, $3, 'routine', 'immediate', '2026-01-01T00:00:00.000000Z')",
                    vec![format!("s-{id}"), id.clone(), story.to_string()],
                ),
                (
                    "INSERT INTO subscription_changes (subscription_id, subscriber_id)
                     VALUES ($1, $2)",
                    vec![format!("s-{id}"), id.clone()],
                ),
            ] {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(b);
                }
                q.execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
        // A development nobody follows: the matcher's index takes in the new subscriptions.
        service.execute(quiet, &reporter(), filing()).await.unwrap();
        projector.catch_up().await.unwrap();
        matcher.catch_up().await.unwrap();
        // The one measured: a development every new subscriber follows.
        service.execute(story, &reporter(), filing()).await.unwrap();
        projector.catch_up().await.unwrap();
        let before = queue.statements();
        assert_eq!(matcher.step().await.unwrap(), 1);
        costs.push(queue.statements() - before);
        let (alerts, deliveries): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM alerts WHERE story_id = $1),
                    (SELECT count(*) FROM deliveries WHERE story_id = $1)",
        )
        .bind(story.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!((alerts, deliveries), (followers as i64, followers as i64));
    }
    eprintln!("statements per batch: {costs:?}");
    assert_eq!(
        costs[0], costs[1],
        "statements for 5 and for 200 recipients"
    );
    assert!(costs[0] <= 12, "{} statements for one batch", costs[0]);
}
