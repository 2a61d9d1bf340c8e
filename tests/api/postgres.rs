//! The PostgreSQL event log against the machine's real server (`NEWSROOM_TEST_DATABASE_URL`),
//! each test in a database of its own.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use newsroom_command::http::{OpenStoryRequest, RecordDevelopmentRequest};
use newsroom_command::{CommandService, EventLog, PgStore, Principal, ServiceOptions};
use newsroom_domain::{Role, StoryId};
use newsroom_tests::*;
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
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let url = db.url.clone();
    let app = spawn_app_with(move |s| s.command.database_url = Some(url)).await;
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
    let body = app
        .call(
            Method::GET,
            &format!("/v1/stories/{story}?min_position={p}"),
            None,
            None,
        )
        .await;
    assert_eq!(body.ok(200)["timeline"].as_array().unwrap().len(), 1);
    let feed = app.feed().await;
    let positions: HashSet<i64> = feed
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, HashSet::from([1, 2]));
    // JSONB reorders keys; the hash chain is over canonical JSON and still verifies.
    let report = newsroom_command::chain::verify_log(&app.app_state.store)
        .await
        .unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let health = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.ok(200)["head_position"], 2);
    // Tokens live in PostgreSQL too: a revoked one stops working.
    let issued = app.create_token("reporter", "Temp").await;
    app.call(
        Method::DELETE,
        &format!("/v1/tokens/{}", issued.id),
        Some(&app.admin),
        None,
    )
    .await
    .ok(204);
    app.open_story_as(&issued.token, json!({"slug": "nope", "headline": "No"}))
        .await
        .problem(401);
}
