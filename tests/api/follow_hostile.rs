//! Generated hostile input for the reader's alert pages (`/alerts…`, crates/newsroom/src/follow),
//! as `hostile.rs` does for the API: proptest makes follow forms field by field — names,
//! addresses, stories, actors and digest choices that are empty, huge, control characters, NUL,
//! bidi overrides, markup, SQL, header injection, invalid UTF-8 — sent by new readers and by a
//! signed-in one, with a right or a wrong CSRF value, beside hostile queries and paths on the
//! other pages. Whatever comes, no answer is a 5xx, and nothing is half-written: a form that
//! is refused changes nothing, and one that is carried out adds exactly one subscription (and,
//! for a new reader, the subscriber and the endpoint of the address they gave).

use std::sync::atomic::{AtomicUsize, Ordering};

use newsroom_testkit::prelude::*;
use newsroom_web::limits::RateLimits;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::{CONTENT_TYPE, COOKIE};
use serde_json::json;

/// Texts an attacker types into a field.
fn hostile_text() -> impl Strategy<Value = String> {
    let named: Vec<String> = [
        "",
        " ",
        "\0",
        "a\0b",
        "\u{202e}gnp.exe",
        "\u{200b}",
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "' OR 1=1 --",
        "Robert'); DROP TABLE subscribers;--",
        "%00",
        "%ZZ",
        "a\r\nSet-Cookie: newsroom_alerts=x",
        "../../etc/passwd",
        "root@[10.0.0.5]",
        "root@10.0.0.5",
        "reader@example.org",
        "Reader@Example.org ",
        "a@b",
        "@",
        "immediate",
        "60",
        "-1",
        "99999999999999999999",
        "campaign-hack",
        "Fancy Bear",
        "00000000-0000-0000-0000-000000000000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    prop_oneof![
        3 => proptest::sample::select(named),
        2 => "[ -~]{0,40}",
        2 => any::<String>().prop_map(|s| s.chars().take(80).collect()),
        1 => (1usize..2_000).prop_map(|n| "é".repeat(n)),
        1 => (15_000usize..20_000).prop_map(|n| "x".repeat(n)),
    ]
}

/// One follow form.
#[derive(Debug, Clone)]
struct Form {
    /// A reader without a cookie yet (signs up), or the signed-in one.
    new_reader: bool,
    /// Whether the CSRF value is the right one.
    csrf_right: bool,
    story: String,
    actor: String,
    name: String,
    email: String,
    digest: String,
    /// Bytes sent after the fields, as they are (may be invalid UTF-8 or break the encoding).
    tail: Vec<u8>,
    /// A path segment and a query value for the other pages.
    segment: String,
    query: String,
}

fn forms() -> impl Strategy<Value = Form> {
    (
        any::<bool>(),
        prop::bool::weighted(0.85),
        prop_oneof![Just("campaign-hack".to_owned()), hostile_text()],
        prop_oneof![Just(String::new()), hostile_text()],
        prop_oneof![Just("Ada".to_owned()), hostile_text()],
        prop_oneof![Just(String::new()), hostile_text()],
        prop_oneof![
            Just("immediate".to_owned()),
            Just("60".to_owned()),
            hostile_text()
        ],
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec(any::<u8>(), 0..64),
        ],
        hostile_text(),
        hostile_text(),
    )
        .prop_map(
            |(new_reader, csrf_right, story, actor, name, email, digest, tail, segment, query)| {
                Form {
                    new_reader,
                    csrf_right,
                    story,
                    actor,
                    name,
                    email,
                    digest,
                    tail,
                    segment,
                    query,
                }
            },
        )
}

/// Forms generated runs found answering 500, kept as fixed cases.
fn regressions() -> Vec<Form> {
    let plain = Form {
        new_reader: false,
        csrf_right: true,
        story: "campaign-hack".into(),
        actor: String::new(),
        name: "Ada".into(),
        email: String::new(),
        digest: "immediate".into(),
        tail: Vec::new(),
        segment: "x".into(),
        query: "x".into(),
    };
    vec![
        // A NUL in the story field: PostgreSQL refused the lookup (500).
        Form {
            story: "\0".into(),
            ..plain.clone()
        },
        Form {
            new_reader: true,
            story: "campaign\0hack".into(),
            ..plain.clone()
        },
        Form {
            story: String::new(),
            actor: "Fancy\0Bear".into(),
            ..plain.clone()
        },
        Form {
            new_reader: true,
            name: "A\0da".into(),
            email: "a\0@example.org".into(),
            ..plain
        },
    ]
}

/// What the notifier holds: subscribers, subscriptions, endpoints.
async fn counts(app: &TestApp) -> (i64, i64, i64) {
    app.notifier
        .read(|c| {
            Ok(c.query_row(
                "SELECT (SELECT COUNT(*) FROM subscribers), (SELECT COUNT(*) FROM subscriptions),
                        (SELECT COUNT(*) FROM endpoints)",
                newsroom_log::args![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .await
        .unwrap()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A fresh follow form's cookie and CSRF value, for a reader who has none yet.
async fn form_cookie(app: &TestApp) -> (String, String) {
    let form = app
        .desk_get(None, "/alerts/follow?story=campaign-hack")
        .await;
    assert_eq!(form.status(), 200);
    let cookie = cookie_pair(form.headers(), "newsroom_alerts_form").expect("a form cookie");
    let csrf = hidden_field(&form.text().await.unwrap(), "csrf").expect("a csrf field");
    (cookie, csrf)
}

/// Sends one generated form and probes the other pages with its junk; checks every answer.
async fn check(
    app: &TestApp,
    reader: &DeskSession,
    seen: &Seen,
    f: Form,
) -> Result<(), TestCaseError> {
    let (cookie, csrf) = if f.new_reader {
        form_cookie(app).await
    } else {
        (reader.cookie.clone(), reader.csrf.clone())
    };
    let csrf = if f.csrf_right {
        csrf
    } else {
        format!("{csrf}x")
    };
    let mut body = format!(
        "csrf={}&story={}&actor={}&name={}&email={}&digest={}",
        encode(&csrf),
        encode(&f.story),
        encode(&f.actor),
        encode(&f.name),
        encode(&f.email),
        encode(&f.digest)
    )
    .into_bytes();
    body.extend_from_slice(&f.tail);

    let before = counts(app).await;
    let answer = app
        .desk_client()
        .post(format!("{}/alerts/follow", app.address))
        .header(COOKIE, &cookie)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let page = answer.text().await.unwrap_or_default();
    prop_assert!(status < 500, "follow answered {status}: {page}");
    let after = counts(app).await;
    if status == 303 && location.starts_with("/alerts?followed") {
        seen.followed.fetch_add(1, Ordering::Relaxed);
        let subscribers = i64::from(f.new_reader);
        let endpoints = i64::from(f.new_reader && !f.email.trim().is_empty());
        prop_assert_eq!(
            after,
            (before.0 + subscribers, before.1 + 1, before.2 + endpoints),
            "a follow carried out adds exactly its rows"
        );
    } else {
        seen.refused.fetch_add(1, Ordering::Relaxed);
        prop_assert_eq!(
            after,
            before,
            "a refused follow ({}) wrote something",
            status
        );
    }

    // The other pages, with the same junk in their paths and queries.
    let q = encode(&f.query);
    let s = encode(&f.segment);
    for path in [
        format!("/alerts/follow?story={q}"),
        format!("/alerts/follow?actor={q}"),
        format!("/alerts/follow?story={q}&actor={s}"),
        format!("/alerts?before={q}"),
        format!("/alerts?followed={q}&stopped={s}"),
    ] {
        for session in [None, Some(reader)] {
            let got = app.desk_get(session, &path).await;
            let status = got.status().as_u16();
            prop_assert!(status < 500, "GET {path} answered {status}");
        }
    }
    let before = counts(app).await;
    for (path, csrf) in [
        (
            format!("/alerts/subscriptions/{s}/delete"),
            reader.csrf.as_str(),
        ),
        (
            format!("/alerts/subscriptions/{s}/delete"),
            f.query.as_str(),
        ),
        ("/alerts/forget".to_owned(), f.query.as_str()),
    ] {
        let got = app.desk_post(Some(reader), &path, &[("csrf", csrf)]).await;
        let status = got.status().as_u16();
        prop_assert!(status < 500, "POST {path} answered {status}");
    }
    prop_assert_eq!(
        counts(app).await,
        before,
        "junk ids and wrong CSRF values remove nothing"
    );
    Ok(())
}

fn many_sign_ups(s: &mut newsroom::NewsroomSettings) {
    s.command.rate_limits = Some(RateLimits {
        sign_ups_per_address_per_hour: 100_000,
        ..RateLimits::default()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_hostile_alert_forms_never_fail_and_never_half_write() {
    hostile_forms(spawn_app_with(many_sign_ups).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_hostile_alert_forms_never_fail_and_never_half_write_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let url = db.url.clone();
    let app = spawn_app_with(move |s| {
        many_sign_ups(s);
        s.command.database_url = Some(url);
    })
    .await;
    hostile_forms(app).await;
    drop(db);
}

/// Carried-out and refused follows seen in one run: both must have happened.
#[derive(Debug, Default)]
struct Seen {
    followed: AtomicUsize,
    refused: AtomicUsize,
}

async fn hostile_forms(app: TestApp) {
    let opened = app
        .open_story_as(
            &app.reporter,
            json!({"slug": "campaign-hack", "headline": "Campaign reports a hack", "tags": ["cyber"]}),
        )
        .await;
    let position = opened.ok(201)["position"].as_i64().unwrap();
    app.call(
        reqwest::Method::GET,
        &format!("/v1/stories/campaign-hack?min_position={position}"),
        None,
        None,
    )
    .await
    .ok(200);

    // The signed-in reader: follows once as a newcomer would.
    let (cookie, csrf) = form_cookie(&app).await;
    let followed = app
        .desk_post(
            Some(&DeskSession {
                cookie,
                csrf: csrf.clone(),
            }),
            "/alerts/follow",
            &[("csrf", &csrf), ("story", "campaign-hack"), ("name", "Ada")],
        )
        .await;
    assert_eq!(followed.status(), 303);
    let cookie = cookie_pair(followed.headers(), "newsroom_alerts").expect("a reader cookie");
    let page = app
        .desk_get(Some(&DeskSession::of_cookie(cookie.clone())), "/alerts")
        .await;
    let csrf = hidden_field(&page.text().await.unwrap(), "csrf").expect("csrf on /alerts");
    let reader = DeskSession { cookie, csrf };

    let cases = std::env::var("NEWSROOM_HOSTILE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let seen = Seen::default();
    // Forms that once answered 500, first and every time.
    for form in regressions() {
        if let Err(e) = check(&app, &reader, &seen, form.clone()).await {
            panic!("{form:?}: {e}");
        }
    }
    // The failure, shrunk to its smallest form, as text.
    let failure = tokio::task::block_in_place(|| {
        runner
            .run(&forms(), |form| {
                handle.block_on(check(&app, &reader, &seen, form))
            })
            .err()
            .map(|e| e.to_string())
    });
    if let Some(e) = failure {
        panic!("{e}");
    }
    assert!(
        seen.followed.load(Ordering::Relaxed) > 0 && seen.refused.load(Ordering::Relaxed) > 0,
        "the generated forms were both carried out and refused: {seen:?}"
    );
    // The signed-in reader is still signed in: nothing above forgot them.
    let page = app.desk_get(Some(&reader), "/alerts").await;
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("Campaign reports a hack"));
}
