use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn malformed_json_is_a_400_and_records_nothing() {
    let (app, story) = spawn_app_with_story(false).await;
    let path = format!("/v1/stories/{story}/developments");
    for body in [
        b"{\"id\": ".to_vec(),
        b"not json".to_vec(),
        vec![0xff, 0xfe, 0x7b],
        b"".to_vec(),
    ] {
        app.call_raw(
            Method::POST,
            &path,
            Some(&app.reporter),
            "application/json",
            body,
        )
        .await
        .problem(400);
    }
    assert_eq!(app.feed().await.len(), 1);
}

#[tokio::test]
async fn wrong_types_and_unknown_fields_are_422s_naming_the_field() {
    let (app, story) = spawn_app_with_story(false).await;
    let cases = vec![
        ("id", json!("not-a-uuid")),
        ("occurred_at", json!("yesterday")),
        ("actors", json!("Campaign A")),
        ("headline", json!(42)),
    ];
    app.refuses_each_field(&story, cases).await;
    let mut filing = development("update");
    filing["secret_flag"] = json!(true);
    app.record(&story, filing)
        .await
        .problem_for_field(422, "secret_flag");

    let mut filing = development("update");
    filing.as_object_mut().unwrap().remove("headline");
    app.record(&story, filing)
        .await
        .problem_for_field(422, "headline");

    let mut filing = development("update");
    filing["source"].as_object_mut().unwrap().remove("kind");
    app.record(&story, filing)
        .await
        .problem_for_field(422, "source.kind");
    assert_eq!(app.feed().await.len(), 1);
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let (app, story) = spawn_app_with_story(false).await;
    let mut filing = development("update");
    filing["body"] = json!("x".repeat(200_000));
    app.record(&story, filing).await.problem(413);
    assert_eq!(app.feed().await.len(), 1);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = spawn_app().await;
    app.call_raw(
        Method::POST,
        "/v1/stories",
        Some(&app.reporter),
        "text/plain",
        b"slug=x".to_vec(),
    )
    .await
    .problem(415);
}

#[tokio::test]
async fn a_story_needs_a_valid_slug_and_headline() {
    let app = spawn_app().await;
    let cases = [
        (json!({"slug": "Not A Slug", "headline": "x"}), "slug"),
        (json!({"slug": "", "headline": "x"}), "slug"),
        (json!({"slug": "ok-slug", "headline": " "}), "headline"),
        (
            json!({"slug": "ok-slug", "headline": "x", "tags": ["no spaces"]}),
            "tags",
        ),
        (
            json!({"slug": "ok-slug", "headline": "x", "summary": "y".repeat(2001)}),
            "summary",
        ),
        (json!({"headline": "x"}), "slug"),
    ];
    for (body, field) in cases {
        app.open_story_as(&app.reporter, body)
            .await
            .problem_for_field(422, field);
    }
    assert!(app.feed().await.is_empty());
}

#[tokio::test]
async fn bytes_after_the_json_body_are_a_400_and_record_nothing() {
    let app = spawn_app().await;
    let body = json!({"slug": "one-story", "headline": "One"}).to_string();
    for raw in [
        format!("{body}{body}"),
        format!("{body} x"),
        format!("{body}]"),
    ] {
        app.call_raw(
            Method::POST,
            "/v1/stories",
            Some(&app.reporter),
            "application/json",
            raw.into_bytes(),
        )
        .await
        .problem(400);
    }
    assert!(app.feed().await.is_empty());
    // Whitespace after the document is fine.
    app.call_raw(
        Method::POST,
        "/v1/stories",
        Some(&app.reporter),
        "application/json",
        format!("{body}\n").into_bytes(),
    )
    .await
    .ok(201);
}

#[tokio::test]
async fn path_parameters_that_cannot_be_decoded_are_problems() {
    let app = spawn_app().await;
    let s = app.sign_up("Path Reader").await;
    for (method, path, token) in [
        (
            Method::POST,
            "/v1/stories/%FF/close".to_owned(),
            &app.editor,
        ),
        (
            Method::GET,
            "/v1/stories/%FF/events".to_owned(),
            &app.editor,
        ),
        (Method::DELETE, "/v1/tokens/%C0%AF".to_owned(), &app.admin),
        (Method::GET, "/v1/stories/%FF".to_owned(), &app.admin),
        (
            Method::GET,
            format!("/v1/subscribers/{}%FF", s.id),
            &s.token,
        ),
        (
            Method::POST,
            format!("/v1/subscribers/{}/deliveries/abc/redrive", s.id),
            &s.token,
        ),
        (
            Method::POST,
            format!(
                "/v1/subscribers/{}/deliveries/99999999999999999999/redrive",
                s.id
            ),
            &s.token,
        ),
    ] {
        app.call(method, &path, Some(token), None)
            .await
            .problem(400);
    }
}

#[tokio::test]
async fn a_body_must_be_an_object_not_an_array_of_its_values() {
    let (app, story) = spawn_app_with_story(true).await;
    let filing = development("update");
    let pending = filing["id"].as_str().unwrap().to_owned();
    app.record(&story, filing).await.ok(201);
    let before = app.feed().await;
    for (path, token, body) in [
        (
            "/v1/stories".to_owned(),
            &app.reporter,
            r#"["array-slug", "Array headline"]"#,
        ),
        (
            "/v1/tokens".to_owned(),
            &app.admin,
            r#" ["admin", "Array Admin"]"#,
        ),
        (
            format!("/v1/stories/{story}/developments/{pending}/approval"),
            &app.editor,
            "[]",
        ),
    ] {
        app.call_raw(
            Method::POST,
            &path,
            Some(token),
            "application/json",
            body.as_bytes().to_vec(),
        )
        .await
        .problem(422);
    }
    app.call_raw(
        Method::POST,
        "/v1/subscribers",
        None,
        "application/json",
        br#"["Array Reader"]"#.to_vec(),
    )
    .await
    .problem(422);
    assert_eq!(app.feed().await, before, "nothing was recorded");
}
