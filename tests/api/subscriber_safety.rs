//! What an adversary of a news site's alerts tries, and what stops them: unsubscribe links that
//! mail scanners follow, mail to addresses nobody confirmed, addresses at IP literals, one
//! subscriber fanning one development out to hundreds of copies of one target, a subscription
//! to everything by accident, and alert streams that outlive the token or subscriber that
//! opened them.

use std::time::Duration;

use newsroom_testkit::prelude::*;
use newsroom_testkit::smtp_sink::SmtpSink;
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

/// A subscriber's `subscriptions` or `endpoints`, as the admin lists them.
async fn listed(app: &TestApp, s: &SignedUp, what: &str) -> Vec<Value> {
    app.call(
        Method::GET,
        &format!("/v1/subscribers/{}/{what}", s.id),
        Some(&app.admin),
        None,
    )
    .await
    .ok(200)
    .as_array()
    .unwrap()
    .clone()
}

async fn subscriptions(app: &TestApp, s: &SignedUp) -> Vec<Value> {
    listed(app, s, "subscriptions").await
}

async fn subscribe(app: &TestApp, s: &SignedUp, filters: Value) -> Answer {
    app.subscribe(s, filters).await
}

async fn add_endpoint(app: &TestApp, s: &SignedUp, body: Value) -> Answer {
    app.add_endpoint(s, body).await
}

async fn unsubscribe_token(app: &TestApp, s: &SignedUp) -> String {
    let id = s.id.clone();
    app.notifier
        .read(move |c| {
            Ok(c.query_row(
                "SELECT unsubscribe_token FROM subscribers WHERE id = ?1",
                newsroom_log::args![id],
                |r| r.get::<String>(0),
            )?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_get_or_head_on_the_unsubscribe_link_removes_nothing_and_its_page_posts_to_remove() {
    let (app, story) = spawn_app_with_story(false).await;
    let s = app.sign_up("Scanned reader").await;
    subscribe(&app, &s, json!({"story": story})).await.ok(201);
    let token = unsubscribe_token(&app, &s).await;
    let url = format!("{}/v1/unsubscribe/{token}", app.address);

    // What a mail scanner or a link preview does: GET and HEAD, as a browser and as anything.
    for accept in ["text/html,application/xhtml+xml", "*/*", "application/json"] {
        let got = app
            .client
            .get(&url)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200, "{accept}");
        let headed = app
            .client
            .head(&url)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(headed.status(), 200, "{accept}");
    }
    assert_eq!(
        subscriptions(&app, &s).await.len(),
        1,
        "a GET or a HEAD removes nothing"
    );

    // The page a person sees: a button that POSTs to the same link.
    let page = app
        .client
        .get(&url)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!(
            r#"<form method="post" action="/v1/unsubscribe/{token}""#
        )),
        "{html}"
    );
    assert!(html.contains("<button"), "{html}");

    // RFC 8058's one-click POST, as a mail client sends it.
    let posted = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    assert!(subscriptions(&app, &s).await.is_empty(), "the POST removes");

    // An unknown link is a 404 whichever way it is asked.
    let unknown = format!("{}/v1/unsubscribe/no-such-link", app.address);
    assert_eq!(app.client.get(&unknown).send().await.unwrap().status(), 404);
    assert_eq!(
        app.client.post(&unknown).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn email_addresses_at_ip_literals_are_refused_at_sign_up_and_as_endpoints() {
    let app = spawn_app().await;
    let s = app.sign_up("Literal reader").await;
    for address in [
        "root@[10.0.0.5]",
        "root@[127.0.0.1]",
        "root@[IPv6:::1]",
        "root@[IPv6:fe80::1]",
        "root@10.0.0.5",
        "root@169.254.169.254",
    ] {
        app.call(
            Method::POST,
            "/v1/subscribers",
            None,
            Some(json!({"name": "Literal", "email": address})),
        )
        .await
        .problem_for_field(422, "email");
        add_endpoint(&app, &s, json!({"kind": "email", "address": address}))
            .await
            .problem_for_field(422, "address");
    }
    let all = app
        .call(Method::GET, "/v1/subscribers", Some(&app.admin), None)
        .await;
    assert_eq!(all.ok(200).as_array().unwrap().len(), 1, "nothing written");
    let endpoints = app.subscriber_get(&s, "/endpoints").await;
    assert!(endpoints.ok(200).as_array().unwrap().is_empty());
}

#[tokio::test]
async fn alert_mails_carry_list_unsubscribe_and_its_one_click_post_works() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(move |s| {
        s.notifier.smtp_url = Some(url);
        s.notifier.public_url = "https://news.example.org".into();
    })
    .await;
    let story = app.open_story(false).await;
    let s = app.sign_up("Mail reader").await;
    add_endpoint(
        &app,
        &s,
        json!({"kind": "email", "address": "reader@example.org"}),
    )
    .await
    .ok(201);
    let confirmation = sink.wait_for(1, WAIT).await;
    app.confirm_from_mail(&confirmation[0]).await;
    let seen = 1;
    subscribe(&app, &s, json!({"story": story})).await.ok(201);
    app.record(&story, development("update")).await.ok(201);
    let mails = sink.wait_for(seen + 1, WAIT).await;
    let alert = &mails[seen];
    let token = unsubscribe_token(&app, &s).await;
    assert_eq!(
        alert.header("List-Unsubscribe").as_deref(),
        Some(format!("<https://news.example.org/v1/unsubscribe/{token}>").as_str()),
        "{}",
        alert.data
    );
    assert_eq!(
        alert.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click"),
        "{}",
        alert.data
    );
    // The mail client's one-click POST to that link (here, at the app's own address).
    let posted = app
        .client
        .post(format!("{}/v1/unsubscribe/{token}", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    assert!(subscriptions(&app, &s).await.is_empty());
}

async fn endpoints(app: &TestApp, s: &SignedUp) -> Vec<Value> {
    listed(app, s, "endpoints").await
}

#[tokio::test]
async fn endpoints_and_subscriptions_per_subscriber_are_capped_by_default() {
    let app = spawn_app().await;
    let s = app.sign_up("Amplifier").await;
    for i in 0..10 {
        add_endpoint(
            &app,
            &s,
            json!({"kind": "nats", "subject": format!("copies.c{i}")}),
        )
        .await
        .ok(201);
    }
    let refused = add_endpoint(&app, &s, json!({"kind": "nats", "subject": "copies.c10"})).await;
    let problem = refused.problem(409);
    assert!(
        problem["detail"].as_str().unwrap().contains("10"),
        "{problem}"
    );
    assert_eq!(endpoints(&app, &s).await.len(), 10);

    for i in 0..100 {
        subscribe(&app, &s, json!({"tag": format!("t{i}")}))
            .await
            .ok(201);
    }
    subscribe(&app, &s, json!({"tag": "t100"}))
        .await
        .problem(409);
    assert_eq!(subscriptions(&app, &s).await.len(), 100);

    // The caps are each subscriber's own.
    let other = app.sign_up("Neighbour").await;
    add_endpoint(
        &app,
        &other,
        json!({"kind": "nats", "subject": "copies.c0"}),
    )
    .await
    .ok(201);
    subscribe(&app, &other, json!({"tag": "t0"})).await.ok(201);
}

#[tokio::test]
async fn the_caps_come_from_the_settings() {
    let app = spawn_app_with(|s| {
        s.notifier.endpoints_per_subscriber = 2;
        s.notifier.subscriptions_per_subscriber = 3;
    })
    .await;
    let s = app.sign_up("Small").await;
    for i in 0..2 {
        add_endpoint(
            &app,
            &s,
            json!({"kind": "nats", "subject": format!("s{i}")}),
        )
        .await
        .ok(201);
    }
    add_endpoint(&app, &s, json!({"kind": "nats", "subject": "s2"}))
        .await
        .problem(409);
    for i in 0..3 {
        subscribe(&app, &s, json!({"tag": format!("t{i}")}))
            .await
            .ok(201);
    }
    subscribe(&app, &s, json!({"tag": "t3"})).await.problem(409);
    // Removing one makes room again.
    let first = endpoints(&app, &s).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call(
        Method::DELETE,
        &format!("/v1/subscribers/{}/endpoints/{first}", s.id),
        Some(&s.token),
        None,
    )
    .await
    .ok(204);
    add_endpoint(&app, &s, json!({"kind": "nats", "subject": "s2"}))
        .await
        .ok(201);
}

#[tokio::test]
async fn one_target_twice_for_one_subscriber_is_refused_naming_the_field() {
    let app = spawn_app_with(|s| {
        s.notifier.webhook_allowlist = "127.0.0.0/8".into();
    })
    .await;
    let s = app.sign_up("Doubler").await;
    let cases = [
        (
            json!({"kind": "webhook", "url": "http://127.0.0.1:9/hook"}),
            json!({"kind": "webhook", "url": "HTTP://127.0.0.1:9/hook"}),
            "url",
        ),
        (
            json!({"kind": "email", "address": "twice@example.org"}),
            json!({"kind": "email", "address": " Twice@Example.org "}),
            "address",
        ),
        (
            json!({"kind": "nats", "subject": "desk.twice"}),
            json!({"kind": "nats", "subject": "desk.twice"}),
            "subject",
        ),
    ];
    for (first, again, field) in cases {
        add_endpoint(&app, &s, first).await.ok(201);
        add_endpoint(&app, &s, again)
            .await
            .problem_for_field(409, field);
    }
    assert_eq!(endpoints(&app, &s).await.len(), 3, "nothing written twice");
    // Another subscriber may use the same target.
    let other = app.sign_up("Colleague").await;
    add_endpoint(
        &app,
        &other,
        json!({"kind": "webhook", "url": "http://127.0.0.1:9/hook"}),
    )
    .await
    .ok(201);
}

#[tokio::test]
async fn a_subscription_to_everything_must_say_so() {
    let (app, story) = spawn_app_with_story(false).await;
    let s = app.sign_up("Everything").await;
    for empty in [
        json!({}),
        json!({"min_urgency": "routine"}),
        json!({"delivery": "digest", "digest_minutes": 60}),
        json!({"everything": false}),
    ] {
        subscribe(&app, &s, empty.clone())
            .await
            .problem_for_field(422, "everything");
    }
    subscribe(&app, &s, json!({"everything": true, "story": story}))
        .await
        .problem_for_field(422, "everything");
    assert!(subscriptions(&app, &s).await.is_empty(), "nothing written");

    let all = subscribe(&app, &s, json!({"everything": true})).await;
    assert_eq!(all.ok(201)["everything"], true);
    let flash = subscribe(&app, &s, json!({"min_urgency": "flash"})).await;
    assert_eq!(flash.ok(201)["everything"], false);
    let listed = subscriptions(&app, &s).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["everything"], true);
}

#[tokio::test]
async fn an_email_address_gets_nothing_but_its_confirmation_until_confirmed_by_a_post() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(move |s| s.notifier.smtp_url = Some(url)).await;
    let story = app.open_story(false).await;
    let s = app.sign_up("Someone else's address").await;
    let added = add_endpoint(
        &app,
        &s,
        json!({"kind": "email", "address": "victim@example.org"}),
    )
    .await;
    assert_eq!(added.ok(201)["status"], "unconfirmed", "{:?}", added.body);
    subscribe(&app, &s, json!({"story": story})).await.ok(201);
    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails[0].to, ["victim@example.org"]);
    let body = mails[0].body().replace("=\r\n", "");
    let path = confirmation_path(&mails[0]);
    assert!(
        !body.contains(&s.token) && !body.contains(&s.id),
        "the mail carries no credential of the subscriber"
    );

    // Developments are published: nothing goes to the unconfirmed address.
    app.record(&story, development("update")).await.ok(201);
    wait_for_alerts(&app, &s, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1, "only the confirmation was sent");

    // What a mail scanner does: GET and HEAD the link. Nothing is confirmed.
    let url = format!("{}{path}", app.address);
    assert_eq!(app.client.head(&url).send().await.unwrap().status(), 200);
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!(r#"<form method="post" action="{path}""#)),
        "{html}"
    );
    assert_eq!(endpoints(&app, &s).await[0]["status"], "unconfirmed");

    // The page's button: confirmed, once.
    assert_eq!(app.client.post(&url).send().await.unwrap().status(), 200);
    assert_eq!(endpoints(&app, &s).await[0]["status"], "active");
    assert_eq!(app.client.post(&url).send().await.unwrap().status(), 404);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 404);

    app.record(&story, development("hack_reported"))
        .await
        .ok(201);
    let mails = sink.wait_for(2, WAIT).await;
    assert_eq!(mails.len(), 2, "alerts flow once confirmed");
    assert_eq!(mails[1].to, ["victim@example.org"]);
}

/// Waits until `s` has `n` alerts queued (whatever their endpoints did with them).
async fn wait_for_alerts(app: &TestApp, s: &SignedUp, n: usize) {
    let path = format!("/v1/subscribers/{}/alerts", s.id);
    for _ in 0..150 {
        let list = app.call(Method::GET, &path, Some(&s.token), None).await;
        if list.ok(200).as_array().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} alerts were not queued for {}", s.id);
}

#[tokio::test]
async fn one_address_gets_a_few_confirmation_mails_an_hour_however_many_subscribers_ask() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(move |s| s.notifier.smtp_url = Some(url)).await;
    for i in 0..3 {
        let s = app.sign_up(&format!("Bomber {i}")).await;
        add_endpoint(
            &app,
            &s,
            json!({"kind": "email", "address": "inbox@example.org"}),
        )
        .await
        .ok(201);
    }
    let s = app.sign_up("Bomber 3").await;
    let refused = add_endpoint(
        &app,
        &s,
        json!({"kind": "email", "address": "INBOX@example.org"}),
    )
    .await;
    refused.problem_for_field(429, "address");
    assert!(refused.headers.contains_key("retry-after"));
    assert!(endpoints(&app, &s).await.is_empty(), "nothing written");
    sink.wait_for(3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 3);
}

/// Opens `subscriber`'s alert stream with `token` over HTTP, as an SSE client does.
async fn open_alert_stream(app: &TestApp, subscriber: &str, token: &str) -> reqwest::Response {
    let response = app
        .client
        .get(format!(
            "{}/v1/subscribers/{subscriber}/alerts/stream",
            app.address
        ))
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Reads the stream to its end; how long that took, or `None` if it was still open after
/// `within`.
async fn ends_within(mut stream: reqwest::Response, within: Duration) -> Option<Duration> {
    let start = std::time::Instant::now();
    tokio::time::timeout(within, async {
        loop {
            match stream.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return start.elapsed(),
            }
        }
    })
    .await
    .ok()
}

#[tokio::test]
async fn alert_streams_end_promptly_when_their_token_is_revoked_or_their_subscriber_forgotten() {
    streams_end_with_their_opener(spawn_app().await).await;
}

#[tokio::test]
async fn alert_streams_end_promptly_when_their_token_is_revoked_on_postgres() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    streams_end_with_their_opener(app).await;
}

async fn streams_end_with_their_opener(app: TestApp) {
    let s = app.sign_up("Watched").await;
    let bystander = app.sign_up("Bystander").await;
    let steady = open_alert_stream(&app, &bystander.id, &bystander.token).await;

    // A staff token opened the stream: the token is revoked.
    let second = app.create_token("admin", "Second admin").await;
    let staff = open_alert_stream(&app, &s.id, &second.token).await;
    let own = open_alert_stream(&app, &s.id, &s.token).await;
    app.revoke_token(&second.id).await.ok(204);
    let took = ends_within(staff, Duration::from_secs(5)).await;
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(3)),
        "the revoked token's stream ended after {took:?}"
    );

    // The subscriber's own stream goes on until the subscriber is forgotten.
    app.call(
        Method::DELETE,
        &format!("/v1/subscribers/{}", s.id),
        Some(&app.admin),
        None,
    )
    .await
    .ok(204);
    let took = ends_within(own, Duration::from_secs(5)).await;
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(3)),
        "the forgotten subscriber's stream ended after {took:?}"
    );

    // Nobody else's stream is touched.
    assert_eq!(
        ends_within(steady, Duration::from_secs(3)).await,
        None,
        "another subscriber's stream stays open"
    );
    if let Some(hub) = &app.alert_hub {
        assert_eq!(
            hub.open_streams(),
            1,
            "the ended streams gave their places back"
        );
    }
}

#[tokio::test]
async fn a_reader_who_gives_an_address_when_following_is_asked_to_confirm_it() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(move |s| s.notifier.smtp_url = Some(url)).await;
    let opened = app
        .open_story_as(
            &app.reporter,
            json!({"slug": "campaign-hack", "headline": "Campaign reports a hack"}),
        )
        .await;
    let position = opened.ok(201)["position"].as_i64().unwrap();
    app.call(
        Method::GET,
        &format!("/v1/stories/campaign-hack?min_position={position}"),
        None,
        None,
    )
    .await
    .ok(200);
    let form = app
        .desk_get(None, "/alerts/follow?story=campaign-hack")
        .await;
    let cookie = cookie_pair(form.headers(), "newsroom_alerts_form").unwrap();
    let csrf = hidden_field(&form.text().await.unwrap(), "csrf").unwrap();
    let followed = app
        .desk_post(
            Some(&DeskSession {
                cookie,
                csrf: csrf.clone(),
            }),
            "/alerts/follow",
            &[
                ("csrf", &csrf),
                ("story", "campaign-hack"),
                ("name", "Ada"),
                ("email", "ada@example.org"),
            ],
        )
        .await;
    assert_eq!(followed.status(), 303);
    let reader = DeskSession {
        cookie: cookie_pair(followed.headers(), "newsroom_alerts").unwrap(),
        csrf: String::new(),
    };
    let page = app.desk_text(Some(&reader), "/alerts").await;
    assert!(page.contains("once you confirm it"), "{page}");

    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails[0].to, ["ada@example.org"]);
    app.confirm_from_mail(&mails[0]).await;
    let page = app.desk_text(Some(&reader), "/alerts").await;
    assert!(
        page.contains("alerts also emailed to ada@example.org"),
        "{page}"
    );
}
