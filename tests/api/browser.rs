//! Reader pages and the desk in a real browser: headless Chromium driven over WebDriver
//! (chromedriver).

use std::time::Duration;

use fantoccini::Locator;
use newsroom_testkit::chrome::{
    browser, browser_without_script, choose, click_link, driver, press, screenshot,
    sign_in_at_desk, type_into, value_of, wait_for,
};
use newsroom_testkit::prelude::*;
use serde_json::json;

#[tokio::test]
async fn a_story_page_shows_a_new_development_without_reloading() {
    let Some(driver) = driver() else { return };
    let app = spawn_app().await;
    let answer = app
        .open_story_as(
            &app.reporter,
            json!({"slug": "live-page", "headline": "<script>alert('pwned')</script> Campaign hack",
                   "summary": "A campaign says its email was breached."}),
        )
        .await;
    let story = answer.ok(201)["id"].as_str().unwrap().to_owned();
    let mut first = development("hack_reported");
    first["headline"] = json!("Campaign A says its email was breached");
    let p = app.record(&story, first).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    app.story_at(&story, p).await;

    let client = browser(&driver).await;
    client
        .goto(&format!("{}/stories/live-page", app.address))
        .await
        .unwrap();
    let h1 = client.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(
        h1.text().await.unwrap().trim(),
        "<script>alert('pwned')</script> Campaign hack",
        "the hostile headline renders as text"
    );
    let timeline = client.find(Locator::Id("timeline")).await.unwrap();
    assert!(timeline
        .text()
        .await
        .unwrap()
        .contains("Campaign A says its email was breached"));
    // A marker on the page's window: it survives only if the page is never reloaded.
    client
        .execute("window.__not_reloaded = true; return true;", vec![])
        .await
        .unwrap();
    // Let the page open its event stream before the next development is filed.
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//*[@id='live-status' and contains(., 'Live')]",
        ))
        .await
        .expect("the page says it is live");

    let mut denial = development("statement_issued");
    denial["headline"] = json!("Foreign ministry calls the accusation baseless");
    app.record(&story, denial).await.ok(201);

    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(
            "//*[@id='timeline']//*[contains(., 'Foreign ministry calls the accusation baseless')]",
        ))
        .await
        .expect("the new development appears without a reload");
    let marker = client
        .execute("return window.__not_reloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!(true), "the page was not reloaded");
    // The change brought its own markup: the page asked the server for nothing to show it.
    let fetched = client
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/fragment'));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fetched, json!([]), "no fragment was fetched");
    let items = client
        .execute(
            "return Array.from(document.querySelectorAll('#timeline li.timeline-item')).map(li => li.dataset.occurred);",
            vec![],
        )
        .await
        .unwrap();
    let items: Vec<String> = serde_json::from_value(items).unwrap();
    assert_eq!(items.len(), 2, "{items:?}");
    let mut sorted = items.clone();
    sorted.sort_by_key(|t| std::cmp::Reverse(chrono::DateTime::parse_from_rfc3339(t).unwrap()));
    assert_eq!(items, sorted, "newest first");
    screenshot(&client, "story-page").await;

    client.goto(&format!("{}/", app.address)).await.unwrap();
    let front = client.find(Locator::Css("main")).await.unwrap();
    assert!(front.text().await.unwrap().contains("Campaign hack"));
    screenshot(&client, "front-page").await;
    client.close().await.unwrap();
}

fn recorded_headlines(feed: &[serde_json::Value]) -> Vec<String> {
    feed.iter()
        .filter_map(|e| e["payload"]["DevelopmentRecorded"]["development"]["headline"].as_str())
        .map(str::to_owned)
        .collect()
}

const ENTER: &str = "\u{E007}";

#[tokio::test]
async fn enter_in_a_desk_form_never_files_and_publishing_goes_through_a_preview() {
    let Some(driver) = driver() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let story = app.open_story(false).await;
    let client = browser(&driver).await;
    sign_in_at_desk(&client, &base, &app.editor).await;
    client
        .goto(&format!("{base}/desk/stories/{story}/file"))
        .await
        .unwrap();
    wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
    choose(&client, "#f-kind", "hack_reported").await;

    // Half a headline and Enter; Enter in a name box and in the source's name too.
    let headline = client.find(Locator::Css("#f-headline")).await.unwrap();
    headline
        .send_keys(&format!("Water main bur{ENTER}"))
        .await
        .unwrap();
    for (field, typed) in [
        ("#f-actor-1", "City water board"),
        ("#f-source-name", "City water board"),
    ] {
        let element = client.find(Locator::Css(field)).await.unwrap();
        element.send_keys(&format!("{typed}{ENTER}")).await.unwrap();
    }
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/file"),
        "still on the form"
    );
    assert_eq!(value_of(&client, "#f-headline").await, "Water main bur");
    assert!(
        recorded_headlines(&app.feed().await).is_empty(),
        "nothing was filed"
    );

    // Finished, it goes to its preview: exactly what readers and subscribers will get.
    type_into(&client, "#f-headline", "Water main bursts on Main Street").await;
    type_into(
        &client,
        "#f-body",
        "Traffic is diverted around the flooded junction.",
    )
    .await;
    choose(&client, "#f-source-kind", "official_statement").await;
    choose(&client, "#f-evidence", "documentary").await;
    choose(&client, "#f-urgency", "flash").await;
    press(&client, "form[action$='/developments'] button[type=submit]").await;
    let preview = wait_for(
        &client,
        "//main[.//h1[.='Check it before publishing']]",
        "the preview",
    )
    .await;
    let text = preview.text().await.unwrap();
    for shown in [
        "Water main bursts on Main Street",
        "Traffic is diverted around the flooded junction.",
        "Hack reported",
        "Flash",
        "City water board",
        "Official statement",
        "Documentary evidence",
        "Who is alerted",
    ] {
        assert!(text.contains(shown), "the preview shows {shown:?}: {text}");
    }
    screenshot(&client, "desk-file-preview").await;
    assert!(
        recorded_headlines(&app.feed().await).is_empty(),
        "nothing was filed"
    );

    // "Change it" keeps every field; the preview's own button publishes.
    press(&client, "button[name='step'][value='edit']").await;
    wait_for(&client, "//select[@id='f-kind']", "the form again").await;
    assert_eq!(
        value_of(&client, "#f-headline").await,
        "Water main bursts on Main Street"
    );
    assert_eq!(value_of(&client, "#f-urgency").await, "flash");
    press(&client, "form[action$='/developments'] button[type=submit]").await;
    wait_for(
        &client,
        "//h1[.='Check it before publishing']",
        "the preview again",
    )
    .await;
    press(&client, "button[name='confirm'][value='file']").await;
    wait_for(
        &client,
        "//div[@role='status']//a[.='See it on the reader page']",
        "published",
    )
    .await;
    assert_eq!(
        recorded_headlines(&app.feed().await),
        ["Water main bursts on Main Street"]
    );
    client.close().await.unwrap();

    // Without JavaScript, Enter in a field sends the form to its preview, never to readers.
    let plain = browser_without_script(&driver).await;
    sign_in_at_desk(&plain, &base, &app.reporter).await;
    plain
        .goto(&format!("{base}/desk/stories/{story}/file"))
        .await
        .unwrap();
    wait_for(&plain, "//select[@id='f-kind']", "the filing form").await;
    choose(&plain, "#f-kind", "update").await;
    let headline = plain.find(Locator::Css("#f-headline")).await.unwrap();
    headline
        .send_keys(&format!("Second water main bur{ENTER}"))
        .await
        .unwrap();
    wait_for(
        &plain,
        "//h1[.='Check it before publishing']",
        "Enter without script shows the preview",
    )
    .await;
    assert_eq!(
        recorded_headlines(&app.feed().await),
        ["Water main bursts on Main Street"],
        "the half-typed filing was not filed"
    );
    plain.close().await.unwrap();
}

/// Fills in the whole filing form.
async fn fill_filing(client: &fantoccini::Client, headline: &str) {
    choose(client, "#f-kind", "statement_issued").await;
    type_into(client, "#f-headline", headline).await;
    type_into(
        client,
        "#f-body",
        "A long filing from a phone.\nSecond paragraph, typed on a bus.",
    )
    .await;
    type_into(client, "#f-actor-1", "Interior ministry").await;
    type_into(client, "#f-actor-2", "Campaign A").await;
    type_into(client, "#f-source-name", "Ministry spokesperson").await;
    choose(client, "#f-source-kind", "official_statement").await;
    choose(client, "#f-evidence", "documentary").await;
    choose(client, "#f-urgency", "routine").await;
}

/// Checks that the filing form holds what `fill_filing` typed.
async fn assert_filled(client: &fantoccini::Client, headline: &str) {
    for (field, value) in [
        ("#f-kind", "statement_issued"),
        ("#f-headline", headline),
        (
            "#f-body",
            "A long filing from a phone.\nSecond paragraph, typed on a bus.",
        ),
        ("#f-actor-1", "Interior ministry"),
        ("#f-actor-2", "Campaign A"),
        ("#f-source-name", "Ministry spokesperson"),
        ("#f-source-kind", "official_statement"),
        ("#f-evidence", "documentary"),
        ("#f-urgency", "routine"),
    ] {
        assert_eq!(value_of(client, field).await, value, "{field}");
    }
}

#[tokio::test]
async fn a_lapsed_session_keeps_the_filing_and_signing_in_returns_to_it() {
    let Some(driver) = driver() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let story = app.open_story(false).await;
    let client = browser(&driver).await;
    sign_in_at_desk(&client, &base, &app.reporter).await;
    client
        .goto(&format!("{base}/desk/stories/{story}/file"))
        .await
        .unwrap();
    wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
    fill_filing(&client, "Ministry confirms the breach in part").await;
    // The sign-in lapses while the reporter types (the browser drops the expired cookie).
    client.delete_cookie("newsroom_desk").await.unwrap();
    press(&client, "form[action$='/developments'] button[type=submit]").await;
    wait_for(
        &client,
        "//div[@role='status' and contains(., 'nothing was recorded')]",
        "the sign-in page says the form is kept",
    )
    .await;
    assert!(recorded_headlines(&app.feed().await).is_empty());
    type_into(&client, "#f-token", &app.reporter).await;
    press(&client, "#token-sign-in button[type=submit]").await;
    wait_for(
        &client,
        "//div[contains(@class, 'error-summary')][contains(., 'Your sign-in had ended')]",
        "back on the form, told why",
    )
    .await;
    assert_filled(&client, "Ministry confirms the breach in part").await;
    screenshot(&client, "desk-file-kept").await;

    press(&client, "form[action$='/developments'] button[type=submit]").await;
    wait_for(
        &client,
        "//h1[.='Check it before publishing']",
        "the preview",
    )
    .await;
    press(&client, "button[name='confirm'][value='file']").await;
    wait_for(
        &client,
        "//div[@role='status']//a[.='See it on the reader page']",
        "filed",
    )
    .await;
    assert_eq!(
        recorded_headlines(&app.feed().await),
        ["Ministry confirms the breach in part"]
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn the_filing_form_keeps_a_draft_in_the_browser_until_it_is_filed() {
    let Some(driver) = driver() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let story = app.open_story(false).await;
    let form = format!("{base}/desk/stories/{story}/file");
    let client = browser(&driver).await;
    sign_in_at_desk(&client, &base, &app.reporter).await;
    client.goto(&form).await.unwrap();
    wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
    fill_filing(&client, "Ministry confirms the breach in part").await;

    // The reporter leaves the page without sending it, and opens the form again later.
    client.goto(&format!("{base}/desk")).await.unwrap();
    wait_for(&client, "//h1[.='Stories']", "the desk").await;
    client.goto(&form).await.unwrap();
    wait_for(
        &client,
        "//div[@role='status' and contains(., 'Your unsent draft')]",
        "the draft is restored, and says so",
    )
    .await;
    assert_filled(&client, "Ministry confirms the breach in part").await;
    screenshot(&client, "desk-file-draft").await;

    // Filed, the draft is gone: the next form opens empty.
    press(&client, "form[action$='/developments'] button[type=submit]").await;
    wait_for(
        &client,
        "//h1[.='Check it before publishing']",
        "the preview",
    )
    .await;
    press(&client, "button[name='confirm'][value='file']").await;
    wait_for(
        &client,
        "//div[@role='status']//a[.='See it on the reader page']",
        "filed",
    )
    .await;
    client.goto(&form).await.unwrap();
    wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
    assert_eq!(value_of(&client, "#f-headline").await, "");
    let notices = client
        .find_all(Locator::Css(".draft-notice"))
        .await
        .unwrap();
    assert!(notices.is_empty(), "no draft is offered");
    assert_eq!(
        recorded_headlines(&app.feed().await),
        ["Ministry confirms the breach in part"]
    );
    client.close().await.unwrap();
}

/// The server holds an older draft than the browser: typed after the sign-in lapsed, the rest
/// never reached the server. Signed in again, the form opens with the browser's newer draft
/// (and says so), not the server's older one.
#[tokio::test]
async fn typing_the_server_never_got_comes_back_from_the_browser_over_its_older_draft() {
    let Some(driver) = driver() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let story = app.open_story(false).await;
    let form = format!("{base}/desk/stories/{story}/file");
    let client = browser(&driver).await;
    sign_in_at_desk(&client, &base, &app.reporter).await;
    client.goto(&form).await.unwrap();
    wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
    type_into(&client, "#f-headline", "Ferry service suspended").await;
    let desk = app.desk_sign_in(&app.reporter).await;
    let server_form = || async {
        app.desk_text(Some(&desk), &format!("/desk/stories/{story}/file"))
            .await
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !server_form()
        .await
        .contains(r#"value="Ferry service suspended""#)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the headline never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The sign-in lapses; what is typed now cannot reach the server.
    client.delete_cookie("newsroom_desk").await.unwrap();
    type_into(&client, "#f-body", "Typed after the sign-in had ended.").await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(!server_form()
        .await
        .contains("Typed after the sign-in had ended."));

    sign_in_at_desk(&client, &base, &app.reporter).await;
    client.goto(&form).await.unwrap();
    wait_for(
        &client,
        "//div[@role='status' and contains(., 'Your unsent draft')]",
        "the browser's newer draft is back, and says so",
    )
    .await;
    assert_eq!(
        value_of(&client, "#f-headline").await,
        "Ferry service suspended"
    );
    assert_eq!(
        value_of(&client, "#f-body").await,
        "Typed after the sign-in had ended."
    );
    let older = client
        .find_all(Locator::XPath(
            "//div[@role='status'][contains(., 'Your draft, saved')]",
        ))
        .await
        .unwrap();
    assert!(
        older.is_empty(),
        "the server's older draft is not offered beside it"
    );
    assert!(recorded_headlines(&app.feed().await).is_empty());
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_rejected_filing_is_revised_and_refiled_from_the_reporters_desk() {
    let Some(driver) = driver() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let story = app.open_story(true).await;
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
    let head = app.head().await;
    app.story_at(&story, head).await;

    let client = browser(&driver).await;
    sign_in_at_desk(&client, &base, &app.reporter).await;
    let item = wait_for(
        &client,
        "//li[contains(@class, 'rejected-filing')][contains(., 'Needs a second source.')]",
        "the desk home lists the rejected filing with its reason",
    )
    .await;
    screenshot(&client, "desk-rejected").await;
    item.find(Locator::Css("a[href*='/file?from=']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &client,
        "//div[@role='status' and contains(., 'You are revising a rejected filing')]",
        "the form says what it is",
    )
    .await;
    assert_eq!(
        value_of(&client, "#f-headline").await,
        "Campaign A says its email was breached"
    );
    assert_eq!(value_of(&client, "#f-kind").await, "statement_issued");
    assert_eq!(value_of(&client, "#f-actor-2").await, "Fancy Bear");
    type_into(&client, "#f-source-name", "Police spokesperson").await;
    press(&client, "form[action$='/developments'] button[type=submit]").await;
    wait_for(
        &client,
        "//h1[.='Check it before filing it for review']",
        "the preview",
    )
    .await;
    press(&client, "button[name='confirm'][value='file']").await;
    wait_for(
        &client,
        "//div[@role='status' and contains(., 'waits for an editor')]",
        "filed again, for review",
    )
    .await;
    let feed = app.feed().await;
    let refiled = &feed.last().unwrap()["payload"]["DevelopmentRecorded"]["development"];
    assert_eq!(refiled["source"]["name"], "Police spokesperson");
    assert_ne!(refiled["id"], dev.as_str());
    client.close().await.unwrap();
}

/// On a phone: an editor signed in with their token chooses a sign-in name and password at the
/// desk, signs out, and signs in again with the name and password alone, pressing Enter in the
/// password field; axe-core finds nothing on either page.
#[tokio::test]
async fn staff_choose_a_password_at_the_desk_and_sign_in_with_it_on_a_phone() {
    let Some(driver) = driver() else { return };
    let Some(axe) = newsroom_testkit::chrome::axe_script() else {
        return;
    };
    let app = spawn_app().await;
    let base = app.address.clone();
    let client = browser(&driver).await;
    client.set_window_size(390, 844).await.unwrap();
    sign_in_at_desk(&client, &base, &app.editor).await;
    click_link(&client, "Password").await;
    wait_for(
        &client,
        "//h1[.='Sign-in name and password']",
        "the password page",
    )
    .await;
    let violations = newsroom_testkit::chrome::axe_violations(&client, &axe).await;
    assert!(violations.is_empty(), "password page: {violations:#?}");
    type_into(&client, "#f-login", "ed.editor").await;
    type_into(&client, "#f-password", "four random words here").await;
    type_into(&client, "#f-repeat", "four random words here").await;
    press(&client, "form[action='/desk/password'] button[type=submit]").await;
    wait_for(
        &client,
        "//div[@role='status' and contains(., 'Saved')]",
        "the password is saved",
    )
    .await;
    screenshot(&client, "desk-password-saved").await;
    press(&client, "form.sign-out button").await;
    wait_for(
        &client,
        "//input[@id='f-login']",
        "signed out, the sign-in form",
    )
    .await;
    let violations = newsroom_testkit::chrome::axe_violations(&client, &axe).await;
    assert!(violations.is_empty(), "sign-in page: {violations:#?}");
    type_into(&client, "#f-login", "Ed.Editor").await;
    let field = client.find(Locator::Css("#f-password")).await.unwrap();
    field
        .send_keys("four random words here\u{E007}")
        .await
        .unwrap();
    wait_for(
        &client,
        "//h1[.='Stories']",
        "signed in with a name and password",
    )
    .await;
    screenshot(&client, "desk-signed-in-by-password").await;
    client.close().await.unwrap();
}

/// On a phone, nothing on the desk's pages is too small to tap (44 × 44 CSS pixels): the desk
/// home, the filing form, a story's desk page with a pending filing, the review queue and the
/// approval preview.
#[tokio::test]
async fn nothing_on_the_desk_is_too_small_to_tap_on_a_phone() {
    let Some(driver) = driver() else { return };
    let (app, story) = spawn_app_with_story(true).await;
    let filed = app.record(&story, development("update")).await;
    let dev = filed.ok(201)["id"].as_str().unwrap().to_owned();
    let base = app.address.clone();
    let client = browser(&driver).await;
    client.set_window_size(390, 844).await.unwrap();
    sign_in_at_desk(&client, &base, &app.editor).await;
    let pages = [
        ("/desk".to_owned(), "//h1[.='Stories']"),
        (
            format!("/desk/stories/{story}/file"),
            "//select[@id='f-kind']",
        ),
        (format!("/desk/stories/{story}"), "//h1"),
        ("/desk/review".to_owned(), "//h1[.='Review queue']"),
        (
            format!("/desk/stories/{story}/developments/{dev}/approve"),
            "//h1",
        ),
        ("/desk/password".to_owned(), "//h1"),
    ];
    let mut small = Vec::new();
    for (path, ready) in &pages {
        client.goto(&format!("{base}{path}")).await.unwrap();
        wait_for(&client, ready, path).await;
        let name = path.rsplit('/').next().unwrap_or("desk");
        screenshot(
            &client,
            &format!("desk-phone-{}", name.chars().take(12).collect::<String>()),
        )
        .await;
        for target in newsroom_testkit::chrome::small_tap_targets(&client).await {
            small.push(format!("{path}: {target}"));
        }
    }
    assert!(
        small.is_empty(),
        "too small to tap on a phone:\n{}",
        small.join("\n")
    );
    client.close().await.unwrap();
}

/// A reporter with the desk open sees, without reloading, that an editor approved their filing.
#[tokio::test]
async fn a_reporter_sees_live_at_the_desk_that_their_filing_was_approved() {
    let Some(driver) = driver() else { return };
    let (app, story) = spawn_app_with_story(true).await;
    let mut filing = development("update");
    filing["headline"] = json!("Prosecutors file charges");
    let id = filing["id"].as_str().unwrap().to_owned();
    app.record_as(&app.reporter, &story, filing).await.ok(201);
    let base = app.address.clone();
    let client = browser(&driver).await;
    sign_in_at_desk(&client, &base, &app.reporter).await;
    // The page has asked where the log stands before anything happens.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let approved = app.editor_action(&story, &id, "approval", json!({})).await;
    assert!(approved.status.is_success(), "{:?}", approved.body);
    wait_for(
        &client,
        "//section[@id='desk-notices' and not(@hidden)]//li[contains(., 'Prosecutors file charges') and contains(., 'approved and published')]",
        "the approval is told on the open desk page",
    )
    .await;
    screenshot(&client, "desk-notice-approved").await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn an_embargoed_development_is_marked_at_the_desk_with_a_running_countdown() {
    let Some(driver) = driver() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let story = app.open_story(false).await;
    let mut filing = development("update");
    filing["headline"] = json!("Court ruling released at noon");
    filing["embargo_until"] = json!((chrono::Utc::now() + chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let p = app.record(&story, filing).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    app.story_at(&story, p).await;
    let client = browser(&driver).await;
    sign_in_at_desk(&client, &base, &app.editor).await;
    client
        .goto(&format!("{base}/desk/stories/{story}"))
        .await
        .unwrap();
    wait_for(&client, "//p[@class='embargo']", "the embargo's mark").await;
    let countdown = client
        .find(Locator::Css("p.embargo span.countdown"))
        .await
        .unwrap();
    let first = countdown.text().await.unwrap();
    assert!(
        first.starts_with("(in 1 h 59 min") || first.starts_with("(in 2 h"),
        "{first}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = countdown.text().await.unwrap();
    assert_ne!(first, second, "the countdown runs");
    screenshot(&client, "desk-embargoed").await;
}

/// Two editors race on a filing waiting for review: Eda opens "Edit before approving" and subs
/// the headline; meanwhile Otto, told that Eda is at work on it, approves it; Eda saves. Her save
/// is refused with both versions shown (what Otto did, and her own change kept on top, now as a
/// correction readers would see), and nothing she typed reaches readers.
#[tokio::test]
async fn two_editors_racing_an_edit_before_approval_never_publish_the_edit_as_a_correction() {
    let Some(driver) = driver() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let story = app.open_story(true).await;
    let mut filing = development("update");
    filing["headline"] = json!("Water main bursts on high street");
    let dev = filing["id"].as_str().unwrap().to_owned();
    app.record_as(&app.reporter, &story, filing).await.ok(201);
    let otto = app.create_token("editor", "Otto Editor").await;
    let correct = format!("{base}/desk/stories/{story}/developments/{dev}/correct");
    let approve = format!("{base}/desk/stories/{story}/developments/{dev}/approve");

    // Eda opens the edit and types.
    let eda_browser = browser(&driver).await;
    sign_in_at_desk(&eda_browser, &base, &app.editor).await;
    eda_browser.goto(&correct).await.unwrap();
    wait_for(
        &eda_browser,
        "//h1[contains(., 'Edit before approving')]",
        "the edit form",
    )
    .await;
    type_into(
        &eda_browser,
        "#f-changes-headline",
        "Water main bursts on High Street",
    )
    .await;
    type_into(&eda_browser, "#f-note", "Subbed headline to house style.").await;

    // Otto opens the approval: it names Eda at work on it; he approves all the same.
    let otto_browser = browser(&driver).await;
    sign_in_at_desk(&otto_browser, &base, &otto.token).await;
    otto_browser.goto(&approve).await.unwrap();
    wait_for(
        &otto_browser,
        "//div[contains(@class, 'presence')]//strong[.='Eda Editor']",
        "the approval page says Eda is at work on it",
    )
    .await;
    press(&otto_browser, "button[name='confirm'][value='approve']").await;
    wait_for(
        &otto_browser,
        "//div[@role='status'][contains(., 'Approved and published')]",
        "approved",
    )
    .await;
    otto_browser.close().await.unwrap();

    // Eda saves: refused, with what Otto did and her own change still in the form.
    press(&eda_browser, "button[name='confirm'][value='correct']").await;
    let refused = wait_for(
        &eda_browser,
        "//main[.//*[contains(., 'Someone changed it since you opened this form')]]",
        "the save is refused",
    )
    .await;
    let text = refused.text().await.unwrap();
    for shown in [
        "Otto Editor approved it",
        "It is published now.",
        "Nothing of yours was saved.",
        "Correction note",
    ] {
        assert!(text.contains(shown), "{shown:?} in: {text}");
    }
    assert_eq!(
        value_of(&eda_browser, "#f-changes-headline").await,
        "Water main bursts on High Street",
        "her change is kept"
    );
    assert_eq!(
        value_of(&eda_browser, "#f-note").await,
        "Subbed headline to house style."
    );
    screenshot(&eda_browser, "desk-race-refused").await;
    eda_browser.close().await.unwrap();

    // Readers see the approved version, and no correction.
    let resource = app.read_story(&story).await;
    let timeline = resource.ok(200)["timeline"].as_array().unwrap().clone();
    assert_eq!(timeline[0]["headline"], "Water main bursts on high street");
    assert!(timeline[0]["corrections"]
        .as_array()
        .is_none_or(|c| c.is_empty()));
    let feed = app.feed().await;
    assert!(feed
        .iter()
        .all(|e| e["event_type"] != "DevelopmentCorrected" && e["event_type"] != "FilingEdited"));
    let page = app
        .client
        .get(format!("{base}/v1/stories/{story}/feed.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Subbed headline") && !page.contains("High Street"));
}

/// Publishing at the desk with an undo window: the notice counts down, its Undo takes the filing
/// back before anyone sees it, and the filing form comes back with the text.
#[tokio::test]
async fn publishing_at_the_desk_can_be_undone_during_its_window() {
    use newsroom_notifier::ManualClock;
    let Some(driver) = driver() else { return };
    // The test holds the clock: the window never ends on its own while it looks.
    let clock = std::sync::Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = {
        let clock = clock.clone();
        spawn_app_with(move |s| {
            s.clock = clock;
            s.desk_undo = Some(newsroom_domain::Hold::parse("desk_undo_secs", 30).unwrap());
        })
        .await
    };
    let base = app.address.clone();
    let story = app.open_story(false).await;
    let client = browser(&driver).await;
    sign_in_at_desk(&client, &base, &app.reporter).await;
    client
        .goto(&format!("{base}/desk/stories/{story}/file"))
        .await
        .unwrap();
    wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
    fill_filing(&client, "Water main bursts on Main Street").await;
    press(&client, "form[action$='/developments'] button[type=submit]").await;
    let preview = wait_for(
        &client,
        "//h1[.='Check it before publishing']/..",
        "the preview",
    )
    .await;
    assert!(preview
        .text()
        .await
        .unwrap()
        .contains("30 seconds later; until then you can undo it"));
    press(&client, "button[name='confirm'][value='file']").await;
    let left = wait_for(
        &client,
        "//div[@role='status']//span[contains(@class, 'countdown-left')]",
        "the undo window's notice",
    )
    .await;
    let first = left.text().await.unwrap();
    assert!(first.ends_with(" s"), "{first}");
    // The notice with its button is usable: axe-core, and on a phone a target a thumb can hit.
    if let Some(axe) = newsroom_testkit::chrome::axe_script() {
        for (width, height) in [(390, 844), (1200, 900)] {
            client.set_window_size(width, height).await.unwrap();
            let violations = newsroom_testkit::chrome::axe_violations(&client, &axe).await;
            assert!(violations.is_empty(), "at {width}: {violations:#?}");
            if width < 600 {
                let small = newsroom_testkit::chrome::small_tap_targets(&client).await;
                assert!(small.is_empty(), "too small to tap on a phone: {small:#?}");
            }
        }
    }
    let seconds = |t: &str| t.trim_end_matches(" s").parse::<u32>().unwrap();
    assert!(seconds(&first) <= 30, "{first}");
    screenshot(&client, "desk-undo-window").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = left.text().await.unwrap();
    assert!(
        seconds(&second) < seconds(&first),
        "counts down: {first} then {second}"
    );
    assert!(
        !app.read_story(&story)
            .await
            .body
            .to_string()
            .contains("Water main bursts"),
        "readers see nothing yet"
    );

    press(&client, "form.undo-form button[type=submit]").await;
    wait_for(
        &client,
        "//div[@role='status'][contains(., 'Undone: it was not published')]",
        "the form comes back",
    )
    .await;
    assert_filled(&client, "Water main bursts on Main Street").await;
    let feed = app.feed().await;
    assert!(feed
        .iter()
        .any(|e| e["event_type"] == "DevelopmentRejected"));
    assert!(feed.iter().all(|e| e["event_type"] != "EmbargoLifted"));
    client.close().await.unwrap();
}

/// The filing form is saved on the server as it is typed: signed in again on another browser
/// (no local draft there), the reporter finds the form as they left it.
#[tokio::test]
async fn a_filing_typed_in_one_browser_is_back_in_another_after_signing_in_again() {
    let Some(driver) = driver() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let story = app.open_story(false).await;
    let phone = browser(&driver).await;
    sign_in_at_desk(&phone, &base, &app.reporter).await;
    phone
        .goto(&format!("{base}/desk/stories/{story}/file"))
        .await
        .unwrap();
    wait_for(&phone, "//select[@id='f-kind']", "the filing form").await;
    fill_filing(&phone, "Harbour wall breached at high tide").await;
    // desk.js sends the draft a second after the typing stops: wait until the server has all
    // of it (a pause between two fields may have sent a part of it first).
    let desk = app.desk_sign_in(&app.reporter).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let form = app
            .desk_text(Some(&desk), &format!("/desk/stories/{story}/file"))
            .await;
        if form.contains("Your draft, saved")
            && form.contains("Second paragraph, typed on a bus.")
            && form.contains(r#"value="Ministry spokesperson""#)
            && form.contains(r#"<option value="documentary" selected>"#)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saved: {form}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The phone's session lapses and the phone is gone; another browser, signed in again.
    phone.delete_cookie("newsroom_desk").await.unwrap();
    phone.close().await.unwrap();
    let laptop = browser(&driver).await;
    sign_in_at_desk(&laptop, &base, &app.reporter).await;
    laptop
        .goto(&format!("{base}/desk/stories/{story}/file"))
        .await
        .unwrap();
    wait_for(
        &laptop,
        "//div[@role='status'][contains(., 'Your draft, saved')]",
        "the draft is back, told",
    )
    .await;
    assert_filled(&laptop, "Harbour wall breached at high tide").await;
    assert!(
        recorded_headlines(&app.feed().await).is_empty(),
        "nothing filed"
    );
    laptop.close().await.unwrap();
}

/// Presses "Try now", unless the page's own next try got there first and the answer already
/// replaced the page (the button is then gone).
async fn try_now(client: &fantoccini::Client) {
    if let Ok(button) = client.find(Locator::Css("div.send-retry button")).await {
        let _ = button.click().await;
    }
}

/// A reporter on a bad connection files, and the desk keeps trying with the same development id
/// until it is accepted: the first answer is lost on the way back (the filing was done), then
/// the connection is refused, then a gateway answers 503; the page says so each time, and once
/// the line is back the reporter lands where a filing lands, filed once.
#[tokio::test]
async fn a_filing_on_a_bad_connection_is_sent_again_until_the_desk_answers_and_filed_once() {
    use newsroom_notifier::ManualClock;
    use newsroom_testkit::flaky::{FlakyProxy, Line};
    let Some(driver) = driver() else { return };
    // The test holds the clock: the undo window stays open while it looks.
    let clock = std::sync::Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = {
        let clock = clock.clone();
        spawn_app_with(move |s| {
            s.clock = clock;
            s.desk_undo = Some(newsroom_domain::Hold::parse("desk_undo_secs", 30).unwrap());
        })
        .await
    };
    let story = app.open_story(false).await;
    let proxy = FlakyProxy::start(&app.address).await;
    let base = proxy.address.clone();
    let client = browser(&driver).await;
    sign_in_at_desk(&client, &base, &app.reporter).await;
    client
        .goto(&format!("{base}/desk/stories/{story}/file"))
        .await
        .unwrap();
    wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
    let headline = "Bridge closed after a barge strike";
    fill_filing(&client, headline).await;
    press(&client, "form[action$='/developments'] button[type=submit]").await;
    wait_for(
        &client,
        "//h1[.='Check it before publishing']",
        "the preview",
    )
    .await;
    let id = value_of(&client, "form[data-retry] input[name='id']").await;

    // The request arrives and is filed; its answer never comes back.
    proxy.set(Line::AnswersLost);
    press(&client, "button[name='confirm'][value='file']").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while proxy.answers_lost() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing reached the app"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.set(Line::Refused);
    let said = wait_for(
        &client,
        "//p[@id='send-status' and @role='status'][starts-with(., 'Not sent yet')]",
        "the status region says it was not sent",
    )
    .await;
    let text = said.text().await.unwrap_or_default();
    let status = client
        .execute(
            "return document.getElementById('send-status').textContent;",
            vec![],
        )
        .await
        .unwrap();
    let status = status.as_str().unwrap().to_owned();
    assert!(
        status.contains("trying again in") || status.contains("sending it again"),
        "{status} {text}"
    );
    let shown = wait_for(
        &client,
        "//div[contains(@class, 'send-retry')][contains(., 'Not sent yet')]",
        "the page shows it was not sent",
    )
    .await;
    assert!(shown.is_displayed().await.unwrap());
    // Tried again and refused, with a longer wait before the next try.
    wait_for(
        &client,
        "//p[@id='send-status'][contains(., 'no connection') and contains(., 'trying again in 2 s')]",
        "a refused retry, and a longer wait",
    )
    .await;
    assert!(proxy.refused() > 0, "the retry met the refusal");
    if let Some(axe) = newsroom_testkit::chrome::axe_script() {
        let violations = newsroom_testkit::chrome::axe_violations(&client, &axe).await;
        assert!(violations.is_empty(), "{violations:#?}");
    }
    screenshot(&client, "desk-filing-not-sent").await;
    // A gateway in front of an app that is down: 503, also tried again.
    proxy.set(Line::Unavailable);
    wait_for(
        &client,
        "//p[@id='send-status'][contains(., 'answered 503')]",
        "a gateway's 503 is tried again",
    )
    .await;
    let recorded = recorded_headlines(&app.feed().await);
    assert_eq!(
        recorded,
        vec![headline.to_owned()],
        "filed by the first try"
    );

    // The line is back: "Try now" sends it at once, and the desk answers.
    proxy.set(Line::Up);
    try_now(&client).await;
    wait_for(
        &client,
        "//div[@role='status']//span[contains(@class, 'countdown-left')]",
        "landed on the story's desk page, with the undo window's notice",
    )
    .await;
    let url = client.current_url().await.unwrap();
    assert_eq!(url.path(), format!("/desk/stories/{story}"));
    let query = url.query().unwrap_or_default();
    assert!(
        query.contains("notice=held") && query.contains(&format!("development={id}")),
        "{url}"
    );
    let feed = app.feed().await;
    assert_eq!(
        recorded_headlines(&feed),
        vec![headline.to_owned()],
        "sent four times, filed once"
    );
    let filed = feed
        .iter()
        .find_map(|e| e["payload"]["DevelopmentRecorded"]["development"]["id"].as_str())
        .unwrap();
    assert_eq!(filed, id);
    client.close().await.unwrap();
}

/// A desk answer that is not a redirect (here: the story was closed while the filing waited to
/// be sent again) is shown as the page: the filing form with the refusal, the text kept.
#[tokio::test]
async fn a_filing_sent_again_into_a_refusal_shows_the_desks_answer_with_the_text_kept() {
    use newsroom_testkit::flaky::{FlakyProxy, Line};
    let Some(driver) = driver() else { return };
    let (app, story) = spawn_app_with_story(false).await;
    let proxy = FlakyProxy::start(&app.address).await;
    let base = proxy.address.clone();
    let client = browser(&driver).await;
    sign_in_at_desk(&client, &base, &app.reporter).await;
    client
        .goto(&format!("{base}/desk/stories/{story}/file"))
        .await
        .unwrap();
    wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
    let headline = "Ferry service suspended in the storm";
    fill_filing(&client, headline).await;
    press(&client, "form[action$='/developments'] button[type=submit]").await;
    wait_for(
        &client,
        "//h1[.='Check it before publishing']",
        "the preview",
    )
    .await;
    proxy.set(Line::Refused);
    press(&client, "button[name='confirm'][value='file']").await;
    wait_for(
        &client,
        "//p[@id='send-status'][starts-with(., 'Not sent yet')]",
        "not sent",
    )
    .await;
    app.story_action(&app.editor, &story, "close", None)
        .await
        .ok(200);
    proxy.set(Line::Up);
    try_now(&client).await;
    wait_for(
        &client,
        "//div[contains(@class, 'error-summary')][contains(., 'closed')]",
        "the desk's answer, the form with its refusal, is shown",
    )
    .await;
    assert_filled(&client, headline).await;
    assert!(
        recorded_headlines(&app.feed().await).is_empty(),
        "nothing filed"
    );
    // The page shown is the desk's own, its script running again: Enter still files nothing.
    let field = client.find(Locator::Css("#f-headline")).await.unwrap();
    field.send_keys(ENTER).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(client.find(Locator::Css("#f-headline")).await.is_ok());
    assert!(client
        .find(Locator::XPath("//h1[.='Check it before publishing']"))
        .await
        .is_err());
    client.close().await.unwrap();
}

/// axe-core (WCAG 2.2 A/AA) finds nothing moderate, serious or critical on any page of the desk,
/// at phone and desktop sizes: the reporter's home with a rejected filing, the revise page, the
/// filing form and its preview, the undo page of a held filing and of a held approval, the
/// story's desk page, the review queue, the approval, correction and retraction pages, the
/// search, the password page and the sign-in page.
#[tokio::test]
async fn axe_finds_nothing_on_any_desk_page_at_phone_and_desktop_sizes() {
    use newsroom_notifier::ManualClock;
    let Some(driver) = driver() else { return };
    let Some(axe) = newsroom_testkit::chrome::axe_script() else {
        return;
    };
    let clock = std::sync::Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = {
        let clock = clock.clone();
        spawn_app_with(move |s| {
            s.clock = clock;
            s.desk_undo = Some(newsroom_domain::Hold::parse("desk_undo_secs", 30).unwrap());
        })
        .await
    };
    let base = app.address.clone();
    let reviewed = app.open_story(true).await;
    let open = app.open_story(false).await;
    // A rejected filing, a pending one, one approved in its undo window, a published one and a
    // reporter's filing held for its window.
    let rejected = development("statement_issued");
    let rejected_id = rejected["id"].as_str().unwrap().to_owned();
    app.record(&reviewed, rejected).await.ok(201);
    app.editor_action(
        &reviewed,
        &rejected_id,
        "rejection",
        json!({"reason": "Needs a second source."}),
    )
    .await
    .ok(200);
    let pending = development("update");
    let pending_id = pending["id"].as_str().unwrap().to_owned();
    app.record(&reviewed, pending).await.ok(201);
    let approved = development("update");
    let approved_id = approved["id"].as_str().unwrap().to_owned();
    app.record(&reviewed, approved).await.ok(201);
    app.editor_action(
        &reviewed,
        &approved_id,
        "approval",
        json!({"hold_seconds": 30}),
    )
    .await
    .ok(200);
    let published = development("update");
    let published_id = published["id"].as_str().unwrap().to_owned();
    app.record_as(&app.editor, &reviewed, published)
        .await
        .ok(201);
    let mut held = development("update");
    held["hold_seconds"] = json!(30);
    let held_id = held["id"].as_str().unwrap().to_owned();
    app.record(&open, held).await.ok(201);
    let head = app.head().await;
    app.story_at(&reviewed, head).await;

    let mut found = Vec::new();
    async fn sweep(client: &fantoccini::Client, axe: &str, what: &str, found: &mut Vec<String>) {
        for (width, height) in [(390, 844), (1200, 900)] {
            client.set_window_size(width, height).await.unwrap();
            for v in newsroom_testkit::chrome::axe_violations(client, axe).await {
                found.push(format!("{what} at {width} px: {v}"));
            }
        }
    }
    let client = browser(&driver).await;

    // The reporter's pages.
    sign_in_at_desk(&client, &base, &app.reporter).await;
    wait_for(
        &client,
        "//li[contains(@class, 'rejected-filing')]",
        "the rejected filing",
    )
    .await;
    sweep(&client, &axe, "the reporter's home", &mut found).await;
    let reporter_pages = [
        (
            format!("/desk/stories/{reviewed}/file?from={rejected_id}"),
            "//div[@role='status' and contains(., 'You are revising')]",
            "the revise page",
        ),
        (
            format!("/desk/stories/{open}/developments/{held_id}/undo"),
            "//form[contains(@class, 'undo-form')]",
            "the undo page of a held filing",
        ),
        (
            format!("/desk/stories/{open}/file"),
            "//select[@id='f-kind']",
            "the filing form",
        ),
    ];
    for (path, ready, what) in &reporter_pages {
        client.goto(&format!("{base}{path}")).await.unwrap();
        wait_for(&client, ready, what).await;
        sweep(&client, &axe, what, &mut found).await;
    }
    fill_filing(&client, "Ferry service suspended").await;
    press(&client, "form[action$='/developments'] button[type=submit]").await;
    wait_for(
        &client,
        "//h1[.='Check it before publishing']",
        "the preview",
    )
    .await;
    sweep(&client, &axe, "the filing's preview", &mut found).await;
    press(&client, "form.sign-out button").await;
    wait_for(&client, "//input[@id='f-token']", "signed out").await;
    sweep(&client, &axe, "the sign-in page", &mut found).await;

    // The editor's.
    sign_in_at_desk(&client, &base, &app.editor).await;
    sweep(&client, &axe, "the editor's home", &mut found).await;
    let dev =
        |id: &str, action: &str| format!("/desk/stories/{reviewed}/developments/{id}/{action}");
    let editor_pages = [
        (
            format!("/desk/stories/{reviewed}"),
            "//h1".to_owned(),
            "the story's desk page",
        ),
        (
            "/desk/review".to_owned(),
            "//h1[.='Review queue']".to_owned(),
            "the review queue",
        ),
        (
            dev(&pending_id, "approve"),
            "//h1[.='Approve and publish']".to_owned(),
            "the approval page",
        ),
        (
            dev(&approved_id, "undo"),
            "//form[contains(@class, 'undo-form')]".to_owned(),
            "the undo page of a held approval",
        ),
        (
            dev(&published_id, "correct"),
            "//h1".to_owned(),
            "the correction form",
        ),
        (
            dev(&published_id, "retract"),
            "//h1".to_owned(),
            "the retraction form",
        ),
        (
            "/desk/search?q=breached".to_owned(),
            "//h1".to_owned(),
            "the search",
        ),
        (
            "/desk/password".to_owned(),
            "//h1".to_owned(),
            "the password page",
        ),
    ];
    for (path, ready, what) in &editor_pages {
        client.goto(&format!("{base}{path}")).await.unwrap();
        wait_for(&client, ready, what).await;
        sweep(&client, &axe, what, &mut found).await;
    }
    assert!(found.is_empty(), "axe-core finds:\n{}", found.join("\n"));
    client.close().await.unwrap();
}
