//! The auth matrix: every route of every router (the command API, the read side, the subscriber
//! API and the desk) × every kind of caller — nobody, a made-up token, a subscriber, a reporter,
//! an editor, an admin — and the answer each gets. The table is checked against the routers'
//! source, so a route added without a row fails `the_matrix_lists_every_route_of_every_router`.
//!
//! Refusals must write nothing: after every refused cell the log's head and the fixture
//! subscriber's rows in the notifier are what they were before.

use std::collections::BTreeSet;

use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    /// A well-formed staff token nobody issued.
    BadToken,
    /// The fixture's subscriber, with its own `nrs_` token.
    Subscriber,
    Reporter,
    Editor,
    Admin,
}

const CALLERS: [Caller; 6] = [
    Caller::Anonymous,
    Caller::BadToken,
    Caller::Subscriber,
    Caller::Reporter,
    Caller::Editor,
    Caller::Admin,
];

/// What a cell expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// This status; an error of the JSON API must also be a problem+json saying so.
    S(u16),
    /// The desk sends the caller to sign in (303 to `/desk/sign-in…`) and does nothing.
    SignIn,
    /// The desk did it and redirects elsewhere (303 not to the sign-in page).
    Done,
}
use Expect::{Done, SignIn, S};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Reporter,
    Editor,
    Admin,
}

/// A staff route of the JSON API: no or a bad token (subscribers' tokens are not staff tokens)
/// is a 401, a role below `need` a 403.
fn staff(need: Need, ok: u16) -> [Expect; 6] {
    let reporter = if need == Need::Reporter {
        S(ok)
    } else {
        S(403)
    };
    let editor = if need == Need::Admin { S(403) } else { S(ok) };
    [S(401), S(401), S(401), reporter, editor, S(ok)]
}

/// A subscriber's own resource: that subscriber and admins; other staff get 403.
fn own(ok: u16) -> [Expect; 6] {
    [S(401), S(401), S(ok), S(403), S(403), S(ok)]
}

/// Subscriber management for admins only.
fn admins(ok: u16) -> [Expect; 6] {
    [S(401), S(401), S(403), S(403), S(403), S(ok)]
}

fn public(ok: u16) -> [Expect; 6] {
    [S(ok); 6]
}

/// A desk page or action: without a valid staff session, off to sign in; below `need`, the
/// 403 page.
fn desk(need: Need, ok: Expect) -> [Expect; 6] {
    let reporter = if need == Need::Reporter { ok } else { S(403) };
    [SignIn, SignIn, SignIn, reporter, ok, ok]
}

enum Body {
    None,
    Json(fn(&Fixture) -> Value),
    Form(fn(&Fixture) -> Vec<(&'static str, String)>),
    /// The sign-in form, with the caller's token typed in.
    SignIn,
}

struct Route {
    method: &'static str,
    /// With placeholders for the fixture's ids: `{story}`, `{pending}`, `{subscriber}`, …
    path: &'static str,
    body: Body,
    expect: [Expect; 6],
}

fn route(method: &'static str, path: &'static str, body: Body, expect: [Expect; 6]) -> Route {
    Route {
        method,
        path,
        body,
        expect,
    }
}

/// Every route newsroom serves, and what each caller gets.
fn routes() -> Vec<Route> {
    use Body::{Form, Json, None as Nothing};
    vec![
        // ----- the command API (crates/command/src/http/mod.rs)
        route(
            "POST",
            "/v1/stories",
            Json(|_| {
                json!({"slug": format!("matrix-{}", &Uuid::new_v4().simple().to_string()[..12]),
                    "headline": "Matrix story"})
            }),
            staff(Need::Reporter, 201),
        ),
        route(
            "PATCH",
            "/v1/stories/{story}",
            Json(|_| json!({"headline": "A revised headline"})),
            staff(Need::Editor, 200),
        ),
        route(
            "POST",
            "/v1/stories/{story}/developments",
            Json(|_| development("update")),
            staff(Need::Reporter, 201),
        ),
        route(
            "POST",
            "/v1/stories/{story}/developments/{pending}/approval",
            Json(|_| json!({})),
            staff(Need::Editor, 200),
        ),
        route(
            "DELETE",
            "/v1/stories/{story}/developments/{approved_held}/approval",
            Nothing,
            staff(Need::Editor, 200),
        ),
        // Only the token that filed it (the fixture's reporter) withdraws a filing.
        route(
            "POST",
            "/v1/stories/{story}/developments/{pending}/withdrawal",
            Nothing,
            [S(401), S(401), S(401), S(200), S(403), S(403)],
        ),
        route(
            "POST",
            "/v1/stories/{story}/developments/{pending}/rejection",
            Json(|_| json!({"reason": "Not confirmed by a second source"})),
            staff(Need::Editor, 200),
        ),
        route(
            "POST",
            "/v1/stories/{story}/developments/{published}/corrections",
            Json(
                |_| json!({"note": "The headline overstated it", "changes": {"headline": "Officials confirm a breach"}}),
            ),
            staff(Need::Editor, 200),
        ),
        route(
            "POST",
            "/v1/stories/{story}/developments/{published}/retraction",
            Json(|_| json!({"reason": "The officials withdrew the statement"})),
            staff(Need::Editor, 200),
        ),
        route(
            "POST",
            "/v1/stories/{story}/developments/{embargoed}/embargo/lift",
            Json(|_| json!({})),
            staff(Need::Editor, 200),
        ),
        route(
            "PUT",
            "/v1/stories/{story}/developments/{embargoed}/embargo",
            Json(|_| {
                json!({"until": (chrono::Utc::now() + chrono::Duration::hours(2))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)})
            }),
            staff(Need::Editor, 200),
        ),
        route(
            "POST",
            "/v1/stories/{story}/close",
            Nothing,
            staff(Need::Editor, 200),
        ),
        route(
            "POST",
            "/v1/stories/{closed}/reopen",
            Nothing,
            staff(Need::Editor, 200),
        ),
        route(
            "POST",
            "/v1/stories/{story}/relations",
            Json(|fx| json!({"story": fx.closed, "relation": "background"})),
            staff(Need::Editor, 200),
        ),
        route(
            "DELETE",
            "/v1/stories/{story}/relations/{related}",
            Nothing,
            staff(Need::Editor, 200),
        ),
        route(
            "GET",
            "/v1/stories/{story}/events",
            Nothing,
            staff(Need::Editor, 200),
        ),
        route("GET", "/v1/events", Nothing, staff(Need::Admin, 200)),
        route(
            "POST",
            "/v1/tokens",
            Json(|_| json!({"role": "reporter", "name": "Matrix Reporter"})),
            staff(Need::Admin, 201),
        ),
        route(
            "DELETE",
            "/v1/tokens/{token}",
            Nothing,
            staff(Need::Admin, 204),
        ),
        route("GET", "/healthz", Nothing, public(200)),
        route("GET", "/metrics", Nothing, public(200)),
        route("GET", "/openapi.json", Nothing, public(200)),
        // ----- the read side (crates/projection/src/api.rs): public, whatever token is sent
        route("GET", "/v1/stories", Nothing, public(200)),
        route("GET", "/v1/stories/{story}", Nothing, public(200)),
        route("GET", "/v1/stories/{story}/claims", Nothing, public(200)),
        route("GET", "/v1/stories/{story}/feed.atom", Nothing, public(200)),
        route("GET", "/v1/stories/{story}/feed.json", Nothing, public(200)),
        route("GET", "/v1/stories/{story}/ninjs", Nothing, public(200)),
        route("GET", "/v1/stories/{story}/stream", Nothing, public(200)),
        route("GET", "/v1/feed.atom", Nothing, public(200)),
        route("GET", "/v1/feed.json", Nothing, public(200)),
        route("GET", "/v1/feeds/json-feed-extension", Nothing, public(200)),
        route("GET", "/v1/actors/{actor}", Nothing, public(200)),
        route("GET", "/v1/actors/{actor}/feed.atom", Nothing, public(200)),
        route("GET", "/v1/actors/{actor}/feed.json", Nothing, public(200)),
        route("GET", "/", Nothing, public(200)),
        route("GET", "/stories/{slug}", Nothing, public(200)),
        route("GET", "/stories/{slug}/fragment", Nothing, public(200)),
        route("GET", "/actors/{actor}", Nothing, public(200)),
        route("GET", "/v1/search?q=breach", Nothing, public(200)),
        route("GET", "/search?q=breach", Nothing, public(200)),
        route("GET", "/static/newsroom.css", Nothing, public(200)),
        route("GET", "/static/live.js", Nothing, public(200)),
        route("GET", "/static/time.js", Nothing, public(200)),
        // ----- the subscriber API (crates/notifier/src/api/mod.rs)
        route(
            "POST",
            "/v1/subscribers",
            Json(|_| json!({"name": "Matrix Reader"})),
            public(201),
        ),
        route("GET", "/v1/subscribers", Nothing, admins(200)),
        route("GET", "/v1/subscribers/{subscriber}", Nothing, own(200)),
        route("DELETE", "/v1/subscribers/{subscriber}", Nothing, own(204)),
        route(
            "POST",
            "/v1/subscribers/{subscriber}/suspension",
            Nothing,
            admins(204),
        ),
        route(
            "DELETE",
            "/v1/subscribers/{subscriber}/suspension",
            Nothing,
            admins(204),
        ),
        route(
            "POST",
            "/v1/subscribers/{subscriber}/endpoints",
            // Not the fixture's own subject: one target once per subscriber.
            Json(|_| json!({"kind": "nats", "subject": "newsroom.matrix.more"})),
            own(201),
        ),
        route(
            "GET",
            "/v1/subscribers/{subscriber}/endpoints",
            Nothing,
            own(200),
        ),
        route(
            "DELETE",
            "/v1/subscribers/{subscriber}/endpoints/{endpoint}",
            Nothing,
            own(204),
        ),
        route(
            "POST",
            "/v1/subscribers/{subscriber}/endpoints/{webhook}/secret",
            Nothing,
            own(200),
        ),
        route(
            "POST",
            "/v1/subscribers/{subscriber}/subscriptions",
            Json(|_| json!({"tag": "matrix"})),
            own(201),
        ),
        route(
            "GET",
            "/v1/subscribers/{subscriber}/subscriptions",
            Nothing,
            own(200),
        ),
        route(
            "DELETE",
            "/v1/subscribers/{subscriber}/subscriptions/{subscription}",
            Nothing,
            own(204),
        ),
        route(
            "GET",
            "/v1/subscribers/{subscriber}/deliveries",
            Nothing,
            own(200),
        ),
        route(
            "POST",
            "/v1/subscribers/{subscriber}/deliveries/{delivery}/redrive",
            Nothing,
            own(202),
        ),
        route(
            "GET",
            "/v1/subscribers/{subscriber}/alerts",
            Nothing,
            own(200),
        ),
        route(
            "GET",
            "/v1/subscribers/{subscriber}/alerts/stream",
            Nothing,
            own(200),
        ),
        // The key browsers subscribe to Web Push with: public.
        route("GET", "/v1/push/key", Nothing, public(200)),
        // The link in every alert: its random token is the credential.
        route("GET", "/v1/unsubscribe/{unsubscribe}", Nothing, public(200)),
        route(
            "POST",
            "/v1/unsubscribe/{unsubscribe}",
            Nothing,
            public(200),
        ),
        // The link of an email address's confirmation mail: its random token is the credential.
        route(
            "GET",
            "/v1/email-confirmations/{confirmation}",
            Nothing,
            public(200),
        ),
        route(
            "POST",
            "/v1/email-confirmations/{confirmation}",
            Nothing,
            public(200),
        ),
        // ----- the reader's alert pages (crates/newsroom/src/follow/mod.rs): a reader's cookie,
        // never a bearer token; without the cookie nothing is shown or changed.
        route("GET", "/alerts", Nothing, public(200)),
        route("GET", "/alerts/list", Nothing, public(401)),
        route("GET", "/alerts/stream", Nothing, public(401)),
        route("GET", "/alerts/follow", Nothing, public(404)),
        route("POST", "/alerts/follow", Nothing, public(403)),
        route(
            "POST",
            "/alerts/subscriptions/{subscription}/delete",
            Nothing,
            [Done; 6],
        ),
        route("POST", "/alerts/forget", Nothing, [Done; 6]),
        route("GET", "/alerts/static/alerts.js", Nothing, public(200)),
        route("GET", "/alerts/static/push.js", Nothing, public(200)),
        route("GET", "/alerts/sw.js", Nothing, public(200)),
        route("POST", "/alerts/push", Nothing, public(401)),
        // ----- the desk (crates/newsroom/src/desk/mod.rs): a session cookie, not a bearer token
        route("GET", "/desk", Nothing, desk(Need::Reporter, S(200))),
        route("GET", "/desk/", Nothing, [Done; 6]),
        route(
            "GET",
            "/desk/sign-in",
            Nothing,
            [S(200), S(200), S(200), Done, Done, Done],
        ),
        route(
            "POST",
            "/desk/sign-in",
            Body::SignIn,
            [S(401), S(401), S(401), Done, Done, Done],
        ),
        route(
            "GET",
            "/desk/notices",
            Nothing,
            desk(Need::Reporter, S(200)),
        ),
        // Choosing a sign-in name and password: refused here (the two passwords differ), as
        // each caller would otherwise take the name from the one before.
        route(
            "GET",
            "/desk/password",
            Nothing,
            desk(Need::Reporter, S(200)),
        ),
        route(
            "POST",
            "/desk/password",
            Form(|_| {
                vec![
                    ("login", "matrix.caller".into()),
                    ("password", "a long enough phrase".into()),
                    ("repeat", "a different long phrase".into()),
                ]
            }),
            desk(Need::Reporter, S(422)),
        ),
        route("GET", "/desk/review", Nothing, desk(Need::Editor, S(200))),
        route(
            "GET",
            "/desk/search?q=breach",
            Nothing,
            desk(Need::Reporter, S(200)),
        ),
        // A form kept over a lapsed session: only for the browser that sent it (none here).
        route(
            "GET",
            "/desk/parked/{key}",
            Nothing,
            desk(Need::Reporter, S(404)),
        ),
        route(
            "POST",
            "/desk/stories",
            Form(|_| {
                vec![
                    ("headline", "Desk matrix story".into()),
                    (
                        "slug",
                        format!("desk-{}", &Uuid::new_v4().simple().to_string()[..12]),
                    ),
                    ("summary", String::new()),
                    ("tags", String::new()),
                ]
            }),
            desk(Need::Reporter, Done),
        ),
        route(
            "GET",
            "/desk/stories/{story}",
            Nothing,
            desk(Need::Reporter, S(200)),
        ),
        route(
            "GET",
            "/desk/stories/{story}/file",
            Nothing,
            desk(Need::Reporter, S(200)),
        ),
        route(
            "POST",
            "/desk/stories/{story}/developments",
            Form(|_| {
                vec![
                    ("id", Uuid::new_v4().to_string()),
                    ("kind", "update".into()),
                    ("headline", "Filed from the desk".into()),
                    ("occurred_at", String::new()),
                    ("confirm", "file".into()),
                ]
            }),
            desk(Need::Reporter, Done),
        ),
        route(
            "POST",
            "/desk/stories/{story}/close",
            Form(|_| vec![]),
            desk(Need::Editor, Done),
        ),
        route(
            "POST",
            "/desk/stories/{closed}/reopen",
            Form(|_| vec![]),
            desk(Need::Editor, Done),
        ),
        route(
            "POST",
            "/desk/stories/{story}/relations",
            Form(|fx| {
                vec![
                    ("story", fx.closed.clone()),
                    ("relation", "background".into()),
                ]
            }),
            desk(Need::Editor, Done),
        ),
        route(
            "POST",
            "/desk/stories/{story}/relations/{related}/unlink",
            Form(|_| vec![]),
            desk(Need::Editor, Done),
        ),
        route(
            "GET",
            "/desk/stories/{story}/developments/{pending}/approve",
            Nothing,
            desk(Need::Editor, S(200)),
        ),
        route(
            "POST",
            "/desk/stories/{story}/developments/{pending}/approve",
            Form(|fx| vec![("seen", fx.seen.clone()), ("confirm", "approve".into())]),
            desk(Need::Editor, Done),
        ),
        route(
            "POST",
            "/desk/stories/{story}/developments/{pending}/reject",
            Form(|_| vec![("reason", "Not confirmed".into())]),
            desk(Need::Editor, Done),
        ),
        route(
            "GET",
            "/desk/stories/{story}/developments/{published}/correct",
            Nothing,
            desk(Need::Editor, S(200)),
        ),
        route(
            "POST",
            "/desk/stories/{story}/developments/{published}/correct",
            Form(|fx| {
                vec![
                    ("note", "The headline overstated it".into()),
                    ("changes.headline", "Officials confirm a breach".into()),
                    ("changes.actors", "Fancy Bear".into()),
                    ("seen", fx.seen.clone()),
                    ("confirm", "correct".into()),
                ]
            }),
            desk(Need::Editor, Done),
        ),
        route(
            "GET",
            "/desk/stories/{story}/developments/{published}/retract",
            Nothing,
            desk(Need::Editor, S(200)),
        ),
        route(
            "POST",
            "/desk/stories/{story}/developments/{published}/retract",
            Form(|fx| {
                vec![
                    ("reason", "The statement was withdrawn".into()),
                    ("seen", fx.seen.clone()),
                ]
            }),
            desk(Need::Editor, Done),
        ),
        // The fixture's pending development is the reporter's own: only they withdraw it.
        route(
            "GET",
            "/desk/stories/{story}/developments/{pending}/withdraw",
            Nothing,
            [SignIn, SignIn, SignIn, S(200), S(403), S(403)],
        ),
        route(
            "POST",
            "/desk/stories/{story}/developments/{pending}/withdraw",
            Form(|fx| vec![("seen", fx.seen.clone())]),
            [SignIn, SignIn, SignIn, Done, S(403), S(403)],
        ),
        // An open approval form says it is still open; approving is for editors.
        route(
            "POST",
            "/desk/stories/{story}/developments/{pending}/presence",
            Form(|_| vec![("doing", "approve".into())]),
            desk(Need::Editor, S(204)),
        ),
        route(
            "GET",
            "/desk/stories/{story}/developments/{embargoed}/embargo",
            Nothing,
            desk(Need::Editor, S(200)),
        ),
        route(
            "POST",
            "/desk/stories/{story}/developments/{embargoed}/embargo",
            Form(|fx| vec![("action", "lift".into()), ("seen", fx.seen.clone())]),
            desk(Need::Editor, Done),
        ),
        // Everyone's draft of a filing form is their own.
        route(
            "POST",
            "/desk/stories/{story}/draft",
            Form(|_| vec![("headline", "Half a head".into())]),
            desk(Need::Reporter, S(204)),
        ),
        // A filing's undo window is its filer's (the editor's, here) to undo.
        route(
            "GET",
            "/desk/stories/{story}/developments/{held}/undo",
            Nothing,
            [SignIn, SignIn, SignIn, S(403), S(200), S(403)],
        ),
        route(
            "POST",
            "/desk/stories/{story}/developments/{held}/undo",
            Form(|_| vec![]),
            [SignIn, SignIn, SignIn, S(403), Done, S(403)],
        ),
        route("GET", "/desk/static/desk.css", Nothing, public(200)),
        route("GET", "/desk/static/desk.js", Nothing, public(200)),
        route("GET", "/desk/{rest}", Nothing, public(404)),
        // Last: signing out ends the callers' sessions.
        route("POST", "/desk/sign-out", Form(|_| vec![]), [S(303); 6]),
    ]
}

/// What the routes act on; a fresh one for every cell that writes.
struct Fixture {
    /// Needs review; has a pending and a published development.
    story: String,
    slug: String,
    /// The story's latest position.
    seen: String,
    closed: String,
    /// Related to `story` (a `related` relation recorded on it).
    related: String,
    pending: String,
    published: String,
    /// Under embargo for an hour.
    embargoed: String,
    /// The editor's filing, held for an undo window of ten minutes.
    held: String,
    /// A reporter's filing, approved with an undo window of ten minutes.
    approved_held: String,
    /// A reporter token nobody uses, to be revoked.
    token: String,
    subscriber: SignedUp,
    endpoint: String,
    webhook: String,
    subscription: String,
    /// A failed delivery on `endpoint`, ready to be redriven.
    delivery: i64,
    unsubscribe: String,
    /// The link that confirms the subscriber's email endpoint.
    confirmation: String,
}

const ACTOR: &str = "Fancy%20Bear";

impl Fixture {
    async fn new(app: &TestApp) -> Fixture {
        let slug = format!("matrix-{}", &Uuid::new_v4().simple().to_string()[..12]);
        let story = app
            .open_story_as(
                &app.reporter,
                json!({"slug": slug, "headline": "Matrix story", "review_required": true}),
            )
            .await
            .ok(201)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let filing = development("update");
        let pending = filing["id"].as_str().unwrap().to_owned();
        let filed = app.record(&story, filing).await;
        assert_eq!(filed.ok(201)["status"], "pending_review");
        // Under embargo for an hour (an editor's filing: no review).
        let mut filing = development("update");
        filing["embargo_until"] = json!((chrono::Utc::now() + chrono::Duration::hours(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let embargoed = filing["id"].as_str().unwrap().to_owned();
        let filed = app.record_as(&app.editor, &story, filing).await;
        assert_eq!(filed.ok(201)["status"], "embargoed");
        let mut filing = development("update");
        filing["hold_seconds"] = json!(600);
        let held = filing["id"].as_str().unwrap().to_owned();
        let filed = app.record_as(&app.editor, &story, filing).await;
        assert_eq!(filed.ok(201)["status"], "embargoed");
        let filing = development("update");
        let approved_held = filing["id"].as_str().unwrap().to_owned();
        app.record(&story, filing).await.ok(201);
        app.call(
            Method::POST,
            &format!("/v1/stories/{story}/developments/{approved_held}/approval"),
            Some(&app.editor),
            Some(json!({"hold_seconds": 600})),
        )
        .await
        .ok(200);
        // Plain, so that the desk's correction form has nothing else to change.
        let published = Uuid::new_v4().to_string();
        let filed = app
            .record_as(
                &app.editor,
                &story,
                json!({"id": published, "kind": "update", "headline": "Officials confirm the breach",
                    "actors": ["Fancy Bear"]}),
            )
            .await;
        assert_eq!(filed.ok(201)["status"], "published");
        // The version of the story the desk's forms on its developments are made from.
        let seen = filed.ok(201)["position"].as_i64().unwrap().to_string();
        let closed = app.open_story(false).await;
        app.story_action(&app.editor, &closed, "close", None)
            .await
            .ok(200);
        let related = app.open_story(false).await;
        app.story_action(
            &app.editor,
            &related,
            "relations",
            Some(json!({"story": story, "relation": "related"})),
        )
        .await
        .ok(200);
        let token = app.create_token("reporter", "Spare Reporter").await.id;

        let subscriber = app.sign_up("Matrix Reader").await;
        let base = format!("/v1/subscribers/{}", subscriber.id);
        let add = |body: Value| {
            let path = format!("{base}/endpoints");
            let token = subscriber.token.clone();
            async move {
                app.call(Method::POST, &path, Some(&token), Some(body))
                    .await
                    .ok(201)["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
        };
        let endpoint = add(json!({"kind": "nats", "subject": "newsroom.matrix"})).await;
        let webhook = add(json!({"kind": "webhook", "url": "http://127.0.0.1:9/hook"})).await;
        let email = add(json!({"kind": "email", "address": "matrix@example.org"})).await;
        // Its link was mailed (to nowhere here): the fixture gives it a token it knows.
        let confirmation = newsroom_web::auth::generate_token("");
        let digest = newsroom_web::auth::token_digest(&confirmation);
        app.notifier
            .write(move |tx| {
                tx.execute(
                    "UPDATE email_confirmations SET token_hash = ?1 WHERE endpoint_id = ?2",
                    newsroom_log::args![&digest[..], email],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let subscription = app
            .call(
                Method::POST,
                &format!("{base}/subscriptions"),
                Some(&subscriber.token),
                Some(json!({"tag": "matrix"})),
            )
            .await
            .ok(201)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (sid, eid, story_id) = (subscriber.id.clone(), endpoint.clone(), story.clone());
        let (delivery, unsubscribe) = app
            .notifier
            .write(move |tx| {
                let delivery = tx.query_row(
                    "INSERT INTO deliveries (alert_id, endpoint_id, story_id, status, attempts,
                        next_attempt_at, last_error, created_at, updated_at)
                     VALUES (?1, ?2, ?3, 'failed', 5, '2026-01-01T00:00:00.000000Z', 'gave up',
                        '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')
                     RETURNING seq",
                    newsroom_log::args![Uuid::new_v4().to_string(), eid, story_id],
                    |r| r.get::<i64>(0),
                )?;
                let unsubscribe: String = tx.query_row(
                    "SELECT unsubscribe_token FROM subscribers WHERE id = ?1",
                    newsroom_log::args![&sid],
                    |r| r.get(0),
                )?;
                Ok((delivery, unsubscribe))
            })
            .await
            .unwrap();
        // Let the read side catch up, so that the story's pages exist.
        app.views_at_head().await;
        Fixture {
            story,
            slug,
            seen,
            closed,
            related,
            pending,
            published,
            embargoed,
            held,
            approved_held,
            token,
            subscriber,
            endpoint,
            webhook,
            subscription,
            delivery,
            unsubscribe,
            confirmation,
        }
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("{story}", &self.story)
            .replace("{slug}", &self.slug)
            .replace("{embargoed}", &self.embargoed)
            .replace("{held}", &self.held)
            .replace("{approved_held}", &self.approved_held)
            .replace("{closed}", &self.closed)
            .replace("{related}", &self.related)
            .replace("{pending}", &self.pending)
            .replace("{published}", &self.published)
            .replace("{token}", &self.token)
            .replace("{subscriber}", &self.subscriber.id)
            .replace("{endpoint}", &self.endpoint)
            .replace("{webhook}", &self.webhook)
            .replace("{subscription}", &self.subscription)
            .replace("{delivery}", &self.delivery.to_string())
            .replace("{unsubscribe}", &self.unsubscribe)
            .replace("{confirmation}", &self.confirmation)
            .replace("{actor}", ACTOR)
            .replace("{rest}", "no-such-page")
            .replace("{key}", "no-such-form")
    }
}

/// What came back.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    location: String,
    body: String,
}

const UNKNOWN_TOKEN: &str = "nr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

struct Callers {
    sessions: [Option<DeskSession>; 6],
}

impl Callers {
    async fn new(app: &TestApp) -> Self {
        Self {
            sessions: [
                None,
                None,
                None,
                Some(app.desk_sign_in(&app.reporter).await),
                Some(app.desk_sign_in(&app.editor).await),
                Some(app.desk_sign_in(&app.admin).await),
            ],
        }
    }

    fn token<'a>(app: &'a TestApp, fx: &'a Fixture, caller: Caller) -> Option<&'a str> {
        match caller {
            Caller::Anonymous => None,
            Caller::BadToken => Some(UNKNOWN_TOKEN),
            Caller::Subscriber => Some(&fx.subscriber.token),
            Caller::Reporter => Some(&app.reporter),
            Caller::Editor => Some(&app.editor),
            Caller::Admin => Some(&app.admin),
        }
    }

    /// The desk cookie and CSRF value of a caller.
    fn desk(&self, fx: &Fixture, caller: Caller) -> (Option<String>, String) {
        let i = CALLERS.iter().position(|c| *c == caller).unwrap();
        match (&self.sessions[i], caller) {
            (Some(s), _) => (Some(s.cookie.clone()), s.csrf.clone()),
            (None, Caller::Anonymous) => (None, String::new()),
            (None, Caller::BadToken) => (
                Some(format!("newsroom_desk=bm9uY2U.{UNKNOWN_TOKEN}")),
                "forged".into(),
            ),
            (None, _) => (
                Some(format!("newsroom_desk=bm9uY2U.{}", fx.subscriber.token)),
                "forged".into(),
            ),
        }
    }
}

async fn send(app: &TestApp, callers: &Callers, fx: &Fixture, r: &Route, c: Caller) -> Reply {
    let path = fx.fill(r.path);
    let method = Method::from_bytes(r.method.as_bytes()).unwrap();
    let client = app.desk_client();
    let url = format!("{}{path}", app.address);
    let mut request = client.request(method, &url);
    if let Body::SignIn = r.body {
        // The form as a browser sends it: with the form's own double-submit cookie.
        let form = app.desk_get(None, "/desk/sign-in").await;
        let login = cookie_pair(form.headers(), "newsroom_desk_login").unwrap();
        let csrf = hidden_field(&form.text().await.unwrap(), "csrf").unwrap();
        let token = Callers::token(app, fx, c).unwrap_or("").to_owned();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("csrf", csrf.as_str()),
                ("next", "/desk"),
                ("token", &token),
            ])
            .finish();
        request = request
            .header("cookie", login)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
    } else if path.starts_with("/desk") {
        let (cookie, csrf) = callers.desk(fx, c);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if let Body::Form(fields) = &r.body {
            let mut fields = fields(fx);
            fields.push(("csrf", csrf));
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields)
                .finish();
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
    } else {
        if let Some(token) = Callers::token(app, fx, c) {
            request = request.bearer_auth(token);
        }
        if let Body::Json(body) = &r.body {
            request = request.json(&body(fx));
        }
    }
    let response = request.send().await.expect("request sent");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (status, content_type, location) = (
        response.status().as_u16(),
        header("content-type"),
        header("location"),
    );
    // A stream never ends: its headers are the answer.
    let body = if content_type.starts_with("text/event-stream") {
        String::new()
    } else {
        response.text().await.unwrap_or_default()
    };
    Reply {
        status,
        content_type,
        location,
        body,
    }
}

/// Why a reply does not meet its expectation, if it does not.
fn mismatch(path: &str, expect: Expect, reply: &Reply) -> Option<String> {
    let ok = match expect {
        S(status) if reply.status != status => false,
        // The alert pages answer pages, except the two a script calls.
        S(status)
            if status >= 400
                && !path.starts_with("/desk")
                && (!path.starts_with("/alerts")
                    || matches!(path, "/alerts/list" | "/alerts/stream")) =>
        {
            let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
            reply.content_type == "application/problem+json" && body["status"] == status
        }
        S(_) => true,
        SignIn => reply.status == 303 && reply.location.starts_with("/desk/sign-in"),
        Done => {
            reply.status == 303
                && !reply.location.is_empty()
                && !reply.location.starts_with("/desk/sign-in")
        }
    };
    (!ok).then(|| {
        format!(
            "expected {expect:?}, got {} ({}) location {:?}: {}",
            reply.status,
            reply.content_type,
            reply.location,
            reply.body.chars().take(300).collect::<String>()
        )
    })
}

/// The fixture subscriber's rows in the notifier (not the delivery attempts the dispatcher
/// makes on its own).
async fn subscriber_rows(app: &TestApp, id: &str) -> Vec<String> {
    let id = id.to_owned();
    app.notifier
        .read(move |c| {
            let mut rows = Vec::new();
            for sql in [
                "SELECT id || ' ' || status FROM subscribers WHERE id = ?1",
                "SELECT id || ' ' || status || ' ' || COALESCE(secret, '') FROM endpoints
                 WHERE subscriber_id = ?1 ORDER BY id",
                "SELECT id FROM subscriptions WHERE subscriber_id = ?1 ORDER BY id",
                "SELECT d.seq || ' ' || d.status FROM deliveries d JOIN endpoints e
                 ON e.id = d.endpoint_id WHERE e.subscriber_id = ?1 ORDER BY d.seq",
            ] {
                let found: Vec<String> = c
                    .statement(sql)?
                    .query_map(newsroom_log::args![&id], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                rows.extend(found);
            }
            Ok(rows)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn every_route_answers_every_kind_of_caller_as_the_matrix_says() {
    let app = spawn_app().await;
    let callers = Callers::new(&app).await;
    let shared = Fixture::new(&app).await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for r in routes() {
        for (caller, expect) in CALLERS.iter().zip(r.expect) {
            // Reads share a fixture; anything else gets its own, as it may change it.
            let own;
            let fx = if r.method == "GET" {
                &shared
            } else {
                own = Fixture::new(&app).await;
                &own
            };
            let head = app.head().await;
            let rows = subscriber_rows(&app, &fx.subscriber.id).await;
            let reply = send(&app, &callers, fx, &r, *caller).await;
            cells += 1;
            let cell = format!("{} {} as {caller:?}", r.method, r.path);
            if let Some(why) = mismatch(r.path, expect, &reply) {
                failures.push(format!("{cell}: {why}"));
            }
            let refused = reply.status >= 400 || reply.location.starts_with("/desk/sign-in");
            if refused {
                if app.head().await != head {
                    failures.push(format!("{cell}: refused, yet the log grew"));
                }
                if subscriber_rows(&app, &fx.subscriber.id).await != rows {
                    failures.push(format!("{cell}: refused, yet the subscriber changed"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ from the matrix:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(cells, routes().len() * CALLERS.len());
}

/// `(METHOD, path)` of every route in a router's source, parameters written `{}`.
pub(crate) fn routes_in_source(source: &str) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        let call = &rest[at + ".route(".len()..];
        // The call's arguments, up to its closing parenthesis.
        let mut depth = 1;
        let end = call
            .char_indices()
            .find(|&(_, ch)| {
                match ch {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("a closed .route( call");
        let args = &call[..end];
        let path = args.split('"').nth(1).expect("a path literal");
        for method in ["get", "post", "put", "patch", "delete"] {
            let needle = format!("{method}(");
            let called = args.match_indices(&needle).any(|(i, _)| {
                i == 0 || {
                    let before = args.as_bytes()[i - 1];
                    !(before.is_ascii_alphanumeric() || before == b'_')
                }
            });
            if called {
                found.insert((method.to_uppercase(), normalise(path)));
            }
        }
        rest = &call[end..];
    }
    found
}

/// A path with every `{parameter}` written `{}`, without its query (the matrix may send one).
pub(crate) fn normalise(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "{}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_matrix_lists_every_route_of_every_router() {
    let mut served = BTreeSet::new();
    for source in [
        include_str!("../../crates/command/src/http/mod.rs"),
        include_str!("../../crates/projection/src/api.rs"),
        include_str!("../../crates/notifier/src/api/mod.rs"),
        include_str!("../../crates/newsroom/src/desk/mod.rs"),
        include_str!("../../crates/newsroom/src/follow/mod.rs"),
    ] {
        served.extend(routes_in_source(source));
    }
    assert!(served.len() > 60, "the parser found the routes: {served:?}");
    let listed: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.method.to_owned(), normalise(r.path)))
        .collect();
    assert_eq!(
        listed.len(),
        routes().len(),
        "no route is listed twice in the matrix"
    );
    let missing: Vec<_> = served.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "routes served but not in the auth matrix: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "routes in the auth matrix that no router serves: {stale:?}"
    );
}

#[tokio::test]
async fn a_subscriber_can_never_read_or_change_another_subscribers_data() {
    let app = spawn_app().await;
    let other = Fixture::new(&app).await;
    let victim = other.subscriber.id.clone();
    let me = app.sign_up("Curious Reader").await;
    let mine = app
        .add_endpoint(&me, json!({"kind": "nats", "subject": "newsroom.mine"}))
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = subscriber_rows(&app, &victim).await;
    assert!(before.len() >= 5, "{before:?}");

    // Every route about a subscriber, aimed at the other one.
    let mut tried = 0;
    for r in routes()
        .iter()
        .filter(|r| r.path.starts_with("/v1/subscribers/{subscriber}"))
    {
        let path = other.fill(r.path);
        let method = Method::from_bytes(r.method.as_bytes()).unwrap();
        let body = match &r.body {
            Body::Json(body) => Some(body(&other)),
            _ => None,
        };
        let answer = app.call(method, &path, Some(&me.token), body).await;
        // Admin-only routes say so; the others do not even admit the subscriber exists.
        let expected = if r.expect[2] == S(403) { 403 } else { 404 };
        answer.problem(expected);
        tried += 1;
    }
    assert!(tried >= 15, "{tried}");

    // The other subscriber's endpoints, subscriptions and deliveries, under my own id.
    for (method, path) in [
        (
            Method::DELETE,
            format!("/v1/subscribers/{}/endpoints/{}", me.id, other.endpoint),
        ),
        (
            Method::POST,
            format!(
                "/v1/subscribers/{}/endpoints/{}/secret",
                me.id, other.webhook
            ),
        ),
        (
            Method::DELETE,
            format!(
                "/v1/subscribers/{}/subscriptions/{}",
                me.id, other.subscription
            ),
        ),
        (
            Method::POST,
            format!(
                "/v1/subscribers/{}/deliveries/{}/redrive",
                me.id, other.delivery
            ),
        ),
    ] {
        app.call(method, &path, Some(&me.token), None)
            .await
            .problem(404);
    }
    // My lists hold only what is mine.
    let endpoints = app.subscriber_get(&me, "/endpoints").await;
    let ids: Vec<&str> = endpoints
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    for list in ["subscriptions", "deliveries", "alerts"] {
        let answer = app
            .call(
                Method::GET,
                &format!("/v1/subscribers/{}/{list}", me.id),
                Some(&me.token),
                None,
            )
            .await;
        assert_eq!(answer.ok(200), &json!([]), "{list}");
    }

    assert_eq!(
        subscriber_rows(&app, &victim).await,
        before,
        "the other subscriber is untouched"
    );
    app.call(
        Method::GET,
        &format!("/v1/subscribers/{victim}"),
        Some(&other.subscriber.token),
        None,
    )
    .await
    .ok(200);
}

#[tokio::test]
async fn a_reporter_cannot_approve_reject_correct_or_retract_even_their_own_filings() {
    let app = spawn_app().await;
    let reviewed = app.open_story(true).await;
    let pending = development("update");
    let pending_id = pending["id"].as_str().unwrap().to_owned();
    app.record(&reviewed, pending).await.ok(201);
    let open = app.open_story(false).await;
    let published = development("update");
    let published_id = published["id"].as_str().unwrap().to_owned();
    let filed = app.record(&open, published).await;
    assert_eq!(filed.ok(201)["status"], "published");
    let before = app.feed().await;

    let reason = json!({"reason": "I changed my mind"});
    for (story, dev, action, body) in [
        (&reviewed, &pending_id, "approval", json!({})),
        (&reviewed, &pending_id, "rejection", reason.clone()),
        (
            &reviewed,
            &pending_id,
            "corrections",
            json!({"note": "Fixed", "changes": {"headline": "Better"}}),
        ),
        (
            &open,
            &published_id,
            "corrections",
            json!({"note": "Fixed", "changes": {"headline": "Better"}}),
        ),
        (&open, &published_id, "retraction", reason.clone()),
    ] {
        let answer = app
            .development_action(&app.reporter, story, dev, action, body)
            .await;
        let problem = answer.problem(403);
        assert!(
            problem["detail"].as_str().unwrap().contains("editor"),
            "{action}: {problem}"
        );
    }
    // Nor through the desk.
    let session = app.desk_sign_in(&app.reporter).await;
    for (story, dev, action) in [
        (&reviewed, &pending_id, "approve"),
        (&reviewed, &pending_id, "reject"),
        (&open, &published_id, "correct"),
        (&open, &published_id, "retract"),
    ] {
        let answer = app
            .desk_post(
                Some(&session),
                &format!("/desk/stories/{story}/developments/{dev}/{action}"),
                &[
                    ("csrf", &session.csrf),
                    ("reason", "I changed my mind"),
                    ("note", "Fixed"),
                    ("changes.headline", "Better"),
                ],
            )
            .await;
        assert_eq!(answer.status(), 403, "{action}");
    }
    assert_eq!(app.feed().await, before, "nothing was recorded");
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once_by_every_api_and_the_desk() {
    let (app, story) = spawn_app_with_story(false).await;
    let editor = app.create_token("editor", "Leaving Editor").await;
    let admin = app.create_token("admin", "Leaving Admin").await;
    let events = format!("/v1/stories/{story}/events");
    app.call(Method::GET, &events, Some(&editor.token), None)
        .await
        .ok(200);
    app.call(Method::GET, "/v1/subscribers", Some(&admin.token), None)
        .await
        .ok(200);
    let session = app.desk_sign_in(&editor.token).await;
    assert_eq!(
        app.desk_get(Some(&session), "/desk/review").await.status(),
        200
    );

    for issued in [&editor, &admin] {
        app.revoke_token(&issued.id).await.ok(204);
    }
    let before = app.feed().await;

    // The very next request of each is refused.
    app.call(Method::GET, &events, Some(&editor.token), None)
        .await
        .problem(401);
    app.story_action(&editor.token, &story, "close", None)
        .await
        .problem(401);
    app.call(Method::GET, "/v1/subscribers", Some(&admin.token), None)
        .await
        .problem(401);
    app.call(
        Method::POST,
        "/v1/tokens",
        Some(&admin.token),
        Some(json!({"role": "admin", "name": "Backdoor"})),
    )
    .await
    .problem(401);
    app.call(
        Method::DELETE,
        &format!("/v1/tokens/{}", editor.id),
        Some(&admin.token),
        None,
    )
    .await
    .problem(401);

    // The desk session made with it ends, and its forms do nothing.
    let page = app.desk_get(Some(&session), "/desk/review").await;
    assert_eq!(page.status(), 303);
    let location = page.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("/desk/sign-in?") && location.contains("expired=1"),
        "{location}"
    );
    let close = app
        .desk_post(
            Some(&session),
            &format!("/desk/stories/{story}/close"),
            &[("csrf", &session.csrf)],
        )
        .await;
    assert_eq!(close.status(), 303);
    assert!(close.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/desk/sign-in"));
    // Nor can it sign in again.
    let form = app.desk_get(None, "/desk/sign-in").await;
    let login = cookie_pair(form.headers(), "newsroom_desk_login").unwrap();
    let csrf = hidden_field(&form.text().await.unwrap(), "csrf").unwrap();
    let again = app
        .desk_post(
            Some(&DeskSession {
                cookie: login,
                csrf: csrf.clone(),
            }),
            "/desk/sign-in",
            &[("csrf", &csrf), ("next", "/desk"), ("token", &editor.token)],
        )
        .await;
    assert_eq!(again.status(), 401);
    assert!(cookie_pair(again.headers(), "newsroom_desk").is_none());

    assert_eq!(app.feed().await, before, "nothing was recorded");
}

/// Control characters, percent-encoded: NUL, a line feed inside a value, DEL and a C1 control.
const CONTROLS: [&str; 4] = ["%00", "x%0Ay", "%7F", "%C2%9B"];

/// Query parameters the routes read (and one they do not): the refusal does not depend on it.
const QUERY_KEYS: [&str; 11] = [
    "story",
    "actor",
    "before",
    "after",
    "min_position",
    "as_of",
    "since",
    "status",
    "limit",
    "next",
    "unknown",
];

/// Every route, asked by nobody with a control character in each of its path parameters and
/// (GET routes) each query value: the refusals that are not a 400 problem naming the field.
async fn control_characters_not_refused(app: &TestApp) -> Vec<String> {
    let fx = Fixture::new(app).await;
    let client = app.desk_client();
    let mut wrong = Vec::new();
    let mut tried = 0;
    for r in routes() {
        let method = Method::from_bytes(r.method.as_bytes()).unwrap();
        let segments: Vec<&str> = r.path.split('/').collect();
        let mut paths = Vec::new();
        for (i, segment) in segments.iter().enumerate() {
            if !(segment.starts_with('{') && segment.ends_with('}')) {
                continue;
            }
            for bad in CONTROLS {
                let mut with = segments.clone();
                with[i] = bad;
                paths.push(fx.fill(&with.join("/")));
            }
        }
        if r.method == "GET" {
            let path = fx.fill(r.path);
            for key in QUERY_KEYS {
                paths.push(format!("{path}?{key}=%00"));
                paths.push(format!("{path}?{key}=1&{key}=a%01b"));
            }
            paths.push(format!("{path}?%00=1"));
        }
        for path in paths {
            tried += 1;
            let answer = client
                .request(method.clone(), format!("{}{path}", app.address))
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            let kind = answer
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body: Value = serde_json::from_str(&answer.text().await.unwrap_or_default())
                .unwrap_or(Value::Null);
            let named = body["field"].as_str().is_some_and(|f| !f.is_empty());
            if status != 400 || kind != "application/problem+json" || !named {
                wrong.push(format!("{} {path}: {status} {kind} {body}", r.method));
            }
        }
    }
    assert!(tried > 500, "{tried} requests");
    wrong
}

#[tokio::test]
async fn a_control_character_in_a_path_parameter_or_query_value_is_a_400_problem_on_sqlite() {
    let app = spawn_app().await;
    let wrong = control_characters_not_refused(&app).await;
    assert!(
        wrong.is_empty(),
        "{} answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test]
async fn a_control_character_in_a_path_parameter_or_query_value_is_a_400_problem_on_postgres() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    let wrong = control_characters_not_refused(&app).await;
    assert!(
        wrong.is_empty(),
        "{} answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
