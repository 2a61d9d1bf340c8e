//! `newsroom serve --role …`: one PostgreSQL log shared by a command process, a projector process
//! and a notifier process, each serving only its part.

use std::time::Duration;

use newsroom::Role;
use newsroom_tests::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn command_projector_and_notifier_processes_share_one_postgres_log() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let on = |role: Role| {
        let url = db.url.clone();
        move |s: &mut newsroom::NewsroomSettings| {
            s.command.database_url = Some(url);
            s.role = role;
        }
    };
    let command = spawn_app_with(on(Role::Command)).await;
    let projector = spawn_app_with(on(Role::Projector)).await;
    let notifier = spawn_app_with(on(Role::Notifier)).await;

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
    notifier
        .call(
            Method::POST,
            &format!("/v1/subscribers/{}/subscriptions", reader.id),
            Some(&reader.token),
            Some(json!({"story": story})),
        )
        .await
        .ok(201);

    // ... a reporter records through the command process ...
    let recorded = command.record(&story, development("hack_reported")).await;
    let position = recorded.ok(201)["position"].as_i64().unwrap();

    // ... the projector process shows it (read-your-writes by position) ...
    let view = projector
        .call(
            Method::GET,
            &format!("/v1/stories/{story}?min_position={position}"),
            None,
            None,
        )
        .await;
    assert_eq!(view.ok(200)["timeline"].as_array().unwrap().len(), 1);

    // ... and the notifier process alerts the reader.
    let mut alerts = Vec::new();
    for _ in 0..200 {
        alerts = notifier
            .call(
                Method::GET,
                &format!("/v1/subscribers/{}/alerts", reader.id),
                Some(&reader.token),
                None,
            )
            .await
            .ok(200)
            .as_array()
            .unwrap()
            .clone();
        if !alerts.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["type"], "story.hack_reported");
}
