//! Related stories, over real HTTP on SQLite and PostgreSQL: editors relate two stories
//! (`POST /v1/stories/{id}/relations`) and unrelate them (`DELETE …/relations/{other}`, from
//! either story); both stories show the relation — the one it is recorded on as made, the other
//! reversed ("followed up by") — in the JSON view, on the reader page and in the ninjs item's
//! `associations`; refusals are problems naming the field; a rebuild keeps relations; and a
//! subscriber of a story who asked for related stories gets one alert when another story is
//! related to it, one who did not gets none.

use std::time::Duration;

use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

async fn open(app: &TestApp, slug: &str, headline: &str) -> String {
    app.open_story_as(&app.editor, json!({"slug": slug, "headline": headline}))
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn relate(app: &TestApp, token: &str, story: &str, body: Value) -> Answer {
    app.story_action(token, story, "relations", Some(body))
        .await
}

async fn unrelate(app: &TestApp, story: &str, other: &str) -> Answer {
    app.call(
        Method::DELETE,
        &format!("/v1/stories/{story}/relations/{other}"),
        Some(&app.editor),
        None,
    )
    .await
}

/// A story's JSON once the views hold `position`.
async fn story_at(app: &TestApp, story: &str, position: i64) -> Answer {
    app.read_story_at(story, position).await
}

/// (id, relation, label, slug, headline) of each related story a story's JSON shows.
fn shown(story: &Value) -> Vec<(String, String, String, String, String)> {
    story["relations"]
        .as_array()
        .expect("a current story shows its relations")
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            (s("id"), s("relation"), s("label"), s("slug"), s("headline"))
        })
        .collect()
}

async fn page(app: &TestApp, path: &str) -> String {
    let answer = app.client.get(format!("{}{path}", app.address)).send();
    let answer = answer.await.unwrap();
    assert_eq!(answer.status(), 200, "{path}");
    answer.text().await.unwrap()
}

async fn relations_are_recorded_once_and_shown_on_both_stories(app: &TestApp) {
    let ruling = open(app, "court-ruling", "Court rules on the campaign hack").await;
    let hack = open(app, "campaign-hack", "Campaign reports a hack").await;
    // Read before the relation, so that its body is in memory: the relation, recorded on the
    // other story, must still reach it.
    let opened = app.head().await;
    let before = story_at(app, &hack, opened).await;
    assert_eq!(shown(before.ok(200)), vec![]);
    let etag_before = before.headers["etag"].to_str().unwrap().to_owned();

    // Refusals name the field; nothing is recorded.
    relate(
        app,
        &app.reporter,
        &ruling,
        json!({"story": hack, "relation": "follow_up"}),
    )
    .await
    .problem(403);
    relate(
        app,
        &app.editor,
        &ruling,
        json!({"story": hack, "relation": "sequel"}),
    )
    .await
    .problem_for_field(422, "relation");
    relate(
        app,
        &app.editor,
        &ruling,
        json!({"story": uuid::Uuid::new_v4(), "relation": "follow_up"}),
    )
    .await
    .problem_for_field(422, "story");
    relate(
        app,
        &app.editor,
        &ruling,
        json!({"story": ruling, "relation": "related"}),
    )
    .await
    .problem_for_field(422, "story");
    relate(
        app,
        &app.editor,
        &uuid::Uuid::new_v4().to_string(),
        json!({"story": hack, "relation": "related"}),
    )
    .await
    .problem(404);

    // The ruling follows up the hack: recorded on the ruling.
    let linked = relate(
        app,
        &app.editor,
        &ruling,
        json!({"story": hack, "relation": "follow_up"}),
    )
    .await;
    let body = linked.ok(200);
    assert_eq!(body["events"], json!(["StoryLinked"]));
    let p = body["position"].as_i64().unwrap();
    // Once, from either side.
    relate(
        app,
        &app.editor,
        &ruling,
        json!({"story": hack, "relation": "background"}),
    )
    .await
    .problem_for_field(409, "story");
    relate(
        app,
        &app.editor,
        &hack,
        json!({"story": ruling, "relation": "related"}),
    )
    .await
    .problem_for_field(409, "story");

    let on_ruling = story_at(app, &ruling, p).await;
    assert_eq!(
        shown(on_ruling.ok(200)),
        vec![(
            hack.clone(),
            "follow_up".into(),
            "Follow-up of".into(),
            "campaign-hack".into(),
            "Campaign reports a hack".into()
        )]
    );
    let on_hack = story_at(app, &hack, p).await;
    assert_eq!(
        shown(on_hack.ok(200)),
        vec![(
            ruling.clone(),
            "followed_up_by".into(),
            "Followed up by".into(),
            "court-ruling".into(),
            "Court rules on the campaign hack".into()
        )]
    );
    // The hack's own position did not move, but what it shows did: so did its ETag.
    assert_eq!(on_hack.body["position"], before.body["position"]);
    assert_ne!(on_hack.headers["etag"].to_str().unwrap(), etag_before);

    // The reader pages of both.
    let html = page(app, "/stories/campaign-hack").await;
    assert!(html.contains("Related stories"), "{html}");
    assert!(html.contains("Followed up by"), "{html}");
    assert!(html.contains("href=\"/stories/court-ruling\""), "{html}");
    let html = page(app, "/stories/court-ruling").await;
    assert!(html.contains("Follow-up of"), "{html}");
    assert!(html.contains("href=\"/stories/campaign-hack\""), "{html}");

    // ninjs: an association beside the developments, `rel` as seen from each story.
    let ninjs = app
        .call(
            Method::GET,
            &format!("/v1/stories/{hack}/ninjs"),
            None,
            None,
        )
        .await;
    let associations = ninjs.ok(200)["associations"].as_array().unwrap().clone();
    let related: Vec<&Value> = associations
        .iter()
        .filter(|a| a.get("rel").is_some())
        .collect();
    assert_eq!(related.len(), 1, "{associations:#?}");
    assert_eq!(related[0]["rel"], "followed_up_by");
    assert_eq!(related[0]["name"], "court-ruling");
    assert!(related[0]["uri"]
        .as_str()
        .unwrap()
        .ends_with("/stories/court-ruling"));
    assert_eq!(related[0]["altIds"][0]["value"], ruling.as_str());

    // A headline changed on one story shows on the other.
    let revised = app
        .call(
            Method::PATCH,
            &format!("/v1/stories/{ruling}"),
            Some(&app.editor),
            Some(json!({"headline": "Court rules the hack was foreign"})),
        )
        .await
        .ok(200)["position"]
        .as_i64()
        .unwrap();
    let on_hack = story_at(app, &hack, revised).await;
    assert_eq!(
        shown(on_hack.ok(200))[0].4,
        "Court rules the hack was foreign"
    );

    // A rebuild keeps the relations.
    newsroom_projection::rebuild(&app.app_state.store, &app.views, &[], None)
        .await
        .unwrap();
    let on_hack = story_at(app, &hack, revised).await;
    assert_eq!(shown(on_hack.ok(200))[0].0, ruling);
    let on_ruling = story_at(app, &ruling, revised).await;
    assert_eq!(shown(on_ruling.ok(200))[0].1, "follow_up");

    // Unrelated from the story it is not recorded on: gone from both.
    let unlinked = unrelate(app, &hack, &ruling).await;
    let body = unlinked.ok(200);
    assert_eq!(body["events"], json!(["StoryUnlinked"]));
    assert_eq!(body["story_id"], ruling.as_str(), "recorded on the ruling");
    let p = body["position"].as_i64().unwrap();
    assert_eq!(shown(story_at(app, &hack, p).await.ok(200)), vec![]);
    assert_eq!(shown(story_at(app, &ruling, p).await.ok(200)), vec![]);
    assert!(!page(app, "/stories/campaign-hack")
        .await
        .contains("Related stories"));
    // Twice: not related any more.
    unrelate(app, &hack, &ruling)
        .await
        .problem_for_field(404, "other");
    unrelate(app, &ruling, &hack)
        .await
        .problem_for_field(404, "other");
    // Related again, another way.
    relate(
        app,
        &app.editor,
        &hack,
        json!({"story": ruling, "relation": "same_event"}),
    )
    .await
    .ok(200);
}

#[tokio::test]
async fn relations_are_recorded_once_and_shown_on_both_stories_and_kept_by_a_rebuild() {
    let app = spawn_app().await;
    relations_are_recorded_once_and_shown_on_both_stories(&app).await;
}

#[tokio::test]
async fn relations_are_recorded_once_and_shown_on_both_stories_and_kept_by_a_rebuild_on_postgres() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return skip_or_fail("no PostgreSQL (NEWSROOM_TEST_DATABASE_URL)");
    };
    relations_are_recorded_once_and_shown_on_both_stories(&app).await;
}

/// A subscriber following `story`, with `include_related` as given.
async fn follower(app: &TestApp, story: &str, include_related: bool) -> SignedUp {
    let s = app.sign_up("Reader").await;
    let mut filters = json!({"story": story});
    if include_related {
        filters["include_related"] = json!(true);
    }
    app.subscribe(&s, filters).await.ok(201);
    s
}

async fn alerts_of(app: &TestApp, s: &SignedUp) -> Vec<Value> {
    app.subscriber_get(s, "/alerts")
        .await
        .ok(200)
        .as_array()
        .unwrap()
        .clone()
}

async fn subscribers_who_asked_hear_of_related_stories(app: &TestApp) {
    let hack = open(app, "phishing-unit", "Vendor reports on a phishing unit").await;
    let charges = open(app, "doj-charges", "Justice Department charges a man").await;
    // Only a subscription to a story hears of related stories.
    let s = app.sign_up("Reader").await;
    app.subscribe(&s, json!({"tag": "cyber", "include_related": true}))
        .await
        .problem_for_field(422, "include_related");
    let asked = follower(app, &hack, true).await;
    let not_asked = follower(app, &hack, false).await;
    // Following the other story, asking too: told of the same relation, from its side.
    let other_side = follower(app, &charges, true).await;

    relate(
        app,
        &app.editor,
        &charges,
        json!({"story": hack, "relation": "background"}),
    )
    .await
    .ok(200);

    let deadline = tokio::time::Instant::now() + WAIT;
    let (mine, theirs) = loop {
        let mine = alerts_of(app, &asked).await;
        let theirs = alerts_of(app, &other_side).await;
        if !mine.is_empty() && !theirs.is_empty() {
            break (mine, theirs);
        }
        assert!(tokio::time::Instant::now() < deadline, "no related alert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The alerts were queued in the batch that matched the relation: the subscriber who did
    // not ask got nothing in it.
    assert_eq!(alerts_of(app, &not_asked).await, Vec::<Value>::new());
    assert_eq!(mine.len(), 1, "{mine:#?}");
    let alert = &mine[0]["payload"];
    assert_eq!(alert["type"], "story.related", "{alert:#?}");
    assert_eq!(alert["data"]["story"]["id"], hack.as_str());
    assert_eq!(alert["data"]["related"]["id"], charges.as_str());
    assert_eq!(alert["data"]["related"]["relation"], "background_to");
    assert_eq!(
        alert["data"]["related"]["headline"],
        "Justice Department charges a man"
    );
    assert!(alert["data"]["links"]["related"]
        .as_str()
        .unwrap()
        .ends_with("/stories/doj-charges"));
    assert_eq!(theirs.len(), 1, "{theirs:#?}");
    assert_eq!(theirs[0]["payload"]["data"]["related"]["id"], hack.as_str());
    assert_eq!(
        theirs[0]["payload"]["data"]["related"]["relation"],
        "background"
    );
}

#[tokio::test]
async fn subscribers_who_asked_hear_of_related_stories_once_and_others_not() {
    let app = spawn_app().await;
    subscribers_who_asked_hear_of_related_stories(&app).await;
}

#[tokio::test]
async fn subscribers_who_asked_hear_of_related_stories_once_and_others_not_on_postgres() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return skip_or_fail("no PostgreSQL (NEWSROOM_TEST_DATABASE_URL)");
    };
    subscribers_who_asked_hear_of_related_stories(&app).await;
}

/// In Chromium: an editor relates two stories from the story's desk page (axe-core finds nothing
/// on it), both reader pages show the relation (axe-core finds nothing there, on a phone nothing
/// is too small to tap), a reader follows it to the other story, and the editor unlinks it.
#[tokio::test]
async fn an_editor_relates_stories_at_the_desk_and_readers_follow_the_relation() {
    use fantoccini::Locator;
    use newsroom_testkit::chrome::{
        axe_script, axe_violations, browser, choose, click_link, driver, press, sign_in_at_desk,
        small_tap_targets, type_into, wait_for,
    };
    let Some(driver) = driver() else { return };
    let Some(axe) = axe_script() else { return };
    let app = spawn_app().await;
    let ruling = open(&app, "court-ruling", "Court rules on the campaign hack").await;
    open(&app, "campaign-hack", "Campaign reports a hack").await;
    let base = app.address.clone();
    let client = browser(&driver).await;
    let accessible = |what: &'static str, sizes: &'static [(u32, u32)]| {
        let (client, axe) = (client.clone(), axe.clone());
        async move {
            for (w, h) in sizes {
                client.set_window_size(*w, *h).await.unwrap();
                let violations = axe_violations(&client, &axe).await;
                assert!(
                    violations.is_empty(),
                    "{what}: axe-core finds {violations:#?}"
                );
                if *w < 500 {
                    let small = small_tap_targets(&client).await;
                    assert!(small.is_empty(), "{what} on a phone: too small {small:#?}");
                }
            }
        }
    };
    const PHONE: &[(u32, u32)] = &[(390, 844)];
    const BOTH: &[(u32, u32)] = &[(390, 844), (1200, 900)];
    client.set_window_size(390, 844).await.unwrap();
    sign_in_at_desk(&client, &base, &app.editor).await;
    client
        .goto(&format!("{base}/desk/stories/{ruling}"))
        .await
        .unwrap();
    wait_for(&client, "//h2[.='Related stories']", "the desk's relations").await;
    accessible("the story's desk page", PHONE).await;
    choose(&client, "#relate-relation", "follow_up").await;
    type_into(&client, "#relate-story", "campaign-hack").await;
    press(&client, "form.relate button[type=submit]").await;
    wait_for(
        &client,
        "//*[contains(., 'The stories are related')]",
        "the desk says it is done",
    )
    .await;
    wait_for(
        &client,
        "//ul[contains(@class, 'related-list')]//a[.='Campaign reports a hack']",
        "the desk lists the related story",
    )
    .await;
    accessible("the story's desk page with a relation", PHONE).await;

    // The reader follows the relation from the earlier story to the follow-up, and back.
    client
        .goto(&format!("{base}/stories/campaign-hack"))
        .await
        .unwrap();
    let label = wait_for(
        &client,
        "//section[@id='related']//li[@data-relation='followed_up_by']",
        "the reader page's related stories",
    )
    .await;
    let text = label.text().await.unwrap();
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>().join(" "),
        "Followed up by: Court rules on the campaign hack"
    );
    accessible("the story page with related stories", BOTH).await;
    client.set_window_size(390, 844).await.unwrap();
    click_link(&client, "Court rules on the campaign hack").await;
    wait_for(
        &client,
        "//section[@id='related']//li[@data-relation='follow_up' and contains(., 'Follow-up of')]",
        "the follow-up's page names the story it follows up",
    )
    .await;

    // Unlinked at the desk: gone from both pages.
    client
        .goto(&format!("{base}/desk/stories/{ruling}"))
        .await
        .unwrap();
    press(&client, "ul.related-list form button[type=submit]").await;
    wait_for(
        &client,
        "//*[contains(., 'no longer related')]",
        "the desk says they are unlinked",
    )
    .await;
    client
        .goto(&format!("{base}/stories/campaign-hack"))
        .await
        .unwrap();
    wait_for(&client, "//h1", "the story page").await;
    assert!(client.find(Locator::Css("#related")).await.is_err());
    client.close().await.unwrap();
}
