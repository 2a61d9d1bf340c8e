use newsroom_command::chain::verify_log;
use newsroom_tests::*;
use serde_json::json;

#[tokio::test]
async fn a_row_changed_behind_newsrooms_back_breaks_its_storys_chain() {
    let app = spawn_app().await;
    let story = app.open_story(false).await;
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
