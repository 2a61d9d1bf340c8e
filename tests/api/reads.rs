use std::time::Duration;

use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Records `filing` and returns the command's position.
async fn filed(app: &TestApp, story: &str, filing: Value) -> i64 {
    app.record(story, filing).await.ok(201)["position"]
        .as_i64()
        .unwrap()
}

async fn read(app: &TestApp, path: &str) -> Value {
    app.call(Method::GET, path, None, None)
        .await
        .ok(200)
        .clone()
}

/// A reader page's HTML.
async fn page_html(app: &TestApp, path: &str) -> String {
    let answer = app.client.get(format!("{}{path}", app.address)).send();
    answer.await.unwrap().text().await.unwrap()
}

fn headlines(timeline: &Value) -> Vec<String> {
    timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["headline"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_recorded_development_is_readable_at_its_position() {
    let (app, story) = spawn_app_with_story(false).await;
    let position = filed(&app, &story, development("hack_reported")).await;
    let body = read(
        &app,
        &format!("/v1/stories/{story}?min_position={position}"),
    )
    .await;
    assert!(body["position"].as_i64().unwrap() >= position);
    assert_eq!(body["timeline"].as_array().unwrap().len(), 1);
    assert_eq!(body["development_count"], 1);
    let d = &body["timeline"][0];
    assert_eq!(d["kind"], "hack_reported");
    assert_eq!(d["state"], "published");
    assert!(d.get("filed_by").is_none(), "staff names stay on the desk");
}

#[tokio::test]
async fn the_timeline_is_in_occurred_at_order_and_hides_pending_and_rejected_work() {
    let (app, story) = spawn_app_with_story(true).await;
    let mut late = development("statement_issued");
    late["headline"] = json!("Vendor report");
    late["occurred_at"] = json!("2026-10-20T00:00:00Z");
    let mut early = development("hack_reported");
    early["headline"] = json!("Breach began");
    early["occurred_at"] = json!("2026-09-01T00:00:00Z");
    let pending = development("update");
    let rejected = development("update");
    app.record_as(&app.editor, &story, late.clone())
        .await
        .ok(201);
    app.record_as(&app.editor, &story, early.clone())
        .await
        .ok(201);
    app.record(&story, pending.clone()).await.ok(201);
    app.record(&story, rejected.clone()).await.ok(201);
    let reject = app
        .editor_action(
            &story,
            rejected["id"].as_str().unwrap(),
            "rejection",
            json!({"reason": "no"}),
        )
        .await;
    let position = reject.ok(200)["position"].as_i64().unwrap();
    let body = read(
        &app,
        &format!("/v1/stories/{story}?min_position={position}"),
    )
    .await;
    assert_eq!(
        headlines(&body["timeline"]),
        ["Breach began", "Vendor report"]
    );

    // Approval publishes it.
    let approval = app
        .editor_action(
            &story,
            pending["id"].as_str().unwrap(),
            "approval",
            json!({}),
        )
        .await;
    let position = approval.ok(200)["position"].as_i64().unwrap();
    let body = read(
        &app,
        &format!("/v1/stories/{story}?min_position={position}"),
    )
    .await;
    assert_eq!(body["timeline"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn corrections_show_inline_and_retractions_stay_visible_struck() {
    let (app, story) = spawn_app_with_story(false).await;
    let claim = development("attribution_claimed");
    let id = claim["id"].as_str().unwrap().to_owned();
    filed(&app, &story, claim).await;
    app.editor_action(&story,
        &id,
        "corrections",
        json!({"note": "The statement named a different unit.", "changes": {"headline": "Campaign blames unit 26165"}}),
    )
    .await
    .ok(200);
    let retraction = app
        .editor_action(
            &story,
            &id,
            "retraction",
            json!({"reason": "The campaign withdrew the claim."}),
        )
        .await;
    let position = retraction.ok(200)["position"].as_i64().unwrap();
    let body = read(
        &app,
        &format!("/v1/stories/{story}?min_position={position}"),
    )
    .await;
    let d = &body["timeline"][0];
    assert_eq!(d["headline"], "Campaign blames unit 26165");
    assert_eq!(d["state"], "retracted");
    assert_eq!(
        d["retraction"]["reason"],
        "The campaign withdrew the claim."
    );
    let correction = &d["corrections"][0];
    assert_eq!(correction["note"], "The statement named a different unit.");
    assert_eq!(correction["changes"][0]["field"], "headline");
    assert_eq!(
        correction["changes"][0]["before"],
        "Campaign A says its email was breached"
    );
    assert_eq!(body["claims"][0]["status"], "retracted");
}

#[tokio::test]
async fn the_claims_ledger_follows_the_responses() {
    let (app, story) = spawn_app_with_story(false).await;
    let claim = development("attribution_claimed");
    let claim_id = claim["id"].clone();
    let p = filed(&app, &story, claim).await;
    let status = |body: &Value| body["claims"][0]["status"].as_str().unwrap().to_owned();
    let claims = |p: i64| format!("/v1/stories/{story}/claims?min_position={p}");
    assert_eq!(status(&read(&app, &claims(p)).await), "unverified");

    let mut denial = development("denial_issued");
    denial["responds_to"] = json!({"development": claim_id, "stance": "denies"});
    let denial_id = denial["id"].as_str().unwrap().to_owned();
    let p = filed(&app, &story, denial).await;
    assert_eq!(status(&read(&app, &claims(p)).await), "denied");

    let mut support = development("report_published");
    support["responds_to"] = json!({"development": claim_id, "stance": "supports"});
    let p = filed(&app, &story, support).await;
    let body = read(&app, &claims(p)).await;
    assert_eq!(status(&body), "contested");
    assert_eq!(body["claims"][0]["responses"].as_array().unwrap().len(), 2);

    // A retracted response no longer counts.
    let retracted = app
        .editor_action(
            &story,
            &denial_id,
            "retraction",
            json!({"reason": "Misattributed"}),
        )
        .await;
    let p = retracted.ok(200)["position"].as_i64().unwrap();
    assert_eq!(status(&read(&app, &claims(p)).await), "supported");
}

/// A ledger longer than a page: 25 claims, one answered by a supporting response and then
/// twelve denials, one whose only response was retracted. It is read a page at a time, newest
/// claims first, each claim once; each shows its newest responses and is settled by all of
/// them (the support older than the responses shown still makes it contested); the story's
/// own resource and page hold the newest claims and link to the older; as of a moment, the
/// ledger then.
async fn a_long_claims_ledger_is_read_a_page_at_a_time(app: &TestApp) {
    let story = app.open_story(false).await;
    let mut claims = Vec::new();
    let mut halfway = None;
    for i in 0..25 {
        let mut claim = development("attribution_claimed");
        claim["headline"] = json!(format!("Claim {i}"));
        claim["occurred_at"] = json!(format!("2026-10-{:02}T09:00:00Z", 1 + (i * 7) % 28));
        claims.push((
            claim["id"].as_str().unwrap().to_owned(),
            filed(app, &story, claim).await,
        ));
        if i == 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            halfway = Some(chrono::Utc::now());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let respond = |claim: &str, stance: &str, n: usize| {
        let mut r = development(if stance == "supports" {
            "report_published"
        } else {
            "denial_issued"
        });
        r["headline"] = json!(format!("Response {n}"));
        r["responds_to"] = json!({"development": claim, "stance": stance});
        r
    };
    let (first, second) = (claims[0].0.clone(), claims[1].0.clone());
    filed(app, &story, respond(&first, "supports", 0)).await;
    let mut denials = Vec::new();
    for n in 1..=12 {
        let r = respond(&first, "denies", n);
        denials.push(r["id"].as_str().unwrap().to_owned());
        filed(app, &story, r).await;
    }
    let support = respond(&second, "supports", 13);
    let support_id = support["id"].as_str().unwrap().to_owned();
    filed(app, &story, support).await;
    let retracted = app
        .editor_action(
            &story,
            &support_id,
            "retraction",
            json!({"reason": "Misread the report"}),
        )
        .await;
    let last = retracted.ok(200)["position"].as_i64().unwrap();
    read(app, &format!("/v1/stories/{story}?min_position={last}")).await;

    // Walk the ledger seven claims at a time.
    let mut path = format!("/v1/stories/{story}/claims?limit=7");
    let mut pages: Vec<Vec<Value>> = Vec::new();
    loop {
        let answer = app.call(Method::GET, &path, None, None).await;
        let link = answer
            .headers
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned());
        let body = answer.ok(200).clone();
        let page = body["claims"].as_array().unwrap().clone();
        assert!(
            !page.is_empty() && page.len() <= 7,
            "{path}: {}",
            page.len()
        );
        pages.push(page);
        match body["older"].as_str() {
            Some(older) => {
                assert_eq!(link, Some(format!("<{older}>; rel=\"next\"")));
                path = older.to_owned();
            }
            None => {
                assert!(link.is_none(), "{link:?}");
                break;
            }
        }
    }
    assert_eq!(pages.len(), 4, "25 claims, 7 a page");
    let position = |c: &Value| c["claim"]["position"].as_i64().unwrap();
    // Every claim once; each page's claims recorded after the next page's.
    let mut seen: Vec<String> = pages
        .iter()
        .flatten()
        .map(|c| c["claim"]["id"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    let mut all: Vec<String> = claims.iter().map(|(id, _)| id.clone()).collect();
    all.sort();
    assert_eq!(seen, all);
    for pair in pages.windows(2) {
        let oldest = pair[0].iter().map(position).min().unwrap();
        let newest = pair[1].iter().map(position).max().unwrap();
        assert!(oldest > newest, "pages overlap: {oldest} <= {newest}");
    }
    let entry = |id: &str| {
        pages
            .iter()
            .flatten()
            .find(|c| c["claim"]["id"] == id)
            .unwrap()
            .clone()
    };
    let first_entry = entry(&first);
    assert_eq!(first_entry["status"], "contested", "{first_entry:#}");
    let shown: Vec<&str> = first_entry["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    // The ten newest denials, and the support that settles the status.
    assert_eq!(shown.len(), 11, "{shown:?}");
    for d in &denials[2..] {
        assert!(shown.contains(&d.as_str()), "{d} missing from {shown:?}");
    }
    assert!(!shown.contains(&denials[0].as_str()));
    let second_entry = entry(&second);
    assert_eq!(second_entry["status"], "unverified", "{second_entry:#}");
    assert_eq!(second_entry["responses"][0]["state"], "retracted");

    // The story's resource holds the newest twenty and links to the rest.
    let body = read(app, &format!("/v1/stories/{story}")).await;
    assert_eq!(body["claims"].as_array().unwrap().len(), 20);
    let older = body["claims_older"]
        .as_str()
        .expect("a link to older claims");
    let rest = read(app, older).await;
    assert_eq!(rest["claims"].as_array().unwrap().len(), 5);
    assert!(rest.get("older").is_none());
    // So does its page.
    let html = page_html(app, &format!("/stories/{story}")).await;
    assert_eq!(html.matches("class=\"claim ").count(), 20, "{html}");
    let before = older.rsplit('=').next().unwrap();
    assert!(
        html.contains(&format!("?claims_before={before}#claims")),
        "{html}"
    );
    let html = page_html(app, &format!("/stories/{story}?claims_before={before}")).await;
    assert_eq!(html.matches("class=\"claim ").count(), 5);

    // As it stood after the eleventh claim: eleven claims, none answered.
    let as_of = urlencode(&halfway.unwrap().to_rfc3339());
    let then = read(app, &format!("/v1/stories/{story}/claims?as_of={as_of}")).await;
    let then = then["claims"].as_array().unwrap();
    assert_eq!(then.len(), 11);
    assert!(then
        .iter()
        .all(|c| c["status"] == "unverified" && c["responses"] == json!([])));
}

#[tokio::test]
async fn a_long_claims_ledger_is_read_a_page_at_a_time_on_sqlite() {
    let app = spawn_app().await;
    a_long_claims_ledger_is_read_a_page_at_a_time(&app).await;
}

#[tokio::test]
async fn a_long_claims_ledger_is_read_a_page_at_a_time_on_postgres() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    a_long_claims_ledger_is_read_a_page_at_a_time(&app).await;
}

/// The front page lists stories by their newest published development and shows it: its
/// headline, kind and time; a retraction of it brings back the one before.
async fn the_front_page_lists_stories_newest_development_first(app: &TestApp) {
    let first = app.open_story(false).await;
    let second = app.open_story(false).await;
    let empty = app.open_story(false).await;
    filed(app, &second, development("update")).await;
    let mut older = development("statement_issued");
    older["headline"] = json!("Ministry denies any role in the intrusion");
    let older_id = older["id"].as_str().unwrap().to_owned();
    let p = filed(app, &first, older).await;
    let mut newer = development("charges_filed");
    newer["headline"] = json!("Prosecutors charge a contractor <over> the leak");
    let newer_id = newer["id"].as_str().unwrap().to_owned();
    filed(app, &first, newer).await;
    let body = read(app, &format!("/v1/stories?min_position={}", p + 1)).await;
    let stories = body["stories"].as_array().unwrap();
    assert_eq!(stories[0]["id"], first.as_str());
    assert_eq!(stories[0]["development_count"], 2);
    assert_eq!(stories[1]["id"], second.as_str());
    assert_eq!(stories[1]["development_count"], 1);
    assert!(stories[0]["last_recorded_at"].is_string());
    let latest = &stories[0]["latest"];
    assert_eq!(latest["id"], newer_id.as_str(), "{latest}");
    assert_eq!(
        latest["headline"],
        "Prosecutors charge a contractor <over> the leak"
    );
    assert_eq!(latest["kind"], "charges_filed");
    assert!(latest["published_at"].is_string(), "{latest}");
    let empty_line = stories.iter().find(|s| s["id"] == empty.as_str()).unwrap();
    assert!(empty_line.get("latest").is_none(), "{empty_line}");

    let answer = app.call(Method::GET, "/", None, None).await;
    let page = answer.ok(200);
    let page = page.as_str().expect("an HTML page");
    assert!(
        page.contains("Prosecutors charge a contractor &lt;over&gt; the leak · "),
        "{page}"
    );
    assert!(page.contains(r#"<a href="/v1/feed.json" type="application/feed+json">"#));

    let retracted = app
        .editor_action(
            &first,
            &newer_id,
            "retraction",
            json!({"reason": "Wrong contractor."}),
        )
        .await
        .ok(200)["position"]
        .as_i64()
        .unwrap();
    let body = read(app, &format!("/v1/stories?min_position={retracted}")).await;
    let line = body["stories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == first.as_str())
        .unwrap()
        .clone();
    assert_eq!(line["latest"]["id"], older_id.as_str(), "{line}");
    assert_eq!(line["latest"]["kind"], "statement_issued");
    assert_eq!(line["development_count"], 1);
}

#[tokio::test]
async fn the_front_page_lists_stories_newest_development_first_on_sqlite() {
    the_front_page_lists_stories_newest_development_first(&spawn_app().await).await;
}

#[tokio::test]
async fn the_front_page_lists_stories_newest_development_first_on_postgres() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    the_front_page_lists_stories_newest_development_first(&app).await;
}

#[tokio::test]
async fn an_actor_page_gathers_developments_across_stories_by_normalised_name() {
    let app = spawn_app().await;
    let a = app.open_story(false).await;
    let b = app.open_story(false).await;
    let mut one = development("attribution_claimed");
    one["actors"] = json!(["Fancy Bear"]);
    one["occurred_at"] = json!("2026-09-01T00:00:00Z");
    let mut two = development("statement_issued");
    two["actors"] = json!(["fancy  BEAR"]);
    two["occurred_at"] = json!("2026-10-01T00:00:00Z");
    filed(&app, &a, one).await;
    let p = filed(&app, &b, two).await;
    let body = read(&app, &format!("/v1/actors/FANCY%20bear?min_position={p}")).await;
    assert_eq!(body["key"], "fancy bear");
    let devs = body["developments"].as_array().unwrap();
    assert_eq!(devs.len(), 2);
    assert_eq!(devs[0]["story_id"], b.as_str(), "newest first");
    assert_eq!(devs[1]["story_id"], a.as_str());
}

#[tokio::test]
async fn as_of_shows_the_story_exactly_as_readers_saw_it_then() {
    let (app, story) = spawn_app_with_story(false).await;
    let first = development("hack_reported");
    let first_id = first["id"].as_str().unwrap().to_owned();
    filed(&app, &story, first).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let moment = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    filed(&app, &story, development("attribution_claimed")).await;
    let p = app
        .editor_action(&story, &first_id, "retraction", json!({"reason": "Wrong"}))
        .await
        .ok(200)["position"]
        .as_i64()
        .unwrap();

    let now = read(&app, &format!("/v1/stories/{story}?min_position={p}")).await;
    assert_eq!(now["timeline"].as_array().unwrap().len(), 2);
    let as_of = moment.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let then = read(
        &app,
        &format!("/v1/stories/{story}?as_of={}", urlencode(&as_of)),
    )
    .await;
    let timeline = then["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0]["state"], "published", "not yet retracted then");
    let claims = read(
        &app,
        &format!("/v1/stories/{story}/claims?as_of={}", urlencode(&as_of)),
    )
    .await;
    assert!(claims["claims"].as_array().unwrap().is_empty());
    let front = read(&app, &format!("/v1/stories?as_of={}", urlencode(&as_of))).await;
    assert_eq!(front["stories"][0]["development_count"], 1);

    app.call(
        Method::GET,
        &format!("/v1/stories/{story}?as_of=yesterday"),
        None,
        None,
    )
    .await
    .problem_for_field(400, "as_of");
    let before = "2000-01-01T00:00:00Z";
    app.call(
        Method::GET,
        &format!("/v1/stories/{story}?as_of={before}"),
        None,
        None,
    )
    .await
    .problem(404);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn since_lists_what_was_added_corrected_or_retracted() {
    let (app, story) = spawn_app_with_story(false).await;
    let first = development("hack_reported");
    let id = first["id"].as_str().unwrap().to_owned();
    let since = filed(&app, &story, first).await;
    filed(&app, &story, development("update")).await;
    app.editor_action(
        &story,
        &id,
        "corrections",
        json!({"note": "n", "changes": {"evidence": "confirmed"}}),
    )
    .await
    .ok(200);
    let p = app
        .editor_action(&story, &id, "retraction", json!({"reason": "r"}))
        .await
        .ok(200)["position"]
        .as_i64()
        .unwrap();
    let body = read(
        &app,
        &format!("/v1/stories/{story}?since={since}&min_position={p}"),
    )
    .await;
    let kinds: Vec<&str> = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["added", "corrected", "retracted"]);
    assert_eq!(body["position"], p);
}

#[tokio::test]
async fn reads_carry_an_etag_and_answer_304_when_unchanged() {
    let (app, story) = spawn_app_with_story(false).await;
    let p = filed(&app, &story, development("update")).await;
    let path = format!("{}/v1/stories/{story}?min_position={p}", app.address);
    let first = app.client.get(&path).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = app
        .client
        .get(&path)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let p = filed(&app, &story, development("update")).await;
    let changed = app
        .client
        .get(format!(
            "{}/v1/stories/{story}?min_position={p}",
            app.address
        ))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200, "a new development changes the ETag");
}

/// An actor nothing names is not found (not an empty feed dated 1970); an actor's answers and
/// feeds carry an ETag and Cache-Control like a story's, and answer 304 while nothing changed.
#[tokio::test]
async fn actor_reads_are_404_for_unknown_actors_and_carry_an_etag() {
    let (app, story) = spawn_app_with_story(false).await;
    let p = filed(&app, &story, development("update")).await;
    for suffix in ["", "/feed.atom", "/feed.json"] {
        app.call(
            Method::GET,
            &format!("/v1/actors/Nobody%20Named{suffix}?min_position={p}"),
            None,
            None,
        )
        .await
        .problem(404);
        let path = format!("{}/v1/actors/Fancy%20Bear{suffix}", app.address);
        let first = app.client.get(&path).send().await.unwrap();
        assert_eq!(first.status(), 200, "{path}");
        assert_eq!(first.headers()["cache-control"], "public, no-cache");
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        let again = app
            .client
            .get(&path)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        filed(&app, &story, development("update")).await;
        let head = app.head().await;
        read(&app, &format!("/v1/stories?min_position={head}")).await;
        let changed = app
            .client
            .get(&path)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), 200, "a new development changes {path}");
    }
}

#[tokio::test]
async fn a_read_waits_for_its_min_position_then_answers_503() {
    let (app, story) = spawn_app_with_story(false).await;
    // The views cannot move (their database is locked for writing by someone else) while the
    // log goes on: the read waits, bounded, then answers 503.
    let views = app.database_path.with_file_name("views.db");
    assert!(views.exists(), "{views:?}");
    let lock = rusqlite::Connection::open(&views).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let last = filed(&app, &story, development("update")).await;
    let answer = app.read_story_at(&story, last).await;
    answer.problem_for_field(503, "min_position");
    assert_eq!(answer.headers["retry-after"], "1");
    // A position the log has not reached is not waited for.
    app.call(
        Method::GET,
        &format!("/v1/stories/{story}?min_position={}", last + 1_000_000),
        None,
        None,
    )
    .await
    .problem_for_field(404, "min_position");
    drop(lock);
    app.call(Method::GET, "/v1/stories?min_position=-4", None, None)
        .await
        .problem_for_field(400, "min_position");
    app.call(Method::GET, "/v1/stories/no-such-story", None, None)
        .await
        .problem(404);
}

#[tokio::test]
async fn story_feeds_are_valid_atom_and_json_feed_and_follow_corrections() {
    let (app, story) = spawn_app_with_story(false).await;
    let mut hostile = development("hack_reported");
    hostile["headline"] = json!("<script>alert(1)</script> & \"quotes\"");
    let id = hostile["id"].as_str().unwrap().to_owned();
    filed(&app, &story, hostile).await;
    let p = app
        .editor_action(
            &story,
            &id,
            "corrections",
            json!({"note": "Fixed the date", "changes": {"occurred_at": "2026-09-30T00:00:00Z"}}),
        )
        .await
        .ok(200)["position"]
        .as_i64()
        .unwrap();
    app.story_at(&story, p).await;

    let atom = app
        .client
        .get(format!("{}/v1/stories/{story}/feed.atom", app.address))
        .send()
        .await
        .unwrap();
    assert!(atom.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/atom+xml"));
    let xml = atom.text().await.unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("the Atom feed is well-formed XML");
    let ns = "http://www.w3.org/2005/Atom";
    let feed = doc.root_element();
    assert!(feed.has_tag_name((ns, "feed")));
    let child = |n: roxmltree::Node<'_, '_>, name: &str| {
        n.children().filter(|c| c.has_tag_name((ns, name))).count()
    };
    for required in ["id", "title", "updated"] {
        assert_eq!(child(feed, required), 1, "feed has one {required}");
    }
    assert!(feed
        .children()
        .any(|c| c.has_tag_name((ns, "link")) && c.attribute("rel") == Some("self")));
    let entries: Vec<_> = feed
        .children()
        .filter(|c| c.has_tag_name((ns, "entry")))
        .collect();
    assert_eq!(entries.len(), 1);
    let entry = entries[0];
    for required in ["id", "title", "updated"] {
        assert_eq!(child(entry, required), 1, "entry has one {required}");
    }
    let title = entry
        .children()
        .find(|c| c.has_tag_name((ns, "title")))
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(title, "<script>alert(1)</script> & \"quotes\"");
    let updated = entry
        .children()
        .find(|c| c.has_tag_name((ns, "updated")))
        .unwrap()
        .text()
        .unwrap();
    let published = entry
        .children()
        .find(|c| c.has_tag_name((ns, "published")))
        .unwrap()
        .text()
        .unwrap();
    let updated = chrono::DateTime::parse_from_rfc3339(updated).unwrap();
    let published = chrono::DateTime::parse_from_rfc3339(published).unwrap();
    assert!(
        updated > published,
        "the correction moved the entry's updated time"
    );
    assert!(xml.contains("Fixed the date"));

    let json_feed = app
        .client
        .get(format!("{}/v1/stories/{story}/feed.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(json_feed.headers()["content-type"], "application/feed+json");
    let feed: Value = json_feed.json().await.unwrap();
    assert_eq!(feed["version"], "https://jsonfeed.org/version/1.1");
    assert!(feed["title"].is_string());
    let item = &feed["items"][0];
    assert_eq!(item["id"].as_str().map(|s| s.contains(&id)), Some(true));
    assert!(item["content_text"].is_string() || item["content_html"].is_string());
    chrono::DateTime::parse_from_rfc3339(item["date_modified"].as_str().unwrap()).unwrap();
    // Each extension object says where it is described (JSON Feed 1.1), and that is served.
    let about = feed["_newsroom"]["about"].as_str().unwrap();
    assert_eq!(about, "http://newsroom.test/v1/feeds/json-feed-extension");
    assert_eq!(item["_newsroom"]["about"], about);
    let described = app
        .client
        .get(format!("{}/v1/feeds/json-feed-extension", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(described.status(), 200);
    assert!(described.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    assert!(described.text().await.unwrap().contains("`_newsroom`"));

    let ninjs = read(&app, &format!("/v1/stories/{story}/ninjs")).await;
    assert!(ninjs["uri"].is_string());
    assert_eq!(ninjs["pubStatus"], "usable");
    assert!(ninjs["headlines"][0]["value"].is_string());
}

#[tokio::test]
async fn the_story_stream_sends_changes_with_positions_and_resumes_after_last_event_id() {
    let (app, story) = spawn_app_with_story(false).await;
    // The story is readable once the views have its opening (position 1).
    let url = format!("{}/v1/stories/{story}/stream?min_position=1", app.address);
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = SseReader::new(response);

    let p1 = filed(&app, &story, development("hack_reported")).await;
    let p2 = filed(&app, &story, development("update")).await;
    let first = stream.next_event().await;
    assert_eq!(first.id, p1.to_string());
    assert_eq!(first.event, "added");
    let second = stream.next_event().await;
    assert_eq!(second.id, p2.to_string());
    drop(stream);

    // Reconnecting with the first id resumes strictly after it.
    let p3 = filed(&app, &story, development("update")).await;
    let response = app
        .client
        .get(&url)
        .header("last-event-id", p1.to_string())
        .send()
        .await
        .unwrap();
    let mut stream = SseReader::new(response);
    assert_eq!(stream.next_event().await.id, p2.to_string());
    assert_eq!(stream.next_event().await.id, p3.to_string());
}

#[tokio::test]
async fn live_streams_beyond_the_cap_of_an_address_get_a_429_problem_and_a_closed_one_frees_its_place(
) {
    let app = spawn_app_with(|s| {
        s.live.per_address = 2;
    })
    .await;
    let story = app.open_story(false).await;
    let url = format!("{}/v1/stories/{story}/stream?min_position=1", app.address);
    let open = || async { app.client.get(&url).send().await.unwrap() };
    let first = open().await;
    let second = open().await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let refused = open().await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    assert!(refused.headers().contains_key("retry-after"));
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["status"], 429);
    drop(first);
    // The server notices the closed connection when it next writes to it, at the latest with
    // the next change of the story.
    let mut admitted = false;
    for _ in 0..50 {
        filed(&app, &story, development("update")).await;
        let again = open().await;
        if again.status() == 200 {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(admitted, "the closed stream's place was given back");
}

#[tokio::test]
async fn reader_pages_render_and_refuse_inline_script() {
    let app = spawn_app().await;
    let answer = app
        .open_story_as(
            &app.reporter,
            json!({"slug": "page-test", "headline": "<script>alert('x')</script>"}),
        )
        .await;
    let p = answer.ok(201)["position"].as_i64().unwrap();
    app.call(
        Method::GET,
        &format!("/v1/stories/page-test?min_position={p}"),
        None,
        None,
    )
    .await
    .ok(200);
    let page = app
        .client
        .get(format!("{}/stories/page-test", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>alert"), "the headline is escaped");
    assert!(html.contains("&lt;script&gt;"));
    for path in [
        "/",
        "/static/newsroom.css",
        "/static/live.js",
        "/actors/fancy%20bear",
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let missing = app
        .client
        .get(format!("{}/stories/no-such-story", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// A minimal reader of a `text/event-stream` body.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

#[derive(Debug, Default)]
struct SseEvent {
    id: String,
    event: String,
    data: String,
}

impl SseReader {
    fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    async fn next_event(&mut self) -> SseEvent {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let mut event = SseEvent::default();
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            event.id = v.trim().to_owned();
                        } else if let Some(v) = line.strip_prefix("event:") {
                            event.event = v.trim().to_owned();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            event.data.push_str(v.trim());
                        }
                    }
                    if !event.id.is_empty() {
                        return event;
                    }
                    continue; // a keep-alive comment
                }
                let chunk = self.response.chunk().await.unwrap().expect("stream open");
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("an event arrives")
    }
}

/// Records `n` developments whose `occurred_at` order differs from their recording order (one
/// a claim, one a response to it, one retracted) and walks the story's pages by their `older`
/// links: each page holds at most `limit` in the order they happened, the pages together hold
/// every visible development once, newest page first, and the claims ledger is whole on each.
async fn pages_walk_the_whole_timeline(app: &TestApp) {
    let story = app.open_story(false).await;
    let n = 230;
    let mut claim = Value::Null;
    let mut retracted = String::new();
    let mut last = 0;
    for i in 0..n {
        // 37 is prime to 230: the minutes are a shuffle of 0..230.
        let minute = (i * 37) % n;
        let mut d = development("hack_reported");
        d["occurred_at"] = json!(format!(
            "2026-10-01T{:02}:{:02}:00Z",
            minute / 60,
            minute % 60
        ));
        d["headline"] = json!(format!("Development {minute:03}"));
        if i == 3 {
            d["kind"] = json!("attribution_claimed");
            claim = d.clone();
        }
        if i == 200 {
            d["kind"] = json!("denial_issued");
            d["responds_to"] = json!({"development": claim["id"], "stance": "denies"});
        }
        if i == 100 {
            retracted = d["id"].as_str().unwrap().to_owned();
        }
        last = filed(app, &story, d).await;
    }
    let retraction = app
        .editor_action(
            &story,
            &retracted,
            "retraction",
            json!({"reason": "It did not happen."}),
        )
        .await;
    last = last.max(retraction.ok(200)["position"].as_i64().unwrap());
    let mut path = format!("/v1/stories/{story}?min_position={last}");
    let mut seen: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        let answer = app.call(Method::GET, &path, None, None).await;
        let link = answer
            .headers
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = answer.ok(200).clone();
        pages += 1;
        assert_eq!(
            body["development_count"],
            n - 1,
            "the count covers the whole story"
        );
        let claims = body["claims"].as_array().unwrap();
        assert_eq!(claims.len(), 1, "the ledger is whole on every page");
        assert_eq!(claims[0]["claim"]["id"], claim["id"]);
        assert_eq!(claims[0]["status"], "denied");
        let page = headlines(&body["timeline"]);
        assert!(page.len() <= 100, "a page holds at most the default limit");
        let mut sorted = page.clone();
        sorted.sort();
        assert_eq!(page, sorted, "a page is in the order things happened");
        if let Some(first_seen) = seen.first() {
            assert!(
                page.last().unwrap() < first_seen,
                "an older page comes before the newer one"
            );
        }
        seen.splice(0..0, page);
        match body["older"].as_str() {
            Some(older) => {
                assert_eq!(link, Some(format!("<{older}>; rel=\"next\"")));
                path = older.to_owned();
            }
            None => {
                assert_eq!(link, None);
                break;
            }
        }
    }
    assert_eq!(pages, 3, "230 developments make pages of 100, 100 and 30");
    let all: Vec<String> = (0..n).map(|m| format!("Development {m:03}")).collect();
    assert_eq!(
        seen, all,
        "every visible development once, retracted ones included"
    );
    // A smaller page, and the cursor's limits.
    let small = read(app, &format!("/v1/stories/{story}?limit=7")).await;
    assert_eq!(headlines(&small["timeline"]).len(), 7);
    assert_eq!(
        headlines(&small["timeline"])[6],
        format!("Development {:03}", n - 1)
    );
    let older = small["older"].as_str().unwrap();
    assert!(older.ends_with("&limit=7"), "{older}");
    let next = read(app, older).await;
    assert_eq!(
        headlines(&next["timeline"])[6],
        format!("Development {:03}", n - 8)
    );
    // A cursor that names no development of the story: no such page.
    app.call(
        Method::GET,
        &format!("/v1/stories/{story}?before=1"),
        None,
        None,
    )
    .await
    .problem_for_field(404, "before");
    for bad in ["limit=0", "limit=1001", "before=-1", "before=x"] {
        let field = bad.split('=').next().unwrap();
        app.call(
            Method::GET,
            &format!("/v1/stories/{story}?{bad}"),
            None,
            None,
        )
        .await
        .problem_for_field(400, field);
    }
    // The reader page: the newest page, with a link to the older ones that works.
    let slug = read(app, &format!("/v1/stories/{story}")).await["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    let html = page_html(app, &format!("/stories/{slug}")).await;
    assert!(
        html.contains(">229 developments</span>")
            && html.contains("; the latest 100 here, newest first."),
        "{html}"
    );
    assert!(html.contains(&format!("Development {:03}", n - 1)));
    assert!(
        !html.contains("Development 000"),
        "the oldest are on a later page"
    );
    let older_href = html
        .split("class=\"older-link\"><a href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to older developments")
        .to_owned();
    let older_html = app
        .client
        .get(format!("{}{}", app.address, older_href))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(older_html.contains(&format!("Development {:03}", n - 101)));
    assert!(!older_html.contains(&format!("Development {:03}", n - 1)));
}

#[tokio::test]
async fn a_long_timeline_is_read_a_page_at_a_time() {
    let app = spawn_app().await;
    pages_walk_the_whole_timeline(&app).await;
}

#[tokio::test]
async fn a_long_timeline_is_read_a_page_at_a_time_on_postgres() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    pages_walk_the_whole_timeline(&app).await;
}

/// `as_of` reads the views' history (`story_versions`, `development_versions`): at the time of
/// every event of a story that was edited, approved, rejected, corrected (moved in time),
/// retracted, revised and closed, with two developments that happened at the same moment, each page of it and its claims ledger equal what folding the story's events up to
/// then gives, on SQLite and PostgreSQL.
async fn as_of_equals_the_fold_at_every_moment(app: &TestApp) {
    use newsroom_readmodel::decode;

    let story = app.open_story(true).await;
    let mut ids = Vec::new();
    for i in 0..9 {
        let mut d = development(if i == 2 {
            "attribution_claimed"
        } else {
            "hack_reported"
        });
        d["occurred_at"] = json!(format!("2026-10-0{}T09:00:00Z", 9 - i.min(7)));
        d["headline"] = json!(format!("Filing {i}"));
        if i == 6 {
            d["kind"] = json!("denial_issued");
            d["responds_to"] = json!({"development": ids[2], "stance": "denies"});
        }
        ids.push(d["id"].as_str().unwrap().to_owned());
        app.record_as(&app.reporter, &story, d).await.ok(201);
    }
    let act = |id: usize, action: &'static str, body: Value| {
        let (story, id) = (story.clone(), ids[id].clone());
        async move {
            let answer = app.editor_action(&story, &id, action, body).await;
            assert!(answer.status.is_success(), "{action}: {:?}", answer.body);
        }
    };
    for i in [0, 1, 2, 3, 5, 6, 7] {
        act(i, "approval", json!({})).await;
    }
    act(4, "rejection", json!({"reason": "Unsourced."})).await;
    let correction = json!({
        "note": "It happened later.",
        "changes": {"occurred_at": "2026-10-20T00:00:00Z", "headline": "Filing 1, corrected"},
    });
    act(1, "corrections", correction).await;
    act(3, "retraction", json!({"reason": "Withdrawn."})).await;
    app.call(
        Method::PATCH,
        &format!("/v1/stories/{story}"),
        Some(&app.editor),
        Some(json!({"headline": "A revised headline", "tags": ["cyber"]})),
    )
    .await
    .ok(200);
    let closed = app.story_action(&app.editor, &story, "close", None).await;
    let last = closed.ok(200)["position"].as_i64().unwrap();
    read(app, &format!("/v1/stories/{story}?min_position={last}")).await;

    let events: Vec<_> = app
        .app_state
        .store
        .story_events(story.clone())
        .await
        .unwrap()
        .iter()
        .map(|raw| decode(raw).unwrap())
        .collect();
    assert!(events.len() > 20, "{}", events.len());
    each_moment_equals_the_fold(app, &story, &events).await;
    // A rebuild writes the same history as the projector did.
    let report = newsroom_projection::rebuild(&app.app_state.store, &app.views, &[], None)
        .await
        .unwrap();
    assert!(report.events as usize >= events.len());
    each_moment_equals_the_fold(app, &story, &events).await;
}

async fn each_moment_equals_the_fold(
    app: &TestApp,
    story: &str,
    events: &[newsroom_readmodel::LoggedEvent],
) {
    use newsroom_projection::resource::StoryResource;
    use newsroom_readmodel::{StoryPage, StoryView};
    for (n, e) in events.iter().enumerate() {
        let at = e.recorded_at;
        let folded = StoryView::fold(events.iter().filter(|e| e.recorded_at <= at)).unwrap();
        let as_of = urlencode(&at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        // Pages of 3: walk them by cursor, each equal to the fold's.
        let mut before: Option<i64> = None;
        loop {
            let expected = StoryPage::of_view(&folded, before, 3).unwrap();
            let mut path = format!("/v1/stories/{story}?as_of={as_of}&limit=3");
            if let Some(b) = before {
                path.push_str(&format!("&before={b}"));
            }
            let mut got = read(app, &path).await;
            let older = got.as_object_mut().unwrap().remove("older");
            let want = serde_json::to_value(StoryResource::of(&expected, None)).unwrap();
            assert_eq!(got, want, "as of event {n} ({at}), page before {before:?}");
            assert_eq!(older.is_some(), expected.older.is_some());
            match expected.older {
                Some(b) => before = Some(b),
                None => break,
            }
        }
        // What changed since this event: each change with the development as it stood right
        // after it, as the fold of the whole story says.
        let upto = events.last().unwrap().position;
        let since = read(app, &format!("/v1/stories/{story}?since={}", e.position)).await;
        let want = newsroom_projection::resource::changes_since(events, e.position, upto);
        assert_eq!(
            since["changes"],
            serde_json::to_value(&want).unwrap(),
            "changes since event {n}"
        );
        let claims = read(app, &format!("/v1/stories/{story}/claims?as_of={as_of}")).await;
        let want = serde_json::to_value(StoryResource::of(
            &StoryPage::of_view(&folded, None, 1).unwrap(),
            None,
        ))
        .unwrap();
        assert_eq!(claims["claims"], want["claims"], "claims as of event {n}");
        let front = read(app, &format!("/v1/stories?as_of={as_of}")).await;
        let line = front["stories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == story)
            .expect("the story is on the front page then")
            .clone();
        assert_eq!(
            line,
            serde_json::to_value(folded.front_page_entry()).unwrap(),
            "front page as of event {n}"
        );
    }
}

#[tokio::test]
async fn as_of_equals_the_fold_at_every_moment_on_sqlite() {
    let app = spawn_app().await;
    as_of_equals_the_fold_at_every_moment(&app).await;
}

#[tokio::test]
async fn as_of_equals_the_fold_at_every_moment_on_postgres() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    as_of_equals_the_fold_at_every_moment(&app).await;
}

/// `?since=` reads at most 500 of the story's events per answer; its `position` is where the
/// next answer starts, so a client that follows it sees every change once.
#[tokio::test]
async fn since_answers_a_bounded_number_of_changes_and_says_where_to_go_on() {
    let (app, story) = spawn_app_with_story(false).await;
    let mut last = 0;
    for _ in 0..520 {
        last = filed(&app, &story, development("update")).await;
    }
    let first = read(
        &app,
        &format!("/v1/stories/{story}?since=0&min_position={last}"),
    )
    .await;
    let changes = first["changes"].as_array().unwrap();
    // The story's first event (its opening) is one of the 500 read; readers see no change in it.
    assert_eq!(changes.len(), 499);
    let next = first["position"].as_i64().unwrap();
    assert_eq!(next, changes.last().unwrap()["position"].as_i64().unwrap());
    let rest = read(&app, &format!("/v1/stories/{story}?since={next}")).await;
    let rest = rest["changes"].as_array().unwrap();
    assert_eq!(rest.len(), 21);
    assert_eq!(rest.last().unwrap()["position"], last);
}

/// Feed and ninjs links come from the configured public URL (as alerts' do), never from the
/// request's `Host`: behind TLS or a proxy they are right, a story's ninjs `uri` does not change
/// with the name it was asked by, and a shared cache cannot hand one host's links to another.
#[tokio::test]
async fn feed_links_come_from_the_public_url_not_the_host_header() {
    let (app, story) = spawn_app_with_story(false).await;
    let p = filed(&app, &story, development("hack_reported")).await;
    let slug = read(&app, &format!("/v1/stories/{story}?min_position={p}")).await["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    let get = |path: String| {
        app.client
            .get(format!("{}{path}", app.address))
            .header("Host", "attacker.example")
            .send()
    };
    let json_feed: Value = get(format!("/v1/stories/{story}/feed.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        json_feed["home_page_url"],
        format!("http://newsroom.test/stories/{slug}")
    );
    let ninjs: Value = get(format!("/v1/stories/{story}/ninjs"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ninjs["uri"], format!("http://newsroom.test/stories/{slug}"));
    let atom = get(format!("/v1/stories/{story}/feed.atom"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!atom.contains("attacker.example"), "{atom}");
    assert!(atom.contains("http://newsroom.test/stories/"), "{atom}");
}

/// The front page as it stood is read from a mark and the lines recorded after it
/// (`newsroom_projection::marks`). Reporters filing at once record their events out of position
/// order, and a retraction moves a story down; at every recorded moment (and just before it), for
/// short and long pages, the answer equals one line per story, over HTTP and from the views.
async fn front_pages_as_they_stood_equal_one_line_per_story(app: &TestApp) {
    let stories = futures_util::future::join_all((0..6).map(|_| app.open_story(false))).await;
    futures_util::future::join_all(stories.iter().enumerate().map(|(i, story)| async move {
        let mut newest = String::new();
        for _ in 0..8 {
            let answer = app.record(story, development("update")).await;
            newest = answer.ok(201)["id"].as_str().unwrap().to_owned();
        }
        if i % 3 == 0 {
            app.call(
                Method::POST,
                &format!("/v1/stories/{story}/developments/{newest}/retraction"),
                Some(&app.editor),
                Some(json!({"reason": "Withdrawn."})),
            )
            .await
            .ok(200);
        }
    }))
    .await;
    let head = app.head().await;
    read(app, &format!("/v1/stories?min_position={head}")).await;
    let feed = app.app_state.store.read_feed(0, 10_000).await.unwrap();
    let mut times: Vec<_> = feed
        .iter()
        .map(|raw| newsroom_readmodel::decode(raw).unwrap().recorded_at)
        .collect();
    let in_order = times.windows(2).all(|w| w[0] <= w[1]);
    times.sort();
    times.dedup();
    for at in times
        .iter()
        .flat_map(|t| [*t, *t - chrono::Duration::microseconds(1)])
    {
        for limit in [1, 3, 100] {
            let marked = app.views.front_page_as_of(at, limit).await.unwrap();
            let by_story = app
                .views
                .front_page_as_of_by_story(at, limit)
                .await
                .unwrap();
            let want = serde_json::to_value(&by_story).unwrap();
            assert_eq!(
                serde_json::to_value(&marked).unwrap(),
                want,
                "{at}, {limit}"
            );
            let path = format!(
                "/v1/stories?as_of={}&limit={limit}",
                urlencode(&at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            );
            assert_eq!(read(app, &path).await["stories"], want, "{path}");
        }
    }
    assert_eq!(
        app.views.front_page_fallbacks(),
        0,
        "marks listing every story answer every read"
    );
    eprintln!("events recorded in position order: {in_order}");
}

fn close_marks(s: &mut newsroom::NewsroomSettings) {
    s.front_page_marks = newsroom_projection::MarkSpacing {
        every: 4,
        length: 100,
    };
}

#[tokio::test]
async fn front_pages_as_they_stood_equal_one_line_per_story_on_sqlite() {
    let app = spawn_app_with(close_marks).await;
    front_pages_as_they_stood_equal_one_line_per_story(&app).await;
}

#[tokio::test]
async fn front_pages_as_they_stood_equal_one_line_per_story_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let url = db.url.clone();
    let app = spawn_app_with(move |s| {
        s.command.database_url = Some(url);
        close_marks(s);
    })
    .await;
    front_pages_as_they_stood_equal_one_line_per_story(&app).await;
}

/// The front page as feeds (what feed readers look for first, found from every reader page's
/// `<link rel="alternate">`): one entry per story, in the front page's order, each linking to
/// its page, the links built from the public URL whatever `Host` the request names.
#[tokio::test]
async fn the_front_page_is_an_atom_feed_and_a_json_feed_found_from_the_pages() {
    let app = spawn_app().await;
    let quiet = app.open_story(false).await;
    let busy = app.open_story(false).await;
    filed(&app, &quiet, development("update")).await;
    let p = filed(&app, &busy, development("update")).await;
    read(&app, &format!("/v1/stories?min_position={p}")).await;
    let order: Vec<String> = read(&app, "/v1/stories").await["stories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order[0], busy);

    let atom = app
        .client
        .get(format!("{}/v1/feed.atom", app.address))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(atom.status(), 200);
    assert!(atom.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/atom+xml"));
    assert!(atom.headers().contains_key("etag"));
    let xml = atom.text().await.unwrap();
    assert!(!xml.contains("evil.example"), "{xml}");
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let ns = "http://www.w3.org/2005/Atom";
    let feed = doc.root_element();
    assert!(feed.has_tag_name((ns, "feed")));
    let ids: Vec<String> = feed
        .children()
        .filter(|c| c.has_tag_name((ns, "entry")))
        .map(|e| {
            e.children()
                .find(|c| c.has_tag_name((ns, "id")))
                .and_then(|c| c.text())
                .unwrap()
                .to_owned()
        })
        .collect();
    let want: Vec<String> = order.iter().map(|id| format!("urn:uuid:{id}")).collect();
    assert_eq!(ids, want, "entries in the front page's order");
    assert!(xml.contains("http://newsroom.test/stories/"), "{xml}");

    let json = app
        .client
        .get(format!("{}/v1/feed.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(json.headers()["content-type"], "application/feed+json");
    let feed: Value = json.json().await.unwrap();
    assert_eq!(feed["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(feed["feed_url"], "http://newsroom.test/v1/feed.json");
    let items: Vec<&str> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(items, want.iter().map(String::as_str).collect::<Vec<_>>());

    let slug = read(&app, "/v1/stories").await["stories"][0]["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    for page in ["/".to_owned(), format!("/stories/{slug}")] {
        let html = page_html(&app, &page).await;
        assert!(
            html.contains(
                r#"type="application/atom+xml" title="All stories (Atom)" href="/v1/feed.atom""#
            ),
            "{page}"
        );
    }
}
