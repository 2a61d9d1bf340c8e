use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn writes_without_a_valid_token_are_401() {
    let (app, story) = spawn_app_with_story(false).await;
    let body = json!({"slug": "x", "headline": "y"});
    for token in [None, Some("nr_not-a-real-token"), Some("garbage"), Some("")] {
        let answers = [
            app.call(Method::POST, "/v1/stories", token, Some(body.clone()))
                .await,
            app.call(
                Method::POST,
                &format!("/v1/stories/{story}/developments"),
                token,
                Some(development("update")),
            )
            .await,
        ];
        for answer in answers {
            answer.problem(401);
            // RFC 9110 §11.6.1: a 401 names its challenge; RFC 6750 §3 gives the Bearer form.
            assert_eq!(
                answer.headers[reqwest::header::WWW_AUTHENTICATE],
                r#"Bearer realm="newsroom""#
            );
        }
    }
    // A malformed header is as unauthenticated as a missing one.
    let answer = app
        .client
        .post(format!("{}/v1/stories", app.address))
        .header("authorization", format!("Basic {}", app.admin))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    assert!(answer
        .headers()
        .contains_key(reqwest::header::WWW_AUTHENTICATE));
    assert_eq!(app.feed().await.len(), 1);
}

#[tokio::test]
async fn only_admins_create_tokens_and_a_new_token_works_at_once() {
    let app = spawn_app().await;
    for token in [&app.reporter, &app.editor] {
        app.call(
            Method::POST,
            "/v1/tokens",
            Some(token),
            Some(json!({"role": "admin", "name": "Mallory"})),
        )
        .await
        .problem(403);
    }
    app.call(
        Method::POST,
        "/v1/tokens",
        Some(&app.admin),
        Some(json!({"role": "chief", "name": "x"})),
    )
    .await
    .problem_for_field(422, "role");

    let issued = app.create_token("editor", "Nadia Night Editor").await;
    assert!(issued.token.starts_with("nr_"));
    assert!(issued.token.len() >= 40, "at least 128 bits of randomness");
    let story = app.open_story(false).await;
    app.story_action(&issued.token, &story, "close", None)
        .await
        .ok(200);
    let events = app.story_events(&story).await;
    assert_eq!(events[1]["metadata"]["author_name"], "Nadia Night Editor");
    assert_eq!(events[1]["metadata"]["author_id"], issued.id.as_str());
}

#[tokio::test]
async fn a_revoked_token_stops_working_at_once() {
    let app = spawn_app().await;
    let issued = app.create_token("reporter", "Temp Reporter").await;
    let body = json!({"slug": "one", "headline": "One"});
    app.open_story_as(&issued.token, body).await.ok(201);
    app.revoke_token(&issued.id).await.ok(204);
    app.open_story_as(&issued.token, json!({"slug": "two", "headline": "Two"}))
        .await
        .problem(401);
    app.revoke_token(&issued.id).await.problem(404);
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes() {
    let app = spawn_app().await;
    let issued = app.create_token("reporter", "Hashed Reporter").await;
    let conn = rusqlite::Connection::open(&app.database_path).unwrap();
    let dump: Vec<(String, Vec<u8>)> = conn
        .prepare("SELECT name, hash FROM tokens")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(dump.len(), 4);
    for (_, hash) in &dump {
        assert_eq!(hash.len(), 32, "a SHA-256 digest");
        assert!(!String::from_utf8_lossy(hash).contains(&issued.token));
    }
    let whole_file = std::fs::read(&app.database_path).unwrap();
    let needle = issued.token.as_bytes();
    assert!(
        !whole_file.windows(needle.len()).any(|w| w == needle),
        "the token's text is nowhere in the database file"
    );
}
