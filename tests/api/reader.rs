//! A reader of a breaking story, in headless Chromium at phone and desktop sizes: newest first
//! with a switch to the order things happened, live additions at the top, marked and announced,
//! key events, "last updated" kept current, times in the reader's own time zone with UTC on
//! hover, the same counts on the front page and the story page, 44-pixel tap targets on a phone,
//! and axe-core finding nothing moderate, serious or critical.

use fantoccini::{Client, Locator};
use newsroom_testkit::chrome::{
    axe_script, axe_violations, browser, choose, click_link, driver, driver_in_zone,
    file_through_preview, open_story_at_desk, press, screenshot, sign_in_at_desk,
    small_tap_targets, type_into, value_of, wait_for,
};
use newsroom_testkit::prelude::*;
use serde_json::{json, Value};

const PHONE: (u32, u32) = (390, 844);
const DESKTOP: (u32, u32) = (1200, 900);

/// A development the editor files (published at once), of `urgency`, at `occurred_at` (now when
/// `None`).
fn filed(headline: &str, urgency: &str, occurred_at: Option<&str>) -> Value {
    let mut d = development("statement_issued");
    d["headline"] = json!(headline);
    d["urgency"] = json!(urgency);
    match occurred_at {
        Some(at) => d["occurred_at"] = json!(at),
        None => {
            d.as_object_mut().unwrap().remove("occurred_at");
        }
    }
    d
}

async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

/// The headlines of the timeline's items, top to bottom.
async fn headlines(client: &Client) -> Vec<String> {
    serde_json::from_value(
        js(
            client,
            "return Array.from(document.querySelectorAll('#timeline li.timeline-item h3')).map(h => h.textContent.trim());",
        )
        .await,
    )
    .unwrap()
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .trim()
        .to_owned()
}

/// Waits until the story page has its live stream open.
async fn live(client: &Client) {
    wait_for(
        client,
        "//*[@id='live-status' and contains(., 'Live')]",
        "the page says it is live",
    )
    .await;
}

/// A reader page: axe-core finds nothing at `size`, and nothing is too small to tap on a phone.
async fn checked(client: &Client, axe: &str, size: (u32, u32), what: &str) {
    accessible(client, axe, size, what).await;
    if size == PHONE {
        let small = small_tap_targets(client).await;
        assert!(
            small.is_empty(),
            "{what} on a phone: too small to tap {small:#?}"
        );
    }
}

/// axe-core finds nothing moderate, serious or critical on the page at `size`.
async fn accessible(client: &Client, axe: &str, size: (u32, u32), what: &str) {
    client.set_window_size(size.0, size.1).await.unwrap();
    let violations = axe_violations(client, axe).await;
    assert!(
        violations.is_empty(),
        "{what} at {size:?}: axe-core finds {violations:#?}"
    );
}

#[tokio::test]
async fn a_breaking_story_reads_newest_first_with_what_arrives_live_on_top_marked_and_announced() {
    // Kolkata, UTC+05:30: no reading of a time in UTC looks like one there.
    let Some(driver) = driver_in_zone(Some("Asia/Kolkata")) else {
        return;
    };
    let Some(axe) = axe_script() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let answer = app
        .open_story_as(
            &app.editor,
            json!({"slug": "polling-day", "headline": "Polling day",
                   "summary": "Voting across the region.", "review_required": false}),
        )
        .await;
    let story = answer.ok(201)["id"].as_str().unwrap().to_owned();
    let polls = filed(
        "Polls open across the region",
        "routine",
        Some("2026-10-01T04:10:00Z"),
    );
    let polls_id = polls["id"].as_str().unwrap().to_owned();
    for d in [
        polls,
        filed(
            "Turnout system goes down",
            "priority",
            Some("2026-10-01T05:10:00Z"),
        ),
        filed(
            "Officials promise a fix",
            "routine",
            Some("2026-10-01T06:10:00Z"),
        ),
    ] {
        app.record_as(&app.editor, &story, d).await.ok(201);
    }
    let p = app
        .editor_action(
            &story,
            &polls_id,
            "retraction",
            json!({"reason": "Polls opened an hour late."}),
        )
        .await
        .ok(200)["position"]
        .as_i64()
        .unwrap();
    app.story_at(&story, p).await;

    let client = browser(&driver).await;
    client.set_window_size(PHONE.0, PHONE.1).await.unwrap();

    // The front page and the story page count alike: published developments, the retracted
    // one apart.
    client.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(
        text_of(&client, ".story-card .count").await,
        "2 developments"
    );
    checked(&client, &axe, PHONE, "the front page").await;
    checked(&client, &axe, DESKTOP, "the front page").await;
    client.set_window_size(PHONE.0, PHONE.1).await.unwrap();
    let front_time = js(
        &client,
        "const t = document.querySelector('.story-card time'); return [t.textContent, t.title];",
    )
    .await;
    assert!(
        !front_time[0].as_str().unwrap().contains("UTC")
            && front_time[1].as_str().unwrap().ends_with(" UTC"),
        "the front page reads in the reader's time zone, UTC on hover: {front_time}"
    );

    client
        .goto(&format!("{base}/stories/polling-day"))
        .await
        .unwrap();
    assert_eq!(
        text_of(&client, "#timeline .development-count").await,
        "2 developments"
    );
    assert_eq!(
        text_of(&client, "#timeline .retracted-count").await,
        "and 1 retracted, struck through"
    );
    // Newest first.
    assert_eq!(
        headlines(&client).await,
        [
            "Officials promise a fix",
            "Turnout system goes down",
            "Polls open across the region"
        ]
    );
    // 06:10 UTC is 11:40 in Kolkata; hovering shows UTC.
    let happened = js(
        &client,
        "const t = document.querySelector('#timeline li.timeline-item time'); return [t.textContent, t.title, t.getAttribute('datetime')];",
    )
    .await;
    assert_eq!(happened[2], json!("2026-10-01T06:10:00Z"));
    assert!(
        happened[0].as_str().unwrap().contains("11:40"),
        "the reader's own time: {happened}"
    );
    assert!(!happened[0].as_str().unwrap().contains("UTC"), "{happened}");
    assert_eq!(
        happened[1],
        json!("1 October 2026, 06:10 UTC"),
        "UTC on hover"
    );
    checked(&client, &axe, PHONE, "the story page").await;
    let updated_before = js(
        &client,
        "return document.querySelector('#last-updated time').getAttribute('datetime');",
    )
    .await;

    // A flash arrives while the reader is there: on top, marked new, announced, counted, and
    // "last updated" moves — all from the stream, with nothing fetched.
    live(&client).await;
    app.record_as(
        &app.editor,
        &story,
        filed("Results delayed until morning", "flash", None),
    )
    .await
    .ok(201);
    wait_for(
        &client,
        "//ol[contains(@class,'timeline-list')]/li[1][contains(@class,'is-new')]//h3[contains(., 'Results delayed until morning')]",
        "the flash arrives on top, marked new",
    )
    .await;
    let top = text_of(&client, "#timeline li.timeline-item .labels").await;
    assert!(top.starts_with("New"), "{top}");
    // Read as a screen reader does: the region is visually hidden, so WebDriver's text is empty.
    let announced = js(
        &client,
        "return document.getElementById('live-announcer').textContent;",
    )
    .await;
    assert!(
        announced
            .as_str()
            .unwrap()
            .contains("New development: Results delayed until morning"),
        "announced to screen readers: {announced}"
    );
    let region = js(
        &client,
        "const r = document.getElementById('live-announcer'); return r.getAttribute('aria-live');",
    )
    .await;
    assert_eq!(region, json!("polite"));
    assert_eq!(
        text_of(&client, "#timeline .development-count").await,
        "3 developments"
    );
    let updated_after = js(
        &client,
        "const t = document.querySelector('#last-updated time'); return [t.getAttribute('datetime'), t.textContent, t.title];",
    )
    .await;
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(
        at(&updated_after[0]) > at(&updated_before),
        "last updated moved: {updated_before} → {updated_after}"
    );
    assert!(
        !updated_after[1].as_str().unwrap().contains("UTC"),
        "{updated_after}"
    );
    let fetched = js(
        &client,
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/fragment'));",
    )
    .await;
    assert_eq!(fetched, json!([]), "no fragment was fetched");
    checked(&client, &axe, PHONE, "the story page after a live addition").await;
    screenshot(&client, "reader-newest-first-phone").await;

    // Key events: flash and priority only, the live ones too.
    click_link(&client, "Key events").await;
    wait_for(
        &client,
        "//ol[@data-show='key']",
        "the key events are shown",
    )
    .await;
    assert_eq!(
        headlines(&client).await,
        ["Results delayed until morning", "Turnout system goes down"]
    );
    live(&client).await;
    app.record_as(
        &app.editor,
        &story,
        filed("Queues are short", "routine", None),
    )
    .await
    .ok(201);
    app.record_as(
        &app.editor,
        &story,
        filed("Count resumes at dawn", "priority", None),
    )
    .await
    .ok(201);
    wait_for(
        &client,
        "//ol[@data-show='key']/li[1][contains(@class,'is-new')]//h3[contains(., 'Count resumes at dawn')]",
        "a key event arrives on top",
    )
    .await;
    assert_eq!(
        headlines(&client).await,
        [
            "Count resumes at dawn",
            "Results delayed until morning",
            "Turnout system goes down"
        ],
        "a routine development is not a key event"
    );
    let announced = js(
        &client,
        "return document.getElementById('live-announcer').textContent;",
    )
    .await;
    let announced = announced.as_str().unwrap();
    assert!(
        announced.contains("New development: Count resumes at dawn")
            && !announced.contains("Queues are short"),
        "only what the reader's view shows is announced: {announced}"
    );
    assert_eq!(
        text_of(&client, "#timeline .development-count").await,
        "5 developments"
    );
    checked(&client, &axe, PHONE, "the key events").await;

    // The order things happened, still key events only.
    click_link(&client, "Oldest first").await;
    wait_for(
        &client,
        "//ol[@data-order='oldest' and @data-show='key']",
        "the key events, oldest first",
    )
    .await;
    assert_eq!(
        headlines(&client).await,
        [
            "Turnout system goes down",
            "Results delayed until morning",
            "Count resumes at dawn"
        ]
    );
    checked(&client, &axe, DESKTOP, "the key events, oldest first").await;

    // Counted alike everywhere after the live additions.
    client
        .goto(&format!("{base}/stories/polling-day"))
        .await
        .unwrap();
    let on_story = text_of(&client, "#timeline .development-count").await;
    checked(&client, &axe, DESKTOP, "the story page").await;
    client.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(text_of(&client, ".story-card .count").await, on_story);
    assert_eq!(on_story, "5 developments");
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_story_page_refuses_an_order_or_a_filter_it_does_not_know_naming_it() {
    let app = spawn_app().await;
    let p = app
        .open_story_as(
            &app.editor,
            json!({"slug": "switches", "headline": "Switches", "summary": "s"}),
        )
        .await
        .ok(201)["position"]
        .as_i64()
        .unwrap();
    app.call(
        reqwest::Method::GET,
        &format!("/v1/stories/switches?min_position={p}"),
        None,
        None,
    )
    .await
    .ok(200);
    for (query, field) in [("order=sideways", "order"), ("show=everything", "show")] {
        let answer = app
            .call(
                reqwest::Method::GET,
                &format!("/stories/switches?{query}"),
                None,
                None,
            )
            .await;
        answer.problem_for_field(400, field);
    }
    for query in ["order=oldest", "order=newest&show=key", "show=all"] {
        let answer = app
            .call(
                reqwest::Method::GET,
                &format!("/stories/switches/fragment?{query}"),
                None,
                None,
            )
            .await;
        assert_eq!(answer.status, 200, "{query}");
    }
}

#[tokio::test]
async fn a_new_story_waits_for_review_and_its_ledger_tells_the_accused_from_target_and_claimant() {
    let Some(driver) = driver() else { return };
    let Some(axe) = axe_script() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let client = browser(&driver).await;
    client.set_window_size(PHONE.0, PHONE.1).await.unwrap();
    sign_in_at_desk(&client, &base, &app.reporter).await;

    // "Review required" is ticked when the form opens; the reporter leaves it so.
    let ticked = client
        .find(Locator::Css("#f-review-required"))
        .await
        .unwrap()
        .is_selected()
        .await
        .unwrap();
    assert!(ticked, "a new story needs review unless unticked");
    accessible(&client, &axe, PHONE, "the desk's home").await;
    open_story_at_desk(&client, "Ministry email leak", "ministry-leak", true).await;
    click_link(&client, "File its first development").await;
    wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
    accessible(&client, &axe, PHONE, "the filing form").await;
    let id = value_of(&client, "input[name='id']").await;
    choose(&client, "#f-kind", "attribution_claimed").await;
    type_into(
        &client,
        "#f-headline",
        "Ministry blames Fancy Bear for the leak",
    )
    .await;
    type_into(&client, "#f-actor-1", "Interior ministry").await;
    type_into(&client, "#f-accused", "Fancy Bear").await;
    type_into(&client, "#f-source-name", "Ministry spokesperson").await;
    choose(&client, "#f-source-kind", "official_statement").await;
    file_through_preview(&client).await;
    wait_for(
        &client,
        "//div[@role='status' and contains(., 'waits for an editor')]",
        "the reporter's claim waits for review",
    )
    .await;
    let story = app
        .call(
            reqwest::Method::GET,
            "/v1/stories/ministry-leak",
            None,
            None,
        )
        .await;
    let story = story.ok(200)["id"].as_str().unwrap().to_owned();
    let p = app
        .editor_action(&story, &id, "approval", json!({}))
        .await
        .ok(200)["position"]
        .as_i64()
        .unwrap();
    app.story_at(&story, p).await;

    client
        .goto(&format!("{base}/stories/ministry-leak"))
        .await
        .unwrap();
    let roles = js(
        &client,
        r#"return Array.from(document.querySelectorAll('#claims .claim .actors')).map(
             (div) => [div.querySelector('.meta-label').textContent,
                       Array.from(div.querySelectorAll('li')).map((li) => li.textContent.trim()).join(', ') ||
                       div.textContent.replace(div.querySelector('.meta-label').textContent, '').trim()]);"#,
    )
    .await;
    assert_eq!(
        roles,
        json!([
            ["Accused", "Fancy Bear"],
            ["Also named", "Interior ministry"],
            ["Claimed by", "Ministry spokesperson"]
        ]),
        "the ledger tells who is accused from the target and the claimant"
    );
    checked(&client, &axe, PHONE, "the story page with its ledger").await;
    checked(&client, &axe, DESKTOP, "the story page with its ledger").await;
    // The accused is named with the others: their page lists the claim.
    client
        .goto(&format!("{base}/actors/Fancy%20Bear"))
        .await
        .unwrap();
    wait_for(
        &client,
        "//main//*[contains(., 'Ministry blames Fancy Bear for the leak')]",
        "the accused's page lists the claim",
    )
    .await;
    client.close().await.unwrap();
}

/// The desk's story page: waits for `what` after an action.
async fn desk_notice(client: &Client, text: &str, what: &str) {
    wait_for(
        client,
        &format!("//div[@role='status' and contains(., \"{text}\")]"),
        what,
    )
    .await;
}

#[tokio::test]
async fn a_reporter_edits_their_pending_filing_as_an_edit_not_a_correction_and_withdraws_another() {
    let Some(driver) = driver() else { return };
    let Some(axe) = axe_script() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let client = browser(&driver).await;
    client.set_window_size(PHONE.0, PHONE.1).await.unwrap();
    sign_in_at_desk(&client, &base, &app.reporter).await;
    open_story_at_desk(&client, "Bridge closure", "bridge-closure", true).await;
    let story = app
        .call(
            reqwest::Method::GET,
            "/v1/stories/bridge-closure",
            None,
            None,
        )
        .await
        .ok(200)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Two filings, both waiting for review.
    let mut ids = Vec::new();
    for headline in ["Bridge closed after crack fuond", "Traffic diverted north"] {
        client
            .goto(&format!("{base}/desk/stories/{story}/file"))
            .await
            .unwrap();
        wait_for(&client, "//select[@id='f-kind']", "the filing form").await;
        ids.push(value_of(&client, "input[name='id']").await);
        choose(&client, "#f-kind", "update").await;
        type_into(&client, "#f-headline", headline).await;
        file_through_preview(&client).await;
        desk_notice(
            &client,
            "waits for an editor",
            "the filing waits for review",
        )
        .await;
    }

    // The typo is fixed from the reporter's own "Edit" link.
    client
        .find(Locator::XPath(
            "//a[starts-with(., 'Edit') and contains(., 'crack fuond')]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&client, "//h1[.='Edit before approving']", "the edit form").await;
    accessible(&client, &axe, PHONE, "the reporter's edit form").await;
    let note_required = js(
        &client,
        "return document.getElementById('f-note').required;",
    )
    .await;
    assert_eq!(
        note_required,
        json!(false),
        "an edit needs no correction note"
    );
    type_into(
        &client,
        "#f-changes-headline",
        "Bridge closed after crack found",
    )
    .await;
    press(&client, "button[name='confirm'][value='correct']").await;
    desk_notice(&client, "Your edit is saved", "the edit is saved").await;
    wait_for(
        &client,
        "//li[contains(@class,'history-edit') and contains(., 'Edited by')]",
        "the desk's history shows the edit",
    )
    .await;
    let feed = app.feed().await;
    let types: Vec<&str> = feed
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert!(types.contains(&"FilingEdited"), "{types:?}");
    assert!(!types.contains(&"DevelopmentCorrected"), "{types:?}");

    // The other is withdrawn.
    client
        .find(Locator::XPath(
            "//a[starts-with(., 'Withdraw') and contains(., 'Traffic diverted north')]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &client,
        "//button[starts-with(., 'Withdraw it')]",
        "the withdrawal page",
    )
    .await;
    accessible(&client, &axe, PHONE, "the withdrawal page").await;
    client
        .find(Locator::XPath("//button[starts-with(., 'Withdraw it')]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    desk_notice(&client, "Withdrawn", "the filing is withdrawn").await;

    // Approved, readers see the edited filing, with no correction, and nothing of the other.
    let p = app
        .editor_action(&story, &ids[0], "approval", json!({}))
        .await
        .ok(200)["position"]
        .as_i64()
        .unwrap();
    app.story_at(&story, p).await;
    client
        .goto(&format!("{base}/stories/bridge-closure"))
        .await
        .unwrap();
    assert_eq!(
        headlines(&client).await,
        ["Bridge closed after crack found"]
    );
    let corrected = client
        .find_all(Locator::Css(
            "#timeline .badge-corrected, #timeline .correction",
        ))
        .await
        .unwrap();
    assert!(corrected.is_empty(), "readers are told of no correction");
    checked(&client, &axe, PHONE, "the story page").await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_reader_searches_from_the_front_page_and_finds_a_retracted_development_marked() {
    let Some(driver) = driver() else { return };
    let Some(axe) = axe_script() else { return };
    let app = spawn_app().await;
    let base = app.address.clone();
    let story = app
        .open_story_as(
            &app.editor,
            json!({"slug": "phishing-unit", "headline": "A phishing unit's campaign",
                   "summary": "What the vendor found.", "review_required": false}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let report = filed(
        "Vendor report names the phishing unit",
        "routine",
        Some("2026-10-01T04:10:00Z"),
    );
    let mut wrong = filed(
        "Société <b>Générale</b> was phished",
        "priority",
        Some("2026-10-02T04:10:00Z"),
    );
    wrong["body"] = json!("It was not; the bank's café network was never phished.");
    let wrong_id = wrong["id"].as_str().unwrap().to_owned();
    for d in [report, wrong] {
        app.record_as(&app.editor, &story, d).await.ok(201);
    }
    let p = app
        .editor_action(
            &story,
            &wrong_id,
            "retraction",
            json!({"reason": "The bank was not phished."}),
        )
        .await
        .ok(200)["position"]
        .as_i64()
        .unwrap();
    app.call(
        reqwest::Method::GET,
        &format!("/v1/search?q=phished&min_position={p}"),
        None,
        None,
    )
    .await
    .ok(200);

    let client = browser(&driver).await;
    client.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
    client.goto(&format!("{base}/")).await.unwrap();
    checked(&client, &axe, PHONE, "the front page with its search box").await;
    // The box is found by its label, as a screen reader finds it.
    let label = text_of(&client, "label[for='search-q']").await;
    assert_eq!(label, "Search stories and developments");
    type_into(&client, "#search-q", "societe PHISH*").await;
    press(&client, ".search-form button[type='submit']").await;
    wait_for(
        &client,
        "//ol[contains(@class,'search-results')]/li",
        "the results page lists what it found",
    )
    .await;
    assert!(client.current_url().await.unwrap().path() == "/search");
    let hits = js(
        &client,
        r#"return Array.from(document.querySelectorAll('.search-result')).map((li) => ({
             headline: li.querySelector('h2').textContent.trim(),
             retracted: !!li.querySelector('.badge-retracted'),
             marked: Array.from(li.querySelectorAll('mark')).map((m) => m.textContent),
             bold: li.querySelectorAll('.search-snippet b').length}));"#,
    )
    .await;
    assert_eq!(
        hits,
        json!([{
            "headline": "Société <b>Générale</b> was phished",
            "retracted": true,
            "marked": ["Société", "phished"],
            "bold": 0,
        }]),
        "accents and case fold, the prefix matches, the retraction is marked, and the text \
         stays text"
    );
    assert_eq!(value_of(&client, "#search-q").await, "societe PHISH*");
    checked(&client, &axe, PHONE, "the search results").await;
    checked(&client, &axe, DESKTOP, "the search results").await;
    screenshot(&client, "search-results").await;
    // What cannot be searched for is said on the page, not a server error.
    client
        .goto(&format!("{base}/search?q=%22unclosed"))
        .await
        .unwrap();
    let error = text_of(&client, ".search-error").await;
    assert!(error.contains('"'), "{error}");
    checked(&client, &axe, PHONE, "the search page saying what is wrong").await;
    // The desk's search finds the same, and says what it is.
    sign_in_at_desk(&client, &base, &app.editor).await;
    client
        .goto(&format!("{base}/desk/search?q=phished"))
        .await
        .unwrap();
    wait_for(
        &client,
        "//main//li//*[contains(., 'Retracted')]",
        "the desk's results say the development is retracted",
    )
    .await;
    accessible(&client, &axe, PHONE, "the desk's search").await;
    accessible(&client, &axe, DESKTOP, "the desk's search").await;
    client.close().await.unwrap();
}
