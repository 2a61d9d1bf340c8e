//! Export and import: a log moved SQLite → PostgreSQL → SQLite keeps every position, sequence,
//! metadata and hash, so the reader views built from the imported log are the same, byte for
//! byte, and `verify` finds nothing. An import goes only into an empty store, and refuses a file
//! changed after export without writing anything.

use std::io::Cursor;

use newsroom_log::transfer::TransferError;
use newsroom_log::verify::verify_log;
use newsroom_log::{EventLog, PgStore, SqliteOptions, SqliteStore};
use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Fills a newsroom with every kind of event: corrections, retractions, responses (claims),
/// review, rejections, revisions, closing and reopening.
async fn newsroom_with_history(app: &TestApp) -> Vec<(String, String)> {
    let mut stories = Vec::new();
    for (slug, review) in [("moved-story-one", false), ("moved-story-two", true)] {
        let answer = app
            .open_story_as(
                &app.reporter,
                json!({"slug": slug, "headline": format!("Headline of {slug}"),
                       "summary": "Followed across stores.", "tags": ["cyber"], "review_required": review}),
            )
            .await;
        stories.push((
            answer.ok(201)["id"].as_str().unwrap().to_owned(),
            slug.to_owned(),
        ));
    }
    let (one, two) = (&stories[0].0, &stories[1].0);
    let claim = development("attribution_claimed");
    let claim_id = claim["id"].as_str().unwrap().to_owned();
    app.record(one, claim).await.ok(201);
    let mut denial = development("denial_issued");
    denial["actors"] = json!(["Fancy Bear"]);
    denial["responds_to"] = json!({"development": claim_id, "stance": "denies"});
    app.record(one, denial).await.ok(201);
    let wrong = development("hack_reported");
    let wrong_id = wrong["id"].as_str().unwrap().to_owned();
    app.record(one, wrong).await.ok(201);
    app.editor_action(
        one,
        &claim_id,
        "corrections",
        json!({"note": "The date was wrong.", "changes": {"occurred_at": "2026-09-30T08:00:00Z"}}),
    )
    .await
    .ok(200);
    app.editor_action(
        one,
        &wrong_id,
        "retraction",
        json!({"reason": "Not confirmed."}),
    )
    .await
    .ok(200);
    app.call(
        Method::PATCH,
        &format!("/v1/stories/{one}"),
        Some(&app.editor),
        Some(json!({"headline": "Campaign hack: the attribution", "tags": ["cyber", "elections"]})),
    )
    .await
    .ok(200);

    let pending = app.record(two, development("charges_filed")).await;
    let approved_id = pending.ok(201)["id"].as_str().unwrap().to_owned();
    let rejected = app.record(two, development("arrest_made")).await;
    let rejected_id = rejected.ok(201)["id"].as_str().unwrap().to_owned();
    app.editor_action(two, &approved_id, "approval", json!({}))
        .await
        .ok(200);
    app.editor_action(
        two,
        &rejected_id,
        "rejection",
        json!({"reason": "Unsourced."}),
    )
    .await
    .ok(200);
    for action in ["close", "reopen", "close"] {
        app.call(
            Method::POST,
            &format!("/v1/stories/{two}/{action}"),
            Some(&app.editor),
            None,
        )
        .await
        .ok(200);
    }
    stories
}

/// What readers get from a newsroom: the raw bodies of its pages, JSON views and feeds, with
/// the server's own address (which differs between servers) taken out.
async fn reader_views(
    app: &TestApp,
    stories: &[(String, String)],
    head: i64,
) -> Vec<(String, String)> {
    // Wait for the views to reach the head.
    app.call(
        Method::GET,
        &format!("/v1/stories/{}?min_position={head}", stories[0].0),
        None,
        None,
    )
    .await
    .ok(200);
    let mut paths = vec!["/".to_owned(), "/v1/stories".to_owned()];
    for (id, slug) in stories {
        for suffix in ["", "/claims", "/feed.atom", "/feed.json", "/ninjs"] {
            paths.push(format!("/v1/stories/{id}{suffix}"));
        }
        paths.push(format!("/stories/{slug}"));
        paths.push(format!("/stories/{slug}/fragment"));
    }
    for actor in ["Campaign%20A", "Fancy%20Bear"] {
        paths.push(format!("/v1/actors/{actor}"));
        paths.push(format!("/v1/actors/{actor}/feed.atom"));
        paths.push(format!("/v1/actors/{actor}/feed.json"));
        paths.push(format!("/actors/{actor}"));
    }
    let mut bodies = Vec::new();
    for path in paths {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        let body = response
            .text()
            .await
            .unwrap()
            .replace(&app.address, "<server>");
        bodies.push((path, body));
    }
    bodies
}

async fn export_of(log: &EventLog) -> Vec<u8> {
    let mut out = Vec::new();
    log.export(&mut out).await.unwrap();
    out
}

fn lines(export: &[u8]) -> Vec<Value> {
    std::str::from_utf8(export)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn assert_same_views(before: &[(String, String)], after: &[(String, String)], store: &str) {
    assert_eq!(before.len(), after.len());
    for ((path, a), (_, b)) in before.iter().zip(after) {
        assert!(
            a == b,
            "GET {path} differs after the move to {store}:\n{a}\n---\n{b}"
        );
    }
}

/// Editors' commands on a moved log are decided from the index of developments the import
/// filled: what was retracted or rejected before the move stays so (an index left empty would
/// answer 404, the development unknown).
async fn the_moved_log_knows_its_developments(app: &TestApp, log: &[Value]) {
    for (event, action, body) in [
        (
            "DevelopmentRetracted",
            "retraction",
            json!({"reason": "Again."}),
        ),
        ("DevelopmentRejected", "approval", json!({})),
    ] {
        let e = log.iter().find(|e| e["event_type"] == event).unwrap();
        let story = e["aggregate_id"].as_str().unwrap();
        let development = e["payload"][event]["development"].as_str().unwrap();
        app.editor_action(story, development, action, body)
            .await
            .problem(409);
    }
}

#[tokio::test]
async fn a_log_moved_from_sqlite_to_postgres_and_back_serves_the_same_views() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let original = spawn_app().await;
    let stories = newsroom_with_history(&original).await;
    let head = original.app_state.store.current_head().await.unwrap();
    let views = reader_views(&original, &stories, head).await;
    let exported = export_of(&original.app_state.store).await;
    let exported_lines = lines(&exported);
    assert_eq!(exported_lines.len() as i64, head);
    assert!(exported_lines[0]["metadata"]["hash"].is_string());
    assert_eq!(exported_lines[0]["position"], 1);

    // SQLite → PostgreSQL.
    let pg: EventLog = PgStore::connect(&db.url).await.unwrap().into();
    let summary = pg.import(Cursor::new(exported.clone())).await.unwrap();
    assert_eq!(
        (summary.events as i64, summary.stories, summary.head),
        (head, 2, head)
    );
    // A second import is refused: the store is no longer empty.
    let again = pg.import(Cursor::new(exported.clone())).await;
    assert!(
        matches!(again, Err(TransferError::NotEmpty { .. })),
        "{again:?}"
    );
    let url = db.url.clone();
    let on_postgres = spawn_app_with(move |s| s.command.database_url = Some(url)).await;
    assert_same_views(
        &views,
        &reader_views(&on_postgres, &stories, head).await,
        "PostgreSQL",
    );
    let report = verify_log(&on_postgres.app_state.store).await.unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    the_moved_log_knows_its_developments(&on_postgres, &exported_lines).await;
    let from_postgres = export_of(&on_postgres.app_state.store).await;
    assert_eq!(
        lines(&from_postgres),
        exported_lines,
        "the same log, line by line"
    );

    // PostgreSQL → SQLite.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moved-back.db");
    let sqlite: EventLog = SqliteStore::open(&path, SqliteOptions::default())
        .unwrap()
        .into();
    sqlite.import(Cursor::new(from_postgres)).await.unwrap();
    drop(sqlite);
    let back = spawn_app_with(|s| s.command.database_path = path).await;
    assert_same_views(
        &views,
        &reader_views(&back, &stories, head).await,
        "SQLite again",
    );
    let report = verify_log(&back.app_state.store).await.unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(
        export_of(&back.app_state.store).await,
        exported,
        "back on SQLite, the export is the original byte for byte"
    );

    the_moved_log_knows_its_developments(&back, &exported_lines).await;
    // The moved newsroom carries on where the log ends.
    let next = back.record(&stories[0].0, development("update")).await;
    assert_eq!(next.ok(201)["position"], head + 1);
}

#[tokio::test]
async fn an_import_refuses_an_edited_file_or_a_gap_and_writes_nothing() {
    let original = spawn_app().await;
    let story = original.open_story(false).await;
    for _ in 0..3 {
        original.record(&story, development("update")).await.ok(201);
    }
    let exported = String::from_utf8(export_of(&original.app_state.store).await).unwrap();
    let cases = [
        (
            "an edited headline",
            exported.replacen("Campaign A says", "Nobody says", 1),
            "does not match its hash",
        ),
        (
            "a missing line",
            exported
                .lines()
                .enumerate()
                .filter(|(i, _)| *i != 2)
                .map(|(_, l)| format!("{l}\n"))
                .collect(),
            "position 4 where 3 was expected",
        ),
        (
            "not JSON",
            format!("{exported}{{oops\n"),
            "line 5 is not an exported event",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let sqlite: EventLog = SqliteStore::open(&dir.path().join("n.db"), SqliteOptions::default())
        .unwrap()
        .into();
    let mut logs = vec![("SQLite", sqlite)];
    // The same on PostgreSQL, when there is one to test against.
    let db = TestDatabase::create().await;
    if let Some(db) = &db {
        logs.push((
            "PostgreSQL",
            PgStore::connect(&db.url).await.unwrap().into(),
        ));
    }
    for (store, log) in &logs {
        for (what, file, expected) in &cases {
            let err = log
                .import(Cursor::new(file.clone().into_bytes()))
                .await
                .expect_err(what)
                .to_string();
            assert!(err.contains(expected), "{store}, {what}: {err}");
            assert!(
                log.read_feed(0, 10).await.unwrap().is_empty(),
                "{store}, {what}: nothing written"
            );
        }
        // Nor anything derived from the lines before the bad one (a slug claimed, a development
        // indexed, a story's head): the file as exported goes into the same store.
        let summary = log
            .import(Cursor::new(exported.clone().into_bytes()))
            .await
            .unwrap();
        assert_eq!((summary.events, summary.stories), (4, 1), "{store}");
    }
}
