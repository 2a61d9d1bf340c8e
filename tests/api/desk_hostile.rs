//! Generated hostile input for the desk's forms, as `hostile.rs` does for the API: every form an
//! editor can send (open a story, file and publish, approve, reject, correct, retract, withdraw,
//! close, reopen, relate to another story), with fields replaced by hostile values (NUL and other control characters, bidi
//! controls, huge texts, markup, odd dates and numbers), left out, repeated or added. Whatever
//! is sent: never a 5xx, and a form that is not carried out (anything but a redirect) records
//! nothing; afterwards the log's chains are intact and the views have applied all of it.

use newsroom_log::verify::verify_log;
use newsroom_testkit::prelude::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

/// How many forms are sent (`NEWSROOM_DESK_HOSTILE_CASES` to change it).
fn cases() -> usize {
    std::env::var("NEWSROOM_DESK_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("\u{0}".to_owned()),
        Just("a\u{0}b".to_owned()),
        Just("\u{202e}evil\u{202c}".to_owned()),
        Just("\u{200b}".to_owned()),
        Just("<script>alert(1)</script>".to_owned()),
        Just("x".repeat(70_000)),
        Just("é".repeat(3_000)),
        Just("line\r\nbreak".to_owned()),
        Just("0000-01-01T00:00".to_owned()),
        Just("-0001-01-01T00:00".to_owned()),
        Just("+002026-10-01T09:30".to_owned()),
        Just("2026-12-31T23:59:60".to_owned()),
        Just("9999-12-31T23:59".to_owned()),
        Just("-1".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("00000000-0000-0000-0000-000000000000".to_owned()),
        Just("%00".to_owned()),
        Just("../../etc/passwd".to_owned()),
        "\\PC{0,40}",
        any::<String>(),
    ]
}

/// What to do to one field of a valid form.
#[derive(Debug, Clone)]
enum Change {
    Keep,
    Replace(String),
    Drop,
    Repeat(String),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::Keep),
        4 => hostile_text().prop_map(Change::Replace),
        1 => Just(Change::Drop),
        1 => hostile_text().prop_map(Change::Repeat),
    ]
}

/// One generated case: which form, what happens to each of its fields (up to 8), an extra field,
/// and whether the CSRF value is kept.
fn case() -> impl Strategy<Value = (usize, Vec<Change>, Option<(String, String)>, bool)> {
    (
        0..9usize,
        proptest::collection::vec(change(), 8),
        proptest::option::of((hostile_text(), hostile_text())),
        prop::bool::weighted(0.9),
    )
}

struct Fixture {
    story: String,
    closed: String,
    pending: String,
    published: String,
    seen: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    let story = app
        .open_story_as(
            &app.editor,
            json!({"slug": "desk-hostile", "headline": "Hostile desk", "review_required": true}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let closed = app.open_story(false).await;
    app.story_action(&app.editor, &closed, "close", None)
        .await
        .ok(200);
    let pending = app
        .record_as(&app.reporter, &story, development("update"))
        .await;
    let pending = pending.ok(201)["id"].as_str().unwrap().to_owned();
    let published = app
        .record_as(&app.editor, &story, development("statement_issued"))
        .await;
    let published = published.ok(201)["id"].as_str().unwrap().to_owned();
    let seen = app.head().await.to_string();
    Fixture {
        story,
        closed,
        pending,
        published,
        seen,
    }
}

/// The desk's forms, each with a valid set of fields.
fn forms(fx: &Fixture) -> Vec<(String, Vec<(&'static str, String)>)> {
    let (story, pending, published) = (&fx.story, &fx.pending, &fx.published);
    let dev = |d: &str, action: &str| format!("/desk/stories/{story}/developments/{d}/{action}");
    vec![
        (
            "/desk/stories".into(),
            vec![
                ("headline", "A desk story".into()),
                ("slug", format!("desk-{}", uuid::Uuid::new_v4().simple())),
                ("summary", "Summary".into()),
                ("tags", "cyber, elections".into()),
                ("review_required", "on".into()),
            ],
        ),
        (
            format!("/desk/stories/{story}/developments"),
            vec![
                ("id", uuid::Uuid::new_v4().to_string()),
                ("kind", "attribution_claimed".into()),
                ("headline", "Filed from the desk".into()),
                ("body", "Body".into()),
                ("occurred_at", "2026-10-01T09:30".into()),
                ("actors", "APT28\nGRU".into()),
                ("source.name", "Ministry".into()),
                ("source.kind", "official_statement".into()),
                ("confirm", "file".into()),
            ],
        ),
        (
            dev(pending, "approve"),
            vec![("seen", fx.seen.clone()), ("confirm", "approve".into())],
        ),
        (
            dev(pending, "reject"),
            vec![
                ("reason", "Not confirmed".into()),
                ("seen", fx.seen.clone()),
            ],
        ),
        (
            dev(published, "correct"),
            vec![
                ("note", "The headline overstated it".into()),
                ("changes.headline", "Officials confirm a breach".into()),
                ("changes.occurred_at", "2026-10-02T10:00".into()),
                ("changes.actors", "Fancy Bear".into()),
                ("seen", fx.seen.clone()),
                ("confirm", "correct".into()),
            ],
        ),
        (
            dev(published, "retract"),
            vec![
                ("reason", "The statement was withdrawn".into()),
                ("seen", fx.seen.clone()),
            ],
        ),
        (dev(pending, "withdraw"), vec![("seen", fx.seen.clone())]),
        (format!("/desk/stories/{story}/close"), vec![]),
        (format!("/desk/stories/{}/reopen", fx.closed), vec![]),
        (
            format!("/desk/stories/{story}/relations"),
            vec![
                ("story", fx.closed.clone()),
                ("relation", "background".into()),
            ],
        ),
    ]
}

#[tokio::test]
async fn hundreds_of_hostile_desk_forms_never_fail_the_server_or_write_half() {
    let app = spawn_app().await;
    let fx = fixture(&app).await;
    let session = app.desk_sign_in(&app.editor).await;
    let mut runner = TestRunner::new(Config {
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    });
    let strategy = case();
    let mut carried_out = 0;
    for n in 0..cases() {
        let (which, changes, extra, keep_csrf) =
            strategy.new_tree(&mut runner).expect("a case").current();
        let all = forms(&fx);
        let (path, valid) = &all[which % all.len()];
        let mut fields: Vec<(String, String)> = Vec::new();
        for (i, (name, value)) in valid.iter().enumerate() {
            match changes.get(i).cloned().unwrap_or(Change::Keep) {
                Change::Keep => fields.push((name.to_string(), value.clone())),
                Change::Replace(v) => fields.push((name.to_string(), v)),
                Change::Drop => {}
                Change::Repeat(v) => {
                    fields.push((name.to_string(), value.clone()));
                    fields.push((name.to_string(), v));
                }
            }
        }
        if let Some((name, value)) = extra {
            fields.push((name, value));
        }
        let csrf = if keep_csrf {
            session.csrf.clone()
        } else {
            "forged".to_owned()
        };
        fields.push(("csrf".into(), csrf));
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let head = app.head().await;
        let answer = app.desk_post(Some(&session), path, &pairs).await;
        let status = answer.status();
        let described = format!("case {n}: POST {path} {:?}", truncated(&fields));
        assert!(
            !status.is_server_error(),
            "{described}: {status} {}",
            answer.text().await.unwrap_or_default()
        );
        if status.is_redirection() {
            carried_out += 1;
        } else {
            assert_eq!(
                app.head().await,
                head,
                "{described}: {status} wrote something"
            );
        }
    }
    assert!(carried_out > 0, "no generated form was ever carried out");

    // Whatever was carried out was written whole: the chains verify and the views applied it.
    let report = verify_log(&app.app_state.store).await.unwrap();
    assert!(report.is_sound(), "{report:#?}");
    app.views_at_head().await;
}

fn truncated(fields: &[(String, String)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| {
            let short: String = v.chars().take(60).collect();
            (k.clone(), short)
        })
        .collect()
}
