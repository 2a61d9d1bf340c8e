//! Concurrent writers: fifty on one story (in pairs that send the same filings, as retrying
//! clients do) and fifty on fifty stories, a fixed number of attempts each. Every accepted
//! development is in the log exactly once, where its answer says; every refusal is a 409 or a
//! 429; and the views served afterwards equal the views served after `projection rebuild`.

use std::collections::{BTreeMap, HashMap};

use futures_util::future::join_all;
use newsroom_testkit::prelude::*;
use newsroom_web::limits::RateLimits;
use serde_json::{json, Value};
use uuid::Uuid;

const WRITERS: usize = 50;
const ATTEMPTS: usize = 4;

/// One filing sent, and its answer.
#[derive(Debug)]
struct Sent {
    story: String,
    id: String,
    status: u16,
    body: Value,
}

/// A filing naming `actor`, so that actor views get busy too.
fn filing(actor: &str) -> Value {
    let mut f = development("update");
    f["actors"] = json!([actor, "Fancy Bear"]);
    f
}

async fn send(app: &TestApp, token: &str, story: &str, filing: &Value) -> Sent {
    let answer = app.record_as(token, story, filing.clone()).await;
    if answer.status.is_client_error() || answer.status.is_server_error() {
        // Whatever the refusal, it is a problem.
        answer.problem(answer.status.as_u16());
    }
    Sent {
        story: story.to_owned(),
        id: filing["id"].as_str().unwrap().to_owned(),
        status: answer.status.as_u16(),
        body: answer.body,
    }
}

/// The recorded developments of the log: id → (story, sequence, position), every occurrence.
fn recorded(feed: &[Value]) -> HashMap<String, Vec<(String, i64, i64)>> {
    let mut found: HashMap<String, Vec<_>> = HashMap::new();
    for e in feed {
        if let Some(id) = e["payload"]["DevelopmentRecorded"]["development"]["id"].as_str() {
            found.entry(id.to_owned()).or_default().push((
                e["story_id"].as_str().unwrap().to_owned(),
                e["sequence"].as_i64().unwrap(),
                e["position"].as_i64().unwrap(),
            ));
        }
    }
    found
}

/// Checks the log against the answers: each accepted filing recorded once, where its answer
/// says; nothing recorded that was not accepted; refusals only 409 or 429. Returns how many
/// answers were refusals.
fn check_log(sent: &[Sent], feed: &[Value]) -> usize {
    let in_log = recorded(feed);
    let mut accepted: HashMap<&str, &Sent> = HashMap::new();
    let mut refused = 0;
    for s in sent {
        match s.status {
            200 | 201 => {
                let entries = in_log.get(&s.id).unwrap_or_else(|| {
                    panic!("accepted {} ({}) is not in the log", s.id, s.status)
                });
                assert_eq!(entries.len(), 1, "{} is in the log once: {entries:?}", s.id);
                let (story, sequence, position) = &entries[0];
                assert_eq!(story, &s.story);
                assert_eq!(s.body["sequence"], *sequence, "{s:?}");
                assert_eq!(s.body["position"], *position, "{s:?}");
                accepted.insert(&s.id, s);
            }
            409 | 429 => refused += 1,
            other => panic!("a writer got {other}: {s:?}"),
        }
    }
    for id in in_log.keys() {
        assert!(
            accepted.contains_key(id.as_str()),
            "{id} is in the log, but no writer was told it was accepted"
        );
    }
    // Positions are gap-free, and so is every story's sequence.
    for (i, e) in feed.iter().enumerate() {
        assert_eq!(e["position"], i as i64 + 1, "positions have no gaps");
    }
    let mut sequences: HashMap<&str, i64> = HashMap::new();
    for e in feed {
        let last = sequences
            .entry(e["story_id"].as_str().unwrap())
            .or_default();
        *last += 1;
        assert_eq!(e["sequence"], *last, "a story's sequence has no gaps: {e}");
    }
    refused
}

/// Every JSON answer of the read side about these stories and actors: path → (status, ETag,
/// body).
async fn views(app: &TestApp, stories: &[String]) -> BTreeMap<String, (u16, String, String)> {
    let mut paths = vec![
        "/v1/stories?limit=1000".to_owned(),
        "/v1/actors/fancy%20bear".to_owned(),
    ];
    for n in 0..WRITERS {
        paths.push(format!("/v1/actors/writer%20{n}"));
    }
    for story in stories {
        for suffix in ["", "/claims", "/feed.json", "/ninjs"] {
            paths.push(format!("/v1/stories/{story}{suffix}"));
        }
    }
    let mut answers = BTreeMap::new();
    for path in paths {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            // Feeds name their own address: the same one before and after the restart.
            .header("host", "newsroom.test")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        answers.insert(path, (status, etag, body));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_each_get_a_true_answer_and_the_views_equal_a_rebuild() {
    let app = spawn_app().await;
    let hot = app.open_story(false).await;
    let mut cold = Vec::new();
    for _ in 0..WRITERS {
        cold.push(app.open_story(false).await);
    }
    // Writers n and n + 25 on the hot story send the same filings, like a client retrying.
    let hot_filings: Vec<Vec<Value>> = (0..WRITERS / 2)
        .map(|n| {
            (0..ATTEMPTS)
                .map(|_| filing(&format!("Writer {n}")))
                .collect()
        })
        .collect();
    let hot_writers = (0..WRITERS).map(|n| {
        let (app, hot, filings) = (&app, &hot, &hot_filings[n % (WRITERS / 2)]);
        // Twins share a token too: the same filing by someone else would be another filing.
        let token = if n % (WRITERS / 2) % 2 == 0 {
            &app.reporter
        } else {
            &app.editor
        };
        async move {
            let mut sent = Vec::new();
            for f in filings {
                sent.push(send(app, token, hot, f).await);
            }
            sent
        }
    });
    let cold_writers = cold.iter().enumerate().map(|(n, story)| {
        let app = &app;
        async move {
            let mut sent = Vec::new();
            for _ in 0..ATTEMPTS {
                sent.push(send(app, &app.reporter, story, &filing(&format!("Writer {n}"))).await);
            }
            sent
        }
    });
    let (hot_sent, cold_sent) = tokio::join!(join_all(hot_writers), join_all(cold_writers));
    let sent: Vec<Sent> = hot_sent.into_iter().chain(cold_sent).flatten().collect();
    assert_eq!(sent.len(), 2 * WRITERS * ATTEMPTS);

    let feed = app.feed().await;
    let refused = check_log(&sent, &feed);
    // Twins: both accepted means the same answer (the second is a replay, answered 200).
    let mut by_id: HashMap<&str, Vec<&Sent>> = HashMap::new();
    for s in sent.iter().filter(|s| s.status < 300) {
        by_id.entry(&s.id).or_default().push(s);
    }
    for answers in by_id.values().filter(|a| a.len() == 2) {
        assert_eq!(answers[0].body["position"], answers[1].body["position"]);
        assert_eq!(answers[0].body["sequence"], answers[1].body["sequence"]);
        let mut statuses = [answers[0].status, answers[1].status];
        statuses.sort();
        assert_eq!(statuses, [200, 201], "one records, its twin is a replay");
    }
    let hot_recorded = feed
        .iter()
        .filter(|e| e["story_id"] == hot.as_str())
        .count();
    assert!(
        hot_recorded > 1,
        "the hot story took developments: {hot_recorded}"
    );
    eprintln!(
        "{} answers, {refused} refused; {} events in the log",
        sent.len(),
        feed.len()
    );

    // Then editors at once on the hot story: each of 25 developments retracted twice and
    // corrected once. One retraction wins; the other, and a correction that comes after it,
    // are 409s.
    let mut targets: Vec<&str> = by_id
        .values()
        .map(|a| a[0])
        .filter(|s| s.story == hot)
        .map(|s| s.id.as_str())
        .collect();
    targets.sort();
    targets.truncate(WRITERS / 2);
    let edits = targets.iter().flat_map(|dev| {
        [
            ("retraction", json!({"reason": "Withdrawn by the ministry"})),
            ("retraction", json!({"reason": "Withdrawn, said twice"})),
            (
                "corrections",
                json!({"note": "Named the right ministry", "changes": {"headline": "Ministry confirms"}}),
            ),
        ]
        .map(|(action, body)| {
            let (app, hot) = (&app, &hot);
            async move {
                let answer = app
                    .editor_action(hot, dev, action, body)
                    .await;
                match answer.status.as_u16() {
                    200 => {}
                    409 => {
                        answer.problem(409);
                    }
                    other => panic!("{action} of {dev}: {other} {answer:?}"),
                }
                (dev.to_string(), action, answer)
            }
        })
    });
    let edited = join_all(edits).await;
    let feed = app.feed().await;
    for dev in &targets {
        let retractions: Vec<i64> = feed
            .iter()
            .filter(|e| e["payload"]["DevelopmentRetracted"]["development"] == *dev)
            .map(|e| e["position"].as_i64().unwrap())
            .collect();
        let won: Vec<i64> = edited
            .iter()
            .filter(|(d, action, a)| d == dev && *action == "retraction" && a.status == 200)
            .map(|(_, _, a)| a.body["position"].as_i64().unwrap())
            .collect();
        assert_eq!(retractions.len(), 1, "{dev} is retracted once");
        assert_eq!(won, retractions, "{dev}: the one retraction answered 200");
        let corrected = feed
            .iter()
            .filter(|e| e["payload"]["DevelopmentCorrected"]["development"] == *dev)
            .count();
        let correction_accepted = edited
            .iter()
            .any(|(d, action, a)| d == dev && *action == "corrections" && a.status == 200);
        assert_eq!(corrected, usize::from(correction_accepted), "{dev}");
    }

    // The views, live, and after a rebuild from the log.
    let head = app.views_at_head().await;
    let mut stories = vec![hot.clone()];
    stories.extend(cold.iter().cloned());
    let live = views(&app, &stories).await;

    let dir = app.stop().await;
    let app = spawn_app_in(dir, |_| {}).await;
    let report = newsroom_projection::rebuild(&app.app_state.store, &app.views, &[], None)
        .await
        .expect("the views rebuild");
    assert_eq!(report.position, head);
    assert_eq!(report.events as usize, feed.len());
    assert_eq!(feed.len() as i64, head);
    let rebuilt = views(&app, &stories).await;
    assert_eq!(live.len(), rebuilt.len());
    for (path, answer) in &live {
        assert_eq!(
            Some(answer),
            rebuilt.get(path),
            "{path}: the live view equals the rebuilt one"
        );
    }
    // The restarted app keeps taking writes where the log left off.
    let next = app.record(&hot, development("update")).await;
    assert_eq!(next.ok(201)["position"], head + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_rate_limits_on_concurrent_writers_are_refused_with_429_and_nothing_else() {
    let app = spawn_app_with(|s| {
        s.command.rate_limits = Some(RateLimits {
            writes_per_token_per_minute: 10,
            writes_per_address_per_minute: 10_000,
            sign_ups_per_address_per_hour: 10,
        })
    })
    .await;
    let story = app
        .open_story_as(
            &app.editor,
            json!({"slug": "rate-limited", "headline": "Rate limited"}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let writers = (0..30).map(|n| {
        let (app, story) = (&app, &story);
        async move {
            let id = Uuid::new_v4();
            let mut f = filing(&format!("Writer {n}"));
            f["id"] = json!(id);
            let answer = app.record(story, f.clone()).await;
            if answer.status == 429 {
                let wait: u64 = answer.headers["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(wait >= 1);
            }
            if answer.status.as_u16() >= 400 {
                answer.problem(answer.status.as_u16());
            }
            Sent {
                story: story.clone(),
                id: id.to_string(),
                status: answer.status.as_u16(),
                body: answer.body,
            }
        }
    });
    let sent = join_all(writers).await;
    let feed = app.feed().await;
    check_log(&sent, &feed);
    let limited = sent.iter().filter(|s| s.status == 429).count();
    let accepted = sent.iter().filter(|s| s.status == 201).count();
    assert!(limited > 0, "30 writes at once exceed 10 a minute");
    assert!(accepted > 0, "the allowance was used");
    assert_eq!(feed.len(), 1 + accepted, "only the accepted were recorded");
}
