use newsroom_log::verify::verify_log;
use newsroom_testkit::prelude::*;
use serde_json::json;

#[tokio::test]
async fn a_row_changed_behind_newsrooms_back_breaks_its_storys_chain() {
    let (app, story) = spawn_app_with_story(false).await;
    let other = app.open_story(false).await;
    let mut positions = Vec::new();
    for n in 0..4 {
        let mut d = development("update");
        d["headline"] = json!(format!("Update {n}"));
        positions.push(
            app.record(&story, d).await.ok(201)["position"]
                .as_i64()
                .unwrap(),
        );
    }
    app.record(&other, development("update")).await.ok(201);
    let log = app.app_state.store.clone();
    let intact = verify_log(&log).await.unwrap();
    assert!(intact.findings.is_empty(), "{:#?}", intact.findings);
    assert_eq!(intact.events, 7);
    assert_eq!(intact.stories, 2);

    // Someone rewrites history with SQL.
    let conn = rusqlite::Connection::open(&app.database_path).unwrap();
    let changed = conn
        .execute(
            "UPDATE events SET payload = replace(payload, 'Update 1', 'Nothing happened') WHERE position = ?1",
            [positions[1]],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let report = verify_log(&log).await.unwrap();
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    assert_eq!(report.findings[0].position, positions[1]);
    assert!(report.findings[0].problem.contains("changed"));

    // Deleting an event is found too.
    conn.execute("DELETE FROM events WHERE position = ?1", [positions[2]])
        .unwrap();
    let report = verify_log(&log).await.unwrap();
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.position == positions[3] && f.problem.contains("sequence")),
        "{:#?}",
        report.findings
    );
}

#[tokio::test]
async fn the_chain_continues_across_restarts_and_cold_loads() {
    let app = spawn_app_with(|s| {
        s.command.snapshot_every = 3;
        s.command.aggregate_cache = 1;
    })
    .await;
    let a = app.open_story(false).await;
    let b = app.open_story(false).await;
    // A cache of one story: every switch reloads the other from snapshot and log.
    for _ in 0..5 {
        app.record(&a, development("update")).await.ok(201);
        app.record(&b, development("update")).await.ok(201);
    }
    let report = verify_log(&app.app_state.store).await.unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[tokio::test]
async fn verify_names_each_unreadable_row_by_position_and_checks_the_rest() {
    let (app, story) = spawn_app_with_story(false).await;
    let other = app.open_story(false).await;
    let mut positions = Vec::new();
    for _ in 0..3 {
        positions.push(
            app.record(&story, development("update")).await.ok(201)["position"]
                .as_i64()
                .unwrap(),
        );
    }
    let later = app.record(&other, development("update")).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    let log = app.app_state.store.clone();

    let conn = rusqlite::Connection::open(&app.database_path).unwrap();
    // A NUL in one event's JSON, another event's payload no JSON at all, and a third story's
    // row changed: all three are reported, each by its position.
    conn.execute(
        "UPDATE events SET payload = replace(payload, 'Campaign spokesperson', 'Campaign' || char(0) || 'spokesperson') \
         WHERE position = ?1",
        [positions[0]],
    )
    .unwrap();
    conn.execute(
        "UPDATE events SET payload = '{not json' WHERE position = ?1",
        [positions[2]],
    )
    .unwrap();
    conn.execute(
        "UPDATE events SET metadata = replace(metadata, 'Rita', 'Rota') WHERE position = ?1",
        [later],
    )
    .unwrap();
    let report = verify_log(&log)
        .await
        .expect("verify carries on past bad rows");
    let at = |p: i64| {
        report
            .findings
            .iter()
            .filter(|f| f.position == p)
            .collect::<Vec<_>>()
    };
    assert_eq!(at(positions[0]).len(), 1, "{:#?}", report.findings);
    assert!(
        at(positions[0])[0].problem.contains("cannot be read"),
        "{:#?}",
        report.findings
    );
    assert!(at(positions[2])[0].problem.contains("cannot be read"));
    assert!(
        at(later)[0].problem.contains("changed"),
        "{:#?}",
        report.findings
    );
    // The row between the unreadable ones still checks: one finding per damaged row, no more.
    assert!(at(positions[1]).is_empty(), "{:#?}", report.findings);
    assert_eq!(report.findings.len(), 3, "{:#?}", report.findings);
    assert_eq!(report.events, 6);
    assert_eq!(report.integrity, Some(vec![]), "the file itself is sound");
}

#[tokio::test]
async fn verify_checks_the_database_file_first_and_reports_a_damaged_page() {
    let app = spawn_app_with(|s| s.command.snapshot_every = 1).await;
    let story = app.open_story(false).await;
    for _ in 0..3 {
        app.record(&story, development("update")).await.ok(201);
    }
    let path = app.database_path.clone();
    let dir = app.stop().await;

    // Damage the page that holds the snapshots' table, as a failing disk would.
    let (page_size, root): (i64, i64) = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let size = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let root = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'snapshots'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (size, root)
    };
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start(((root - 1) * page_size) as u64))
            .unwrap();
        file.write_all(&vec![0xA5; page_size as usize]).unwrap();
        file.sync_all().unwrap();
    }

    let store = newsroom_log::SqliteStore::open(&path, Default::default()).unwrap();
    let log = newsroom_log::EventLog::Sqlite(store);
    let report = verify_log(&log).await.expect("verify reports, not fails");
    let damage = report.integrity.clone().expect("SQLite is checked");
    assert!(!damage.is_empty(), "the damaged page was not found");
    // The events themselves are intact and still checked.
    assert_eq!(report.events, 4);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    drop(dir);
}
