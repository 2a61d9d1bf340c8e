//! Events stored in an older payload shape (written before a schema change) are read in the
//! current shape by the stores (loading the aggregate) and by the projection and notifier
//! (decoding the feed). The rows are inserted as an older newsroom wrote them: version 1 of
//! `StoryClosed`/`StoryReopened` was the bare JSON string, today's version 2 is an object.

use cqrs_es::persist::SerializedEvent;
use newsroom_log::chain::{event_hash, HASH_KEY};
use newsroom_log::verify::verify_log;
use newsroom_log::{EventLog, PgStore, SqliteOptions, SqliteStore};
use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

const STORY: &str = "0194b7a4-0000-7000-8000-000000000001";
const DEVELOPMENT: &str = "0194b7a4-0000-7000-8000-0000000000d1";

/// A story's history as version-1 rows: opened, a development published, closed, reopened,
/// closed again. Each row carries the chain hash an older newsroom gave it.
fn old_history() -> Vec<SerializedEvent> {
    let events: Vec<(&str, Value)> = vec![
        (
            "StoryOpened",
            json!({"StoryOpened": {"id": STORY, "slug": "old-shape", "headline": "Written long ago",
                "summary": "", "tags": ["archive"], "review_required": false}}),
        ),
        (
            "DevelopmentRecorded",
            json!({"DevelopmentRecorded": {"development": {"id": DEVELOPMENT, "kind": "hack_reported",
                "headline": "Campaign A says its email was breached", "body": "",
                "occurred_at": "2025-03-01T09:30:00Z", "recorded_at": "2025-03-01T10:00:00.000001Z",
                "actors": [{"name": "Campaign A", "key": "campaign a"}], "evidence": "none_provided",
                "urgency": "routine"}, "status": "published", "fingerprint": "00112233445566778899aabbccddeeff"}}),
        ),
        ("StoryClosed", json!("StoryClosed")),
        ("StoryReopened", json!("StoryReopened")),
        ("StoryClosed", json!("StoryClosed")),
    ];
    let mut previous = String::new();
    events
        .into_iter()
        .enumerate()
        .map(|(i, (event_type, payload))| {
            let sequence = i + 1;
            let mut metadata = json!({"author_id": "old", "author_name": "Old Editor",
                "author_role": "editor", "recorded_at": format!("2025-03-0{sequence}T10:00:00.000001Z")});
            let hash = event_hash(&previous, STORY, sequence, event_type, "1", &payload, &metadata);
            metadata[HASH_KEY] = json!(hash);
            previous = hash;
            SerializedEvent::new(
                STORY.into(),
                sequence,
                "story".into(),
                event_type.into(),
                "1".into(),
                payload,
                metadata,
            )
        })
        .collect()
}

async fn old_rows_are_read_in_the_current_shape(app: TestApp) {
    // The views see the upcast form: the story is closed, its development published.
    let story = app
        .call(
            Method::GET,
            &format!("/v1/stories/{STORY}?min_position=5"),
            None,
            None,
        )
        .await;
    let body = story.ok(200);
    assert_eq!(body["status"], "closed", "{body:#}");
    assert_eq!(body["timeline"].as_array().unwrap().len(), 1, "{body:#}");

    // So does the aggregate, loaded through the store: closed, so a filing is refused...
    app.record(STORY, development("update")).await.problem(409);
    // ...and an editor can reopen it, continuing the sequence after the old rows.
    let reopened = app
        .story_action(&app.editor, STORY, "reopen", Some(json!({})))
        .await;
    assert_eq!(reopened.ok(200)["sequence"], 6, "{reopened:#?}");
    app.record(STORY, development("update")).await.ok(201);

    // The log itself is never rewritten: old rows keep their shape, new ones have today's.
    let events = app.story_events(STORY).await;
    assert_eq!(events[2]["event_version"], "1");
    assert_eq!(events[2]["payload"], json!("StoryClosed"));
    assert_eq!(events[5]["event_version"], "2");
    assert_eq!(events[5]["payload"], json!({"StoryReopened": {}}));
    let report = verify_log(&app.app_state.store).await.unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);

    let p = events.len() as i64;
    let page = app.read_story_at(STORY, p).await;
    assert_eq!(page.ok(200)["status"], "open");
}

#[tokio::test]
async fn version_1_events_in_sqlite_are_read_in_the_current_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let log = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    log.append(old_history(), None).await.unwrap();
    drop(log);
    let app = spawn_app_with(|s| s.command.database_path = path).await;
    old_rows_are_read_in_the_current_shape(app).await;
}

#[tokio::test]
async fn version_1_events_in_postgres_are_read_in_the_current_shape() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let log: EventLog = PgStore::connect(&db.url).await.unwrap().into();
    log.append(old_history(), None).await.unwrap();
    let url = db.url.clone();
    let app = spawn_app_with(move |s| s.command.database_url = Some(url)).await;
    old_rows_are_read_in_the_current_shape(app).await;
}
