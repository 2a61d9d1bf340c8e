//! Faults of the services newsroom depends on, against private servers the tests start, stop and
//! restart themselves ([`PrivatePostgres`]), so other tests sharing the machine's servers are
//! never disturbed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use newsroom_command::http::RecordDevelopmentRequest;
use newsroom_command::CommandError;
use newsroom_domain::{Role, StoryId};
use newsroom_testkit::prelude::*;
use newsroom_testkit::receiver::WebhookReceiver;
use newsroom_web::Principal;
use reqwest::Method;
use serde_json::{json, Value};

/// How long one request may take while the database is down: it must fail, not hang.
const FAIL_WITHIN: Duration = Duration::from_secs(10);
/// How long after the database is back commands must succeed again.
const RECOVER_WITHIN: Duration = Duration::from_secs(30);

fn development_id(filing: &Value) -> String {
    filing["id"].as_str().unwrap().to_owned()
}

const UNAVAILABLE: &str = "urn:newsroom:problem:unavailable";
const OUTCOME_UNKNOWN: &str = "urn:newsroom:problem:outcome-unknown";

/// Asserts the answer is the 503 of an unreachable log: a problem body and `Retry-After`; its
/// type says whether nothing was recorded (`unavailable`) or the database went away during the
/// commit (`outcome-unknown`).
#[track_caller]
fn assert_unavailable(answer: &Answer) -> &str {
    let kind = answer.problem(503)["type"].as_str().unwrap();
    assert!(
        [UNAVAILABLE, OUTCOME_UNKNOWN].contains(&kind),
        "{answer:#?}"
    );
    assert!(
        answer.headers.contains_key("retry-after"),
        "a 503 says when to retry: {answer:#?}"
    );
    kind
}

/// Asserts the answer is a 503 saying nothing was recorded.
#[track_caller]
fn assert_refused(answer: &Answer) {
    assert_eq!(assert_unavailable(answer), UNAVAILABLE, "{answer:#?}");
}

/// Sends `request` and asserts it was answered within [`FAIL_WITHIN`].
async fn timed(request: impl std::future::Future<Output = Answer>) -> Answer {
    let started = Instant::now();
    let answer = request.await;
    assert!(
        started.elapsed() < FAIL_WITHIN,
        "answered after {:?}: {answer:#?}",
        started.elapsed()
    );
    answer
}

/// The requirement: "PostgreSQL restart: commands fail with 503 while it is down, nothing
/// half-written, service recovers without a restart of newsroom." The log is a private
/// PostgreSQL server; it is killed (`-m immediate`) while reporters are filing, stays down while
/// more commands are tried, and is started again on the same port. Newsroom itself runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_refuses_commands_with_503_and_newsroom_recovers_by_itself() {
    let Some(mut pg) = PrivatePostgres::start() else {
        return;
    };
    let url = pg.url();
    let app = Arc::new(spawn_app_with(|s| s.command.database_url = Some(url)).await);
    let receiver = WebhookReceiver::ok().await;

    // Before: a story, a reader following it by webhook, a development alerted.
    let story = app.open_story(false).await;
    let reader = app.sign_up("Wire desk").await;
    app.add_endpoint(&reader, json!({"kind": "webhook", "url": receiver.url}))
        .await
        .ok(201);
    app.subscribe(&reader, json!({"story": story}))
        .await
        .ok(201);
    // Every development answered 201 (or 200, a replay of one the log holds).
    let mut accepted: Vec<String> = Vec::new();
    let first = development("statement_issued");
    app.record(&story, first.clone()).await.ok(201);
    accepted.push(development_id(&first));
    receiver.wait_for_accepted(1, RECOVER_WITHIN).await;

    // The database is killed while reporters are filing: every answer is a 201 or a 503, never a
    // 500 or a hang. A commit under way at the moment of the kill may have been recorded though
    // its answer was lost, and the database is not there to ask: that 503 says the outcome is
    // unknown. Those are retried afterwards with the same development id, which the log makes
    // idempotent; any other 503 recorded nothing.
    let mut filers = Vec::new();
    for _ in 0..4 {
        let (app, story) = (app.clone(), story.clone());
        filers.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            loop {
                let filing = development("statement_issued");
                let answer = timed(app.record(&story, filing.clone())).await;
                let refused = answer.status != 201;
                answers.push((filing, answer));
                if refused || answers.len() > 2_000 {
                    return answers;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    tokio::task::block_in_place(|| pg.stop());
    let mut in_doubt = Vec::new();
    for filer in filers {
        for (filing, answer) in filer.await.unwrap() {
            if answer.status == 201 {
                accepted.push(development_id(&filing));
            } else {
                let kind = assert_unavailable(&answer).to_owned();
                in_doubt.push((filing, kind));
            }
        }
    }
    assert_eq!(in_doubt.len(), 4, "every filer ended on a 503");
    assert!(accepted.len() > 1, "the filers got through before the kill");

    // While it is down: commands answer 503 at once, reads of the log too, and reads of the
    // views, which live in the same database; /healthz says the database is unreachable.
    let mut refused: Vec<String> = Vec::new();
    for _ in 0..2 {
        let filing = development("update");
        assert_refused(&timed(app.record(&story, filing.clone())).await);
        refused.push(development_id(&filing));
    }
    let refused_slug = "opened-while-the-database-was-down";
    assert_refused(
        &timed(app.open_story_as(
            &app.reporter,
            json!({"slug": refused_slug, "headline": "Never opened"}),
        ))
        .await,
    );
    assert_refused(
        &timed(app.call(Method::GET, "/v1/events?after=0", Some(&app.admin), None)).await,
    );
    let health = timed(app.call(Method::GET, "/healthz", None, None)).await;
    assert_eq!(health.status, 503, "{health:#?}");
    assert_eq!(health.body["status"], "unhealthy", "{health:#?}");
    assert_ne!(health.body["checks"]["event_store"], "ok", "{health:#?}");
    assert_refused(
        &timed(app.call(Method::GET, &format!("/v1/stories/{story}"), None, None)).await,
    );

    // Past the HTTP layer too: a command whose story is cached goes straight to the store's
    // writer task, whose batch fails; the writer must live on and the cache must not keep the
    // aggregate that ran ahead of the log.
    let by = Principal {
        token_id: "fault-test".into(),
        name: "Rita Reporter".into(),
        role: Role::Reporter,
    };
    let story_id = StoryId::from(story.parse::<uuid::Uuid>().unwrap());
    let direct = development("update");
    let command = serde_json::from_value::<RecordDevelopmentRequest>(direct.clone())
        .unwrap()
        .parse()
        .unwrap();
    let started = Instant::now();
    match app.app_state.service.execute(story_id, &by, command).await {
        Err(CommandError::Store(e)) => assert!(e.is_unavailable(), "{e}"),
        other => panic!("expected the store to be unavailable: {other:?}"),
    }
    assert!(started.elapsed() < FAIL_WITHIN);
    refused.push(development_id(&direct));
    assert!(
        app.is_running(),
        "newsroom runs on while its database is down"
    );

    // The database comes back on the same port: commands succeed again, newsroom untouched.
    tokio::task::block_in_place(|| pg.start_again());
    let deadline = Instant::now() + RECOVER_WITHIN;
    loop {
        let filing = development("statement_issued");
        let answer = timed(app.record(&story, filing.clone())).await;
        if answer.status == 201 {
            accepted.push(development_id(&filing));
            break;
        }
        assert_refused(&answer);
        refused.push(development_id(&filing));
        assert!(
            Instant::now() < deadline,
            "commands still fail {RECOVER_WITHIN:?} after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The projector and the notifier find the database again at their next retry.
    loop {
        let health = app.call(Method::GET, "/healthz", None, None).await;
        if health.ok(200)["status"] == "ok" {
            break;
        }
        assert!(Instant::now() < deadline, "still not healthy: {health:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The filings refused at the kill, retried as a client would: a 201 if nothing was recorded,
    // a 200 (the original answer) if the commit whose answer was lost had been recorded.
    let (mut unknown, mut replayed) = (0, 0);
    for (filing, kind) in in_doubt {
        let answer = app.record(&story, filing.clone()).await;
        match answer.status.as_u16() {
            201 => {}
            200 if kind == OUTCOME_UNKNOWN => replayed += 1,
            _ => panic!("a filing refused with {kind}, sent again: {answer:#?}"),
        }
        unknown += usize::from(kind == OUTCOME_UNKNOWN);
        accepted.push(development_id(&filing));
    }
    eprintln!("at the kill: {unknown} commits in doubt, of which {replayed} had been recorded");
    let last = development("update");
    let head = app.record(&story, last.clone()).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    accepted.push(development_id(&last));

    // The log holds exactly the accepted commands' events, gap-free, each story in sequence.
    let feed = app.feed().await;
    assert_eq!(
        feed.len() as i64,
        head,
        "the last command wrote the newest event"
    );
    let mut next_sequence: HashMap<String, i64> = HashMap::new();
    for (i, event) in feed.iter().enumerate() {
        assert_eq!(event["position"], i as i64 + 1, "positions are gap-free");
        let expected = next_sequence
            .entry(event["story_id"].as_str().unwrap().to_owned())
            .or_insert(1);
        assert_eq!(event["sequence"], *expected, "sequences are continuous");
        *expected += 1;
    }
    assert_eq!(next_sequence.len(), 1, "the refused story was never opened");
    let recorded: Vec<String> = feed
        .iter()
        .filter_map(|e| e["payload"]["DevelopmentRecorded"]["development"]["id"].as_str())
        .map(str::to_owned)
        .collect();
    let unique: HashSet<&String> = recorded.iter().collect();
    assert_eq!(unique.len(), recorded.len(), "each development once");
    let mut expected = accepted.clone();
    expected.sort();
    let mut got = recorded.clone();
    got.sort();
    assert_eq!(
        got, expected,
        "the log holds the accepted developments, no other"
    );
    for id in &refused {
        assert!(
            !unique.contains(id),
            "a refused command left {id} in the log"
        );
    }

    // The views and the reader's alerts catch up on every accepted development, each once.
    let view = app.read_story_at(&story, head).await;
    assert_eq!(
        view.ok(200)["development_count"].as_u64().unwrap() as usize,
        recorded.len()
    );
    receiver
        .wait_for_accepted(recorded.len(), RECOVER_WITHIN)
        .await;
    // Anything sent twice would arrive now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Delivery is at least once: a delivery whose outcome could not be recorded while the
    // database was down is sent again after it is back, under the same `webhook-id`, which a
    // receiver deduplicates on. So: every accepted development alerted, each under one id, and
    // nothing alerted that was not accepted.
    let alerts = receiver.accepted();
    let mut by_development: BTreeMap<String, HashSet<&str>> = BTreeMap::new();
    for alert in &alerts {
        by_development
            .entry(alert.development_id())
            .or_default()
            .insert(alert.id.as_str());
    }
    let alerted: Vec<String> = by_development.keys().cloned().collect();
    assert_eq!(
        alerted, got,
        "an alert for each accepted development, and no other"
    );
    for (development, ids) in &by_development {
        assert_eq!(
            ids.len(),
            1,
            "{development} alerted under one webhook-id: {ids:?}"
        );
    }
    eprintln!(
        "{} alerts for {} developments (the rest sent again after the restart)",
        alerts.len(),
        got.len()
    );
    assert!(app.is_running(), "newsroom was never restarted");
}
