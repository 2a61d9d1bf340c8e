//! Embargoes end to end: a development filed with `embargo_until` is recorded, seen at the desk
//! and by nobody else — no read of the API, no page, feed, ninjs, live stream, `as_of`, nor any
//! alert — until its moment; then the scheduler's lift publishes it and it is alerted once: also
//! when no process ran at that moment, and with two schedulers on one PostgreSQL log.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use newsroom_testkit::prelude::*;
use newsroom_testkit::receiver::WebhookReceiver;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A filing under embargo until `until`, with a headline and an actor of its own, so that any
/// read that shows it can be told by its text.
fn embargoed_filing(until: DateTime<Utc>) -> (Value, String) {
    let marker = format!("Embargoed{}", &Uuid::new_v4().simple().to_string()[..10]);
    let mut filing = development("update");
    filing["headline"] = json!(format!("{marker} report released"));
    filing["actors"] = json!([format!("{marker} Agency")]);
    filing["urgency"] = json!("priority");
    filing["embargo_until"] = json!(rfc3339(until));
    (filing, marker)
}

/// The text of a public read (whatever its type), once the views reach `position`.
async fn read_text(app: &TestApp, path: &str, position: i64) -> (u16, String) {
    // Pages take no `min_position`: they are read after an API read that waited for it.
    let url = if path.starts_with("/v1/") {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}min_position={position}", app.address)
    } else {
        format!("{}{path}", app.address)
    };
    let response = app.client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Everything readers can read of the story and of the embargoed development's actor.
async fn public_reads(story: &str, slug: &str, marker: &str) -> Vec<String> {
    vec![
        format!("/v1/stories/{story}"),
        format!("/v1/stories/{story}/claims"),
        format!("/v1/stories/{story}/feed.atom"),
        format!("/v1/stories/{story}/feed.json"),
        format!("/v1/stories/{story}/ninjs"),
        format!("/v1/stories/{story}?since=1"),
        "/v1/stories".to_owned(),
        "/".to_owned(),
        format!("/stories/{slug}"),
        format!("/v1/actors/{marker}%20Agency"),
        format!("/actors/{marker}%20Agency"),
    ]
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

fn lifts(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event_type"] == "EmbargoLifted")
        .collect()
}

#[tokio::test]
async fn an_embargoed_development_reaches_no_reader_until_its_moment_then_is_published_and_alerted_once(
) {
    let (app, story) = spawn_app_with_story(false).await;
    let slug = app
        .call(
            Method::GET,
            &format!("/v1/stories/{story}?min_position=1"),
            None,
            None,
        )
        .await
        .ok(200)["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    let receiver = WebhookReceiver::ok().await;
    app.follow_story_by_webhook(&receiver.url, &story).await;
    let stream = watch_stream(&app, &story);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let until = Utc::now() + chrono::Duration::seconds(6);
    let (filing, marker) = embargoed_filing(until);
    let id = filing["id"].as_str().unwrap().to_owned();
    let filed = app.record(&story, filing).await;
    assert_eq!(filed.ok(201)["status"], "embargoed", "{filed:#?}");
    // A filing published at once after it: once it is alerted, the notifier has passed the
    // embargoed one.
    let control = development("update");
    let p = app.record(&story, control.clone()).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    let got = receiver.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].development_id(), control["id"].as_str().unwrap());

    // Before the moment: nothing of it anywhere readers look.
    let before = Utc::now();
    for path in public_reads(&story, &slug, &marker).await {
        let (status, text) = read_text(&app, &path, p).await;
        assert!(status == 200 || status == 404, "{path}: {status}");
        // (An actor's page names the actor asked for: the headline tells the development.)
        assert!(
            !text.contains(&format!("{marker} report released")) && !text.contains(&id),
            "{path} shows the embargoed development before its moment: {text}"
        );
    }
    let count = |front: &str| -> i64 {
        let front: Value = serde_json::from_str(front).unwrap();
        front["stories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == story.as_str())
            .unwrap()["development_count"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(count(&read_text(&app, "/v1/stories", p).await.1), 1);
    // The desk sees it, marked.
    let desk = app.desk_sign_in(&app.editor).await;
    let page = app
        .desk_text(Some(&desk), &format!("/desk/stories/{story}"))
        .await;
    assert!(page.contains(&marker), "the desk shows it");
    assert!(page.contains("Embargoed until"), "marked as embargoed");
    assert!(
        Utc::now() < until - chrono::Duration::seconds(1),
        "the reads before the moment ran at least one second before it (began {before})"
    );
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing alerted but the control"
    );
    assert!(lifts(&app.story_events(&story).await).is_empty());
    assert!(!stream.lock().unwrap().contains(&id));

    // At the moment: published, alerted once, on the live stream.
    let lifted_at = loop {
        let (_, text) = read_text(&app, &format!("/v1/stories/{story}"), p).await;
        if text.contains(&id) {
            break Utc::now();
        }
        assert!(
            Utc::now() < until + chrono::Duration::seconds(15),
            "never lifted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(lifted_at >= until, "published before its moment");
    let got = receiver.wait_for_accepted(2, WAIT).await;
    assert_eq!(got[1].development_id(), id);
    let events = app.story_events(&story).await;
    let lifted = lifts(&events);
    assert_eq!(lifted.len(), 1, "{events:#?}");
    let position = lifted[0]["position"].as_i64().unwrap();
    for path in public_reads(&story, &slug, &marker).await {
        // The ledger holds claims only, the front page no development's text (its count below).
        if path.contains("claims") || path == "/v1/stories" || path == "/" {
            continue;
        }
        let (status, text) = read_text(&app, &path, position).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            text.contains(&format!("{marker} report released")),
            "{path} shows it after the lift: {text}"
        );
    }
    assert_eq!(count(&read_text(&app, "/v1/stories", position).await.1), 2);
    // As of a moment before the lift, still nothing.
    let (_, then) = read_text(
        &app,
        &format!("/v1/stories/{story}?as_of={}", urlencode(&rfc3339(before))),
        position,
    )
    .await;
    assert!(
        !then.contains(&id),
        "as_of before the lift shows it: {then}"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while !stream.lock().unwrap().contains(&id) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the live stream never told"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 2, "alerted exactly once");
    assert_eq!(lifts(&app.story_events(&story).await).len(), 1);
}

#[tokio::test]
async fn an_embargo_that_came_due_while_no_process_ran_is_lifted_on_start() {
    let (app, story) = spawn_app_with_story(false).await;
    let until = Utc::now() + chrono::Duration::seconds(3);
    let (filing, _) = embargoed_filing(until);
    let id = filing["id"].as_str().unwrap().to_owned();
    app.record(&story, filing).await.ok(201);
    let dir = app.stop().await;
    assert!(Utc::now() < until, "stopped before the moment");
    tokio::time::sleep((until - Utc::now()).to_std().unwrap() + Duration::from_millis(500)).await;

    let started = Utc::now();
    let app = spawn_app_in(dir, |_| {}).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let lifted = loop {
        let events = app.story_events(&story).await;
        if let [lift] = lifts(&events).as_slice() {
            break (*lift).clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not lifted on start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let recorded: DateTime<Utc> = lifted["recorded_at"].as_str().unwrap().parse().unwrap();
    assert!(recorded >= started, "lifted by the restarted process");
    assert_eq!(lifted["metadata"]["author_name"], "Embargo scheduler");
    let position = lifted["position"].as_i64().unwrap();
    let (_, text) = read_text(&app, &format!("/v1/stories/{story}"), position).await;
    assert!(text.contains(&id));
}

#[tokio::test]
async fn an_editor_lifts_early_or_moves_the_moment_and_a_reporter_can_do_neither() {
    let (app, story) = spawn_app_with_story(false).await;
    let receiver = WebhookReceiver::ok().await;
    app.follow_story_by_webhook(&receiver.url, &story).await;
    let until = Utc::now() + chrono::Duration::hours(1);
    let (filing, _) = embargoed_filing(until);
    let id = filing["id"].as_str().unwrap().to_owned();
    app.record(&story, filing).await.ok(201);
    let embargo = format!("/v1/stories/{story}/developments/{id}/embargo");

    // A reporter can neither lift nor move it.
    app.call(
        Method::POST,
        &format!("{embargo}/lift"),
        Some(&app.reporter),
        Some(json!({})),
    )
    .await
    .problem(403);
    let later = rfc3339(until + chrono::Duration::hours(2));
    app.call(
        Method::PUT,
        &embargo,
        Some(&app.reporter),
        Some(json!({"until": later})),
    )
    .await
    .problem(403);
    // Bad moments name the field.
    for bad in [
        json!("soon"),
        json!(rfc3339(Utc::now() - chrono::Duration::minutes(1))),
    ] {
        let answer = app
            .call(
                Method::PUT,
                &embargo,
                Some(&app.editor),
                Some(json!({"until": bad})),
            )
            .await;
        assert_eq!(answer.body["field"], "until", "{answer:#?}");
        assert!(answer.status.is_client_error());
    }
    // An editor moves it: an event with its author.
    app.call(
        Method::PUT,
        &embargo,
        Some(&app.editor),
        Some(json!({"until": later})),
    )
    .await
    .ok(200);
    let events = app.story_events(&story).await;
    let moved = events
        .iter()
        .find(|e| e["event_type"] == "EmbargoMoved")
        .expect("the move is an event");
    assert_eq!(moved["metadata"]["author_name"], "Eda Editor");

    // And lifts it early: published at once, alerted once.
    let lift = app
        .call(
            Method::POST,
            &format!("{embargo}/lift"),
            Some(&app.editor),
            Some(json!({})),
        )
        .await;
    let position = lift.ok(200)["position"].as_i64().unwrap();
    let (_, text) = read_text(&app, &format!("/v1/stories/{story}"), position).await;
    assert!(text.contains(&id));
    let got = receiver.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].development_id(), id);
    let events = app.story_events(&story).await;
    let lifted = lifts(&events);
    assert_eq!(lifted.len(), 1);
    assert_eq!(lifted[0]["metadata"]["author_name"], "Eda Editor");
    // Nothing left to lift or move.
    app.call(
        Method::POST,
        &format!("{embargo}/lift"),
        Some(&app.editor),
        Some(json!({})),
    )
    .await
    .problem(409);
    app.call(
        Method::PUT,
        &embargo,
        Some(&app.editor),
        Some(json!({"until": later})),
    )
    .await
    .problem(409);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn bad_embargo_moments_are_refused_naming_the_field() {
    let (app, story) = spawn_app_with_story(false).await;
    for bad in [
        json!("tomorrow"),
        json!(rfc3339(Utc::now() - chrono::Duration::seconds(5))),
        json!(rfc3339(Utc::now() + chrono::Duration::days(400))),
        json!(42),
    ] {
        let mut filing = development("update");
        filing["embargo_until"] = bad.clone();
        let answer = app.record(&story, filing).await;
        assert!(answer.status.is_client_error(), "{bad}: {answer:#?}");
        assert_eq!(answer.body["field"], "embargo_until", "{bad}: {answer:#?}");
    }
    assert!(app
        .story_events(&story)
        .await
        .iter()
        .all(|e| e["event_type"] != "DevelopmentRecorded"));
}

#[tokio::test]
async fn under_review_approval_keeps_the_embargo_and_the_lift_publishes_it_once() {
    let (app, story) = spawn_app_with_story(true).await;
    let receiver = WebhookReceiver::ok().await;
    app.follow_story_by_webhook(&receiver.url, &story).await;
    let until = Utc::now() + chrono::Duration::seconds(4);
    let (filing, _) = embargoed_filing(until);
    let id = filing["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.record(&story, filing).await.ok(201)["status"],
        "pending_review"
    );
    let approved = app.editor_action(&story, &id, "approval", json!({})).await;
    let p = approved.ok(200)["position"].as_i64().unwrap();
    let (_, text) = read_text(&app, &format!("/v1/stories/{story}"), p).await;
    assert!(!text.contains(&id), "approved, but still under embargo");
    assert!(Utc::now() < until);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, text) = read_text(&app, &format!("/v1/stories/{story}"), p).await;
        if text.contains(&id) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never published");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(Utc::now() >= until);
    let got = receiver.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].development_id(), id);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn two_schedulers_on_one_postgresql_log_lift_each_embargo_once() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let on = |role| postgres_role(&db.url, role);
    // Two processes serving commands (each with its scheduler), sharing the log, the views and
    // the notifier's queue.
    let first = spawn_app_with(on(newsroom::ProcessRole::All)).await;
    let second = spawn_app_with(on(newsroom::ProcessRole::Command)).await;
    let story = first.open_story(false).await;
    let receiver = WebhookReceiver::ok().await;
    first.follow_story_by_webhook(&receiver.url, &story).await;
    let until = Utc::now() + chrono::Duration::seconds(4);
    let mut ids = Vec::new();
    for i in 0..8 {
        let (filing, _) = embargoed_filing(until);
        ids.push(filing["id"].as_str().unwrap().to_owned());
        let app = if i % 2 == 0 { &first } else { &second };
        app.record_as(&app.reporter, &story, filing).await.ok(201);
    }
    let got = receiver.wait_for_accepted(ids.len(), WAIT).await;
    assert!(Utc::now() >= until);
    let mut alerted: Vec<String> = got.iter().map(|r| r.development_id()).collect();
    alerted.sort();
    ids.sort();
    assert_eq!(alerted, ids);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), ids.len(), "each alerted once");
    let events = first.story_events(&story).await;
    assert_eq!(lifts(&events).len(), ids.len(), "each lifted once");
}

#[tokio::test]
async fn editors_move_and_lift_an_embargo_at_the_desk_and_reporters_cannot() {
    let (app, story) = spawn_app_with_story(false).await;
    let (filing, marker) = embargoed_filing(Utc::now() + chrono::Duration::hours(1));
    let id = filing["id"].as_str().unwrap().to_owned();
    let p = app.record(&story, filing).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    // The views hold it before the desk reads it.
    read_text(&app, &format!("/v1/stories/{story}"), p).await;
    let path = format!("/desk/stories/{story}/developments/{id}/embargo");

    let reporter = app.desk_sign_in(&app.reporter).await;
    assert_eq!(app.desk_get(Some(&reporter), &path).await.status(), 403);
    let refused = app
        .desk_post(
            Some(&reporter),
            &path,
            &[
                ("csrf", &reporter.csrf),
                ("action", "lift"),
                ("seen", &p.to_string()),
            ],
        )
        .await;
    assert_eq!(refused.status(), 403);

    let editor = app.desk_sign_in(&app.editor).await;
    let page = app.desk_get(Some(&editor), &path).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(&marker) && page.contains("Lift the embargo now"));
    // A moment in the past is refused beside its field; nothing is recorded.
    let past = (Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let refused = app
        .desk_post(
            Some(&editor),
            &path,
            &[
                ("csrf", &editor.csrf),
                ("action", "move"),
                ("until", &past),
                ("seen", &p.to_string()),
            ],
        )
        .await;
    assert!(refused.status().is_client_error(), "{}", refused.status());
    let status = refused.status();
    let text = refused.text().await.unwrap();
    assert!(
        text.to_lowercase().contains("must lie in the future"),
        "{status}: {text}"
    );
    let later = (Utc::now() + chrono::Duration::hours(3))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let moved = app
        .desk_post(
            Some(&editor),
            &path,
            &[
                ("csrf", &editor.csrf),
                ("action", "move"),
                ("until", &later),
                ("seen", &p.to_string()),
            ],
        )
        .await;
    assert_eq!(moved.status(), 303);
    // A lift from the page as it was before the move is refused as made from an older version.
    let stale = app
        .desk_post(
            Some(&editor),
            &path,
            &[
                ("csrf", &editor.csrf),
                ("action", "lift"),
                ("seen", &p.to_string()),
            ],
        )
        .await;
    assert_eq!(stale.status(), 409);
    let page = app.desk_text(Some(&editor), &path).await;
    let seen = hidden_field(&page, "seen").expect("the page says what it was made from");
    let lifted = app
        .desk_post(
            Some(&editor),
            &path,
            &[("csrf", &editor.csrf), ("action", "lift"), ("seen", &seen)],
        )
        .await;
    assert_eq!(lifted.status(), 303);
    let events = app.story_events(&story).await;
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .filter(|t| t.starts_with("Embargo"))
        .collect();
    assert_eq!(kinds, ["EmbargoMoved", "EmbargoLifted"]);
    let position = lifts(&events)[0]["position"].as_i64().unwrap();
    let (_, text) = read_text(&app, &format!("/v1/stories/{story}"), position).await;
    assert!(text.contains(&id), "published by the desk's lift");
    // The desk's history tells the embargo's steps, with who took them.
    let page = app
        .desk_text(Some(&editor), &format!("/desk/stories/{story}"))
        .await;
    for step in [
        "held under embargo",
        "Embargo moved to",
        "Embargo lifted by <strong>Eda Editor</strong>",
    ] {
        assert!(page.contains(step), "{step}");
    }
    assert!(!page.contains("waited for review"));
}

#[tokio::test]
async fn with_the_clock_in_the_tests_hand_nothing_is_lifted_a_second_before_and_all_at_the_moment()
{
    use newsroom_notifier::{Clock, ManualClock};
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = {
        let clock = clock.clone();
        spawn_app_with(move |s| s.clock = clock).await
    };
    let story = app.open_story(false).await;
    let receiver = WebhookReceiver::ok().await;
    app.follow_story_by_webhook(&receiver.url, &story).await;
    let until = clock.now() + chrono::Duration::hours(6);
    let (filing, marker) = embargoed_filing(until);
    let id = filing["id"].as_str().unwrap().to_owned();
    app.record(&story, filing).await.ok(201);
    let control = development("update");
    let p = app.record(&story, control).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    receiver.wait_for_accepted(1, WAIT).await;

    // One second before the moment, for longer than the scheduler's longest sleep: nothing.
    clock.advance(chrono::Duration::hours(6) - chrono::Duration::seconds(1));
    tokio::time::sleep(newsroom_command::embargo::POLL * 3).await;
    let (_, text) = read_text(&app, &format!("/v1/stories/{story}"), p).await;
    assert!(!text.contains(&id) && !text.contains(&marker));
    assert!(lifts(&app.story_events(&story).await).is_empty());
    assert_eq!(receiver.received().len(), 1);

    // At the moment: lifted (by the clock's reading, not the wall's), published, alerted once.
    clock.advance(chrono::Duration::seconds(1));
    let deadline = tokio::time::Instant::now() + WAIT;
    let lift = loop {
        let events = app.story_events(&story).await;
        if let [lift] = lifts(&events).as_slice() {
            break (*lift).clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not lifted at the moment"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let recorded: DateTime<Utc> = lift["recorded_at"].as_str().unwrap().parse().unwrap();
    // (Recorded to the microsecond.)
    assert_eq!(
        (recorded - until).num_microseconds(),
        Some(0),
        "lifted at the moment by the service's clock: {recorded} for {until}"
    );
    let got = receiver.wait_for_accepted(2, WAIT).await;
    assert_eq!(got[1].development_id(), id);
    let (_, text) = read_text(
        &app,
        &format!("/v1/stories/{story}"),
        lift["position"].as_i64().unwrap(),
    )
    .await;
    assert!(text.contains(&id));
    tokio::time::sleep(newsroom_command::embargo::POLL * 2).await;
    assert_eq!(receiver.received().len(), 2);
    assert_eq!(lifts(&app.story_events(&story).await).len(), 1);
}

/// An editor spikes an embargoed development before its moment (a rejection): the moment
/// passes and nothing is lifted, published or alerted; the desk's embargo page offers it.
#[tokio::test]
async fn an_embargoed_development_spiked_before_its_moment_never_reaches_readers() {
    let (app, story) = spawn_app_with_story(false).await;
    let receiver = WebhookReceiver::ok().await;
    app.follow_story_by_webhook(&receiver.url, &story).await;
    let until = Utc::now() + chrono::Duration::seconds(3);
    let (filing, marker) = embargoed_filing(until);
    let id = filing["id"].as_str().unwrap().to_owned();
    app.record(&story, filing).await.ok(201);
    let desk = app.desk_sign_in(&app.editor).await;
    let page = app
        .desk_get(
            Some(&desk),
            &format!("/desk/stories/{story}/developments/{id}/embargo"),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Spike it"), "{page}");
    // A reporter cannot; an editor can.
    let refused = app
        .development_action(
            &app.reporter,
            &story,
            &id,
            "rejection",
            json!({"reason": "The report was withdrawn by its authors."}),
        )
        .await;
    refused.problem(403);
    let spiked = app
        .editor_action(
            &story,
            &id,
            "rejection",
            json!({"reason": "The report was withdrawn by its authors."}),
        )
        .await;
    assert!(spiked.status.is_success(), "{spiked:#?}");

    // Past the moment, with a control filing alerted after it: still nothing.
    tokio::time::sleep_until(
        tokio::time::Instant::now()
            + (until - Utc::now() + chrono::Duration::seconds(2))
                .to_std()
                .unwrap_or_default(),
    )
    .await;
    let control = development("update");
    let p = app.record(&story, control.clone()).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    let got = receiver.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].development_id(), control["id"].as_str().unwrap());
    let (_, text) = read_text(&app, &format!("/v1/stories/{story}"), p).await;
    assert!(!text.contains(&marker) && !text.contains(&id), "{text}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing alerted but the control"
    );
    assert!(lifts(&app.story_events(&story).await).is_empty());
}
