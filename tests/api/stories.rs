use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_reporter_opens_a_story_and_gets_its_id_and_position() {
    let app = spawn_app().await;
    let answer = app
        .open_story_as(
            &app.reporter,
            json!({"slug": "campaign-hack", "headline": "Campaign reports a hack", "tags": ["Elections"]}),
        )
        .await;
    let body = answer.ok(201);
    assert_eq!(body["slug"], "campaign-hack");
    assert_eq!(body["sequence"], 1);
    assert_eq!(body["position"], 1);
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        uuid::Uuid::parse_str(id).unwrap().get_version_num(),
        7,
        "story ids are UUID v7"
    );

    let events = app.story_events(id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_type"], "StoryOpened");
    assert_eq!(
        events[0]["payload"]["StoryOpened"]["tags"],
        json!(["elections"])
    );
    assert_eq!(events[0]["metadata"]["author_name"], "Rita Reporter");
    assert_eq!(events[0]["metadata"]["author_role"], "reporter");
}

#[tokio::test]
async fn a_duplicate_slug_is_a_conflict_and_records_nothing() {
    let app = spawn_app().await;
    let body = json!({"slug": "campaign-hack", "headline": "Campaign reports a hack"});
    app.open_story_as(&app.reporter, body.clone()).await.ok(201);
    let again = app.open_story_as(&app.editor, body).await;
    again.problem_for_field(409, "slug");
    assert_eq!(app.feed().await.len(), 1, "the refused story left no event");
}

#[tokio::test]
async fn story_events_can_be_found_by_slug() {
    let app = spawn_app().await;
    app.open_story_as(
        &app.reporter,
        json!({"slug": "vendor-report", "headline": "Vendor publishes phishing report"}),
    )
    .await
    .ok(201);
    let events = app.story_events("vendor-report").await;
    assert_eq!(events[0]["payload"]["StoryOpened"]["slug"], "vendor-report");
}

#[tokio::test]
async fn revising_a_story_changes_headline_and_tags_in_one_step() {
    let (app, story) = spawn_app_with_story(false).await;
    let path = format!("/v1/stories/{story}");
    let answer = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.editor),
            Some(json!({"headline": "Two campaigns report hacks", "tags": ["cyber", "espionage"]})),
        )
        .await;
    let body = answer.ok(200);
    assert_eq!(body["events"], json!(["HeadlineChanged", "TagsChanged"]));
    assert_eq!(body["sequence"], 3);

    // Nothing new: nothing recorded, and the answer names the current position.
    let again = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.editor),
            Some(json!({"headline": "Two campaigns report hacks"})),
        )
        .await;
    assert_eq!(again.ok(200)["events"], json!([]));
    assert_eq!(again.body["position"], body["position"]);

    let empty = app
        .call(Method::PATCH, &path, Some(&app.editor), Some(json!({})))
        .await;
    empty.problem(422);
}

#[tokio::test]
async fn only_editors_and_admins_revise_a_story_and_never_a_closed_one() {
    let app = spawn_app().await;
    let revise = |story: &str, token: &str, headline: &str| {
        let path = format!("/v1/stories/{story}");
        let body = json!({"headline": headline, "tags": ["cyber"]});
        let token = token.to_owned();
        let app = &app;
        async move {
            app.call(Method::PATCH, &path, Some(&token), Some(body))
                .await
        }
    };
    for review_required in [false, true] {
        // A story an editor opened, and one the reporter opened themselves.
        let mut opened = Vec::new();
        for (who, token) in [("editor", &app.editor), ("reporter", &app.reporter)] {
            let id = app
                .open_story_as(
                    token,
                    json!({"slug": format!("opened-by-{who}-{review_required}"),
                        "headline": "Campaign reports a hack", "review_required": review_required}),
                )
                .await
                .ok(201)["id"]
                .as_str()
                .unwrap()
                .to_owned();
            opened.push(id);
        }
        let (by_editor, by_reporter) = (opened[0].clone(), opened[1].clone());
        for story in [&by_editor, &by_reporter] {
            let head = app.head().await;
            let refused = revise(story, &app.reporter, "Reporter's own headline").await;
            let problem = refused.problem(403);
            assert!(
                problem["detail"].as_str().unwrap().contains("editor"),
                "{problem}"
            );
            assert_eq!(app.head().await, head, "a refused revision records nothing");
            let editor = revise(story, &app.editor, "Editor's headline").await;
            assert_eq!(
                editor.ok(200)["events"],
                json!(["HeadlineChanged", "TagsChanged"])
            );
            let admin = revise(story, &app.admin, "Admin's headline").await;
            assert_eq!(admin.ok(200)["events"], json!(["HeadlineChanged"]));
        }
    }

    // A closed story is settled: nobody revises it until an editor reopens it.
    let story = app.open_story(false).await;
    app.story_action(&app.editor, &story, "close", None)
        .await
        .ok(200);
    let head = app.head().await;
    revise(&story, &app.reporter, "Too late").await.problem(403);
    for token in [&app.editor, &app.admin] {
        let refused = revise(&story, token, "Too late").await;
        let problem = refused.problem(409);
        assert!(
            problem["detail"].as_str().unwrap().contains("closed"),
            "{problem}"
        );
    }
    assert_eq!(app.head().await, head, "refused revisions record nothing");
    let read = app.read_story_at(&story, head).await;
    assert_eq!(read.ok(200)["headline"], "Campaign reports a hack");
    app.story_action(&app.editor, &story, "reopen", None)
        .await
        .ok(200);
    revise(&story, &app.editor, "Back in the news")
        .await
        .ok(200);
}

#[tokio::test]
async fn an_editor_closes_and_reopens_a_story_and_a_closed_story_takes_no_developments() {
    let (app, story) = spawn_app_with_story(false).await;
    let close = format!("/v1/stories/{story}/close");
    let reopen = format!("/v1/stories/{story}/reopen");

    app.call(Method::POST, &close, Some(&app.reporter), None)
        .await
        .problem(403);
    app.call(Method::POST, &close, Some(&app.editor), None)
        .await
        .ok(200);
    app.call(Method::POST, &close, Some(&app.editor), None)
        .await
        .problem(409);

    let refused = app.record(&story, development("statement_issued")).await;
    let problem = refused.problem(409);
    assert!(
        problem["detail"].as_str().unwrap().contains("closed"),
        "{problem}"
    );

    app.call(Method::POST, &reopen, Some(&app.editor), None)
        .await
        .ok(200);
    app.record(&story, development("statement_issued"))
        .await
        .ok(201);
}

#[tokio::test]
async fn commands_on_an_unknown_story_are_not_found() {
    let app = spawn_app().await;
    let unknown = uuid::Uuid::now_v7();
    app.record(&unknown.to_string(), development("update"))
        .await
        .problem(404);
    app.story_action(&app.editor, &unknown.to_string(), "close", None)
        .await
        .problem(404);
    app.call(
        Method::GET,
        &format!("/v1/stories/{unknown}/events"),
        Some(&app.editor),
        None,
    )
    .await
    .problem(404);
    app.record("not-a-uuid", development("update"))
        .await
        .problem_for_field(400, "story_id");
}
