use std::collections::HashMap;
use std::sync::Arc;

use newsroom_command::http::RecordDevelopmentRequest;
use newsroom_command::{CommandError, CommandService, Seen, ServiceOptions};
use newsroom_domain::*;
use newsroom_log::{SqliteOptions, SqliteStore};
use newsroom_testkit::commands::*;
use newsroom_testkit::prelude::*;
use serde_json::Value;

/// Checks the feed's promises: positions 1..=n without gaps, each event once, each story's
/// events in sequence order.
fn assert_feed_is_complete_and_ordered(feed: &[Value]) {
    let mut next_sequence: HashMap<String, i64> = HashMap::new();
    for (i, event) in feed.iter().enumerate() {
        assert_eq!(
            event["position"].as_i64().unwrap(),
            i as i64 + 1,
            "positions are gap-free and in order"
        );
        let story = event["story_id"].as_str().unwrap().to_owned();
        let expected = next_sequence.entry(story).or_insert(1);
        assert_eq!(
            event["sequence"].as_i64().unwrap(),
            *expected,
            "each story's events appear in sequence order"
        );
        *expected += 1;
    }
}

#[tokio::test]
async fn concurrent_reporters_produce_a_gap_free_feed_with_every_event_once() {
    let app = Arc::new(spawn_app().await);
    let mut stories = Vec::new();
    for _ in 0..8 {
        stories.push(app.open_story(false).await);
    }
    let mut tasks = Vec::new();
    for writer in 0..32 {
        // Four writers per story: same-story writes race for the story's sequence.
        let story = stories[writer % stories.len()].clone();
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..10 {
                let filing = development("statement_issued");
                app.record(&story, filing.clone()).await.ok(201);
                ids.push(filing["id"].as_str().unwrap().to_owned());
            }
            ids
        }));
    }
    let mut accepted = Vec::new();
    for t in tasks {
        accepted.extend(t.await.unwrap());
    }

    let feed = app.feed().await;
    assert_eq!(feed.len(), 8 + 32 * 10);
    assert_feed_is_complete_and_ordered(&feed);
    let mut recorded: Vec<String> = feed
        .iter()
        .filter_map(|e| e["payload"]["DevelopmentRecorded"]["development"]["id"].as_str())
        .map(str::to_owned)
        .collect();
    recorded.sort();
    accepted.sort();
    assert_eq!(
        recorded, accepted,
        "every accepted development is in the log once"
    );
}

#[tokio::test]
async fn the_feed_pages_by_position_and_validates_its_parameters() {
    let (app, story) = spawn_app_with_story(false).await;
    for _ in 0..5 {
        app.record(&story, development("update")).await.ok(201);
    }
    let page = app
        .call(
            reqwest::Method::GET,
            "/v1/events?after=2&limit=2",
            Some(&app.admin),
            None,
        )
        .await;
    let body = page.ok(200);
    let positions: Vec<i64> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [3, 4]);
    assert_eq!(body["next_after"], 4);
    assert_eq!(body["head"], 6);

    for (query, field) in [
        ("limit=-1", "limit"),
        ("limit=5000", "limit"),
        ("after=abc", "after"),
        ("after=-3", "after"),
        ("offset=3", "offset"),
    ] {
        app.call(
            reqwest::Method::GET,
            &format!("/v1/events?{query}"),
            Some(&app.admin),
            None,
        )
        .await
        .problem_for_field(400, field);
    }
}

#[tokio::test]
async fn the_feed_is_admin_only_and_story_history_is_for_editors() {
    let (app, story) = spawn_app_with_story(false).await;
    for token in [&app.reporter, &app.editor] {
        app.call(reqwest::Method::GET, "/v1/events", Some(token), None)
            .await
            .problem(403);
    }
    app.call(
        reqwest::Method::GET,
        &format!("/v1/stories/{story}/events"),
        Some(&app.reporter),
        None,
    )
    .await
    .problem(403);
}

fn filing() -> StoryCommand {
    StoryCommand::RecordDevelopment(new_development())
}

fn open(id: StoryId) -> StoryCommand {
    open_new_story(id, false)
}

#[tokio::test]
async fn a_writer_with_a_stale_story_loses_the_race_reloads_and_succeeds() {
    // Two services over one store behave like two command processes: each caches the story,
    // so each one's cache goes stale when the other writes.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("n.db"), SqliteOptions::default()).unwrap();
    let a = CommandService::new(store.clone(), ServiceOptions::default());
    let b = CommandService::new(store.clone(), ServiceOptions::default());
    let reporter = principal(Role::Reporter);
    let id = StoryId::new();
    a.execute(id, &reporter, open(id)).await.unwrap();
    let mut expected = 1;
    for round in 0..10 {
        let service = if round % 2 == 0 { &a } else { &b };
        let outcome = service.execute(id, &reporter, filing()).await.unwrap();
        expected += 1;
        assert_eq!(outcome.sequence, expected, "round {round}");
    }
    let feed = store.read_feed(0, 100).await.unwrap();
    assert_eq!(feed.len(), 11);
    assert!(feed.windows(2).all(|w| w[1].sequence == w[0].sequence + 1));
}

fn correction(development: DevelopmentId, headline: &str) -> StoryCommand {
    StoryCommand::CorrectDevelopment {
        development,
        note: Note::parse("note", "Subbed").unwrap(),
        changes: DevelopmentChanges {
            headline: Some(Headline::parse("headline", headline).unwrap()),
            ..Default::default()
        },
    }
}

fn filed_id(command: &StoryCommand) -> DevelopmentId {
    match command {
        StoryCommand::RecordDevelopment(new) => new.id,
        other => panic!("not a filing: {other:?}"),
    }
}

#[tokio::test]
async fn a_command_on_what_was_seen_is_refused_once_another_process_changed_that_development() {
    // Two services over one store behave like two command processes.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("n.db"), SqliteOptions::default()).unwrap();
    let a = CommandService::new(store.clone(), ServiceOptions::default());
    let b = CommandService::new(store.clone(), ServiceOptions::default());
    let editor = principal(Role::Editor);
    let id = StoryId::new();
    a.execute(id, &editor, open(id)).await.unwrap();
    let first = filing();
    let d1 = filed_id(&first);
    a.execute(id, &editor, first).await.unwrap();
    let second = filing();
    let d2 = filed_id(&second);
    let viewed = a.execute(id, &editor, second).await.unwrap().position;

    // Another development changing does not matter (and `a`'s cached story is stale).
    b.execute(id, &editor, correction(d2, "Other news"))
        .await
        .unwrap();
    b.execute(id, &editor, filing()).await.unwrap();
    let seen = Seen {
        development: d1,
        position: viewed,
    };
    let done = a
        .execute_seen(id, &editor, correction(d1, "First edit"), Some(seen))
        .await
        .unwrap();

    // A change to that development since is refused, and records nothing.
    b.execute(id, &editor, correction(d1, "Second edit"))
        .await
        .unwrap();
    let before = store.read_feed(0, 100).await.unwrap().len();
    for seen in [
        Seen {
            development: d1,
            position: done.position,
        },
        Seen {
            development: d1,
            position: viewed,
        },
    ] {
        let refused = a
            .execute_seen(id, &editor, correction(d1, "Lost update"), Some(seen))
            .await;
        assert!(
            matches!(refused, Err(CommandError::Changed { since, .. }) if since == seen.position),
            "{refused:?}"
        );
    }
    // A version that is no event of this story is not taken on trust.
    let other = StoryId::new();
    let elsewhere = a
        .execute(other, &editor, open(other))
        .await
        .unwrap()
        .position;
    for position in [elsewhere, 0, 10_000] {
        let refused = a
            .execute_seen(
                id,
                &editor,
                correction(d1, "Lost update"),
                Some(Seen {
                    development: d1,
                    position,
                }),
            )
            .await;
        assert!(
            matches!(refused, Err(CommandError::Changed { .. })),
            "{position}: {refused:?}"
        );
    }
    assert_eq!(store.read_feed(0, 100).await.unwrap().len(), before + 1);
    // What was seen last still works.
    let latest = store.read_feed(0, 100).await.unwrap();
    let latest = latest
        .iter()
        .rfind(|e| e.story_id == id.to_string())
        .unwrap()
        .position;
    a.execute_seen(
        id,
        &editor,
        correction(d1, "Third edit"),
        Some(Seen {
            development: d1,
            position: latest,
        }),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_story_longer_than_a_snapshot_reloads_exactly_after_a_restart() {
    let app = spawn_app_with(|s| s.command.snapshot_every = 10).await;
    let story = app.open_story(false).await;
    let first = development("hack_reported");
    app.record(&story, first.clone()).await.ok(201);
    for _ in 0..34 {
        app.record(&story, development("update")).await.ok(201);
    }
    let path = app.database_path.clone();
    let dir_guard = app; // keep the temp dir alive while the store is reopened
    let snapshots: i64 = rusqlite_count(&path, "SELECT COUNT(*) FROM snapshots");
    assert_eq!(snapshots, 1, "one snapshot row per story, updated in place");
    let version: i64 = rusqlite_count(&path, "SELECT snapshot_version FROM snapshots");
    assert_eq!(
        version, 3,
        "36 events with a snapshot every 10 make 3 snapshots"
    );

    // A fresh service has nothing cached: it loads the snapshot plus the events after it.
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let service = CommandService::new(
        store.clone(),
        ServiceOptions {
            snapshot_every: 10,
            cache_capacity: 10,
        },
    );
    let story_id = StoryId::parse("id", &story).unwrap();
    // The same filing, parsed the way the API parses it.
    let retry = serde_json::from_value::<RecordDevelopmentRequest>(first.clone())
        .unwrap()
        .parse()
        .unwrap();
    let outcome = service
        .execute(story_id, &principal(Role::Reporter), retry)
        .await
        .unwrap();
    assert!(
        outcome.events.is_empty(),
        "the retry is recognised after reload"
    );
    assert_eq!(
        outcome.sequence, 2,
        "and answered with the original sequence"
    );
    let next = service
        .execute(story_id, &principal(Role::Reporter), filing())
        .await
        .unwrap();
    assert_eq!(next.sequence, 37);
    drop(dir_guard);
}

fn rusqlite_count(path: &std::path::Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn an_unreadable_snapshot_is_replaced_and_never_blocks_its_story() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let options = || ServiceOptions {
        snapshot_every: 5,
        cache_capacity: 10,
    };
    let service = CommandService::new(store.clone(), options());
    let reporter = principal(Role::Reporter);
    let id = StoryId::new();
    service.execute(id, &reporter, open(id)).await.unwrap();
    for _ in 0..6 {
        service.execute(id, &reporter, filing()).await.unwrap();
    }
    // An older version of the code wrote snapshots this one cannot read.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE snapshots SET payload = '{\"old\": \"shape\"}'", [])
        .unwrap();
    let fresh = CommandService::new(store.clone(), options());
    for n in 0..12 {
        let outcome = fresh.execute(id, &reporter, filing()).await;
        assert!(
            outcome.is_ok(),
            "command {n} after the bad snapshot: {outcome:?}"
        );
    }
    let version: i64 = rusqlite_count(&path, "SELECT last_sequence FROM snapshots");
    assert!(
        version >= 15,
        "a readable snapshot replaced the bad one: {version}"
    );
}
