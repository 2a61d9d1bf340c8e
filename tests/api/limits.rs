use newsroom_testkit::prelude::*;
use newsroom_web::limits::RateLimits;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn writes_beyond_a_tokens_limit_get_429_with_retry_after_and_record_nothing() {
    let app = spawn_app_with(|s| {
        s.command.rate_limits = Some(RateLimits {
            writes_per_token_per_minute: 5,
            writes_per_address_per_minute: 1_000,
            sign_ups_per_address_per_hour: 3,
        })
    })
    .await;
    let story = app.open_story(false).await; // the reporter's first write
    for _ in 0..4 {
        app.record(&story, development("update")).await.ok(201);
    }
    let refused = app.record(&story, development("update")).await;
    let problem = refused.problem(429);
    assert!(problem["detail"].as_str().unwrap().contains("token"));
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        app.feed().await.len(),
        5,
        "the refused write recorded nothing"
    );

    // Another token has its own allowance; reads are not limited.
    app.record_as(&app.editor, &story, development("update"))
        .await
        .ok(201);
    for _ in 0..10 {
        app.call(Method::GET, "/v1/stories", None, None)
            .await
            .ok(200);
    }
}

#[tokio::test]
async fn sign_ups_are_limited_per_address() {
    let app = spawn_app_with(|s| {
        s.command.rate_limits = Some(RateLimits {
            sign_ups_per_address_per_hour: 3,
            ..RateLimits::default()
        })
    })
    .await;
    for n in 0..3 {
        app.call(
            Method::POST,
            "/v1/subscribers",
            None,
            Some(json!({"name": format!("Reader {n}")})),
        )
        .await
        .ok(201);
    }
    app.call(
        Method::POST,
        "/v1/subscribers",
        None,
        Some(json!({"name": "One too many"})),
    )
    .await
    .problem(429);
}
