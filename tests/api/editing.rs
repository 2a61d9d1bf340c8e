use newsroom_testkit::prelude::*;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn an_editor_corrects_a_development_with_a_note_and_changes() {
    let (app, story) = spawn_app_with_story(false).await;
    let filing = development("hack_reported");
    app.record(&story, filing.clone()).await.ok(201);
    let id = filing["id"].as_str().unwrap();
    let correction = json!({
        "note": "An earlier version misstated when the breach began.",
        "changes": {"occurred_at": "2026-09-12T00:00:00Z", "evidence": "documentary",
                    "source": {"name": "Campaign filing", "kind": "document"}},
    });

    app.development_action(&app.reporter, &story, id, "corrections", correction.clone())
        .await
        .problem(403);
    let answer = app
        .editor_action(&story, id, "corrections", correction)
        .await;
    assert_eq!(answer.ok(200)["events"], json!(["DevelopmentCorrected"]));

    let events = app.story_events(&story).await;
    let corrected = &events.last().unwrap()["payload"]["DevelopmentCorrected"];
    assert_eq!(
        corrected["note"],
        "An earlier version misstated when the breach began."
    );
    assert_eq!(corrected["changes"]["evidence"], "documentary");
    assert_eq!(corrected["changes"]["source"]["kind"], "document");
    // History is never rewritten: the original filing is still there as it was.
    assert_eq!(
        events[1]["payload"]["DevelopmentRecorded"]["development"]["occurred_at"],
        "2026-10-01T09:30:00Z"
    );
}

#[tokio::test]
async fn a_correction_needs_a_note_and_a_change_and_names_bad_fields() {
    let (app, story) = spawn_app_with_story(false).await;
    let filing = development("hack_reported");
    app.record(&story, filing.clone()).await.ok(201);
    let id = filing["id"].as_str().unwrap();
    let cases = [
        (
            json!({"note": "", "changes": {"evidence": "confirmed"}}),
            "note",
        ),
        (json!({"note": "x", "changes": {}}), "changes"),
        (
            json!({"note": "x", "changes": {"headline": "x".repeat(300)}}),
            "changes.headline",
        ),
        (
            json!({"note": "x", "changes": {"evidence": "likely"}}),
            "changes.evidence",
        ),
        (
            json!({"note": "x", "changes": {"occurred_at": "2999-01-01T00:00:00Z"}}),
            "changes.occurred_at",
        ),
        (
            json!({"note": "x", "changes": {"colour": "red"}}),
            "changes.colour",
        ),
    ];
    for (body, field) in cases {
        app.editor_action(&story, id, "corrections", body)
            .await
            .problem_for_field(422, field);
    }
    assert_eq!(app.story_events(&story).await.len(), 2);
}

#[tokio::test]
async fn a_retracted_development_cannot_be_corrected_or_retracted_again() {
    let (app, story) = spawn_app_with_story(false).await;
    let filing = development("attribution_claimed");
    app.record(&story, filing.clone()).await.ok(201);
    let id = filing["id"].as_str().unwrap();

    app.development_action(
        &app.reporter,
        &story,
        id,
        "retraction",
        json!({"reason": "x"}),
    )
    .await
    .problem(403);
    app.editor_action(
        &story,
        id,
        "retraction",
        json!({"reason": "The source withdrew the claim."}),
    )
    .await
    .ok(200);
    app.editor_action(
        &story,
        id,
        "corrections",
        json!({"note": "fix", "changes": {"evidence": "confirmed"}}),
    )
    .await
    .problem(409);
    app.editor_action(&story, id, "retraction", json!({"reason": "again"}))
        .await
        .problem(409);

    let events = app.story_events(&story).await;
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[2]["payload"]["DevelopmentRetracted"]["reason"],
        "The source withdrew the claim."
    );
}

#[tokio::test]
async fn editing_an_unknown_development_is_not_found() {
    let (app, story) = spawn_app_with_story(false).await;
    let unknown = Uuid::new_v4().to_string();
    app.editor_action(&story, &unknown, "approval", json!({}))
        .await
        .problem(404);
    app.editor_action(&story, "nope", "approval", json!({}))
        .await
        .problem_for_field(400, "development_id");
}
