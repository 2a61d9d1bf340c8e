//! Full-text search (`GET /v1/search`, the `/search` page), over real HTTP on SQLite (FTS5) and
//! PostgreSQL (tsvector + GIN): the exact phrase ranks first, accents and case fold, prefixes,
//! filters, retracted developments found and marked, pending ones hidden from readers, a
//! correction re-indexes, a rebuild gives the same answers, and hostile queries are a 400 or a
//! sane answer — never a 500.

use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

/// A development filed by the editor (published at once), with these fields.
fn filing(kind: &str, headline: &str, body: &str, actors: &[&str], occurred_at: &str) -> Value {
    let mut d = development(kind);
    d["headline"] = json!(headline);
    d["body"] = json!(body);
    d["actors"] = json!(actors);
    d["occurred_at"] = json!(occurred_at);
    d
}

async fn search(app: &TestApp, query: &str) -> Value {
    app.call(Method::GET, &format!("/v1/search?{query}"), None, None)
        .await
        .ok(200)
        .clone()
}

/// The headlines of a search's results: a development's, or `story: <headline>` for a story.
async fn found(app: &TestApp, query: &str) -> Vec<String> {
    let body = search(app, query).await;
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match r.get("development") {
            Some(d) => d["headline"].as_str().unwrap().to_owned(),
            None => format!("story: {}", r["story"]["headline"].as_str().unwrap()),
        })
        .collect()
}

fn q(text: &str) -> String {
    format!(
        "q={}",
        url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()
    )
}

/// The queries whose answers a rebuild must not change.
const SAME_AFTER_REBUILD: &[&str] = &[
    "un mission",
    "\"un mission\"",
    "cafe",
    "phish*",
    "zebra",
    "okapi",
    "campaign",
    "mission&kind=statement_issued",
];

async fn search_finds_what_readers_may_see(app: &TestApp) {
    let desk = app.desk_sign_in(&app.reporter).await;
    let story = app
        .open_story_as(
            &app.editor,
            json!({"slug": "mission-story", "headline": "Iran's UN mission and the campaign hack",
                   "summary": "What the mission said, and when.", "review_required": true}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app
        .open_story_as(
            &app.editor,
            json!({"slug": "other-story", "headline": "Another story",
                   "summary": "Elsewhere.", "review_required": true}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let exact = filing(
        "statement_issued",
        "Iran's UN mission denies involvement",
        "A statement from the mission in New York.",
        &["Iran's UN mission"],
        "2026-10-02T09:00:00Z",
    );
    // More of the words, more often, in the headline too — but never as the phrase.
    let scattered = filing(
        "report_published",
        "Mission statement: the mission of the UN, a mission",
        "The UN said its mission, the UN mission's mission, went on. UN UN mission.",
        &["Vendor"],
        "2026-10-03T09:00:00Z",
    );
    // Not the phrase: "mission" then "UN" (order matters), many times.
    let scattered = {
        let mut s = scattered;
        s["headline"] = json!("Mission first: the UN reviews the mission, then the UN");
        s["body"] = json!("The mission and the UN. The mission, the UN. The mission of the UN.");
        s
    };
    let accents = filing(
        "hack_reported",
        "Café Ångström breach <script>alert(1)</script>",
        "Société Générale says the café's network was breached.",
        &["Société Générale"],
        "2026-10-04T09:00:00Z",
    );
    let phishing = filing(
        "report_published",
        "Vendor report on a phishing unit",
        "The unit sent phishing emails for months.",
        &["Fancy Bear"],
        "2026-10-05T09:00:00Z",
    );
    let retracted = filing(
        "update",
        "Zebra sighting at the ministry",
        "A zebra, reportedly.",
        &["Ministry"],
        "2026-10-06T09:00:00Z",
    );
    let corrected = filing(
        "update",
        "Giraffe claim in the filing",
        "Giraffe.",
        &["Ministry"],
        "2026-10-07T09:00:00Z",
    );
    let elsewhere = filing(
        "statement_issued",
        "Mission elsewhere",
        "The other mission.",
        &["Someone"],
        "2026-10-08T09:00:00Z",
    );
    for d in [
        &exact, &scattered, &accents, &phishing, &retracted, &corrected,
    ] {
        app.record_as(&app.editor, &story, d.clone()).await.ok(201);
    }
    app.record_as(&app.editor, &other, elsewhere.clone())
        .await
        .ok(201);
    // A reporter's filing on a story under review waits for the desk.
    let pending = filing(
        "update",
        "Walrus filing waiting for review",
        "Walrus.",
        &["Ministry"],
        "2026-10-09T09:00:00Z",
    );
    app.record(&story, pending.clone()).await.ok(201);
    app.editor_action(
        &story,
        retracted["id"].as_str().unwrap(),
        "retraction",
        json!({"reason": "There was no zebra."}),
    )
    .await
    .ok(200);
    let p = app
        .editor_action(&story,
            corrected["id"].as_str().unwrap(),
            "corrections",
            json!({"note": "It was an okapi.", "changes": {"headline": "Okapi claim in the filing", "body": "Okapi."}}),
        )
        .await
        .ok(200)["position"]
        .as_i64()
        .unwrap();
    search(app, &format!("{}&min_position={p}", q("okapi"))).await;

    // The exact phrase first, even against a document with more of the words (developments
    // alone: a time filter leaves stories out).
    let ranked = found(app, &format!("{}&from=2026-01-01", q("UN mission"))).await;
    assert_eq!(
        ranked,
        [
            "Iran's UN mission denies involvement",
            scattered["headline"].as_str().unwrap()
        ],
        "the phrase first, and all the words, not as a phrase, found too"
    );
    // With the story, whose headline holds the phrase too: both before the scattered words.
    let ranked = found(app, &q("UN mission")).await;
    assert_eq!(ranked.len(), 3, "{ranked:?}");
    assert_eq!(
        ranked[2],
        scattered["headline"].as_str().unwrap(),
        "{ranked:?}"
    );
    // A quoted phrase finds only the phrase.
    let phrase = found(app, &q("\"UN mission\"")).await;
    assert!(
        !phrase.contains(&scattered["headline"].as_str().unwrap().to_owned()),
        "{phrase:?}"
    );
    assert!(phrase.contains(&"Iran's UN mission denies involvement".to_owned()));

    // Accents and case fold, both ways.
    let accented = "Café Ångström breach <script>alert(1)</script>".to_owned();
    for query in ["cafe", "CAFÉ", "angstrom", "societe generale", "SOCIÉTÉ"] {
        assert_eq!(found(app, &q(query)).await, [accented.as_str()], "{query}");
    }
    // The snippet is escaped, then marked.
    let body = search(app, &q("cafe")).await;
    let snippet = body["results"][0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("<mark>"), "{snippet}");
    let headline_hit = search(app, &q("script alert")).await;
    let snippet = headline_hit["results"][0]["snippet"].as_str().unwrap();
    assert!(
        snippet.contains("&lt;<mark>script</mark>&gt;") && !snippet.contains("<script"),
        "{snippet}"
    );

    // Prefixes.
    assert_eq!(
        found(app, &q("phish*")).await,
        ["Vendor report on a phishing unit"]
    );
    assert!(found(app, &q("phish")).await.is_empty(), "a word is whole");

    // Retracted: found, and marked.
    let zebra = search(app, &q("zebra")).await;
    assert_eq!(zebra["results"].as_array().unwrap().len(), 1, "{zebra}");
    let d = &zebra["results"][0]["development"];
    assert_eq!(d["state"], "retracted");
    assert_eq!(d["retracted"], true);
    assert_eq!(d["id"], retracted["id"]);
    assert_eq!(zebra["results"][0]["story"]["slug"], "mission-story");

    // Pending: not for readers, but the desk finds it by its text.
    assert!(found(app, &q("walrus")).await.is_empty());
    let html = async |path: &str| {
        let answer = app.desk_get(Some(&desk), path).await;
        (answer.status().as_u16(), answer.text().await.unwrap())
    };
    let (status, page) = html("/desk/search?q=WALRUS").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Waiting for review"), "{page}");
    assert!(page.contains("<mark>Walrus</mark>"), "{page}");
    let (_, page) = html("/desk/search?q=walrus&status=pending_review").await;
    assert!(page.contains("<mark>Walrus</mark>"), "{page}");
    let (_, page) = html("/desk/search?q=walrus&status=published").await;
    assert!(page.contains("Nothing matches"), "{page}");
    let (_, page) = html("/desk/search?q=zebra&status=retracted").await;
    assert!(page.contains("<mark>zebra</mark>"), "{page}");
    let (status, _) = html("/desk/search?q=zebra&status=rumoured").await;
    assert_eq!(status, 400);
    app.call(
        Method::GET,
        "/v1/search?q=walrus&status=pending_review",
        None,
        None,
    )
    .await
    .problem_for_field(400, "status");
    let (status, page) = html("/desk/search?q=%22walrus").await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("closes it"), "{page}");
    let anonymous = app.desk_get(None, "/desk/search?q=walrus").await;
    assert_eq!(anonymous.status(), 303, "the desk's search needs a session");

    // A correction re-indexes: the old words are gone, the new ones found.
    assert!(found(app, &q("giraffe")).await.is_empty());
    assert_eq!(found(app, &q("okapi")).await, ["Okapi claim in the filing"]);

    // A story's own fields are found, without a development.
    let stories = found(app, &q("campaign hack")).await;
    assert!(
        stories.contains(&"story: Iran's UN mission and the campaign hack".to_owned()),
        "{stories:?}"
    );

    // Filters: story, kind, actor, time.
    assert_eq!(found(app, &q("mission")).await.len(), 4); // three developments and a story
    assert_eq!(
        found(app, &format!("{}&story=other-story", q("mission"))).await,
        ["Mission elsewhere"]
    );
    let mut by_kind = found(app, &format!("{}&kind=statement_issued", q("mission"))).await;
    by_kind.sort();
    assert_eq!(
        by_kind,
        ["Iran's UN mission denies involvement", "Mission elsewhere"]
    );
    assert_eq!(
        found(
            app,
            &format!("{}&actor=Iran's%20%20UN%20mission%20", q("mission"))
        )
        .await,
        ["Iran's UN mission denies involvement"]
    );
    assert!(found(app, &format!("{}&actor=Vendor", q("walrus")))
        .await
        .is_empty());
    assert_eq!(
        found(
            app,
            &format!("{}&from=2026-10-03&to=2026-10-03T23:00:00Z", q("mission"))
        )
        .await,
        [scattered["headline"].as_str().unwrap()]
    );

    assert_eq!(
        found(app, &format!("{}&to=2026-10-02", q("mission"))).await,
        ["Iran's UN mission denies involvement"]
    );
    assert!(found(app, &format!("{}&from=2027-01-01", q("mission")))
        .await
        .is_empty());

    // Paging: a bounded limit and a `next` link that goes on.
    let first = search(app, &format!("{}&limit=2", q("mission"))).await;
    assert_eq!(first["results"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().unwrap().to_owned();
    let second = app
        .call(Method::GET, &next, None, None)
        .await
        .ok(200)
        .clone();
    assert_eq!(second["results"].as_array().unwrap().len(), 2);
    assert!(second.get("next").is_none(), "{second}");
    assert_ne!(first["results"][0], second["results"][0]);
    for limit in ["0", "51", "x"] {
        app.call(
            Method::GET,
            &format!("/v1/search?{}&limit={limit}", q("mission")),
            None,
            None,
        )
        .await
        .problem_for_field(400, "limit");
    }
    app.call(
        Method::GET,
        &format!("/v1/search?{}&kind=gossip", q("mission")),
        None,
        None,
    )
    .await
    .problem_for_field(400, "kind");
    app.call(
        Method::GET,
        &format!("/v1/search?{}&from=yesterday", q("mission")),
        None,
        None,
    )
    .await
    .problem_for_field(400, "from");
    app.call(
        Method::GET,
        &format!("/v1/search?{}&from=2026-10-04&to=2026-10-03", q("mission")),
        None,
        None,
    )
    .await
    .problem_for_field(400, "to");
    app.call(
        Method::GET,
        &format!("/v1/search?{}&story=no-such-story", q("mission")),
        None,
        None,
    )
    .await
    .problem_for_field(404, "story");

    // The reader's page shows the same, marked, escaped.
    let page = app
        .client
        .get(format!("{}/search?{}", app.address, q("cafe")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<mark>café</mark>"), "{html}");
    assert!(!html.contains("<script>alert"), "{html}");
    let page = app
        .client
        .get(format!("{}/search?q=%22", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("role=\"alert\""));

    // A rebuild gives the same answers.
    let mut before = Vec::new();
    for query in SAME_AFTER_REBUILD {
        before.push(search(app, &query_of(query)).await);
    }
    newsroom_projection::rebuild(&app.app_state.store, &app.views, &[], None)
        .await
        .unwrap();
    for (query, before) in SAME_AFTER_REBUILD.iter().zip(before) {
        let after = search(app, &query_of(query)).await;
        assert_eq!(after["results"], before["results"], "{query}");
        assert!(
            !after["results"].as_array().unwrap().is_empty(),
            "{query} finds something"
        );
    }
}

/// `text&rest` as a query string: the text as `q`, the rest as it is.
fn query_of(query: &str) -> String {
    match query.split_once('&') {
        Some((text, rest)) => format!("{}&{rest}", q(text)),
        None => q(query),
    }
}

#[tokio::test]
async fn search_finds_what_readers_may_see_ranked_folded_filtered_and_rebuilt() {
    let app = spawn_app().await;
    search_finds_what_readers_may_see(&app).await;
}

#[tokio::test]
async fn search_finds_what_readers_may_see_ranked_folded_filtered_and_rebuilt_on_postgres() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    search_finds_what_readers_may_see(&app).await;
}

/// Queries meant to break FTS5 or `tsquery` syntax, or to cost: each is a 400 naming `q` or a
/// 200, never anything else.
async fn hostile_queries_are_refused_or_answered(app: &TestApp) {
    let story = app.open_story(false).await;
    let p = app
        .record_as(
            &app.editor,
            &story,
            filing(
                "update",
                "NEAR the AND gate: a \"quoted\" (bracketed) star*",
                "Text with * and ) and \" and : and ^ and - in it.",
                &["Someone"],
                "2026-10-01T09:00:00Z",
            ),
        )
        .await
        .ok(201)["position"]
        .as_i64()
        .unwrap();
    search(app, &format!("{}&min_position={p}", q("gate"))).await;
    let long = "word ".repeat(2_000);
    let many = (0..30)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let table: &[(&str, Option<u16>)] = &[
        ("\"", Some(400)),
        ("*", Some(400)),
        ("NEAR(", None),
        (")", Some(400)),
        ("(", Some(400)),
        ("AND", None),
        ("OR NOT AND", None),
        ("NEAR(gate star, 2)", None),
        ("gate AND", None),
        ("{headline}: gate", None),
        ("headline:gate", None),
        ("^gate", None),
        ("-gate", None),
        ("gate*", None),
        ("a*", Some(400)),
        ("\"unclosed phrase", Some(400)),
        ("\"\"", Some(400)),
        ("'", Some(400)),
        ("' OR 1=1 --", None),
        ("gate'; DROP TABLE search; --", None),
        ("!!! & | <-> :*", Some(400)),
        ("gate & star", None),
        ("gate <-> star", None),
        ("gate:*", None),
        ("\\", Some(400)),
        ("%", Some(400)),
        ("", Some(400)),
        ("   ", Some(400)),
        (&long, Some(400)),
        (&many, Some(400)),
        ("ﷺ ﷽", None),
        ("𝔤𝔞𝔱𝔢", None),
    ];
    for (query, expected) in table {
        let answer = app
            .call(Method::GET, &format!("/v1/search?{}", q(query)), None, None)
            .await;
        let status = answer.status.as_u16();
        let short: String = query.chars().take(40).collect();
        match expected {
            Some(400) => {
                answer.problem_for_field(400, "q");
            }
            _ => assert_eq!(status, 200, "{short:?}: {answer:?}"),
        }
        // The page answers alike.
        let page = app
            .client
            .get(format!("{}/search?{}", app.address, q(query)))
            .send()
            .await
            .unwrap();
        assert!(
            page.status() == 200 || page.status() == 400,
            "{short:?}: the page answers {}",
            page.status()
        );
    }
    // Operators are words: `AND gate` finds the development that has both.
    assert_eq!(
        search(app, &q("AND gate")).await["results"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A missing `q` names it.
    app.call(Method::GET, "/v1/search", None, None)
        .await
        .problem_for_field(400, "q");
}

#[tokio::test]
async fn hostile_queries_are_refused_or_answered_never_a_server_error() {
    let app = spawn_app().await;
    hostile_queries_are_refused_or_answered(&app).await;
}

#[tokio::test]
async fn hostile_queries_are_refused_or_answered_never_a_server_error_on_postgres() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    hostile_queries_are_refused_or_answered(&app).await;
}

/// On PostgreSQL a search is answered through the indexes, never by reading every document: a
/// rare word through the GIN index, a word every document has by walking the keys backwards
/// and stopping at the window. (On SQLite, FTS5's `MATCH` is the index, and the budget test
/// counts the work.)
#[tokio::test]
async fn searches_use_the_indexes_on_postgres() {
    use newsroom_projection::search::{Audience, Query, Search};

    let Some((app, db)) = spawn_app_on_postgres().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    // A large index, written straight into the table (the projector's path is tested above).
    sqlx::query(
        "INSERT INTO view_search (key, story_id, occurred_at, words, filters)
         SELECT g, 'story' || (g % 100), '2026-10-01T00:00:00.000000Z',
                ('''common'':1A ''word' || (g % 5000) || ''':2A ''w' || g || ''':3D')::tsvector,
                ('''vp'' ''s' || (g % 100) || '''')::tsvector
           FROM generate_series(1, 100000) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE view_search")
        .execute(&pool)
        .await
        .unwrap();
    let plan = |text: &str| {
        let search = Search {
            query: Query::parse(text).unwrap(),
            story: None,
            actor: None,
            kind: None,
            status: None,
            from: None,
            to: None,
            audience: Audience::Public,
            offset: 0,
            limit: 20,
        };
        let views = &app.views;
        async move {
            views
                .search_plan(&search)
                .await
                .unwrap()
                .expect("views in PostgreSQL")
        }
    };
    let rare = plan("w4242").await;
    assert!(
        rare.contains("Bitmap Index Scan on view_search_words"),
        "a rare word is read from the GIN index:\n{rare}"
    );
    assert!(!rare.contains("Seq Scan on view_search"), "{rare}");
    let common = plan("common").await;
    assert!(!common.contains("Seq Scan on view_search"), "{common}");
    assert!(
        common.contains("view_search_pkey") || common.contains("view_search_words"),
        "{common}"
    );
    // The route answers over that index (its rows name no story, so nothing is shown).
    let found = app
        .call(Method::GET, "/v1/search?q=common", None, None)
        .await;
    assert_eq!(found.status, 200, "{found:?}");
}
