//! Alerts for readers in the browser (`/alerts`): following a story or an actor without the API,
//! the cookie and CSRF rules over plain HTTP, and a newcomer's whole first session in headless
//! Chromium — open a story at the desk, follow it as a reader, file the first development, see it
//! on the reader page and arrive as an alert. Screenshots under `target/screenshots/alerts-*.png`.

use std::time::Duration;

use newsroom_testkit::chrome::{
    browser, choose, click_link, driver, file_through_preview, open_story_at_desk, press,
    screenshot, sign_in_at_desk, type_into, wait_for,
};
use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::json;

/// Opens a story with a known slug, returning its id.
async fn story(app: &TestApp, slug: &str, headline: &str) -> String {
    let opened = app
        .open_story_as(
            &app.reporter,
            json!({"slug": slug, "headline": headline, "summary": "", "tags": ["cyber"]}),
        )
        .await;
    let position = opened.ok(201)["position"].as_i64().unwrap();
    // Read-your-writes: the reader pages show it once the views reach the command's position.
    let shown = app.read_story_at(slug, position).await;
    shown.ok(200);
    opened.body["id"].as_str().unwrap().to_owned()
}

async fn subscriber_count(app: &TestApp) -> usize {
    let a = app
        .call(Method::GET, "/v1/subscribers", Some(&app.admin), None)
        .await;
    a.ok(200).as_array().unwrap().len()
}

/// Follows `path`'s target over HTTP as a new reader, returning the reader's cookie.
async fn follow_as_new_reader(app: &TestApp, path: &str, name: &str) -> DeskSession {
    let form = app.desk_get(None, path).await;
    assert_eq!(form.status(), 200);
    let form_cookie = cookie_pair(form.headers(), "newsroom_alerts_form").expect("a form cookie");
    let html = form.text().await.unwrap();
    let csrf = hidden_field(&html, "csrf").expect("csrf field");
    let story = hidden_field(&html, "story").unwrap_or_default();
    let actor = hidden_field(&html, "actor").unwrap_or_default();
    let session = DeskSession {
        cookie: form_cookie,
        csrf: csrf.clone(),
    };
    let answer = app
        .desk_post(
            Some(&session),
            "/alerts/follow",
            &[
                ("csrf", &csrf),
                ("story", &story),
                ("actor", &actor),
                ("name", name),
                ("digest", "immediate"),
            ],
        )
        .await;
    assert_eq!(answer.status(), 303, "followed");
    assert_eq!(answer.headers()["location"], "/alerts?followed=1");
    let cookie = cookie_pair(answer.headers(), "newsroom_alerts").expect("a reader cookie");
    let page = app
        .desk_get(Some(&DeskSession::of_cookie(cookie.clone())), "/alerts")
        .await;
    assert_eq!(page.status(), 200);
    let csrf = hidden_field(&page.text().await.unwrap(), "csrf").expect("csrf on /alerts");
    DeskSession { cookie, csrf }
}

#[tokio::test]
async fn following_needs_the_forms_own_cookie_and_creates_nothing_without_it() {
    let app = spawn_app().await;
    story(&app, "campaign-hack", "Campaign reports a hack").await;
    let form = app
        .desk_get(None, "/alerts/follow?story=campaign-hack")
        .await;
    assert_eq!(form.status(), 200);
    let cookie = set_cookies(form.headers())
        .into_iter()
        .find(|c| c.starts_with("newsroom_alerts_form="))
        .expect("the form sets its double-submit cookie");
    assert!(cookie.contains("Path=/alerts"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let csrf = hidden_field(&form.text().await.unwrap(), "csrf").unwrap();

    // The field without the cookie, and the cookie with another field: both refused.
    let fields = [
        ("csrf", csrf.as_str()),
        ("story", "campaign-hack"),
        ("name", "Ada"),
    ];
    let no_cookie = app.desk_post(None, "/alerts/follow", &fields).await;
    assert_eq!(no_cookie.status(), 403);
    let wrong = DeskSession {
        cookie: format!("newsroom_alerts_form={}", "A".repeat(22)),
        csrf: String::new(),
    };
    let forged = app.desk_post(Some(&wrong), "/alerts/follow", &fields).await;
    assert_eq!(forged.status(), 403);
    assert_eq!(subscriber_count(&app).await, 0, "nothing was created");
}

#[tokio::test]
async fn a_reader_follows_sees_alerts_and_stops_following_without_the_api() {
    let app = spawn_app().await;
    let id = story(&app, "campaign-hack", "Campaign reports a hack").await;

    // A bad address is shown next to its field, with what was typed kept, and creates nothing.
    let form = app
        .desk_get(None, "/alerts/follow?story=campaign-hack")
        .await;
    let form_cookie = cookie_pair(form.headers(), "newsroom_alerts_form").unwrap();
    let csrf = hidden_field(&form.text().await.unwrap(), "csrf").unwrap();
    let bad = app
        .desk_post(
            Some(&DeskSession {
                cookie: form_cookie,
                csrf: csrf.clone(),
            }),
            "/alerts/follow",
            &[
                ("csrf", &csrf),
                ("story", "campaign-hack"),
                ("name", "Ada"),
                ("email", "not an address"),
            ],
        )
        .await;
    assert_eq!(bad.status(), 422);
    let html = bad.text().await.unwrap();
    assert!(html.contains("must be an email address"), "{html}");
    assert!(html.contains(r#"value="not an address""#), "{html}");
    assert!(html.contains(r#"value="Ada""#), "{html}");
    assert_eq!(subscriber_count(&app).await, 0);

    let reader = follow_as_new_reader(&app, "/alerts/follow?story=campaign-hack", "Ada").await;
    assert_eq!(subscriber_count(&app).await, 1);
    let page = app.desk_text(Some(&reader), "/alerts").await;
    assert!(page.contains("Campaign reports a hack"), "{page}");
    assert!(page.contains("No alerts yet"), "{page}");

    // A development is published: it is listed as an alert.
    let d = app.record(&id, development("hack_reported")).await;
    d.ok(201);
    let mut listed = String::new();
    for _ in 0..100 {
        listed = app.desk_text(Some(&reader), "/alerts/list").await;
        if listed.contains("alert-item") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        listed.contains("alert-item"),
        "the alert is listed: {listed}"
    );
    assert!(listed.contains("Hack reported"), "{listed}");

    // The stream and the list need the reader's cookie.
    assert_eq!(app.desk_get(None, "/alerts/list").await.status(), 401);
    assert_eq!(app.desk_get(None, "/alerts/stream").await.status(), 401);

    // Stopping without the CSRF field is refused; with it, the subscription is gone.
    let sub_id = {
        let subs = app
            .call(Method::GET, "/v1/subscribers", Some(&app.admin), None)
            .await;
        let sid = subs.ok(200)[0]["id"].as_str().unwrap().to_owned();
        let list = app
            .call(
                Method::GET,
                &format!("/v1/subscribers/{sid}/subscriptions"),
                Some(&app.admin),
                None,
            )
            .await;
        let list = list.ok(200).as_array().unwrap().clone();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["story"], id.as_str());
        (sid, list[0]["id"].as_str().unwrap().to_owned())
    };
    let path = format!("/alerts/subscriptions/{}/delete", sub_id.1);
    let refused = app.desk_post(Some(&reader), &path, &[("csrf", "x")]).await;
    assert_eq!(refused.status(), 403);
    let stopped = app
        .desk_post(Some(&reader), &path, &[("csrf", &reader.csrf)])
        .await;
    assert_eq!(stopped.status(), 303);
    let list = app
        .call(
            Method::GET,
            &format!("/v1/subscribers/{}/subscriptions", sub_id.0),
            Some(&app.admin),
            None,
        )
        .await;
    assert!(list.ok(200).as_array().unwrap().is_empty());

    // Forgetting deletes the subscriber and clears the cookie.
    let forgot = app
        .desk_post(Some(&reader), "/alerts/forget", &[("csrf", &reader.csrf)])
        .await;
    assert_eq!(forgot.status(), 303);
    assert!(set_cookies(forgot.headers())
        .iter()
        .any(|c| c.starts_with("newsroom_alerts=;") && c.contains("Max-Age=0")));
    assert_eq!(subscriber_count(&app).await, 0);
    let after = app.desk_get(Some(&reader), "/alerts").await;
    assert!(after
        .text()
        .await
        .unwrap()
        .contains("You do not follow anything yet"));
}

#[tokio::test]
async fn an_actor_can_be_followed_from_their_page() {
    let app = spawn_app().await;
    let id = story(&app, "campaign-hack", "Campaign reports a hack").await;
    let page = app.desk_get(None, "/actors/State%20X").await;
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"href="/alerts/follow?actor=State%20X""#),
        "{html}"
    );
    let reader = follow_as_new_reader(&app, "/alerts/follow?actor=State%20X", "Bo").await;
    let mut d = development("attribution_claimed");
    d["actors"] = json!(["State X"]);
    app.record(&id, d).await.ok(201);
    let mut listed = String::new();
    for _ in 0..100 {
        listed = app.desk_text(Some(&reader), "/alerts/list").await;
        if listed.contains("alert-item") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(listed.contains("Attribution claimed"), "{listed}");
}

// ----- a newcomer in a browser -------------------------------------------------------------------

#[tokio::test]
async fn a_newcomer_files_a_first_development_and_gets_it_as_an_alert_in_the_browser() {
    let Some(driver) = driver() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let desk = browser(&driver).await;
    let reader = browser(&driver).await;

    // At the desk (the admin token a first start prints), open a story.
    sign_in_at_desk(&desk, &base, &app.admin).await;
    open_story_at_desk(&desk, "Campaign reports a hack", "campaign-hack", false).await;

    // A reader opens the story page and asks for alerts; forgetting the name is shown at the field.
    reader
        .goto(&format!("{base}/stories/campaign-hack"))
        .await
        .unwrap();
    wait_for(
        &reader,
        "//a[.='Get alerts for this story']",
        "the story page offers alerts",
    )
    .await
    .click()
    .await
    .unwrap();
    wait_for(&reader, "//input[@id='follow-name']", "the follow form").await;
    screenshot(&reader, "alerts-follow").await;
    press(&reader, "form.follow-form button[type=submit]").await;
    let error = wait_for(
        &reader,
        "//p[@id='follow-name-error']",
        "the missing name is shown next to its field",
    )
    .await;
    assert!(!error.text().await.unwrap().is_empty());
    type_into(&reader, "#follow-name", "Ada Reader").await;
    press(&reader, "form.follow-form button[type=submit]").await;
    wait_for(
        &reader,
        "//div[@role='status' and contains(., 'You are following it')]",
        "the alerts page",
    )
    .await;
    wait_for(
        &reader,
        "//span[@id='alerts-live' and .='Live']",
        "the page listens for alerts",
    )
    .await;

    // The desk files the story's first development.
    click_link(&desk, "File its first development").await;
    wait_for(&desk, "//select[@id='f-kind']", "the filing form").await;
    choose(&desk, "#f-kind", "hack_reported").await;
    type_into(&desk, "#f-headline", "Campaign says its email was breached").await;
    type_into(
        &desk,
        "#f-body",
        "The campaign reported the breach on Monday.",
    )
    .await;
    type_into(&desk, "#f-source-name", "The campaign").await;
    choose(&desk, "#f-source-kind", "official_statement").await;
    file_through_preview(&desk).await;
    wait_for(
        &desk,
        "//div[@role='status']//a[.='See it on the reader page']",
        "filed and published",
    )
    .await;

    // The reader's open alerts page shows it without a reload, and its link leads to the story.
    let alert = wait_for(
        &reader,
        "//li[contains(@class,'alert-item')]//a[.='Campaign says its email was breached']",
        "the alert arrives on the open page",
    )
    .await;
    screenshot(&reader, "alerts-page").await;
    alert.click().await.unwrap();
    wait_for(
        &reader,
        "//h1[.='Campaign reports a hack']",
        "the alert leads to the story",
    )
    .await;
    wait_for(
        &reader,
        "//*[contains(., 'Campaign says its email was breached')]",
        "the development is on the reader page",
    )
    .await;
    desk.close().await.unwrap();
    reader.close().await.unwrap();
}

#[tokio::test]
async fn the_alerts_page_stays_fast_with_five_thousand_large_alerts_and_pages_back() {
    let app = spawn_app().await;
    story(&app, "campaign-hack", "Campaign reports a hack").await;
    let reader = follow_as_new_reader(&app, "/alerts/follow?story=campaign-hack", "Ada").await;
    let subscribers = app
        .call(Method::GET, "/v1/subscribers", Some(&app.admin), None)
        .await;
    let id = subscribers.ok(200)[0]["id"].as_str().unwrap().to_owned();
    // 5,000 alerts of about 16 KB each (80 MB in all), queued straight into the store.
    let body = "Attackers had access for three weeks. ".repeat(420);
    app.notifier
        .write(move |tx| {
            for n in 0..5_000 {
                let payload = json!({
                    "type": "story.update",
                    "timestamp": "2026-11-26T10:00:00Z",
                    "data": {
                        "story": {"slug": "campaign-hack", "headline": "Campaign reports a hack"},
                        "development": {"id": format!("d{n}"), "kind": "update",
                            "headline": format!("Alert number {n}."), "body": body},
                    },
                });
                tx.execute(
                    "INSERT INTO alerts (id, subscriber_id, position, story_id, type, payload,
                        mode, created_at)
                     VALUES (?1, ?2, NULL, 's', 'story.update', ?3, 'immediate', ?4)",
                    newsroom_log::args![
                        format!("msg_{n}"),
                        &id,
                        payload.to_string(),
                        "2026-11-26T10:00:00Z"
                    ],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let page = app.desk_get(Some(&reader), "/alerts").await;
    let took = started.elapsed();
    eprintln!("GET /alerts with 5,000 alerts of about 16 KB: {took:?}");
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Alert number 4999."), "the newest is shown");
    assert!(html.contains("Alert number 4950."), "fifty are shown");
    assert!(!html.contains("Alert number 4949."), "not more");
    assert!(
        took < Duration::from_secs(3),
        "one page is read, not the history: {took:?}"
    );
    let older = html
        .split(r#"rel="next" href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an older alerts link")
        .to_owned();
    let page = app.desk_get(Some(&reader), &older).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Alert number 4949."),
        "{older} goes on from there"
    );
    assert!(!html.contains("Alert number 4950."));
    // The live list answers one page too.
    let list = app.desk_get(Some(&reader), "/alerts/list").await;
    assert_eq!(list.status(), 200);
    assert!(list.text().await.unwrap().contains("Alert number 4999."));
}
