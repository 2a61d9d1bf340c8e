use chrono::{Duration, Utc};
use newsroom_testkit::prelude::*;
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn a_development_is_recorded_with_its_position_and_server_recorded_time() {
    let (app, story) = spawn_app_with_story(false).await;
    let filing = development("hack_reported");
    let answer = app.record(&story, filing.clone()).await;
    let body = answer.ok(201);
    assert_eq!(body["id"], filing["id"]);
    assert_eq!(body["story_id"], story.as_str());
    assert_eq!(body["sequence"], 2);
    assert_eq!(body["position"], 2);
    assert_eq!(body["status"], "published");

    let events = app.story_events(&story).await;
    let recorded = &events[1]["payload"]["DevelopmentRecorded"]["development"];
    assert_eq!(recorded["occurred_at"], "2026-10-01T09:30:00Z");
    let recorded_at: chrono::DateTime<Utc> =
        recorded["recorded_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (Utc::now() - recorded_at).num_seconds().abs() < 60,
        "recorded_at is set by the server, not copied from occurred_at"
    );
    // Actors keep their spelling and carry a normalised key for matching.
    assert_eq!(recorded["actors"][1]["name"], "Fancy Bear");
    assert_eq!(recorded["actors"][1]["key"], "fancy bear");
}

#[tokio::test]
async fn the_same_filing_sent_twice_is_recorded_once_and_answered_alike() {
    let (app, story) = spawn_app_with_story(false).await;
    let filing = development("hack_reported");
    let first = app.record(&story, filing.clone()).await;
    let first = first.ok(201).clone();
    let retry = app.record(&story, filing.clone()).await;
    assert_eq!(
        retry.ok(200),
        &first,
        "a retry answers with the original result"
    );
    let events = app.story_events(&story).await;
    assert_eq!(events.len(), 2, "no second event: {events:#?}");
}

#[tokio::test]
async fn the_same_id_with_different_content_is_a_conflict() {
    let (app, story) = spawn_app_with_story(false).await;
    let filing = development("hack_reported");
    app.record(&story, filing.clone()).await.ok(201);
    let mut changed = filing.clone();
    changed["headline"] = json!("A different headline");
    app.record(&story, changed)
        .await
        .problem_for_field(409, "id");
    assert_eq!(app.story_events(&story).await.len(), 2);
}

#[tokio::test]
async fn concurrent_retries_of_one_filing_record_it_once() {
    let app = std::sync::Arc::new(spawn_app().await);
    let story = app.open_story(false).await;
    let filing = development("hack_reported");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (app, story, filing) = (app.clone(), story.clone(), filing.clone());
        tasks.push(tokio::spawn(async move {
            app.record(&story, filing).await.status.as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        15,
        "{statuses:?}"
    );
    assert_eq!(app.story_events(&story).await.len(), 2);
}

#[tokio::test]
async fn a_response_must_name_a_development_of_the_same_story() {
    let (app, story) = spawn_app_with_story(false).await;
    let other_story = app.open_story(false).await;
    let claim = development("attribution_claimed");
    app.record(&other_story, claim.clone()).await.ok(201);

    let mut response = development("statement_issued");
    response["responds_to"] = json!({"development": claim["id"], "stance": "supports"});
    app.record(&story, response.clone())
        .await
        .problem_for_field(422, "responds_to.development");

    response["responds_to"]["development"] = json!(Uuid::new_v4());
    app.record(&story, response)
        .await
        .problem_for_field(422, "responds_to.development");
}

#[tokio::test]
async fn a_denial_needs_a_claim_it_denies_with_stance_denies_and_a_named_source() {
    let (app, story) = spawn_app_with_story(false).await;
    let claim = development("attribution_claimed");
    app.record(&story, claim.clone()).await.ok(201);

    let mut denial = development("denial_issued");
    app.record(&story, denial.clone())
        .await
        .problem_for_field(422, "responds_to");

    denial["responds_to"] = json!({"development": claim["id"], "stance": "disputes"});
    app.record(&story, denial.clone())
        .await
        .problem_for_field(422, "responds_to.stance");

    denial["responds_to"]["stance"] = json!("denies");
    let mut unsourced = denial.clone();
    unsourced.as_object_mut().unwrap().remove("source");
    app.record(&story, unsourced)
        .await
        .problem_for_field(422, "source.name");

    let mut blank_source = denial.clone();
    blank_source["source"]["name"] = json!("   ");
    app.record(&story, blank_source)
        .await
        .problem_for_field(422, "source.name");

    app.record(&story, denial).await.ok(201);
}

#[tokio::test]
async fn an_attribution_needs_a_named_source() {
    let (app, story) = spawn_app_with_story(false).await;
    let mut claim = development("attribution_claimed");
    claim.as_object_mut().unwrap().remove("source");
    app.record(&story, claim)
        .await
        .problem_for_field(422, "source.name");
    assert_eq!(app.story_events(&story).await.len(), 1);
}

#[tokio::test]
async fn occurred_at_may_lie_at_most_five_minutes_ahead() {
    let (app, story) = spawn_app_with_story(false).await;
    let mut filing = development("update");
    filing["occurred_at"] = json!((Utc::now() + Duration::minutes(10)).to_rfc3339());
    app.record(&story, filing.clone())
        .await
        .problem_for_field(422, "occurred_at");
    filing["occurred_at"] = json!((Utc::now() + Duration::minutes(3)).to_rfc3339());
    app.record(&story, filing).await.ok(201);

    // Weeks in the past is fine: incidents are often reported late.
    let mut old = development("hack_reported");
    old["occurred_at"] = json!((Utc::now() - Duration::weeks(6)).to_rfc3339());
    app.record(&story, old).await.ok(201);
}

#[tokio::test]
async fn occurred_at_is_rfc_3339_with_a_four_digit_year_from_1900_and_no_leap_second() {
    let (app, story) = spawn_app_with_story(false).await;
    let head = app.head().await;
    for odd in [
        "0000-01-01T00:00:00Z",
        "-0001-01-01T00:00:00Z",
        "+002026-10-01T09:30:00Z",
        "2026-12-31T23:59:60Z",
        "1899-12-31T23:59:59Z",
        "1900-01-01T00:30:00+01:00",
        "2026-10-01",
        "2026-10-01T09:30:00",
        "20261001T093000Z",
        "9999-12-31T23:59:59Z",
    ] {
        let mut filing = development("update");
        filing["occurred_at"] = json!(odd);
        let refused = app.record(&story, filing).await;
        let status = refused.status.as_u16();
        assert!(
            status == 400 || status == 422,
            "{odd}: {status} {:?}",
            refused.body
        );
        refused.problem_for_field(status, "occurred_at");
        // A correction is held to the same rule.
        let published = app.record(&story, development("update")).await;
        let id = published.ok(201)["id"].as_str().unwrap().to_owned();
        let correction = app
            .editor_action(
                &story,
                &id,
                "corrections",
                json!({"note": "The date was wrong.", "changes": {"occurred_at": odd}}),
            )
            .await;
        let status = correction.status.as_u16();
        assert!(status == 400 || status == 422, "{odd}: {status}");
        correction.problem_for_field(status, "changes.occurred_at");
    }
    // Only the filings made to correct were recorded: one event each, and no odd date.
    let events = app.feed().await;
    assert_eq!(events.len() as i64, head + 10);
    assert!(events
        .iter()
        .all(|e| e["event_type"] != "DevelopmentCorrected"));

    for fine in [
        "1900-01-01T00:00:00Z",
        "2026-10-01T09:30:00.123456+02:00",
        "2026-10-01t09:30:00z",
    ] {
        let mut filing = development("update");
        filing["occurred_at"] = json!(fine);
        app.record(&story, filing).await.ok(201);
    }
}

#[tokio::test]
async fn invisible_characters_leave_actor_names_and_confusable_spellings_are_one_actor() {
    let (app, story) = spawn_app_with_story(false).await;
    let head = app.head().await;
    for invisible in [
        "\u{200b}",
        "\u{200b}\u{00ad}\u{202e}",
        " \u{2066} \u{feff} ",
    ] {
        let mut filing = development("update");
        filing["actors"] = json!(["GRU", invisible]);
        app.record(&story, filing)
            .await
            .problem_for_field(422, "actors");
    }
    assert_eq!(app.head().await, head, "refused filings record nothing");

    let spellings = [
        "APT28",
        "\u{0410}\u{0420}\u{0422}28", // Cyrillic А, Р, Т
        "APT\u{200b}28",
        "APT28\u{00ad}",
        "\u{202e}APT28",
        "ＡＰＴ28",
    ];
    for (i, spelling) in spellings.iter().enumerate() {
        let mut filing = development("update");
        filing["actors"] = json!([spelling]);
        filing["occurred_at"] = json!(format!("2026-10-0{}T09:30:00Z", i + 1));
        app.record(&story, filing).await.ok(201);
    }
    // One filing naming two confusable spellings names one actor.
    let mut both = development("update");
    both["actors"] = json!(["APT28", "\u{0410}\u{0420}\u{0422}28", "GRU"]);
    // The reads below ask for this filing too: they wait for its position.
    let position = app.record(&story, both).await.ok(201)["position"]
        .as_i64()
        .unwrap();

    let events = app.story_events(&story).await;
    let actors: Vec<&Value> = events
        .iter()
        .filter_map(|e| e["payload"]["DevelopmentRecorded"]["development"]["actors"].as_array())
        .flatten()
        .collect();
    let names: Vec<&str> = actors.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "APT28",
            "\u{0410}\u{0420}\u{0422}28",
            "APT28",
            "APT28",
            "APT28",
            "ＡＰＴ28",
            "APT28",
            "GRU"
        ],
        "invisible characters are stripped; the spelling shown is otherwise kept"
    );
    let keys: std::collections::BTreeSet<&str> = actors
        .iter()
        .filter(|a| a["name"] != "GRU")
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 1, "one actor: {keys:?}");

    // Readers find all of them under any of the spellings.
    for asked in ["APT28", "apt28", "%D0%90%D0%A0%D0%A228", "APT%E2%80%8B28"] {
        let answer = app
            .call(
                reqwest::Method::GET,
                &format!("/v1/actors/{asked}?min_position={position}"),
                None,
                None,
            )
            .await;
        let body = answer.ok(200);
        assert_eq!(
            body["developments"].as_array().unwrap().len(),
            spellings.len() + 1,
            "{asked}: {body}"
        );
    }
}

#[tokio::test]
async fn texts_have_length_limits_naming_the_field() {
    let (app, story) = spawn_app_with_story(false).await;
    let cases: Vec<(&str, Value)> = vec![
        ("headline", json!("x".repeat(201))),
        ("headline", json!("")),
        ("body", json!("x".repeat(20_001))),
        ("actors", json!(["x".repeat(121)])),
    ];
    app.refuses_each_field(&story, cases).await;
    let mut filing = development("update");
    filing["source"]["name"] = json!("x".repeat(201));
    app.record(&story, filing)
        .await
        .problem_for_field(422, "source.name");
    assert_eq!(app.story_events(&story).await.len(), 1);
}

#[tokio::test]
async fn unknown_kinds_stances_evidence_and_urgency_are_refused_by_name() {
    let (app, story) = spawn_app_with_story(false).await;
    let claim = development("attribution_claimed");
    app.record(&story, claim.clone()).await.ok(201);

    let mut f = development("update");
    f["kind"] = json!("hack");
    app.record(&story, f).await.problem_for_field(422, "kind");

    let mut f = development("update");
    f["evidence"] = json!("rumour");
    app.record(&story, f)
        .await
        .problem_for_field(422, "evidence");

    let mut f = development("update");
    f["urgency"] = json!("urgent");
    app.record(&story, f)
        .await
        .problem_for_field(422, "urgency");

    let mut f = development("statement_issued");
    f["responds_to"] = json!({"development": claim["id"], "stance": "agrees"});
    app.record(&story, f)
        .await
        .problem_for_field(422, "responds_to.stance");

    let mut f = development("update");
    f["source"]["kind"] = json!("blog");
    app.record(&story, f)
        .await
        .problem_for_field(422, "source.kind");

    let mut f = development("update");
    f["source"]["url"] = json!("javascript:alert(1)");
    app.record(&story, f)
        .await
        .problem_for_field(422, "source.url");
}

#[tokio::test]
async fn under_review_a_reporters_development_waits_for_an_editor() {
    let (app, story) = spawn_app_with_story(true).await;
    let filing = development("hack_reported");
    let pending = app.record(&story, filing.clone()).await;
    assert_eq!(pending.ok(201)["status"], "pending_review");

    let by_editor = app
        .record_as(&app.editor, &story, development("statement_issued"))
        .await;
    assert_eq!(by_editor.ok(201)["status"], "published");

    // A retry of the pending filing still says pending.
    assert_eq!(
        app.record(&story, filing.clone()).await.ok(200)["status"],
        "pending_review"
    );

    let id = filing["id"].as_str().unwrap();
    app.development_action(&app.reporter, &story, id, "approval", json!({}))
        .await
        .problem(403);
    let approved = app.editor_action(&story, id, "approval", json!({})).await;
    assert_eq!(approved.ok(200)["events"], json!(["DevelopmentApproved"]));
    app.editor_action(&story, id, "approval", json!({}))
        .await
        .problem(409);

    let events = app.story_events(&story).await;
    let approval = events.last().unwrap();
    assert_eq!(approval["event_type"], "DevelopmentApproved");
    assert_eq!(approval["metadata"]["author_name"], "Eda Editor");
}

#[tokio::test]
async fn an_editor_rejects_a_pending_development_with_a_reason() {
    let (app, story) = spawn_app_with_story(true).await;
    let filing = development("attribution_claimed");
    app.record(&story, filing.clone()).await.ok(201);
    let id = filing["id"].as_str().unwrap();

    app.editor_action(&story, id, "rejection", json!({}))
        .await
        .problem_for_field(422, "reason");
    app.editor_action(
        &story,
        id,
        "rejection",
        json!({"reason": "Single anonymous source"}),
    )
    .await
    .ok(200);
    app.editor_action(&story, id, "approval", json!({}))
        .await
        .problem(409);

    let events = app.story_events(&story).await;
    assert_eq!(
        events.last().unwrap()["payload"]["DevelopmentRejected"]["reason"],
        "Single anonymous source"
    );
}
