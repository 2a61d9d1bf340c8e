//! What an adversary of a news site's alerts tries, and what stops them: unsubscribe links that
//! mail scanners follow, mail to addresses nobody confirmed, addresses at IP literals, one
//! subscriber fanning one development out to hundreds of copies of one target, a subscription
//! to everything by accident, and alert streams that outlive the token or subscriber that
//! opened them.

use std::time::Duration;

use newsroom_tests::smtp_sink::{Received, SmtpSink};
use newsroom_tests::*;
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

async fn subscriptions(app: &TestApp, s: &SignedUp) -> Vec<Value> {
    app.call(
        Method::GET,
        &format!("/v1/subscribers/{}/subscriptions", s.id),
        Some(&app.admin),
        None,
    )
    .await
    .ok(200)
    .as_array()
    .unwrap()
    .clone()
}

async fn subscribe(app: &TestApp, s: &SignedUp, filters: Value) -> Answer {
    app.call(
        Method::POST,
        &format!("/v1/subscribers/{}/subscriptions", s.id),
        Some(&s.token),
        Some(filters),
    )
    .await
}

async fn add_endpoint(app: &TestApp, s: &SignedUp, body: Value) -> Answer {
    app.call(
        Method::POST,
        &format!("/v1/subscribers/{}/endpoints", s.id),
        Some(&s.token),
        Some(body),
    )
    .await
}

async fn unsubscribe_token(app: &TestApp, s: &SignedUp) -> String {
    let id = s.id.clone();
    app.notifier
        .read(move |c| {
            Ok(c.query_row(
                "SELECT unsubscribe_token FROM subscribers WHERE id = ?1",
                newsroom_command::args![id],
                |r| r.get::<String>(0),
            )?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_get_or_head_on_the_unsubscribe_link_removes_nothing_and_its_page_posts_to_remove() {
    let app = spawn_app().await;
    let story = app.open_story(false).await;
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
    let endpoints = app
        .call(
            Method::GET,
            &format!("/v1/subscribers/{}/endpoints", s.id),
            Some(&s.token),
            None,
        )
        .await;
    assert!(endpoints.ok(200).as_array().unwrap().is_empty());
}

/// Confirms an email endpoint through the link its confirmation mail carries, as a person does:
/// the GET shows a page, its button POSTs.
async fn confirm_from_mail(app: &TestApp, mail: &Received) {
    let body = mail.body().replace("=\r\n", "");
    let link = body
        .split_whitespace()
        .find(|w| w.contains("/v1/email-confirmations/"))
        .unwrap_or_else(|| panic!("a confirmation link: {body}"));
    let path = &link[link.find("/v1/").unwrap()..];
    let url = format!("{}{path}", app.address);
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!(r#"<form method="post" action="{path}""#)),
        "{html}"
    );
    let confirmed = app.client.post(&url).send().await.unwrap();
    assert_eq!(confirmed.status(), 200);
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
    let mut seen = 0;
    if let Some(first) = sink.messages().first() {
        if first.data.contains("/v1/email-confirmations/") {
            confirm_from_mail(&app, first).await;
            seen = 1;
        }
    }
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
