//! Undo windows end to end: a publication held for its undo window (asked for by an API client
//! with `hold_seconds`, or by the desk for every publication and approval) reaches no reader and
//! no subscriber until the window's end; then the embargo scheduler releases it, once, and it is
//! published and alerted once. Undone during the window at the desk, it never reaches readers:
//! a filing comes back as the filing form filled in, an approval goes back to review. The clock
//! is the test's (`ManualClock`), so no window ends while the test looks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use newsroom_notifier::ManualClock;
use newsroom_testkit::prelude::*;
use newsroom_testkit::receiver::WebhookReceiver;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

/// The desk's window in these tests.
const WINDOW: u32 = 30;

/// An app whose clock the test holds, with the desk's undo window at `desk_undo` seconds
/// (0: none), on PostgreSQL when `database_url` is given.
async fn app_with_clock(
    desk_undo: u32,
    database_url: Option<String>,
) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = {
        let clock = clock.clone();
        spawn_app_with(move |s| {
            s.clock = clock;
            s.desk_undo = (desk_undo > 0)
                .then(|| newsroom_domain::Hold::parse("desk_undo_secs", desk_undo).unwrap());
            if let Some(url) = database_url {
                s.command.database_url = Some(url);
            }
        })
        .await
    };
    (app, clock)
}

/// The text of a public read, once the views reach `position`.
async fn read_text(app: &TestApp, path: &str, position: i64) -> String {
    let url = if path.starts_with("/v1/") {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}min_position={position}", app.address)
    } else {
        format!("{}{path}", app.address)
    };
    app.client
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn slug_of(app: &TestApp, story: &str) -> String {
    app.call(
        Method::GET,
        &format!("/v1/stories/{story}?min_position=1"),
        None,
        None,
    )
    .await
    .ok(200)["slug"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Everything readers read of a story.
fn public_reads(story: &str, slug: &str) -> Vec<String> {
    vec![
        format!("/v1/stories/{story}"),
        format!("/v1/stories/{story}/feed.atom"),
        format!("/v1/stories/{story}/feed.json"),
        format!("/v1/stories/{story}/ninjs"),
        format!("/v1/stories/{story}?since=1"),
        format!("/stories/{slug}"),
    ]
}

/// Asserts no public read of the story shows `marker` (the development's headline) or `id`.
async fn readers_see_nothing_of(app: &TestApp, story: &str, marker: &str, id: &str, p: i64) {
    let slug = slug_of(app, story).await;
    for path in public_reads(story, &slug) {
        let text = read_text(app, &path, p).await;
        assert!(
            !text.contains(marker) && !text.contains(id),
            "{path} shows the held development: {text}"
        );
    }
}

fn count(events: &[Value], event_type: &str) -> usize {
    events
        .iter()
        .filter(|e| e["event_type"] == event_type)
        .count()
}

/// A live stream of the story, read into a buffer by a task of its own.
fn watch_stream(app: &TestApp, story: &str) -> Arc<Mutex<String>> {
    let seen = Arc::new(Mutex::new(String::new()));
    let url = format!("{}/v1/stories/{story}/stream?min_position=1", app.address);
    let client = app.client.clone();
    let into = seen.clone();
    tokio::spawn(async move {
        let mut response = client.get(&url).send().await.unwrap();
        while let Ok(Some(chunk)) = response.chunk().await {
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk));
        }
    });
    seen
}

/// Waits until the story's log holds an `EmbargoLifted`; the events then.
async fn until_lifted(app: &TestApp, story: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = app.story_events(story).await;
        if count(&events, "EmbargoLifted") > 0 {
            return events;
        }
        assert!(tokio::time::Instant::now() < deadline, "never released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A filing held by an API client for its undo window: nobody reads or is alerted to it during
/// the window (a filing without a hold, sent after it, is published and alerted at once); a
/// second before its end, still nothing; at its end it is released once, published, alerted
/// once and told to live streams; a second release is refused.
async fn a_held_filing_is_released_once_at_the_end_of_its_window(
    app: TestApp,
    clock: Arc<ManualClock>,
) {
    let story = app.open_story(false).await;
    let receiver = WebhookReceiver::ok().await;
    app.follow_story_by_webhook(&receiver.url, &story).await;
    let stream = watch_stream(&app, &story);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let marker = format!("Held{}", &Uuid::new_v4().simple().to_string()[..10]);
    let mut filing = development("update");
    filing["headline"] = json!(format!("{marker} water main burst"));
    filing["hold_seconds"] = json!(WINDOW);
    let id = filing["id"].as_str().unwrap().to_owned();
    let filed = app.record(&story, filing.clone()).await;
    assert_eq!(filed.ok(201)["status"], "embargoed", "{filed:#?}");
    // The same filing again is the same filing (the hold is part of it).
    assert_eq!(
        app.record(&story, filing).await.ok(200)["status"],
        "embargoed"
    );
    let control = development("update");
    let p = app.record(&story, control.clone()).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    let got = receiver.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].development_id(), control["id"].as_str().unwrap());

    readers_see_nothing_of(&app, &story, &marker, &id, p).await;
    // A second before the window's end, for longer than the scheduler's longest sleep.
    clock.advance(chrono::Duration::seconds(i64::from(WINDOW) - 1));
    tokio::time::sleep(newsroom_command::embargo::POLL * 3).await;
    readers_see_nothing_of(&app, &story, &marker, &id, p).await;
    assert_eq!(count(&app.story_events(&story).await, "EmbargoLifted"), 0);
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing alerted but the control"
    );
    assert!(!stream.lock().unwrap().contains(&id));

    // At its end: released once, published, alerted once.
    clock.advance(chrono::Duration::seconds(1));
    let events = until_lifted(&app, &story).await;
    let lift = events
        .iter()
        .find(|e| e["event_type"] == "EmbargoLifted")
        .unwrap();
    let position = lift["position"].as_i64().unwrap();
    let text = read_text(&app, &format!("/v1/stories/{story}"), position).await;
    assert!(text.contains(&marker), "{text}");
    let got = receiver.wait_for_accepted(2, WAIT).await;
    assert_eq!(got[1].development_id(), id);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !stream.lock().unwrap().contains(&id) {
        assert!(tokio::time::Instant::now() < deadline, "not told live");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Released exactly once: an editor's second release is refused, and the scheduler, which
    // goes on looking, finds nothing to release.
    let again = app
        .call(
            Method::POST,
            &format!("/v1/stories/{story}/developments/{id}/embargo/lift"),
            Some(&app.editor),
            Some(json!({})),
        )
        .await;
    again.problem(409);
    tokio::time::sleep(newsroom_command::embargo::POLL * 3).await;
    assert_eq!(count(&app.story_events(&story).await, "EmbargoLifted"), 1);
    assert_eq!(receiver.received().len(), 2, "alerted exactly once");
}

#[tokio::test]
async fn a_filing_held_by_an_api_client_reaches_nobody_until_its_window_ends_then_once() {
    let (app, clock) = app_with_clock(0, None).await;
    a_held_filing_is_released_once_at_the_end_of_its_window(app, clock).await;
}

#[tokio::test]
async fn a_filing_held_by_an_api_client_is_released_once_on_postgresql() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (app, clock) = app_with_clock(0, Some(db.url.clone())).await;
    a_held_filing_is_released_once_at_the_end_of_its_window(app, clock).await;
}

#[tokio::test]
async fn bad_holds_are_refused_naming_the_field_and_whole_numbers_are_taken() {
    let (app, story) = spawn_app_with_story(false).await;
    for bad in [json!(0), json!(601), json!(-1), json!("30")] {
        let mut filing = development("update");
        filing["hold_seconds"] = bad.clone();
        let answer = app.record(&story, filing).await;
        assert_eq!(answer.status, 422, "{bad}: {answer:#?}");
        assert!(
            answer.body.to_string().contains("hold_seconds"),
            "{answer:#?}"
        );
    }
    // JSON Schema's integer: a whole number written with a fraction is one.
    let mut filing = development("update");
    filing["hold_seconds"] = json!(30.0);
    assert_eq!(
        app.record(&story, filing).await.ok(201)["status"],
        "embargoed"
    );
    let pending = app.open_story(true).await;
    let filing = development("update");
    let dev = filing["id"].as_str().unwrap().to_owned();
    app.record_as(&app.reporter, &pending, filing).await.ok(201);
    app.call(
        Method::POST,
        &format!("/v1/stories/{pending}/developments/{dev}/approval"),
        Some(&app.editor),
        Some(json!({"hold_seconds": 0})),
    )
    .await
    .problem_for_field(422, "hold_seconds");
}

/// The filing form's fields, published through the preview's button.
fn filing_fields<'a>(id: &'a str, headline: &'a str, csrf: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("id", id),
        ("kind", "update"),
        ("headline", headline),
        (
            "body",
            "Crews closed the high street while the water company isolates the main.",
        ),
        ("occurred_at", ""),
        ("urgency", "routine"),
        ("evidence", "none_provided"),
        ("csrf", csrf),
    ]
}

#[tokio::test]
async fn undo_at_the_desk_takes_back_a_filing_in_its_window_and_brings_back_the_form() {
    let (app, clock) = app_with_clock(WINDOW, None).await;
    let story = app.open_story(false).await;
    let receiver = WebhookReceiver::ok().await;
    app.follow_story_by_webhook(&receiver.url, &story).await;
    let reporter = app.desk_sign_in(&app.reporter).await;
    let id = Uuid::now_v7().to_string();
    let headline = "Water main bursts on the high street";
    let fields = filing_fields(&id, headline, &reporter.csrf);
    let path = format!("/desk/stories/{story}/developments");

    // The preview says what publishing will do.
    let preview = app.desk_post(Some(&reporter), &path, &fields).await;
    assert_eq!(preview.status(), 200);
    let html = preview.text().await.unwrap();
    assert!(
        html.contains("30 seconds later; until then you can undo it"),
        "{html}"
    );
    let mut confirmed = fields.clone();
    confirmed.push(("confirm", "file"));
    let answer = app.desk_post(Some(&reporter), &path, &confirmed).await;
    assert_eq!(answer.status(), 303);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!(
            "/desk/stories/{story}?notice=held&development={id}"
        )),
        "{location}"
    );
    let events = app.story_events(&story).await;
    assert_eq!(count(&events, "DevelopmentRecorded"), 1);
    let page = app.desk_text(Some(&reporter), &location).await;
    let undo = format!("/desk/stories/{story}/developments/{id}/undo");
    assert!(page.contains("Publishing in"), "{page}");
    assert!(page.contains(&format!(r#"action="{undo}""#)), "{page}");
    let head = app.head().await;
    readers_see_nothing_of(&app, &story, headline, &id, head).await;

    // Undo: withdrawn, and the filing form comes back with the text, under a new id.
    let answer = app
        .desk_post(Some(&reporter), &undo, &[("csrf", &reporter.csrf)])
        .await;
    assert_eq!(answer.status(), 303);
    let back = answer.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        back,
        format!("/desk/stories/{story}/file?from={id}&notice=undone")
    );
    let form = app.desk_text(Some(&reporter), &back).await;
    assert!(form.contains("Undone: it was not published"), "{form}");
    assert!(form.contains(&format!(r#"value="{headline}""#)), "{form}");
    assert!(form.contains("Crews closed the high street"), "{form}");
    let new_id = hidden_field(&form, "id").expect("the form's id");
    assert_ne!(new_id, id, "filed again, it is a new development");

    // Its window passes: nothing is released, published or alerted.
    clock.advance(chrono::Duration::seconds(i64::from(WINDOW) + 5));
    tokio::time::sleep(newsroom_command::embargo::POLL * 3).await;
    let control = development("update");
    let p = app.record(&story, control.clone()).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    let got = receiver.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].development_id(), control["id"].as_str().unwrap());
    readers_see_nothing_of(&app, &story, headline, &id, p).await;
    let events = app.story_events(&story).await;
    assert_eq!(count(&events, "EmbargoLifted"), 0);
    assert_eq!(count(&events, "DevelopmentRejected"), 1);
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing alerted but the control"
    );
    // Undoing it again says it was taken back already.
    let again = app
        .desk_post(Some(&reporter), &undo, &[("csrf", &reporter.csrf)])
        .await;
    assert_eq!(again.status(), 409);
    assert!(again
        .text()
        .await
        .unwrap()
        .contains("It was taken back already"));
}

#[tokio::test]
async fn undo_at_the_desk_takes_back_an_approval_in_its_window_and_the_next_one_publishes_once() {
    let (app, clock) = app_with_clock(WINDOW, None).await;
    let story = app.open_story(true).await;
    let receiver = WebhookReceiver::ok().await;
    app.follow_story_by_webhook(&receiver.url, &story).await;
    let mut filing = development("update");
    let headline = format!(
        "Held{} council confirms",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    filing["headline"] = json!(headline);
    let dev = filing["id"].as_str().unwrap().to_owned();
    app.record_as(&app.reporter, &story, filing).await.ok(201);
    let editor = app.desk_sign_in(&app.editor).await;
    let approve = format!("/desk/stories/{story}/developments/{dev}/approve");
    let approve_once = |seen: String| {
        let (app, editor, approve) = (&app, &editor, &approve);
        async move {
            let answer = app
                .desk_post(
                    Some(editor),
                    approve,
                    &[
                        ("csrf", &editor.csrf),
                        ("seen", &seen),
                        ("confirm", "approve"),
                    ],
                )
                .await;
            assert_eq!(answer.status(), 303);
            answer.headers()["location"].to_str().unwrap().to_owned()
        }
    };
    let page = app.desk_text(Some(&editor), &approve).await;
    assert!(
        page.contains("30 seconds later; until then you can undo it"),
        "{page}"
    );
    let location = approve_once(hidden_field(&page, "seen").unwrap()).await;
    assert!(location.contains("notice=held"), "{location}");
    let page = app.desk_text(Some(&editor), &location).await;
    assert!(page.contains("Approved: publishing in"), "{page}");
    let head = app.head().await;
    readers_see_nothing_of(&app, &story, &headline, &dev, head).await;

    // A reporter cannot undo an editor's approval.
    let reporter = app.desk_sign_in(&app.reporter).await;
    let undo = format!("/desk/stories/{story}/developments/{dev}/undo");
    let refused = app
        .desk_post(Some(&reporter), &undo, &[("csrf", &reporter.csrf)])
        .await;
    assert_eq!(refused.status(), 403);

    // The editor undoes it: back to review, on its approval page.
    let answer = app
        .desk_post(Some(&editor), &undo, &[("csrf", &editor.csrf)])
        .await;
    assert_eq!(answer.status(), 303);
    let back = answer.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(back, format!("{approve}?notice=undone"));
    let page = app.desk_text(Some(&editor), &back).await;
    assert!(page.contains("Approval undone"), "{page}");
    let events = app.story_events(&story).await;
    assert_eq!(count(&events, "ApprovalUndone"), 1);
    let queue = app.desk_text(Some(&editor), "/desk/review").await;
    assert!(queue.contains(&headline), "waits for review again");

    // Approved again and left: released once at the window's end, published, alerted once.
    let location = approve_once(hidden_field(&page, "seen").unwrap()).await;
    assert!(location.contains("notice=held"), "{location}");
    clock.advance(chrono::Duration::seconds(i64::from(WINDOW)));
    let events = until_lifted(&app, &story).await;
    let position = events
        .iter()
        .find(|e| e["event_type"] == "EmbargoLifted")
        .unwrap()["position"]
        .as_i64()
        .unwrap();
    let text = read_text(&app, &format!("/v1/stories/{story}"), position).await;
    assert!(text.contains(&headline), "{text}");
    let got = receiver.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].development_id(), dev);
    // Too late to undo now.
    let late = app
        .desk_post(Some(&editor), &undo, &[("csrf", &editor.csrf)])
        .await;
    assert_eq!(late.status(), 409);
    assert!(late
        .text()
        .await
        .unwrap()
        .contains("Its undo window has passed"));
    tokio::time::sleep(newsroom_command::embargo::POLL * 3).await;
    assert_eq!(receiver.received().len(), 1, "alerted exactly once");
    assert_eq!(count(&app.story_events(&story).await, "EmbargoLifted"), 1);
}

/// What the desk's Undo does, an API client does too: the filer withdraws their filing held for
/// its window (`POST …/withdrawal`), an editor takes back an approval held for its window
/// (`DELETE …/approval`). Neither reaches readers or subscribers, then or when the window would
/// have ended; once a window has passed (published) both are refused with 409, and only the
/// filer may withdraw, only an editor undo an approval.
#[tokio::test]
async fn an_api_client_undoes_a_held_filing_and_a_held_approval_in_their_windows() {
    let (app, clock) = app_with_clock(0, None).await;
    let story = app.open_story(true).await;
    let receiver = WebhookReceiver::ok().await;
    app.follow_story_by_webhook(&receiver.url, &story).await;

    // An editor's filing, held for its window, withdrawn by the editor who filed it.
    let marker = format!("Withdrawn{}", &Uuid::new_v4().simple().to_string()[..10]);
    let mut filing = development("update");
    filing["headline"] = json!(format!("{marker} filing"));
    filing["hold_seconds"] = json!(WINDOW);
    let filed_id = filing["id"].as_str().unwrap().to_owned();
    let filed = app.record_as(&app.editor, &story, filing).await;
    assert_eq!(filed.ok(201)["status"], "embargoed");
    let withdrawal = format!("/v1/stories/{story}/developments/{filed_id}/withdrawal");
    // Not theirs: another editor's token, and an admin, may not.
    app.call(Method::POST, &withdrawal, Some(&app.admin), None)
        .await
        .problem(403);
    app.call(Method::POST, &withdrawal, Some(&app.reporter), None)
        .await
        .problem(403);
    let withdrawn = app
        .call(Method::POST, &withdrawal, Some(&app.editor), None)
        .await;
    withdrawn.ok(200);

    // A reporter's filing, approved with a window, the approval undone by an editor.
    let approved = format!("Unapproved{}", &Uuid::new_v4().simple().to_string()[..10]);
    let mut filing = development("update");
    filing["headline"] = json!(format!("{approved} filing"));
    let approved_id = filing["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.record(&story, filing).await.ok(201)["status"],
        "pending_review"
    );
    let approval = format!("/v1/stories/{story}/developments/{approved_id}/approval");
    // Nothing to undo before it is approved.
    app.call(Method::DELETE, &approval, Some(&app.editor), None)
        .await
        .problem(409);
    app.call(
        Method::POST,
        &approval,
        Some(&app.editor),
        Some(json!({"hold_seconds": WINDOW})),
    )
    .await
    .ok(200);
    app.call(Method::DELETE, &approval, Some(&app.reporter), None)
        .await
        .problem(403);
    let undone = app
        .call(Method::DELETE, &approval, Some(&app.editor), None)
        .await;
    let p = undone.ok(200)["position"].as_i64().unwrap();
    let events = app.story_events(&story).await;
    assert_eq!(count(&events, "ApprovalUndone"), 1);
    let rejected: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "DevelopmentRejected")
        .collect();
    assert_eq!(rejected.len(), 1, "the withdrawal: {events:#?}");
    assert_eq!(
        rejected[0]["payload"]["DevelopmentRejected"]["development"],
        filed_id.as_str()
    );
    // Undone, the approved filing waits for review again.
    let desk = app.story_events(&story).await;
    assert!(desk.iter().all(|e| e["event_type"] != "EmbargoLifted"));

    // Past both windows: nothing is released, nobody is alerted, readers see neither.
    clock.advance(chrono::Duration::seconds(i64::from(WINDOW) + 1));
    tokio::time::sleep(newsroom_command::embargo::POLL * 3).await;
    assert_eq!(count(&app.story_events(&story).await, "EmbargoLifted"), 0);
    readers_see_nothing_of(&app, &story, &marker, &filed_id, p).await;
    readers_see_nothing_of(&app, &story, &approved, &approved_id, p).await;
    assert!(receiver.received().is_empty(), "nobody was alerted");

    // Approved again with a window that passes: published, then too late to undo or withdraw.
    app.call(
        Method::POST,
        &approval,
        Some(&app.editor),
        Some(json!({"hold_seconds": 1})),
    )
    .await
    .ok(200);
    clock.advance(chrono::Duration::seconds(2));
    until_lifted(&app, &story).await;
    app.call(Method::DELETE, &approval, Some(&app.editor), None)
        .await
        .problem(409);
    app.call(
        Method::POST,
        &format!("/v1/stories/{story}/developments/{approved_id}/withdrawal"),
        Some(&app.reporter),
        None,
    )
    .await
    .problem(409);
    receiver.wait_for_accepted(1, WAIT).await;
}
