//! The desk (`/desk`): sign-in, CSRF, roles — over plain HTTP — and a reporter and an editor at
//! work in headless Chromium, with screenshots under `target/screenshots/desk-*.png`.

use std::time::Duration;

use fantoccini::Locator;
use newsroom_testkit::chrome::{
    browser, choose, click_link, driver, file_through_preview, open_story_at_desk, press,
    screenshot, sign_in_at_desk, type_into, value_of, wait_for,
};
use newsroom_testkit::prelude::*;
use serde_json::json;
use uuid::Uuid;

fn recorded(feed: &[serde_json::Value]) -> usize {
    feed.iter()
        .filter(|e| e["event_type"] == "DevelopmentRecorded")
        .count()
}

// ----- over HTTP --------------------------------------------------------------------------------

#[tokio::test]
async fn a_desk_form_without_its_csrf_token_is_refused_and_records_nothing() {
    let (app, story) = spawn_app_with_story(false).await;
    let reporter = app.desk_sign_in(&app.reporter).await;
    let editor = app.desk_sign_in(&app.editor).await;
    let before = app.feed().await.len();
    let open = [
        ("headline", "Forged story"),
        ("slug", "forged-story"),
        ("summary", ""),
        ("tags", ""),
    ];
    let id = Uuid::new_v4().to_string();
    let filing = [
        ("id", id.as_str()),
        ("kind", "update"),
        ("headline", "Forged development"),
        ("occurred_at", ""),
    ];
    let file_path = format!("/desk/stories/{story}/developments");
    // No token, an empty one, a made-up one, another session's one.
    for csrf in [None, Some(""), Some("forged"), Some(editor.csrf.as_str())] {
        let with = |fields: &[(&'static str, &str)]| {
            let mut all: Vec<(&str, &str)> = fields.to_vec();
            if let Some(c) = csrf {
                all.push(("csrf", c));
            }
            all.into_iter()
                .map(|(k, v)| (k, v.to_owned()))
                .collect::<Vec<_>>()
        };
        for (path, fields) in [
            ("/desk/stories", with(&open)),
            (file_path.as_str(), with(&filing)),
        ] {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let answer = app.desk_post(Some(&reporter), path, &fields).await;
            assert_eq!(answer.status(), 403, "{path} with csrf {csrf:?}");
            let html = answer.text().await.unwrap();
            assert!(html.contains("This form cannot be accepted"), "{html}");
            assert!(html.contains("Nothing was recorded"));
        }
    }
    assert_eq!(app.feed().await.len(), before, "nothing was recorded");

    // The same forms with the session's token go through (from the preview's button).
    let mut fields = filing.to_vec();
    fields.push(("csrf", &reporter.csrf));
    fields.push(("confirm", "file"));
    let answer = app.desk_post(Some(&reporter), &file_path, &fields).await;
    assert_eq!(answer.status(), 303);
    assert_eq!(app.feed().await.len(), before + 1);
}

#[tokio::test]
async fn the_sign_in_form_needs_its_own_cookie() {
    let app = spawn_app().await;
    let form = app.desk_get(None, "/desk/sign-in").await;
    let html = form.text().await.unwrap();
    let csrf = hidden_field(&html, "csrf").unwrap();
    // A cross-site form carries no SameSite=Strict cookie: refused, and no session is made.
    let answer = app
        .desk_post(
            None,
            "/desk/sign-in",
            &[("csrf", &csrf), ("token", &app.reporter), ("next", "/desk")],
        )
        .await;
    assert_eq!(answer.status(), 403);
    assert!(cookie_pair(answer.headers(), "newsroom_desk").is_none());
}

#[tokio::test]
async fn a_reporter_cannot_reach_editor_pages() {
    let (app, story) = spawn_app_with_story(true).await;
    let filing = development("update");
    let dev = filing["id"].as_str().unwrap().to_owned();
    // Filed by another reporter: a reporter may edit only their own pending filings.
    let rex = app.create_token("reporter", "Rex Reporter").await;
    app.record_as(&rex.token, &story, filing).await.ok(201);
    let reporter = app.desk_sign_in(&app.reporter).await;
    let before = app.feed().await.len();

    for path in [
        "/desk/review".to_owned(),
        format!("/desk/stories/{story}/developments/{dev}/correct"),
        format!("/desk/stories/{story}/developments/{dev}/retract"),
    ] {
        let answer = app.desk_get(Some(&reporter), &path).await;
        assert_eq!(answer.status(), 403, "{path}");
        assert!(answer
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = answer.text().await.unwrap();
        assert!(html.contains("For editors only"), "{html}");
        assert!(html.contains("Rita Reporter, a reporter"));
    }
    for action in ["approve", "reject", "correct", "retract"] {
        let answer = app
            .desk_post(
                Some(&reporter),
                &format!("/desk/stories/{story}/developments/{dev}/{action}"),
                &[
                    ("csrf", &reporter.csrf),
                    ("reason", "no"),
                    ("note", "no"),
                    ("changes.headline", "Changed"),
                ],
            )
            .await;
        assert_eq!(answer.status(), 403, "{action}");
    }
    let close = app
        .desk_post(
            Some(&reporter),
            &format!("/desk/stories/{story}/close"),
            &[("csrf", &reporter.csrf)],
        )
        .await;
    assert_eq!(close.status(), 403);
    assert_eq!(app.feed().await.len(), before, "nothing was recorded");

    // The reporter's own pages don't offer editor actions; the editor's do.
    let page = app
        .desk_text(Some(&reporter), &format!("/desk/stories/{story}"))
        .await;
    assert!(!page.contains("Review queue"));
    assert!(!page.contains("/correct\""));
    let editor = app.desk_sign_in(&app.editor).await;
    let queue = app.desk_get(Some(&editor), "/desk/review").await;
    assert_eq!(queue.status(), 200);
    assert!(queue.text().await.unwrap().contains(&format!("dev-{dev}")));
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_and_signing_out_clears_it() {
    let app = spawn_app().await;
    // Not signed in: every desk page sends you to sign in, and comes back afterwards.
    let answer = app.desk_get(None, "/desk/review").await;
    assert_eq!(answer.status(), 303);
    assert_eq!(
        answer.headers()["location"],
        "/desk/sign-in?next=%2Fdesk%2Freview"
    );

    let form = app.desk_get(None, "/desk/sign-in?next=/desk/review").await;
    let login = cookie_pair(form.headers(), "newsroom_desk_login").unwrap();
    let html = form.text().await.unwrap();
    let csrf = hidden_field(&html, "csrf").unwrap();
    let pre = DeskSession {
        cookie: login,
        csrf: csrf.clone(),
    };
    // A wrong token is refused, and never written back into the page.
    let wrong = format!("{}x", app.reporter);
    let answer = app
        .desk_post(
            Some(&pre),
            "/desk/sign-in",
            &[("csrf", &csrf), ("token", &wrong), ("next", "/desk/review")],
        )
        .await;
    assert_eq!(answer.status(), 401);
    assert!(cookie_pair(answer.headers(), "newsroom_desk").is_none());
    let html = answer.text().await.unwrap();
    assert!(html.contains("That token is not known"));
    assert!(!html.contains(&wrong));

    let answer = app
        .desk_post(
            Some(&pre),
            "/desk/sign-in",
            &[
                ("csrf", &csrf),
                ("token", &app.editor),
                ("next", "/desk/review"),
            ],
        )
        .await;
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/desk/review");
    let cookies = set_cookies(answer.headers());
    let session = cookies
        .iter()
        .find(|c| c.starts_with("newsroom_desk="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/desk"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("newsroom_desk_login=;") && c.contains("Max-Age=0")),
        "the sign-in cookie is done with: {cookies:?}"
    );
    let editor = DeskSession::of_cookie(session.split(';').next().unwrap().to_owned());
    let page = app.desk_get(Some(&editor), "/desk/review").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("style-src 'self'"));
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(!html.contains(&app.editor), "the token is never in a page");
    assert_eq!(
        html.matches("<script").count(),
        html.matches(r#"<script src="/desk/static/desk.js" defer></script>"#)
            .count(),
        "no script but the desk's own file"
    );
    assert!(!html.contains("style="));
    let editor = DeskSession {
        csrf: hidden_field(&html, "csrf").unwrap(),
        ..editor
    };

    let answer = app
        .desk_post(Some(&editor), "/desk/sign-out", &[("csrf", &editor.csrf)])
        .await;
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/desk/sign-in?signed_out=1");
    let cleared = set_cookies(answer.headers())
        .into_iter()
        .find(|c| c.starts_with("newsroom_desk="))
        .expect("the session cookie is cleared");
    assert!(cleared.starts_with("newsroom_desk=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(cleared.contains("Path=/desk"), "{cleared}");
    // A browser drops the cookie; without it the desk asks to sign in again.
    assert_eq!(app.desk_get(None, "/desk").await.status(), 303);

    // A revoked token's cookie stops working at once, and is cleared.
    let issued = app.create_token("reporter", "Short Lived").await;
    let short = app.desk_sign_in(&issued.token).await;
    app.revoke_token(&issued.id).await.ok(204);
    let answer = app.desk_get(Some(&short), "/desk").await;
    assert_eq!(answer.status(), 303);
    assert!(answer.headers()["location"]
        .to_str()
        .unwrap()
        .contains("expired=1"));
    assert!(set_cookies(answer.headers())
        .iter()
        .any(|c| c.starts_with("newsroom_desk=;")));
}

#[tokio::test]
async fn a_filing_sent_twice_is_filed_once_and_errors_keep_what_was_typed() {
    let (app, story) = spawn_app_with_story(false).await;
    let reporter = app.desk_sign_in(&app.reporter).await;
    let form = app
        .desk_text(Some(&reporter), &format!("/desk/stories/{story}/file"))
        .await;
    let id = hidden_field(&form, "id").expect("the form carries a fresh id");
    let path = format!("/desk/stories/{story}/developments");

    // A claim without a named source: refused, next to the field, with what was typed.
    let mut fields = vec![
        ("csrf", reporter.csrf.as_str()),
        ("id", id.as_str()),
        ("kind", "attribution_claimed"),
        ("headline", "Officials blame <State X>"),
        ("body", "Line one\r\nLine two"),
        ("occurred_at", "2026-03-01T09:30"),
        ("actors", "State X, Fancy Bear"),
        ("actors", ""),
        ("source.name", ""),
        ("source.kind", ""),
        ("source.url", ""),
        ("evidence", "circumstantial"),
        ("urgency", "priority"),
        ("responds_to.development", ""),
        ("responds_to.stance", ""),
        ("confirm", "file"),
    ];
    let answer = app.desk_post(Some(&reporter), &path, &fields).await;
    assert_eq!(answer.status(), 422);
    let html = answer.text().await.unwrap();
    assert!(html.contains(r#"id="f-source-name-error""#), "{html}");
    assert!(html.contains("A named source is required for “Attribution claimed”"));
    assert!(html.contains(r#"aria-invalid="true""#));
    assert!(html.contains(r#"value="Officials blame &lt;State X&gt;""#));
    assert!(html.contains(">Line one\nLine two</textarea>"));
    assert!(html.contains(r#"value="State X, Fancy Bear""#));
    assert!(html.contains(r#"<option value="circumstantial" selected>"#));
    assert_eq!(hidden_field(&html, "id").as_deref(), Some(id.as_str()));
    assert_eq!(recorded(&app.feed().await), 0);

    fields.retain(|(k, _)| !k.starts_with("source."));
    fields.extend([
        ("source.name", "Interior ministry"),
        ("source.kind", "official_statement"),
        ("source.url", "https://example.org/statement"),
    ]);
    for _ in 0..2 {
        let answer = app.desk_post(Some(&reporter), &path, &fields).await;
        assert_eq!(answer.status(), 303);
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with(&format!(
                "/desk/stories/{story}?notice=filed&development={id}"
            )),
            "{location}"
        );
        assert!(!location.contains("lag=1"), "the views caught up first");
    }
    let feed = app.feed().await;
    assert_eq!(recorded(&feed), 1, "sending it twice filed it once");
    let development = &feed.last().unwrap()["payload"]["DevelopmentRecorded"]["development"];
    assert_eq!(development["id"], id.as_str());
    assert_eq!(development["occurred_at"], "2026-03-01T09:30:00Z");
    assert_eq!(development["body"], "Line one\nLine two");
    assert_eq!(development["actors"][1]["name"], "Fancy Bear");
    assert_eq!(
        development["source"]["url"],
        "https://example.org/statement"
    );

    // The desk shows it at once, with who filed it and a way to the reader page.
    let page = app
        .desk_get(
            Some(&reporter),
            &format!("/desk/stories/{story}?notice=filed&development={id}"),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Officials blame &lt;State X&gt;"));
    assert!(page.contains("See it on the reader page"));
    assert!(page.contains("Filed by <strong>Rita Reporter</strong>"));

    // The same id with other content is another filing: the form says so and takes a new id.
    fields.retain(|(k, _)| *k != "headline");
    fields.push(("headline", "Something else"));
    let answer = app.desk_post(Some(&reporter), &path, &fields).await;
    assert_eq!(answer.status(), 409);
    let html = answer.text().await.unwrap();
    assert!(html.contains("already been filed"));
    assert_ne!(hidden_field(&html, "id").as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn the_story_desk_page_counts_its_subscribers_and_shows_the_whole_history() {
    let (app, story) = spawn_app_with_story(true).await;
    let pending = development("update");
    let rejected = development("statement_issued");
    app.record(&story, pending.clone()).await.ok(201);
    app.record(&story, rejected.clone()).await.ok(201);
    app.editor_action(
        &story,
        rejected["id"].as_str().unwrap(),
        "rejection",
        json!({"reason": "Unsourced rumour"}),
    )
    .await
    .ok(200);
    for name in ["Ada", "Ben"] {
        let signup = app
            .call(
                reqwest::Method::POST,
                "/v1/subscribers",
                None,
                Some(json!({"name": name})),
            )
            .await;
        let body = signup.ok(201);
        let (id, token) = (
            body["id"].as_str().unwrap().to_owned(),
            body["token"].as_str().unwrap().to_owned(),
        );
        app.call(
            reqwest::Method::POST,
            &format!("/v1/subscribers/{id}/subscriptions"),
            Some(&token),
            Some(json!({"story": story})),
        )
        .await
        .ok(201);
    }
    let editor = app.desk_sign_in(&app.editor).await;
    let p = app.feed().await.len() as i64;
    app.story_at(&story, p).await;
    let html = app
        .desk_text(Some(&editor), &format!("/desk/stories/{story}"))
        .await;
    assert!(
        html.contains("<dt>Subscribers following</dt><dd>2</dd>"),
        "{html}"
    );
    assert!(html.contains("Waiting for review"));
    assert!(html.contains("Rejected by <strong>Eda Editor</strong>"));
    assert!(html.contains("Unsourced rumour"));
    assert!(html.contains(&format!(
        "/desk/review#dev-{}",
        pending["id"].as_str().unwrap()
    )));
}

/// The markup of the form posting to `action`, up to its end.
fn form_posting_to<'a>(html: &'a str, action: &str) -> &'a str {
    let start = html
        .find(&format!(r#"action="{action}""#))
        .unwrap_or_else(|| panic!("a form posting to {action}: {html}"));
    let end = start + html[start..].find("</form>").expect("the form ends");
    &html[start..end]
}

fn count_events(feed: &[serde_json::Value], event_type: &str) -> usize {
    feed.iter()
        .filter(|e| e["event_type"] == event_type)
        .count()
}

#[tokio::test]
async fn nothing_is_published_from_the_desk_without_its_preview() {
    let (app, story) = spawn_app_with_story(false).await;
    let reporter = app.desk_sign_in(&app.reporter).await;
    let form = app
        .desk_text(Some(&reporter), &format!("/desk/stories/{story}/file"))
        .await;
    let path = format!("/desk/stories/{story}/developments");
    // Without script, Enter sends a form with its first button: the filing form's only one is
    // its preview.
    let filing_form = form_posting_to(&form, &path);
    assert_eq!(filing_form.matches("<button").count(), 1, "{filing_form}");
    assert!(
        filing_form
            .contains(r#"<button class="button" type="submit" name="step" value="preview">"#),
        "{filing_form}"
    );
    assert!(filing_form.contains("data-no-enter"));
    let id = hidden_field(&form, "id").unwrap();
    let typed = vec![
        ("csrf", reporter.csrf.as_str()),
        ("id", id.as_str()),
        ("kind", "hack_reported"),
        ("headline", "Water main bursts on Main Street"),
        ("body", "Line one\r\nLine two"),
        ("occurred_at", "2026-03-01T09:30"),
        ("actors", "City water board"),
        ("actors", "Office of the mayor"),
        ("source.name", "City water board"),
        ("source.kind", "official_statement"),
        ("source.url", "https://example.org/water"),
        ("evidence", "documentary"),
        ("urgency", "priority"),
        ("responds_to.development", ""),
        ("responds_to.stance", ""),
    ];
    // Enter in a field (no button at all), or the form's own button: a preview, nothing filed.
    for button in [None, Some(("step", "preview"))] {
        let mut fields = typed.clone();
        fields.extend(button);
        let answer = app.desk_post(Some(&reporter), &path, &fields).await;
        assert_eq!(answer.status(), 200, "{button:?}");
        let html = answer.text().await.unwrap();
        assert!(html.contains("Check it before publishing"), "{html}");
        assert!(html.contains("What readers will see"));
        for shown in [
            "Water main bursts on Main Street",
            "Line one\nLine two",
            "Hack reported",
            "Priority",
            "City water board, Office of the mayor",
            "Official statement",
            "Documentary evidence",
            "subscribers follow this story",
        ] {
            assert!(html.contains(shown), "the preview shows {shown:?}: {html}");
        }
        assert!(html.contains(r#"name="confirm" value="file">Publish</button>"#));
        assert_eq!(
            hidden_field(&html, "headline").as_deref(),
            Some("Water main bursts on Main Street"),
            "what was typed goes on with the preview"
        );
        assert_eq!(hidden_field(&html, "id").as_deref(), Some(id.as_str()));
        assert_eq!(recorded(&app.feed().await), 0, "nothing was filed");
    }
    // "Change it": the form again, everything as typed.
    let mut fields = typed.clone();
    fields.push(("step", "edit"));
    let answer = app.desk_post(Some(&reporter), &path, &fields).await;
    assert_eq!(answer.status(), 200);
    let html = answer.text().await.unwrap();
    assert!(html.contains(r#"value="Water main bursts on Main Street""#));
    assert!(html.contains(">Line one\nLine two</textarea>"));
    assert!(html.contains(r#"value="Office of the mayor""#));
    assert_eq!(recorded(&app.feed().await), 0);
    // The preview's own button files it.
    let mut fields = typed.clone();
    fields.push(("confirm", "file"));
    let answer = app.desk_post(Some(&reporter), &path, &fields).await;
    assert_eq!(answer.status(), 303);
    assert_eq!(recorded(&app.feed().await), 1);

    // Approving: the queue's button opens a page showing what readers will get; a POST that
    // did not come from that page's button approves nothing.
    let reviewed = app.open_story(true).await;
    let filing = development("update");
    let dev = filing["id"].as_str().unwrap().to_owned();
    app.record(&reviewed, filing).await.ok(201);
    let editor = app.desk_sign_in(&app.editor).await;
    let head = app.head().await;
    app.story_at(&reviewed, head).await;
    let approve = format!("/desk/stories/{reviewed}/developments/{dev}/approve");
    let queue = app.desk_text(Some(&editor), "/desk/review").await;
    assert!(queue.contains(&format!(r#"href="{approve}""#)), "{queue}");
    assert!(!queue.contains(&format!(r#"action="{approve}""#)));
    let answer = app
        .desk_post(Some(&editor), &approve, &[("csrf", &editor.csrf)])
        .await;
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], approve.as_str());
    assert_eq!(count_events(&app.feed().await, "DevelopmentApproved"), 0);
    let page = app.desk_get(Some(&editor), &approve).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("What readers will see"));
    assert!(html.contains("Campaign A says its email was breached"));
    assert!(html.contains("Campaign A, Fancy Bear"));
    let seen = hidden_field(&html, "seen").expect("the version it shows");
    let answer = app
        .desk_post(
            Some(&editor),
            &approve,
            &[
                ("csrf", &editor.csrf),
                ("seen", &seen),
                ("confirm", "approve"),
            ],
        )
        .await;
    assert_eq!(answer.status(), 303);
    assert!(answer.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/desk/review?notice=approved"));
    assert_eq!(count_events(&app.feed().await, "DevelopmentApproved"), 1);

    // Correcting a published development: a preview, then its button publishes it.
    let correct = format!("/desk/stories/{reviewed}/developments/{dev}/correct");
    let form = app.desk_text(Some(&editor), &correct).await;
    let correction_form = form_posting_to(&form, &correct);
    assert!(correction_form.contains("data-no-enter"));
    assert!(correction_form.contains(r#"name="step" value="preview""#));
    let seen = hidden_field(&form, "seen").unwrap();
    let fields = [
        ("csrf", editor.csrf.as_str()),
        ("seen", seen.as_str()),
        ("note", "It was two weeks, not three."),
        ("changes.headline", "Campaign A says its email was breached"),
        (
            "changes.body",
            "The campaign said attackers had access for two weeks.",
        ),
        ("changes.occurred_at", "2026-10-01T09:30"),
        ("changes.actors", "Campaign A, Fancy Bear"),
        ("changes.source.name", "Campaign spokesperson"),
        ("changes.source.kind", "official_statement"),
        ("changes.source.url", "https://example.org/statement"),
        ("changes.evidence", "none_provided"),
    ];
    let answer = app.desk_post(Some(&editor), &correct, &fields).await;
    assert_eq!(answer.status(), 200);
    let html = answer.text().await.unwrap();
    assert!(
        html.contains("Check the correction before publishing"),
        "{html}"
    );
    assert!(html.contains("It was two weeks, not three."));
    assert!(html.contains("attackers had access for two weeks"));
    assert_eq!(count_events(&app.feed().await, "DevelopmentCorrected"), 0);
    let mut confirmed = fields.to_vec();
    confirmed.push(("confirm", "correct"));
    let answer = app.desk_post(Some(&editor), &correct, &confirmed).await;
    assert_eq!(answer.status(), 303);
    assert_eq!(count_events(&app.feed().await, "DevelopmentCorrected"), 1);
}

#[tokio::test]
async fn a_reporters_flash_waits_for_an_editor_in_the_api_and_at_the_desk() {
    let (app, story) = spawn_app_with_story(false).await;
    let mut flash = development("arrest_made");
    flash["urgency"] = json!("flash");
    let answer = app.record(&story, flash).await;
    assert_eq!(answer.ok(201)["status"], "pending_review");
    let mut flash = development("arrest_made");
    flash["urgency"] = json!("flash");
    let answer = app.record_as(&app.editor, &story, flash).await;
    assert_eq!(answer.ok(201)["status"], "published");

    // At the desk, the reporter's preview says so before anything is filed.
    let reporter = app.desk_sign_in(&app.reporter).await;
    let form = app
        .desk_text(Some(&reporter), &format!("/desk/stories/{story}/file"))
        .await;
    assert!(
        form.contains("from a reporter, only once an editor approves it"),
        "the choice says so: {form}"
    );
    let id = hidden_field(&form, "id").unwrap();
    let path = format!("/desk/stories/{story}/developments");
    let mut fields = vec![
        ("csrf", reporter.csrf.as_str()),
        ("id", id.as_str()),
        ("kind", "arrest_made"),
        ("headline", "Police arrest a suspect"),
        ("occurred_at", ""),
        ("urgency", "flash"),
    ];
    let answer = app.desk_post(Some(&reporter), &path, &fields).await;
    assert_eq!(answer.status(), 200);
    let html = answer.text().await.unwrap();
    assert!(
        html.contains("Check it before filing it for review"),
        "{html}"
    );
    assert!(html.contains("waits for an editor"));
    assert!(html.contains(r#"value="file">File it for review</button>"#));
    fields.push(("confirm", "file"));
    let answer = app.desk_post(Some(&reporter), &path, &fields).await;
    assert_eq!(answer.status(), 303);
    let feed = app.feed().await;
    assert_eq!(
        feed.last().unwrap()["payload"]["DevelopmentRecorded"]["status"],
        "pending_review"
    );
}

/// POSTs a desk form as a browser whose page came from `origin` would, with `cookie`.
async fn post_from(
    app: &TestApp,
    origin: &str,
    cookie: Option<&str>,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    app.desk_form(cookie, path, fields)
        .header("origin", origin)
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn a_form_sent_after_the_session_lapsed_comes_back_as_typed_after_signing_in() {
    let (app, story) = spawn_app_with_story(false).await;
    let leaving = app.create_token("reporter", "Rita Reporter").await;
    let lapsing = app.desk_sign_in(&leaving.token).await;
    let form = app
        .desk_text(Some(&lapsing), &format!("/desk/stories/{story}/file"))
        .await;
    let id = hidden_field(&form, "id").unwrap();
    let path = format!("/desk/stories/{story}/developments");
    let body = "A long filing from a phone.\r\nSecond paragraph, typed on a bus.";
    let typed = [
        ("csrf", lapsing.csrf.as_str()),
        ("id", id.as_str()),
        ("kind", "statement_issued"),
        ("headline", "Ministry confirms the breach <in part>"),
        ("body", body),
        ("occurred_at", "2026-03-01T09:30"),
        ("actors", "Interior ministry"),
        ("actors", "Campaign A"),
        ("source.name", "Ministry spokesperson"),
        ("source.kind", "official_statement"),
        ("source.url", ""),
        ("evidence", "documentary"),
        ("urgency", "priority"),
        ("step", "preview"),
    ];
    // The session ends while the form is open (here: its token is revoked).
    app.revoke_token(&leaving.id).await.ok(204);
    let origin = app.address.clone();

    // Sent from another site, nothing is kept: off to sign in, as before.
    let forged = post_from(
        &app,
        "https://evil.example",
        Some(&lapsing.cookie),
        &path,
        &typed,
    )
    .await;
    assert_eq!(forged.status(), 303);
    assert!(cookie_pair(forged.headers(), "newsroom_desk_parked").is_none());
    assert_eq!(
        forged.headers()["location"],
        "/desk/sign-in?next=%2Fdesk&expired=1"
    );

    // Sent from the desk, what was typed is kept for this browser, and signing in leads back.
    let answer = post_from(&app, &origin, Some(&lapsing.cookie), &path, &typed).await;
    assert_eq!(answer.status(), 303);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let parked = cookie_pair(answer.headers(), "newsroom_desk_parked").expect("a parked cookie");
    let key = parked
        .trim_start_matches("newsroom_desk_parked=")
        .to_owned();
    assert_eq!(
        location,
        format!("/desk/sign-in?next=%2Fdesk%2Fparked%2F{key}&kept=1&expired=1")
    );
    assert_eq!(recorded(&app.feed().await), 0, "nothing was recorded");
    let sign_in = app.desk_text(None, &location).await;
    assert!(sign_in.contains("nothing was recorded"), "{sign_in}");
    assert_eq!(
        hidden_field(&sign_in, "next").as_deref(),
        Some(format!("/desk/parked/{key}").as_str())
    );

    // Signed in again (with a new token), the form is back, every field as typed.
    let again = app.desk_sign_in(&app.reporter).await;
    let back = DeskSession {
        cookie: format!("{}; {parked}", again.cookie),
        ..again.clone()
    };
    let page = app
        .desk_get(Some(&back), &format!("/desk/parked/{key}"))
        .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Your sign-in had ended when you sent this"),
        "{html}"
    );
    assert!(html.contains(r#"<option value="statement_issued" selected>"#));
    assert!(html.contains(r#"value="Ministry confirms the breach &lt;in part&gt;""#));
    assert!(
        html.contains(">A long filing from a phone.\nSecond paragraph, typed on a bus.</textarea>")
    );
    assert!(html.contains(r#"value="2026-03-01T09:30""#));
    assert!(html.contains(r#"value="Interior ministry""#));
    assert!(html.contains(r#"value="Campaign A""#));
    assert!(html.contains(r#"value="Ministry spokesperson""#));
    assert!(html.contains(r#"<option value="documentary" selected>"#));
    assert_eq!(hidden_field(&html, "id").as_deref(), Some(id.as_str()));
    assert_eq!(
        hidden_field(&html, "csrf").as_deref(),
        Some(again.csrf.as_str()),
        "the new session's CSRF value, not the old one"
    );
    // Only for the browser that sent it.
    let elsewhere = app
        .desk_get(Some(&again), &format!("/desk/parked/{key}"))
        .await;
    assert_eq!(elsewhere.status(), 404);

    // A session that simply expired (the browser dropped its cookie) keeps the form too.
    let expired = post_from(&app, &origin, None, &path, &typed).await;
    assert_eq!(expired.status(), 303);
    assert!(expired.headers()["location"]
        .to_str()
        .unwrap()
        .contains("&kept=1"));
    assert!(!expired.headers()["location"]
        .to_str()
        .unwrap()
        .contains("expired=1"));
    assert_eq!(recorded(&app.feed().await), 0);
}

const CORRECTION_CONTROLS: [&str; 8] = [
    "changes.headline",
    "changes.body",
    "changes.occurred_at",
    "changes.actors",
    "changes.source.name",
    "changes.source.kind",
    "changes.source.url",
    "changes.evidence",
];

/// The correction form as its page holds it: the version it was made from and every control
/// with the value it shows (sent back as it is, it changes nothing).
fn correction_form_fields(html: &str) -> Vec<(String, String)> {
    let mut fields = vec![(
        "seen".to_owned(),
        hidden_field(html, "seen").expect("the form's version"),
    )];
    for control in CORRECTION_CONTROLS {
        let shown = hidden_field(html, &format!("was.{control}"))
            .unwrap_or_else(|| panic!("the form keeps what it shows of {control}: {html}"));
        fields.push((format!("was.{control}"), shown.clone()));
        fields.push((control.to_owned(), shown));
    }
    fields
}

fn with(fields: &[(String, String)], changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
        .cloned()
        .collect();
    out.extend(changes.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    out
}

fn pairs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Waits until the views show everything recorded so far.
async fn caught_up(app: &TestApp) {
    app.views_at_head().await;
}

/// Two editors, Eda and Otto, signed in at the desk over one filing of a story (`review`: the
/// story requires review, so the filing waits for it), once the views hold it: the story, the
/// development and their two sessions.
async fn two_editors_on_a_filing(
    app: &TestApp,
    review: bool,
    kind: &str,
) -> (String, String, DeskSession, DeskSession) {
    let story = app.open_story(review).await;
    let filing = development(kind);
    let dev = filing["id"].as_str().unwrap().to_owned();
    let filer = if review { &app.reporter } else { &app.editor };
    app.record_as(filer, &story, filing).await.ok(201);
    let other = app.create_token("editor", "Otto Editor").await;
    let eda = app.desk_sign_in(&app.editor).await;
    let otto = app.desk_sign_in(&other.token).await;
    caught_up(app).await;
    (story, dev, eda, otto)
}

#[tokio::test]
async fn an_edit_before_approval_never_becomes_a_correction_when_another_editor_approves_first() {
    let app = spawn_app().await;
    let (story, dev, eda, otto) = two_editors_on_a_filing(&app, true, "update").await;
    let correct = format!("/desk/stories/{story}/developments/{dev}/correct");
    let approve = format!("/desk/stories/{story}/developments/{dev}/approve");

    // Eda opens "Edit it before approving" and subs the headline...
    let form = app.desk_text(Some(&eda), &correct).await;
    assert!(form.contains("Edit before approving"), "{form}");
    let shown = correction_form_fields(&form);
    let subbed = with(
        &shown,
        &[
            ("csrf", &eda.csrf),
            ("changes.headline", "Campaign A reports email breach"),
            ("note", "Subbed headline to house style."),
            ("confirm", "correct"),
        ],
    );
    // ...while Otto approves it.
    let page = app.desk_text(Some(&otto), &approve).await;
    let seen = hidden_field(&page, "seen").unwrap();
    let approved = app
        .desk_post(
            Some(&otto),
            &approve,
            &[
                ("csrf", &otto.csrf),
                ("seen", &seen),
                ("confirm", "approve"),
            ],
        )
        .await;
    assert_eq!(approved.status(), 303);

    // Eda's save is refused, says what happened, and keeps her edit for a knowing decision.
    let answer = app.desk_post(Some(&eda), &correct, &pairs(&subbed)).await;
    assert_eq!(answer.status(), 409);
    let html = answer.text().await.unwrap();
    assert!(
        html.contains("Someone changed it since you opened this form"),
        "{html}"
    );
    assert!(
        html.contains("<strong>Otto Editor</strong> approved it"),
        "{html}"
    );
    assert!(html.contains("It is published now."));
    assert!(html.contains("Nothing of yours was saved."));
    assert!(html.contains(r#"value="Campaign A reports email breach""#));
    assert!(html.contains(">Subbed headline to house style.</textarea>"));
    assert!(
        html.contains("Correction note"),
        "now a correction readers would see"
    );
    assert!(html.contains(r#"name="step" value="preview""#));
    let feed = app.feed().await;
    assert_eq!(count_events(&feed, "DevelopmentCorrected"), 0);
    // Readers see the development as approved, with no correction.
    let resource = app.read_story(&story).await;
    let timeline = resource.ok(200)["timeline"].as_array().unwrap().clone();
    assert_eq!(
        timeline[0]["headline"],
        "Campaign A says its email was breached"
    );
    assert!(timeline[0]["corrections"]
        .as_array()
        .is_none_or(|c| c.is_empty()));
}

#[tokio::test]
async fn two_editors_correcting_at_once_never_undo_each_other() {
    let app = spawn_app().await;
    let (story, dev, eda, otto) = two_editors_on_a_filing(&app, false, "hack_reported").await;
    let correct = format!("/desk/stories/{story}/developments/{dev}/correct");
    let eda_form = correction_form_fields(&app.desk_text(Some(&eda), &correct).await);
    let otto_form = correction_form_fields(&app.desk_text(Some(&otto), &correct).await);

    // Otto corrects the text and publishes it.
    let otto_sent = with(
        &otto_form,
        &[
            ("csrf", &otto.csrf),
            (
                "changes.body",
                "The campaign said attackers had access for two weeks.",
            ),
            ("note", "It was two weeks, not three."),
            ("confirm", "correct"),
        ],
    );
    let answer = app
        .desk_post(Some(&otto), &correct, &pairs(&otto_sent))
        .await;
    assert_eq!(answer.status(), 303);

    // Eda's form still shows the old text; her correction of the headline is refused, and
    // shows Otto's change.
    let eda_sent = with(
        &eda_form,
        &[
            ("csrf", &eda.csrf),
            (
                "changes.headline",
                "Campaign A confirms its email was breached",
            ),
            ("note", "The campaign has since confirmed it."),
            ("confirm", "correct"),
        ],
    );
    let answer = app.desk_post(Some(&eda), &correct, &pairs(&eda_sent)).await;
    assert_eq!(answer.status(), 409);
    let html = answer.text().await.unwrap();
    assert!(
        html.contains("<strong>Otto Editor</strong> corrected it"),
        "{html}"
    );
    assert!(html.contains("It was two weeks, not three."));
    assert!(html.contains("<del>The campaign said attackers had access for three weeks.</del>"));
    assert!(html.contains("<ins>The campaign said attackers had access for two weeks.</ins>"));
    assert_eq!(count_events(&app.feed().await, "DevelopmentCorrected"), 1);
    // The form again: Otto's text, Eda's headline and note.
    assert!(html.contains(r#"value="Campaign A confirms its email was breached""#));
    assert!(html.contains(">The campaign said attackers had access for two weeks.</textarea>"));
    assert!(html.contains(">The campaign has since confirmed it.</textarea>"));

    // Sent again, it corrects the headline only: Otto's text stays.
    let again = with(
        &correction_form_fields(&html),
        &[
            ("csrf", &eda.csrf),
            (
                "changes.headline",
                "Campaign A confirms its email was breached",
            ),
            ("note", "The campaign has since confirmed it."),
            ("confirm", "correct"),
        ],
    );
    let answer = app.desk_post(Some(&eda), &correct, &pairs(&again)).await;
    assert_eq!(answer.status(), 303);
    let feed = app.feed().await;
    let last = &feed.last().unwrap()["payload"]["DevelopmentCorrected"]["changes"];
    assert_eq!(
        last["headline"],
        "Campaign A confirms its email was breached"
    );
    assert!(last.get("body").is_none(), "{last}");
}

#[tokio::test]
async fn approving_what_someone_edited_since_is_refused_with_the_edit_shown() {
    let app = spawn_app().await;
    let (story, dev, eda, otto) = two_editors_on_a_filing(&app, true, "update").await;
    let approve = format!("/desk/stories/{story}/developments/{dev}/approve");
    let correct = format!("/desk/stories/{story}/developments/{dev}/correct");
    let page = app.desk_text(Some(&eda), &approve).await;
    let seen = hidden_field(&page, "seen").unwrap();

    // Otto edits it before it is approved.
    let form = correction_form_fields(&app.desk_text(Some(&otto), &correct).await);
    let edited = with(
        &form,
        &[
            ("csrf", &otto.csrf),
            (
                "changes.headline",
                "Campaign A: email breached for three weeks",
            ),
            ("confirm", "correct"),
        ],
    );
    let answer = app.desk_post(Some(&otto), &correct, &pairs(&edited)).await;
    assert_eq!(answer.status(), 303);
    assert_eq!(
        answer.headers()["location"],
        format!("{approve}?notice=edited").as_str(),
        "an edit before approval leads to the approval"
    );

    // Eda's approval of what she saw is refused; the page shows the edit and the new version.
    let answer = app
        .desk_post(
            Some(&eda),
            &approve,
            &[("csrf", &eda.csrf), ("seen", &seen), ("confirm", "approve")],
        )
        .await;
    assert_eq!(answer.status(), 409);
    let html = answer.text().await.unwrap();
    assert!(
        html.contains("<strong>Otto Editor</strong> edited it"),
        "{html}"
    );
    assert!(html.contains("<ins>Campaign A: email breached for three weeks</ins>"));
    assert_eq!(count_events(&app.feed().await, "DevelopmentApproved"), 0);
    let seen = hidden_field(&html, "seen").unwrap();
    let answer = app
        .desk_post(
            Some(&eda),
            &approve,
            &[("csrf", &eda.csrf), ("seen", &seen), ("confirm", "approve")],
        )
        .await;
    assert_eq!(answer.status(), 303);
    assert_eq!(count_events(&app.feed().await, "DevelopmentApproved"), 1);
}

#[tokio::test]
async fn a_reporter_sees_their_rejected_filings_with_the_reason_and_refiles_one_revised() {
    let (app, story) = spawn_app_with_story(true).await;
    let filing = development("statement_issued");
    let dev = filing["id"].as_str().unwrap().to_owned();
    app.record(&story, filing).await.ok(201);
    app.editor_action(
        &story,
        &dev,
        "rejection",
        json!({"reason": "Needs a second source."}),
    )
    .await
    .ok(200);
    let rex = app.create_token("reporter", "Rex Reporter").await;
    app.record_as(&rex.token, &story, development("update"))
        .await
        .ok(201);
    caught_up(&app).await;

    // Rita's desk home counts and lists it, with the reason and a way to file it again.
    let rita = app.desk_sign_in(&app.reporter).await;
    let home = app.desk_text(Some(&rita), "/desk").await;
    assert!(home.contains("Your rejected filings"), "{home}");
    assert!(home.contains(r#"<span class="badge state-rejected">1</span>"#));
    assert!(home.contains("Needs a second source."));
    assert!(home.contains("rejected by <strong>Eda Editor</strong>"));
    let refile = format!("/desk/stories/{story}/file?from={dev}");
    assert!(home.contains(&format!(r#"href="{}""#, refile.replace('&', "&amp;"))));
    // Nobody else's rejections are on Rex's desk.
    let rex_desk = app.desk_sign_in(&rex.token).await;
    let home = app.desk_text(Some(&rex_desk), "/desk").await;
    assert!(!home.contains("Your rejected filings"));

    // "Revise and refile" opens the filing form with all of it, a new id, and the reason.
    let form = app.desk_text(Some(&rita), &refile).await;
    assert!(
        form.contains("You are revising a rejected filing"),
        "{form}"
    );
    assert!(form.contains("Needs a second source."));
    assert!(form.contains(r#"<option value="statement_issued" selected>"#));
    assert!(form.contains(r#"value="Campaign A says its email was breached""#));
    assert!(form.contains(">The campaign said attackers had access for three weeks.</textarea>"));
    assert!(form.contains(r#"value="2026-10-01T09:30""#));
    assert!(form.contains(r#"id="f-actor-1" name="actors" list="known-actors" value="Campaign A""#));
    assert!(form.contains(r#"value="Fancy Bear""#));
    assert!(form.contains(r#"value="Campaign spokesperson""#));
    assert!(form.contains(r#"<option value="official_statement" selected>"#));
    assert!(form.contains(r#"value="https://example.org/statement""#));
    assert!(form.contains(r#"<option value="priority" selected>"#));
    let id = hidden_field(&form, "id").unwrap();
    assert_ne!(id, dev, "filed again, it is a new development");
    assert!(
        !form.contains("data-fresh"),
        "the browser's draft does not replace it"
    );

    let answer = app
        .desk_post(
            Some(&rita),
            &format!("/desk/stories/{story}/developments"),
            &[
                ("csrf", &rita.csrf),
                ("id", &id),
                ("kind", "statement_issued"),
                (
                    "headline",
                    "Campaign A says its email was breached, police confirm",
                ),
                ("occurred_at", "2026-10-01T09:30"),
                ("source.name", "Police spokesperson"),
                ("source.kind", "official_statement"),
                ("confirm", "file"),
            ],
        )
        .await;
    assert_eq!(answer.status(), 303);
    let feed = app.feed().await;
    let refiled = &feed.last().unwrap()["payload"]["DevelopmentRecorded"];
    assert_eq!(refiled["development"]["id"], id.as_str());
    assert_eq!(refiled["status"], "pending_review");
}

#[tokio::test]
async fn a_reporter_edits_and_withdraws_their_own_pending_filings_and_no_one_elses() {
    let (app, story) = spawn_app_with_story(true).await;
    let filing = |headline: &str| {
        let mut d = development("update");
        d["headline"] = json!(headline);
        d
    };
    let (a, b, c) = (
        filing("Rita's first filing"),
        filing("Rita's second filing"),
        filing("Rex's filing"),
    );
    let id = |d: &serde_json::Value| d["id"].as_str().unwrap().to_owned();
    let (a_id, b_id, c_id) = (id(&a), id(&b), id(&c));
    app.record(&story, a).await.ok(201);
    app.record(&story, b).await.ok(201);
    let rex = app.create_token("reporter", "Rex Reporter").await;
    app.record_as(&rex.token, &story, c).await.ok(201);
    caught_up(&app).await;
    let rita = app.desk_sign_in(&app.reporter).await;
    let path =
        |dev: &str, action: &str| format!("/desk/stories/{story}/developments/{dev}/{action}");

    // Her story page offers her own pending filings' edit and withdrawal, not Rex's.
    let page = app
        .desk_text(Some(&rita), &format!("/desk/stories/{story}"))
        .await;
    for (dev, offered) in [(&a_id, true), (&b_id, true), (&c_id, false)] {
        for action in ["correct", "withdraw"] {
            assert_eq!(
                page.contains(&format!(r#"href="{}""#, path(dev, action))),
                offered,
                "{action} {dev}"
            );
        }
    }

    // She edits her first filing: saved, still pending, unseen by readers.
    let form = app.desk_text(Some(&rita), &path(&a_id, "correct")).await;
    assert!(form.contains("Edit before approving"), "{form}");
    let edited = with(
        &correction_form_fields(&form),
        &[
            ("csrf", &rita.csrf),
            (
                "changes.headline",
                "Rita's first filing, with a second source",
            ),
            ("confirm", "correct"),
        ],
    );
    let answer = app
        .desk_post(Some(&rita), &path(&a_id, "correct"), &pairs(&edited))
        .await;
    assert_eq!(answer.status(), 303);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("notice=edited"), "{location}");
    let page = app.desk_text(Some(&rita), &location).await;
    assert!(page.contains("Your edit is saved"), "{page}");
    // An edit of the filing, not a correction: its own event, without a note nobody typed.
    let feed = app.feed().await;
    assert_eq!(count_events(&feed, "DevelopmentCorrected"), 0);
    assert_eq!(count_events(&feed, "FilingEdited"), 1);
    let edit = feed
        .iter()
        .find(|e| e["event_type"] == "FilingEdited")
        .unwrap();
    assert_eq!(
        edit["payload"]["FilingEdited"]["changes"]["headline"],
        "Rita's first filing, with a second source"
    );
    assert!(
        edit["payload"]["FilingEdited"].get("note").is_none(),
        "{edit}"
    );
    assert!(
        page.contains("Edited by"),
        "the desk's history shows the edit: {page}"
    );
    let resource = app.read_story(&story).await;
    assert_eq!(
        resource.ok(200)["timeline"],
        json!([]),
        "readers see nothing yet"
    );

    // She withdraws her second: it will not be published, and says so on her desk.
    let page = app.desk_text(Some(&rita), &path(&b_id, "withdraw")).await;
    let seen = hidden_field(&page, "seen").unwrap();
    let answer = app
        .desk_post(
            Some(&rita),
            &path(&b_id, "withdraw"),
            &[("csrf", &rita.csrf), ("seen", &seen)],
        )
        .await;
    assert_eq!(answer.status(), 303);
    let feed = app.feed().await;
    let withdrawn = &feed.last().unwrap()["payload"]["DevelopmentRejected"];
    assert_eq!(withdrawn["development"], b_id.as_str());
    assert_eq!(withdrawn["reason"], newsroom_domain::WITHDRAWN);
    let home = app.desk_text(Some(&rita), "/desk").await;
    assert!(
        home.contains("withdrawn by <strong>Rita Reporter</strong>"),
        "{home}"
    );
    let editor = app.desk_sign_in(&app.editor).await;
    let queue = app.desk_text(Some(&editor), "/desk/review").await;
    assert!(
        !queue.contains(&format!("dev-{b_id}")),
        "no longer waits for review"
    );

    // Rex's filing is not hers: no edit, no withdrawal, nothing recorded.
    let before = app.feed().await.len();
    for action in ["correct", "withdraw"] {
        let answer = app.desk_get(Some(&rita), &path(&c_id, action)).await;
        assert_eq!(answer.status(), 403, "GET {action}");
    }
    let mut fields = edited.clone();
    fields.retain(|(k, _)| k != "csrf");
    let mut sent = pairs(&fields);
    sent.push(("csrf", &rita.csrf));
    assert_eq!(
        app.desk_post(Some(&rita), &path(&c_id, "correct"), &sent)
            .await
            .status(),
        403
    );
    assert_eq!(
        app.desk_post(
            Some(&rita),
            &path(&c_id, "withdraw"),
            &[("csrf", &rita.csrf), ("seen", &seen)],
        )
        .await
        .status(),
        403
    );
    // Nor is it hers under the same name with another token: the log knows who filed it.
    let namesake = app.create_token("reporter", "Rex Reporter").await;
    let namesake = app.desk_sign_in(&namesake.token).await;
    let answer = app
        .desk_post(
            Some(&namesake),
            &path(&c_id, "withdraw"),
            &[("csrf", &namesake.csrf), ("seen", &seen)],
        )
        .await;
    assert_eq!(answer.status(), 403);
    let refusal = answer.text().await.unwrap();
    assert!(
        refusal.contains("Only the one who filed it may withdraw a development"),
        "the log, not the desk, refused it: {refusal}"
    );
    assert_eq!(app.feed().await.len(), before, "nothing was recorded");

    // Once published, her filing is an editor's to correct.
    app.editor_action(&story, &a_id, "approval", json!({}))
        .await
        .ok(200);
    caught_up(&app).await;
    let answer = app.desk_get(Some(&rita), &path(&a_id, "correct")).await;
    assert_eq!(answer.status(), 403);
}

/// The visible form controls of a page that have no `<label for>`.
fn unlabelled_controls(html: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for tag in ["<input ", "<select ", "<textarea "] {
        for (start, _) in html.match_indices(tag) {
            let end = start + html[start..].find('>').unwrap();
            let element = &html[start..end];
            if element.contains(r#"type="hidden""#) {
                continue;
            }
            let id = element
                .split(r#"id=""#)
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("");
            if id.is_empty() || !html.contains(&format!(r#"<label for="{id}""#)) {
                missing.push(element.to_owned());
            }
        }
    }
    missing
}

#[tokio::test]
async fn every_control_on_the_desk_has_a_label() {
    let (app, story) = spawn_app_with_story(true).await;
    let filing = development("attribution_claimed");
    let dev = filing["id"].as_str().unwrap().to_owned();
    app.record_as(&app.editor, &story, filing).await.ok(201);
    let pending = development("update");
    let pending_id = pending["id"].as_str().unwrap().to_owned();
    app.record(&story, pending).await.ok(201);
    let sign_in = app.desk_text(None, "/desk/sign-in").await;
    assert!(unlabelled_controls(&sign_in).is_empty(), "{sign_in}");
    let editor = app.desk_sign_in(&app.editor).await;
    let p = app.feed().await.len() as i64;
    app.story_at(&story, p).await;
    for path in [
        "/desk".to_owned(),
        "/desk/review".to_owned(),
        format!("/desk/stories/{story}"),
        format!("/desk/stories/{story}/file"),
        format!("/desk/stories/{story}/developments/{dev}/correct"),
        format!("/desk/stories/{story}/developments/{dev}/retract"),
        format!("/desk/stories/{story}/developments/{pending_id}/approve"),
        format!("/desk/stories/{story}/developments/{pending_id}/correct"),
    ] {
        let answer = app.desk_get(Some(&editor), &path).await;
        assert_eq!(answer.status(), 200, "{path}");
        let html = answer.text().await.unwrap();
        assert!(html.contains("<form"), "{path} has a form");
        let missing = unlabelled_controls(&html);
        assert!(
            missing.is_empty(),
            "{path}: controls without a label: {missing:?}"
        );
        assert!(
            html.starts_with("<!DOCTYPE html><html lang=\"en\">"),
            "{path}"
        );
        assert!(
            html.contains(r##"<a class="skip-link" href="#content">"##),
            "{path}"
        );
    }
}

// ----- in a browser ------------------------------------------------------------------------------

const FILE_BUTTON: &str = "form[action$='/developments'] button[type=submit]";

#[tokio::test]
async fn a_reporter_files_and_an_editor_approves_and_corrects_in_a_browser() {
    let Some(driver) = driver() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let client = browser(&driver).await;

    // The reporter signs in with their token.
    client.goto(&format!("{base}/desk")).await.unwrap();
    wait_for(&client, "//input[@id='f-token']", "sign-in page").await;
    screenshot(&client, "desk-sign-in").await;
    sign_in_at_desk(&client, &base, &app.reporter).await;

    // ... opens a story, and files a claim on it.
    open_story_at_desk(&client, "Campaign reports a hack", "campaign-hack", false).await;
    click_link(&client, "File its first development").await;
    wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
    choose(&client, "#f-kind", "attribution_claimed").await;
    type_into(
        &client,
        "#f-headline",
        "Officials blame State X for the hack",
    )
    .await;
    type_into(
        &client,
        "#f-body",
        "The interior ministry said the attackers worked for State X.",
    )
    .await;
    type_into(&client, "#f-actor-1", "State X").await;
    type_into(&client, "#f-source-name", "Interior ministry").await;
    choose(&client, "#f-source-kind", "official_statement").await;
    choose(&client, "#f-evidence", "circumstantial").await;
    file_through_preview(&client).await;
    wait_for(
        &client,
        "//div[@role='status']//a[.='See it on the reader page']",
        "the claim is filed and published",
    )
    .await;

    // ... files a denial without naming its source: refused, next to the field, nothing lost.
    press(&client, "a.button[href$='/file']").await;
    wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
    let denial = "State X denies any role in the hack";
    let body =
        "A foreign ministry spokesperson called the accusation baseless.\nNo evidence was offered.";
    choose(&client, "#f-kind", "denial_issued").await;
    type_into(&client, "#f-headline", denial).await;
    type_into(&client, "#f-body", body).await;
    type_into(&client, "#f-actor-1", "State X").await;
    client
        .find(Locator::Css("#f-responds-to-development"))
        .await
        .unwrap()
        .select_by(Locator::XPath(
            ".//option[contains(., 'Officials blame State X')]",
        ))
        .await
        .unwrap();
    press(&client, FILE_BUTTON).await;
    wait_for(
        &client,
        "//div[contains(@class, 'error-summary')]",
        "the error summary",
    )
    .await;
    let error = wait_for(
        &client,
        "//div[contains(@class, 'field-invalid')][.//input[@id='f-source-name']]/p[@id='f-source-name-error']",
        "the error is shown next to the source name",
    )
    .await;
    assert!(
        error
            .text()
            .await
            .unwrap()
            .contains("A named source is required for “Denial issued”"),
        "{}",
        error.text().await.unwrap()
    );
    assert_eq!(
        client
            .find(Locator::Css("#f-source-name"))
            .await
            .unwrap()
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        value_of(&client, "#f-headline").await,
        denial,
        "what was typed is kept"
    );
    assert_eq!(value_of(&client, "#f-body").await, body);
    assert_eq!(value_of(&client, "#f-kind").await, "denial_issued");
    assert_eq!(value_of(&client, "#f-actor-1").await, "State X");
    assert!(!value_of(&client, "#f-responds-to-development")
        .await
        .is_empty());
    screenshot(&client, "desk-file-error").await;
    assert_eq!(
        recorded(&app.feed().await),
        1,
        "the refused filing recorded nothing"
    );

    // ... fixes it, files it, and sees it on the reader page.
    type_into(&client, "#f-source-name", "State X foreign ministry").await;
    choose(&client, "#f-source-kind", "official_statement").await;
    file_through_preview(&client).await;
    let link = wait_for(
        &client,
        "//div[@role='status']//a[.='See it on the reader page']",
        "the denial is filed and published",
    )
    .await;
    screenshot(&client, "desk-story-reporter").await;
    link.click().await.unwrap();
    wait_for(
        &client,
        &format!("//*[@id='timeline']//*[contains(., '{denial}')]"),
        "the denial is on the reader page",
    )
    .await;
    assert!(client
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/stories/campaign-hack"));
    screenshot(&client, "desk-reader-after-filing").await;

    // ... and files on a story under desk review: it waits for an editor.
    client.goto(&format!("{base}/desk")).await.unwrap();
    wait_for(&client, "//h1[.='Stories']", "the desk").await;
    open_story_at_desk(&client, "Ministry email leak", "ministry-leak", true).await;
    press(&client, "a.button[href$='/file']").await;
    wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
    choose(&client, "#f-kind", "update").await;
    type_into(
        &client,
        "#f-headline",
        "Leaked ministry emails appear online",
    )
    .await;
    file_through_preview(&client).await;
    wait_for(
        &client,
        "//div[@role='status' and contains(., 'waits for an editor')]",
        "the development waits for review",
    )
    .await;
    // The filing form at phone width.
    client.set_window_size(390, 844).await.unwrap();
    press(&client, "a.button[href$='/file']").await;
    wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
    screenshot(&client, "desk-file-phone").await;
    client.set_window_size(1200, 900).await.unwrap();
    // Reporters are sent away from the review queue.
    client.goto(&format!("{base}/desk/review")).await.unwrap();
    wait_for(&client, "//h1[.='For editors only']", "the 403 page").await;

    // The reporter signs out; the editor signs in.
    client.goto(&format!("{base}/desk")).await.unwrap();
    press(&client, "form.sign-out button").await;
    wait_for(
        &client,
        "//div[@role='status' and contains(., 'You are signed out')]",
        "signed out",
    )
    .await;
    // The editor signs in with the keyboard alone: type the token, press Enter.
    client.goto(&format!("{base}/desk")).await.unwrap();
    wait_for(
        &client,
        "//input[@id='f-token']",
        "the desk asks to sign in",
    )
    .await;
    let field = client.find(Locator::Css("#f-token")).await.unwrap();
    field
        .send_keys(&format!("{}\u{E007}", app.editor))
        .await
        .unwrap();
    wait_for(&client, "//h1[.='Stories']", "signed in with the keyboard").await;
    screenshot(&client, "desk-stories").await;

    // The editor approves the pending development.
    click_link(&client, "Review queue").await;
    wait_for(
        &client,
        "//article[.//h3[contains(., 'Leaked ministry emails appear online')]]",
        "the pending development is in the queue",
    )
    .await;
    screenshot(&client, "desk-review").await;
    press(&client, "a[href$='/approve']").await;
    wait_for(
        &client,
        "//h1[.='Approve and publish']",
        "the approval shows what readers will see",
    )
    .await;
    screenshot(&client, "desk-approve").await;
    press(&client, "button[name='confirm'][value='approve']").await;
    wait_for(
        &client,
        "//div[@role='status' and contains(., 'Approved and published')]",
        "approved",
    )
    .await;
    wait_for(
        &client,
        "//p[contains(@class, 'empty')]",
        "the queue is empty",
    )
    .await;
    client
        .goto(&format!("{base}/stories/ministry-leak"))
        .await
        .unwrap();
    wait_for(
        &client,
        "//*[@id='timeline']//*[contains(., 'Leaked ministry emails appear online')]",
        "the approved development is on the reader page",
    )
    .await;

    // The editor corrects the claim, with a note.
    client.goto(&format!("{base}/desk")).await.unwrap();
    click_link(&client, "Campaign reports a hack").await;
    let correct = wait_for(
        &client,
        "//article[.//h3[contains(., 'Officials blame State X')]]//a[starts-with(., 'Correct')]",
        "the claim's correct link",
    )
    .await;
    correct.click().await.unwrap();
    wait_for(&client, "//textarea[@id='f-note']", "the correction form").await;
    let note =
        "An earlier version named the wrong ministry.\nThe claim came from the foreign ministry.";
    type_into(&client, "#f-note", note).await;
    type_into(&client, "#f-changes-source-name", "Foreign ministry").await;
    screenshot(&client, "desk-correct").await;
    press(&client, "form[action$='/correct'] button[type=submit]").await;
    wait_for(
        &client,
        "//h1[.='Check the correction before publishing']",
        "the correction's preview",
    )
    .await;
    press(&client, "button[name='confirm'][value='correct']").await;
    let link = wait_for(
        &client,
        "//div[@role='status' and contains(., 'Correction published')]//a[.='See it on the reader page']",
        "the correction is published",
    )
    .await;
    let history = wait_for(
        &client,
        "//article[.//h3[contains(., 'Officials blame State X')]]//li[contains(., 'Corrected by')]",
        "the desk shows who corrected it",
    )
    .await;
    assert!(history.text().await.unwrap().contains("Eda Editor"));
    let filed = wait_for(
        &client,
        "//article[.//h3[contains(., 'Officials blame State X')]]//li[contains(., 'Filed by')]",
        "the desk shows who filed it",
    )
    .await;
    assert!(filed.text().await.unwrap().contains("Rita Reporter"));
    screenshot(&client, "desk-story").await;
    link.click().await.unwrap();
    // The reader page refreshes its timeline live, so the element is looked up afresh.
    let xpath = "//*[@id='timeline']//*[contains(@class, 'correction-note')]";
    wait_for(&client, xpath, "the correction note is on the reader page").await;
    let mut shown = String::new();
    for _ in 0..50 {
        let text = match client.find(Locator::XPath(xpath)).await {
            Ok(element) => element.text().await,
            Err(e) => Err(e),
        };
        if let Ok(text) = text {
            shown = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shown.trim(), note, "the note is shown exactly as written");
    screenshot(&client, "desk-reader-correction").await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn editors_reject_retract_correct_and_close_from_the_desk_with_reasons() {
    let (app, story) = spawn_app_with_story(true).await;
    let pending = development("update");
    let pending_id = pending["id"].as_str().unwrap().to_owned();
    app.record(&story, pending).await.ok(201);
    let published = development("hack_reported");
    let published_id = published["id"].as_str().unwrap().to_owned();
    app.record_as(&app.editor, &story, published).await.ok(201);
    let editor = app.desk_sign_in(&app.editor).await;
    let before = app.feed().await.len();
    let action = |dev: &str, what: &str| format!("/desk/stories/{story}/developments/{dev}/{what}");

    // A rejection needs a reason: the queue comes back with the error at that reason field.
    let answer = app
        .desk_post(
            Some(&editor),
            &action(&pending_id, "reject"),
            &[("csrf", &editor.csrf), ("reason", "  ")],
        )
        .await;
    assert_eq!(answer.status(), 422);
    let html = answer.text().await.unwrap();
    assert!(
        html.contains(&format!(r#"id="f-reason-{pending_id}-error""#)),
        "{html}"
    );
    let answer = app
        .desk_post(
            Some(&editor),
            &action(&pending_id, "reject"),
            &[("csrf", &editor.csrf), ("reason", "Unsourced rumour")],
        )
        .await;
    assert_eq!(answer.status(), 303);
    assert!(answer.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/desk/review?notice=rejected"));

    // A correction needs a note and a change; a retraction needs a reason. The correction form
    // starts from the development as it is; sent back as it came, it changes nothing.
    let form = app
        .desk_text(Some(&editor), &action(&published_id, "correct"))
        .await;
    assert!(form.contains(r#"value="Campaign A says its email was breached""#));
    let seen = hidden_field(&form, "seen").expect("the form says which version it shows");
    let unchanged = [
        ("csrf", editor.csrf.as_str()),
        ("seen", seen.as_str()),
        ("changes.headline", "Campaign A says its email was breached"),
        (
            "changes.body",
            "The campaign said attackers had access for three weeks.",
        ),
        ("changes.occurred_at", "2026-10-01T09:30"),
        ("changes.actors", "Campaign A, Fancy Bear"),
        ("changes.source.name", "Campaign spokesperson"),
        ("changes.source.kind", "official_statement"),
        ("changes.source.url", "https://example.org/statement"),
        ("changes.evidence", "none_provided"),
    ];
    for (note, error) in [("", "f-note-error"), ("Nothing changed", "f-changes-error")] {
        let mut fields = unchanged.to_vec();
        fields.push(("note", note));
        let answer = app
            .desk_post(Some(&editor), &action(&published_id, "correct"), &fields)
            .await;
        assert_eq!(answer.status(), 422);
        let html = answer.text().await.unwrap();
        assert!(html.contains(&format!(r#"id="{error}""#)), "{html}");
    }
    let answer = app
        .desk_post(
            Some(&editor),
            &action(&published_id, "retract"),
            &[("csrf", &editor.csrf), ("seen", &seen), ("reason", "")],
        )
        .await;
    assert_eq!(answer.status(), 422);
    assert!(answer
        .text()
        .await
        .unwrap()
        .contains(r#"id="f-reason-error""#));
    assert_eq!(app.feed().await.len(), before + 1, "only the rejection");

    let answer = app
        .desk_post(
            Some(&editor),
            &action(&published_id, "retract"),
            &[
                ("csrf", &editor.csrf),
                ("seen", &seen),
                ("reason", "The campaign withdrew the claim."),
            ],
        )
        .await;
    assert_eq!(answer.status(), 303);
    let resource = app.read_story(&story).await;
    let timeline = resource.ok(200)["timeline"].as_array().unwrap().clone();
    assert_eq!(timeline.len(), 1, "the rejected one is not shown");
    assert_eq!(
        timeline[0]["retraction"]["reason"],
        "The campaign withdrew the claim."
    );
    // Retracted: neither correctable nor retractable any more.
    for what in ["correct", "retract"] {
        let answer = app
            .desk_get(Some(&editor), &action(&published_id, what))
            .await;
        assert_eq!(answer.status(), 409, "{what}");
    }

    // Closing the story stops filings until it is reopened.
    let answer = app
        .desk_post(
            Some(&editor),
            &format!("/desk/stories/{story}/close"),
            &[("csrf", &editor.csrf)],
        )
        .await;
    assert_eq!(answer.status(), 303);
    let reporter = app.desk_sign_in(&app.reporter).await;
    let page = app
        .desk_text(Some(&reporter), &format!("/desk/stories/{story}/file"))
        .await;
    assert!(page.contains("This story is closed"));
    assert!(!page.contains("File development</button>"));
    let answer = app
        .desk_post(
            Some(&editor),
            &format!("/desk/stories/{story}/reopen"),
            &[("csrf", &editor.csrf)],
        )
        .await;
    assert_eq!(answer.status(), 303);
    let page = app
        .desk_text(Some(&reporter), &format!("/desk/stories/{story}/file"))
        .await;
    assert!(!page.contains("This story is closed"));
}

#[tokio::test]
async fn the_longest_text_in_any_script_fits_in_a_desk_form() {
    let (app, story) = spawn_app_with_story(false).await;
    let reporter = app.desk_sign_in(&app.reporter).await;
    // 20,000 characters of Cyrillic: 40 KB of UTF-8, about 120 KB once URL-encoded.
    let body = "ж".repeat(20_000);
    let id = Uuid::new_v4().to_string();
    let answer = app
        .desk_post(
            Some(&reporter),
            &format!("/desk/stories/{story}/developments"),
            &[
                ("csrf", &reporter.csrf),
                ("id", &id),
                ("kind", "update"),
                ("headline", "Долгий текст"),
                ("body", &body),
                ("occurred_at", ""),
                ("confirm", "file"),
            ],
        )
        .await;
    assert_eq!(answer.status(), 303);
    let feed = app.feed().await;
    let recorded = &feed.last().unwrap()["payload"]["DevelopmentRecorded"]["development"];
    assert_eq!(recorded["body"].as_str().unwrap().chars().count(), 20_000);
}

/// Staff choose a sign-in name and password once signed in with their token, then sign in with
/// them: the cookie holds a session key of its own (never the token or the password); names are
/// one person's; wrong passwords and unknown names get the same refusal; revoking the token ends
/// its sessions and its password at once.
async fn staff_sign_in_with_a_name_and_a_password(app: &TestApp) {
    let issued = app
        .call(
            reqwest::Method::POST,
            "/v1/tokens",
            Some(&app.admin),
            Some(json!({"name": "Rita Reporter", "role": "reporter"})),
        )
        .await;
    let issued = issued.ok(201);
    let (token, token_id) = (
        issued["token"].as_str().unwrap().to_owned(),
        issued["id"].as_str().unwrap().to_owned(),
    );
    let session = app.desk_sign_in(&token).await;
    assert!(!session.cookie.contains(&token), "{}", session.cookie);
    let page = app.desk_get(Some(&session), "/desk/password").await;
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("Choose a name and password"));

    let set = |login: &'static str, password: &'static str, repeat: &'static str| {
        let session = &session;
        async move {
            let answer = app
                .desk_post(
                    Some(session),
                    "/desk/password",
                    &[
                        ("csrf", &session.csrf),
                        ("login", login),
                        ("password", password),
                        ("repeat", repeat),
                    ],
                )
                .await;
            let status = answer.status().as_u16();
            (status, answer.text().await.unwrap())
        }
    };
    let (status, html) = set("rita.reporter", "too short", "too short").await;
    assert_eq!(status, 422);
    assert!(html.contains("12 to 256 characters"), "{html}");
    let (status, html) = set(
        "rita.reporter",
        "a long enough phrase",
        "a long enough phrasE",
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("The two passwords differ"), "{html}");
    let (status, _) = set(
        "rita reporter",
        "a long enough phrase",
        "a long enough phrase",
    )
    .await;
    assert_eq!(status, 422, "a name with a space");
    let (status, _) = set(
        "Rita.Reporter",
        "correct horse battery",
        "correct horse battery",
    )
    .await;
    assert_eq!(status, 303);
    let page = app.desk_get(Some(&session), "/desk/password").await;
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("You sign in as <strong>rita.reporter</strong>"));

    // Someone else cannot take the name.
    let editor = app.desk_sign_in(&app.editor).await;
    let taken = app
        .desk_post(
            Some(&editor),
            "/desk/password",
            &[
                ("csrf", &editor.csrf),
                ("login", "rita.reporter"),
                ("password", "another long phrase"),
                ("repeat", "another long phrase"),
            ],
        )
        .await;
    assert_eq!(taken.status(), 409);

    // Sign in with the name (in any case) and the password.
    let answer = app
        .desk_sign_in_with(&[
            ("login", "RITA.reporter"),
            ("password", "correct horse battery"),
        ])
        .await;
    assert_eq!(answer.status(), 303);
    let cookie = cookie_pair(answer.headers(), "newsroom_desk").expect("a session cookie");
    assert!(
        !cookie.contains("correct") && !cookie.contains(&token),
        "{cookie}"
    );
    let by_password = DeskSession::of_cookie(cookie);
    let home = app.desk_get(Some(&by_password), "/desk").await;
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("Rita Reporter"));

    // A wrong password and an unknown name are refused alike, and neither is echoed.
    for (login, password) in [
        ("rita.reporter", "correct horse batteries"),
        ("nobody.here", "correct horse battery"),
    ] {
        let answer = app
            .desk_sign_in_with(&[("login", login), ("password", password)])
            .await;
        assert_eq!(answer.status(), 401, "{login}");
        assert!(cookie_pair(answer.headers(), "newsroom_desk").is_none());
        let html = answer.text().await.unwrap();
        assert!(html.contains("do not match"), "{html}");
        assert!(!html.contains(password));
    }

    // Revoking the token ends both sessions, and the password with it.
    app.call(
        reqwest::Method::DELETE,
        &format!("/v1/tokens/{token_id}"),
        Some(&app.admin),
        None,
    )
    .await
    .ok(204);
    for s in [&session, &by_password] {
        let home = app.desk_get(Some(s), "/desk").await;
        assert_eq!(home.status(), 303, "a revoked token's session ends");
    }
    let answer = app
        .desk_sign_in_with(&[
            ("login", "rita.reporter"),
            ("password", "correct horse battery"),
        ])
        .await;
    assert_eq!(answer.status(), 401);
}

#[tokio::test]
async fn staff_sign_in_with_a_name_and_a_password_on_sqlite() {
    let app = spawn_app().await;
    staff_sign_in_with_a_name_and_a_password(&app).await;
}

#[tokio::test]
async fn staff_sign_in_with_a_name_and_a_password_on_postgres() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    staff_sign_in_with_a_name_and_a_password(&app).await;
}

/// Two editors on one pending filing: while one has its approval open, the other sees who and
/// since when — on the review queue, the story's desk page and the approval page — and the one
/// at work does not see themself; the mark ends when the form is left or carried out.
#[tokio::test]
async fn an_item_shows_who_else_is_working_on_it() {
    let app = spawn_app().await;
    let other = app
        .call(
            reqwest::Method::POST,
            "/v1/tokens",
            Some(&app.admin),
            Some(json!({"name": "Ben Second", "role": "editor"})),
        )
        .await;
    let other = other.ok(201)["token"].as_str().unwrap().to_owned();
    let story = app.open_story(true).await;
    let filed = app.record(&story, development("update")).await;
    let dev = filed.ok(201)["id"].as_str().unwrap().to_owned();
    let (eda, ben) = (
        app.desk_sign_in(&app.editor).await,
        app.desk_sign_in(&other).await,
    );
    let approve = format!("/desk/stories/{story}/developments/{dev}/approve");
    let at_work = "Eda Editor</strong> is checking it for approval";
    assert!(!page_of(&app, &ben, "/desk/review").await.contains(at_work));

    let page = page_of(&app, &eda, approve.clone()).await;
    assert!(!page.contains("is checking it"), "one does not see oneself");
    let seen = hidden_field(&page, "seen").unwrap();
    for path in [
        "/desk/review".to_owned(),
        format!("/desk/stories/{story}"),
        approve.clone(),
    ] {
        let page = page_of(&app, &ben, path.clone()).await;
        assert!(page.contains(at_work), "{path}: {page}");
    }

    // Left: gone for the others.
    let presence = format!("/desk/stories/{story}/developments/{dev}/presence");
    let left = app
        .desk_post(Some(&eda), &presence, &[("csrf", &eda.csrf), ("left", "1")])
        .await;
    assert_eq!(left.status(), 204);
    assert!(!page_of(&app, &ben, "/desk/review").await.contains(at_work));
    // Back (the form's heartbeat), then carried out: gone again.
    let back = app
        .desk_post(
            Some(&eda),
            &presence,
            &[("csrf", &eda.csrf), ("doing", "approve")],
        )
        .await;
    assert_eq!(back.status(), 204);
    assert!(page_of(&app, &ben, "/desk/review").await.contains(at_work));
    let forged = app
        .desk_post(Some(&eda), &presence, &[("csrf", "forged"), ("left", "1")])
        .await;
    assert_eq!(forged.status(), 403);
    let approved = app
        .desk_post(
            Some(&eda),
            &approve,
            &[("csrf", &eda.csrf), ("seen", &seen), ("confirm", "approve")],
        )
        .await;
    assert_eq!(approved.status(), 303);
    let page = page_of(&app, &ben, format!("/desk/stories/{story}")).await;
    assert!(!page.contains("is checking it"), "{page}");
}

/// A desk page's HTML, asserting it answered 200.
async fn page_of(app: &TestApp, session: &DeskSession, path: impl AsRef<str>) -> String {
    let path = path.as_ref();
    let page = app.desk_get(Some(session), path).await;
    assert_eq!(page.status(), 200, "{path}");
    page.text().await.unwrap()
}

/// A reporter at the desk is told what editors did to their filings (approved, rejected,
/// corrected), and nothing of others' filings or of what they did themselves.
#[tokio::test]
async fn reporters_are_told_at_the_desk_what_editors_did_to_their_filings() {
    let (app, story) = spawn_app_with_story(true).await;
    let reporter = app.desk_sign_in(&app.reporter).await;
    let start: serde_json::Value = app
        .desk_get(Some(&reporter), "/desk/notices")
        .await
        .json()
        .await
        .unwrap();
    let mut after = start["position"].as_i64().unwrap();

    let mut mine = development("update");
    mine["headline"] = json!("Ministry confirms the breach");
    let mine_id = mine["id"].as_str().unwrap().to_owned();
    app.record_as(&app.reporter, &story, mine).await.ok(201);
    let mut rejected = development("update");
    rejected["headline"] = json!("An unsourced rumour");
    let rejected_id = rejected["id"].as_str().unwrap().to_owned();
    app.record_as(&app.reporter, &story, rejected).await.ok(201);
    let mut theirs = development("update");
    theirs["headline"] = json!("Someone else's filing");
    let theirs_id = theirs["id"].as_str().unwrap().to_owned();
    let other = app
        .call(
            reqwest::Method::POST,
            "/v1/tokens",
            Some(&app.admin),
            Some(json!({"name": "Other Reporter", "role": "reporter"})),
        )
        .await;
    let other = other.ok(201)["token"].as_str().unwrap().to_owned();
    app.record_as(&other, &story, theirs).await.ok(201);
    let act = |id: String, action: &'static str, body: serde_json::Value| {
        let story = story.clone();
        let app = &app;
        async move {
            let answer = app.editor_action(&story, &id, action, body).await;
            assert!(answer.status.is_success(), "{action}: {:?}", answer.body);
            answer.body["position"].as_i64().unwrap()
        }
    };
    act(mine_id.clone(), "approval", json!({})).await;
    act(theirs_id, "approval", json!({})).await;
    act(
        rejected_id,
        "rejection",
        json!({"reason": "Find a second source."}),
    )
    .await;
    let last = act(
        mine_id,
        "corrections",
        json!({"note": "The ministry said attempted, not confirmed.",
               "changes": {"headline": "Ministry says a breach was attempted"}}),
    )
    .await;
    app.call(
        reqwest::Method::GET,
        &format!("/v1/stories?min_position={last}"),
        None,
        None,
    )
    .await
    .ok(200);

    let mut html = String::new();
    while after < last {
        let answer: serde_json::Value = app
            .desk_get(Some(&reporter), &format!("/desk/notices?after={after}"))
            .await
            .json()
            .await
            .unwrap();
        let next = answer["position"].as_i64().unwrap();
        assert!(next > after, "{answer}");
        after = next;
        html.push_str(answer["html"].as_str().unwrap());
    }
    assert_eq!(html.matches("<li").count(), 3, "{html}");
    assert!(
        html.contains("<strong>approved and published</strong> by Eda Editor"),
        "{html}"
    );
    assert!(html.contains("<strong>rejected</strong>"), "{html}");
    assert!(html.contains("Find a second source."), "{html}");
    assert!(
        html.contains("Ministry says a breach was attempted</a> was <strong>corrected</strong>"),
        "{html}"
    );
    assert!(!html.contains("Someone else"), "{html}");

    // The editor, who did all of it, is told nothing.
    let editor = app.desk_sign_in(&app.editor).await;
    let answer: serde_json::Value = app
        .desk_get(
            Some(&editor),
            &format!("/desk/notices?after={}", start["position"]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["html"], "", "{answer}");
}

/// What is typed into the filing form is saved on the server for its author as they type
/// (`POST …/draft`, which `desk.js` sends): after the session lapsed, signing in again and
/// opening the form brings it back; nobody else sees it, and filing it ends it.
async fn a_draft_saved_as_typed_is_back_after_a_new_sign_in_until_it_is_filed(app: TestApp) {
    let story = app.open_story(false).await;
    let first = app.desk_sign_in(&app.reporter).await;
    let id = Uuid::now_v7().to_string();
    let draft = format!("/desk/stories/{story}/draft");
    let typed = [
        ("id", id.as_str()),
        ("kind", "update"),
        ("headline", "Flood barrier fails at the harbour"),
        ("body", "Water is over the quay.\nThe ferry is suspended."),
        ("occurred_at", ""),
    ];
    let mut sent = typed.to_vec();
    sent.push(("csrf", &first.csrf));
    let saved = app.desk_post(Some(&first), &draft, &sent).await;
    assert_eq!(saved.status(), 204);
    // Without the session's CSRF value, or too big: nothing is saved.
    let forged = app.desk_post(Some(&first), &draft, &typed).await;
    assert_eq!(forged.status(), 403);
    let huge = "x".repeat(newsroom_web::auth::DRAFT_BYTES);
    let mut big = sent.clone();
    big.push(("body", &huge));
    assert_eq!(
        app.desk_post(Some(&first), &draft, &big).await.status(),
        413
    );

    // The session ends; signed in again, the form opens with the draft.
    app.desk_post(Some(&first), "/desk/sign-out", &[("csrf", &first.csrf)])
        .await;
    let again = app.desk_sign_in(&app.reporter).await;
    let form = app
        .desk_text(Some(&again), &format!("/desk/stories/{story}/file"))
        .await;
    assert!(form.contains("Your draft, saved"), "{form}");
    assert!(form.contains(r#"value="Flood barrier fails at the harbour""#));
    assert!(form.contains("Water is over the quay.\nThe ferry is suspended.</textarea>"));
    assert_eq!(hidden_field(&form, "id").as_deref(), Some(id.as_str()));
    assert!(
        !form.contains(&first.csrf),
        "the old session's CSRF value is not kept"
    );

    // Someone else's form is their own.
    let rex = app.create_token("reporter", "Rex Reporter").await;
    let rex = app.desk_sign_in(&rex.token).await;
    let theirs = app
        .desk_text(Some(&rex), &format!("/desk/stories/{story}/file"))
        .await;
    assert!(!theirs.contains("Flood barrier"), "{theirs}");

    // Filed, the draft is done with.
    let mut file = typed.to_vec();
    file.push(("csrf", &again.csrf));
    file.push(("confirm", "file"));
    let filed = app
        .desk_post(
            Some(&again),
            &format!("/desk/stories/{story}/developments"),
            &file,
        )
        .await;
    assert_eq!(filed.status(), 303);
    let form = app
        .desk_text(Some(&again), &format!("/desk/stories/{story}/file"))
        .await;
    assert!(!form.contains("Your draft, saved"), "{form}");
    assert!(!form.contains(r#"value="Flood barrier fails at the harbour""#));
    assert_ne!(hidden_field(&form, "id").as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn a_draft_saved_as_typed_is_back_after_the_session_lapsed() {
    a_draft_saved_as_typed_is_back_after_a_new_sign_in_until_it_is_filed(spawn_app().await).await;
}

#[tokio::test]
async fn a_draft_saved_as_typed_is_back_after_the_session_lapsed_on_postgresql() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    a_draft_saved_as_typed_is_back_after_a_new_sign_in_until_it_is_filed(app).await;
}
