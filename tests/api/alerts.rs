//! Alerts end to end: real webhook receivers (axum on port 0), a real SMTP sink, the notifier
//! running inside the app.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use newsroom_notifier::signing::{verify, WebhookSecret};
use newsroom_notifier::{Clock, ManualClock};
use newsroom_testkit::prelude::*;
use newsroom_testkit::receiver::WebhookReceiver;
use newsroom_testkit::smtp_sink::SmtpSink;
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

/// A subscriber, and the secret of its webhook once it has one.
struct Subscriber {
    who: SignedUp,
    secret: Option<WebhookSecret>,
}

impl std::ops::Deref for Subscriber {
    type Target = SignedUp;
    fn deref(&self) -> &SignedUp {
        &self.who
    }
}

async fn sign_up(app: &TestApp, name: &str, email: Option<&str>) -> Subscriber {
    let body = match email {
        Some(e) => json!({"name": name, "email": e}),
        None => json!({"name": name}),
    };
    let answer = app
        .call(Method::POST, "/v1/subscribers", None, Some(body))
        .await;
    let b = answer.ok(201);
    Subscriber {
        who: SignedUp {
            id: b["id"].as_str().unwrap().to_owned(),
            token: b["token"].as_str().unwrap().to_owned(),
        },
        secret: None,
    }
}

async fn add_endpoint(app: &TestApp, s: &mut Subscriber, body: Value) -> Value {
    let b = app.add_endpoint(s, body).await.ok(201).clone();
    if let Some(secret) = b["secret"].as_str() {
        s.secret = Some(WebhookSecret::parse(secret).unwrap());
    }
    b
}

async fn subscribe(app: &TestApp, s: &Subscriber, filters: Value) -> Value {
    app.subscribe(s, filters).await.ok(201).clone()
}

/// A subscriber with a webhook to a fresh receiver and the given subscriptions.
async fn webhook_subscriber(
    app: &TestApp,
    receiver: &WebhookReceiver,
    filters: &[Value],
) -> Subscriber {
    let mut s = sign_up(app, "Wire desk", None).await;
    add_endpoint(app, &mut s, json!({"kind": "webhook", "url": receiver.url})).await;
    for f in filters {
        subscribe(app, &s, f.clone()).await;
    }
    s
}

fn ids(received: &[newsroom_testkit::receiver::Received]) -> HashSet<String> {
    received.iter().map(|r| r.id.clone()).collect()
}

#[tokio::test]
async fn a_published_development_reaches_a_signed_webhook_and_the_signature_verifies() {
    let (app, story) = spawn_app_with_story(false).await;
    let receiver = WebhookReceiver::ok().await;
    let s = webhook_subscriber(&app, &receiver, &[json!({"story": story})]).await;
    let mut claim = development("attribution_claimed");
    claim["headline"] = json!("Campaign blames a foreign state");
    app.record(&story, claim).await.ok(201);

    let got = receiver.wait_for_accepted(1, WAIT).await;
    let alert = &got[0];
    assert!(alert.id.starts_with("msg_"), "{}", alert.id);
    let body = alert.json();
    assert_eq!(body["type"], "story.attribution_claimed");
    assert_eq!(
        body["data"]["development"]["headline"],
        "Campaign blames a foreign state"
    );
    assert_eq!(body["data"]["story"]["id"], story.as_str());
    assert!(body["data"]["links"]["unsubscribe"]
        .as_str()
        .unwrap()
        .contains("/v1/unsubscribe/"));
    assert!(alert.body.len() < 20 * 1024);
    chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).unwrap();
    verify(
        s.secret.as_ref().unwrap(),
        &alert.id,
        &alert.timestamp,
        &alert.signature,
        &alert.body,
        Utc::now().timestamp(),
        300,
    )
    .expect("the receiver verifies the Standard Webhooks signature");
    let wrong = WebhookSecret::generate();
    assert!(verify(
        &wrong,
        &alert.id,
        &alert.timestamp,
        &alert.signature,
        &alert.body,
        Utc::now().timestamp(),
        300
    )
    .is_err());
}

#[tokio::test]
async fn a_pending_development_alerts_no_one_until_approved_and_a_rejected_one_never() {
    let (app, story) = spawn_app_with_story(true).await;
    let receiver = WebhookReceiver::ok().await;
    webhook_subscriber(&app, &receiver, &[json!({"story": story})]).await;
    let pending = development("hack_reported");
    let rejected = development("update");
    app.record(&story, pending.clone()).await.ok(201);
    app.record(&story, rejected.clone()).await.ok(201);
    let p = app
        .editor_action(
            &story,
            rejected["id"].as_str().unwrap(),
            "rejection",
            json!({"reason": "no"}),
        )
        .await
        .ok(200)["position"]
        .as_i64()
        .unwrap();
    // Let the notifier pass both events, then check nothing went out.
    app.wait_for_matcher(p, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty(), "{:#?}", receiver.received());

    app.editor_action(
        &story,
        pending["id"].as_str().unwrap(),
        "approval",
        json!({}),
    )
    .await
    .ok(200);
    let got = receiver.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].json()["data"]["development"]["id"], pending["id"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn one_alert_per_subscriber_however_many_subscriptions_match() {
    let (app, story) = spawn_app_with_story(false).await;
    let receiver = WebhookReceiver::ok().await;
    webhook_subscriber(
        &app,
        &receiver,
        &[
            json!({"story": story}),
            json!({"actor": "FANCY bear"}),
            json!({"kind": "hack_reported"}),
            json!({"tag": "cyber"}),
            json!({"everything": true}),
        ],
    )
    .await;
    app.record(&story, development("hack_reported"))
        .await
        .ok(201);
    receiver.wait_for_accepted(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn subscribers_get_only_what_their_filters_and_urgency_ask_for() {
    let (app, story) = spawn_app_with_story(false).await;
    let other_story = app.open_story(false).await;
    let flash_only = WebhookReceiver::ok().await;
    let by_actor = WebhookReceiver::ok().await;
    let other = WebhookReceiver::ok().await;
    webhook_subscriber(
        &app,
        &flash_only,
        &[json!({"story": story, "min_urgency": "flash"})],
    )
    .await;
    webhook_subscriber(
        &app,
        &by_actor,
        &[json!({"actor": "Campaign A", "kind": "hack_reported"})],
    )
    .await;
    webhook_subscriber(&app, &other, &[json!({"story": other_story})]).await;

    app.record(&story, development("hack_reported"))
        .await
        .ok(201); // priority
    let mut flash = development("charges_filed");
    flash["urgency"] = json!("flash");
    // `flash` needs an editor (a reporter's waits for approval).
    let p = app.record_as(&app.editor, &story, flash).await.ok(201)["position"]
        .as_i64()
        .unwrap();

    let got = flash_only.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].json()["type"], "story.charges_filed");
    let got = by_actor.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].json()["type"], "story.hack_reported");
    app.wait_for_matcher(p, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(flash_only.received().len(), 1);
    assert_eq!(
        by_actor.received().len(),
        1,
        "charges_filed is not hack_reported"
    );
    assert!(other.received().is_empty());
}

#[tokio::test]
async fn a_correction_reaches_exactly_those_alerted_to_the_original() {
    let (app, story) = spawn_app_with_story(false).await;
    let alerted = WebhookReceiver::ok().await;
    let unrelated = WebhookReceiver::ok().await;
    let now_matching = WebhookReceiver::ok().await;
    webhook_subscriber(&app, &alerted, &[json!({"actor": "Fancy Bear"})]).await;
    webhook_subscriber(&app, &unrelated, &[json!({"actor": "Someone Else"})]).await;
    webhook_subscriber(&app, &now_matching, &[json!({"actor": "Unit 26165"})]).await;

    let original = development("attribution_claimed");
    let id = original["id"].as_str().unwrap().to_owned();
    app.record(&story, original).await.ok(201);
    alerted.wait_for_accepted(1, WAIT).await;

    // The correction swaps the actor: the first subscriber no longer matches but was alerted.
    app.editor_action(&story,
        &id,
        "corrections",
        json!({"note": "The statement named a unit, not the group.", "changes": {"actors": ["Unit 26165"]}}),
    )
    .await
    .ok(200);
    let got = alerted.wait_for_accepted(2, WAIT).await;
    let correction = got[1].json();
    assert_eq!(correction["type"], "story.correction");
    assert_eq!(
        correction["data"]["correction"]["note"],
        "The statement named a unit, not the group."
    );
    let got = now_matching.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].json()["type"], "story.correction");

    let p = app
        .editor_action(&story, &id, "retraction", json!({"reason": "Withdrawn"}))
        .await
        .ok(200)["position"]
        .as_i64()
        .unwrap();
    let got = alerted.wait_for_accepted(3, WAIT).await;
    assert_eq!(got[2].json()["type"], "story.retraction");
    assert_eq!(got[2].json()["data"]["retraction"]["reason"], "Withdrawn");
    now_matching.wait_for_accepted(2, WAIT).await;
    app.wait_for_matcher(p, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(unrelated.received().is_empty());
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_every_alert_once_in_story_order() {
    let (app, story) = spawn_app_with_story(false).await;
    // Down (503, Retry-After 0) for the first four requests, then up: within the five attempts
    // the test policy gives a delivery.
    let receiver =
        WebhookReceiver::scripted(|n| if n < 4 { (503, Some(0)) } else { (200, None) }).await;
    webhook_subscriber(&app, &receiver, &[json!({"story": story})]).await;
    let mut sent = Vec::new();
    for n in 0..5 {
        let mut d = development("update");
        d["headline"] = json!(format!("Update {n}"));
        sent.push(d["id"].as_str().unwrap().to_owned());
        app.record(&story, d).await.ok(201);
    }
    let got = receiver.wait_for_accepted(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 5, "each alert accepted once");
    assert_eq!(ids(&accepted).len(), 5);
    let order: Vec<String> = got.iter().map(|r| r.development_id()).collect();
    assert_eq!(order, sent, "one story's alerts arrive in order");
    // Retries reuse the alert's id.
    let all = receiver.received();
    assert!(all.len() > 5);
    assert!(ids(&all).len() == 5, "a retry keeps its webhook-id");
}

#[tokio::test]
async fn failed_deliveries_are_dead_lettered_and_can_be_redriven() {
    let (app, story) = spawn_app_with_story(false).await;
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = up.clone();
    let receiver = WebhookReceiver::scripted(move |_| {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            (200, None)
        } else {
            (500, None)
        }
    })
    .await;
    let s = webhook_subscriber(&app, &receiver, &[json!({"story": story})]).await;
    app.record(&story, development("update")).await.ok(201);

    let path = format!("/v1/subscribers/{}/deliveries?status=failed", s.id);
    let failed = poll(WAIT, || async {
        let b = app.call(Method::GET, &path, Some(&s.token), None).await;
        let list = b.ok(200).as_array().unwrap().clone();
        (!list.is_empty()).then_some(list)
    })
    .await;
    assert_eq!(
        failed[0]["attempts"], 5,
        "dead-lettered after the last attempt"
    );
    assert_eq!(failed[0]["last_status"], 500);
    assert_eq!(receiver.received().len(), 5);

    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let id = failed[0]["id"].as_i64().unwrap();
    app.call(
        Method::POST,
        &format!("/v1/subscribers/{}/deliveries/{id}/redrive", s.id),
        Some(&s.token),
        None,
    )
    .await
    .ok(202);
    let got = receiver.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].id, failed[0]["alert_id"].as_str().unwrap());
}

async fn poll<T, F, Fut>(timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_410_disables_the_endpoint() {
    let (app, story) = spawn_app_with_story(false).await;
    let receiver = WebhookReceiver::scripted(|_| (410, None)).await;
    let s = webhook_subscriber(&app, &receiver, &[json!({"story": story})]).await;
    app.record(&story, development("update")).await.ok(201);
    let path = format!("/v1/subscribers/{}/endpoints", s.id);
    let endpoints = poll(WAIT, || async {
        let list = app
            .call(Method::GET, &path, Some(&s.token), None)
            .await
            .ok(200)
            .clone();
        (list[0]["status"] == "disabled").then_some(list)
    })
    .await;
    assert!(endpoints[0]["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("410"));
    app.record(&story, development("update")).await.ok(201);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing more goes to a disabled endpoint"
    );
}

#[tokio::test]
async fn webhooks_to_private_addresses_are_refused_unless_allowed() {
    let app = spawn_app().await;
    let mut s = sign_up(&app, "Prober", None).await;
    for url in [
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/x",
        "http://192.168.1.10/x",
        "ftp://example.org/x",
    ] {
        app.add_endpoint(&s, json!({"kind": "webhook", "url": url}))
            .await
            .problem_for_field(422, "url");
    }
    // 127.0.0.1 is on the test allow-list.
    add_endpoint(
        &app,
        &mut s,
        json!({"kind": "webhook", "url": "http://127.0.0.1:9/hook"}),
    )
    .await;
}

/// Whether `text` names a loopback address in any of its usual spellings.
fn names_loopback(text: &str) -> bool {
    text.contains("127.0.0.1") || text.contains("::1") || text.contains("resolves")
}

#[tokio::test]
async fn webhook_refusals_never_say_what_a_host_resolves_to() {
    // At registration: a name that resolves to loopback and one that does not resolve at all are
    // refused alike, naming the field and nothing about the network.
    let app = spawn_app_with(|s| s.notifier.webhook_allowlist = String::new()).await;
    let s = sign_up(&app, "Prober", None).await;
    let mut details = Vec::new();
    for url in [
        "http://localhost:8080/hook",
        "http://no-such-host.invalid/hook",
        "http://localhost./x",
    ] {
        let refused = app
            .add_endpoint(&s, json!({"kind": "webhook", "url": url}))
            .await;
        let detail = refused.problem_for_field(422, "url")["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!names_loopback(&detail), "{url}: {detail}");
        details.push(detail);
    }
    assert!(
        details.iter().all(|d| *d == details[0]),
        "a private host and an unknown one cannot be told apart: {details:?}"
    );
    drop(app);

    // Before a send: an endpoint whose host now counts as internal (as after a DNS change).
    let app = spawn_app_with(|s| s.notifier.webhook_allowlist = "127.0.0.1,::1".into()).await;
    let story = app.open_story(false).await;
    let mut s = sign_up(&app, "Rebinder", None).await;
    add_endpoint(
        &app,
        &mut s,
        json!({"kind": "webhook", "url": "http://localhost:9/hook"}),
    )
    .await;
    subscribe(&app, &s, json!({"story": story})).await;
    let dir = app.stop().await;
    let app = spawn_app_in(dir, |s| s.notifier.webhook_allowlist = String::new()).await;
    app.record(&story, development("hack_reported"))
        .await
        .ok(201);
    let mut deliveries = Value::Null;
    for _ in 0..300 {
        deliveries = app.subscriber_get(&s, "/deliveries").await.ok(200).clone();
        if deliveries[0]["last_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let error = deliveries[0]["last_error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "{deliveries}");
    assert!(!names_loopback(error), "{error}");
}

#[tokio::test]
async fn email_alerts_go_through_a_real_smtp_relay() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(move |s| s.notifier.smtp_url = Some(url)).await;
    let story = app.open_story(false).await;
    let mut s = sign_up(&app, "Night editor", Some("night@example.org")).await;
    add_endpoint(
        &app,
        &mut s,
        json!({"kind": "email", "address": "night@example.org"}),
    )
    .await;
    // The address is confirmed first: nothing else goes to it before.
    app.confirm_from_mail(&sink.wait_for(1, WAIT).await[0])
        .await;
    subscribe(&app, &s, json!({"story": story})).await;
    let mut d = development("arrest_made");
    d["headline"] = json!("Suspect arrested in campaign hack");
    app.record(&story, d).await.ok(201);
    let mails = sink.wait_for(2, WAIT).await;
    assert_eq!(mails[1].to, ["night@example.org"]);
    assert!(
        mails[1].data.contains("Suspect arrested in campaign hack"),
        "{}",
        mails[1].data
    );
    assert!(mails[1].data.contains("/v1/unsubscribe/"));
}

#[tokio::test]
async fn the_alert_stream_delivers_alerts_and_resumes_after_last_event_id() {
    let (app, story) = spawn_app_with_story(false).await;
    let s = sign_up(&app, "Stream reader", None).await;
    subscribe(&app, &s, json!({"story": story})).await;
    let url = format!("{}/v1/subscribers/{}/alerts/stream", app.address, s.id);
    let response = app
        .client
        .get(&url)
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = SseLines::new(response);
    app.record(&story, development("update")).await.ok(201);
    app.record(&story, development("hack_reported"))
        .await
        .ok(201);
    let first = stream.next().await;
    let second = stream.next().await;
    assert_eq!(first.0, "story.update");
    assert_eq!(second.0, "story.hack_reported");
    drop(stream);

    let response = app
        .client
        .get(&url)
        .bearer_auth(&s.token)
        .header("last-event-id", &first.1)
        .send()
        .await
        .unwrap();
    let mut stream = SseLines::new(response);
    assert_eq!(
        stream.next().await.1,
        second.1,
        "resumes strictly after the given id"
    );

    // Another subscriber's token cannot read this stream.
    let other = sign_up(&app, "Nosy", None).await;
    let denied = app
        .client
        .get(&url)
        .bearer_auth(&other.token)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 404);
}

/// (event name, id) of server-sent events.
struct SseLines {
    response: reqwest::Response,
    buffer: String,
}

impl SseLines {
    fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> (String, String) {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let field = |name: &str| {
                        block
                            .lines()
                            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
                    };
                    if let (Some(event), Some(id)) = (field("event:"), field("id:")) {
                        return (event, id);
                    }
                    continue;
                }
                let chunk = self.response.chunk().await.unwrap().expect("stream open");
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("an alert arrives")
    }
}

#[tokio::test]
async fn a_digest_collects_an_interval_and_is_sent_once() {
    let start = Utc::now();
    let clock = Arc::new(ManualClock::new(start));
    let app_clock: Arc<dyn Clock> = clock.clone();
    let app = spawn_app_with(move |s| s.clock = app_clock).await;
    let story = app.open_story(false).await;
    let other_story = app.open_story(false).await;
    let receiver = WebhookReceiver::ok().await;
    webhook_subscriber(
        &app,
        &receiver,
        &[
            json!({"story": story, "delivery": "digest", "digest_minutes": 15}),
            json!({"story": other_story, "delivery": "digest", "digest_minutes": 15}),
        ],
    )
    .await;
    app.record(&story, development("update")).await.ok(201);
    app.record(&story, development("statement_issued"))
        .await
        .ok(201);
    let p = app
        .record(&other_story, development("update"))
        .await
        .ok(201)["position"]
        .as_i64()
        .unwrap();
    app.wait_for_matcher(p, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        receiver.received().is_empty(),
        "nothing before the window ends"
    );

    clock.advance(chrono::Duration::minutes(16));
    let got = receiver.wait_for_accepted(1, WAIT).await;
    let digest = got[0].json();
    assert_eq!(digest["type"], "digest");
    assert_eq!(digest["data"]["count"], 3);
    let stories = digest["data"]["stories"].as_array().unwrap();
    assert_eq!(stories.len(), 2, "grouped by story");
    assert_eq!(stories[0]["developments"].as_array().unwrap().len(), 2);

    // A flash development never waits for the digest.
    let mut flash = development("arrest_made");
    flash["urgency"] = json!("flash");
    app.record_as(&app.editor, &story, flash).await.ok(201);
    let got = receiver.wait_for_accepted(2, WAIT).await;
    assert_eq!(got[1].json()["type"], "story.arrest_made");

    clock.advance(chrono::Duration::minutes(16));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "an empty interval sends nothing"
    );

    // The next interval's digest holds only what came in during it.
    let p = app.record(&story, development("update")).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    app.wait_for_matcher(p, WAIT).await;
    clock.advance(chrono::Duration::minutes(16));
    let got = receiver.wait_for_accepted(3, WAIT).await;
    assert_eq!(got[2].json()["type"], "digest");
    assert_eq!(got[2].json()["data"]["count"], 1, "{:#}", got[2].json());
}

#[tokio::test]
async fn subscribers_manage_only_themselves_and_the_unsubscribe_link_works() {
    let (app, story) = spawn_app_with_story(false).await;
    let receiver = WebhookReceiver::ok().await;
    let s = webhook_subscriber(&app, &receiver, &[json!({"story": story})]).await;
    let other = sign_up(&app, "Other", None).await;
    let path = format!("/v1/subscribers/{}/subscriptions", s.id);
    app.call(Method::GET, &path, None, None).await.problem(401);
    app.call(Method::GET, &path, Some(&other.token), None)
        .await
        .problem(404);
    app.call(Method::GET, &path, Some(&app.reporter), None)
        .await
        .problem(403);
    app.call(Method::GET, &path, Some(&app.admin), None)
        .await
        .ok(200);
    app.call(Method::GET, "/v1/subscribers", Some(&s.token), None)
        .await
        .problem(403);
    let all = app
        .call(Method::GET, "/v1/subscribers", Some(&app.admin), None)
        .await;
    assert_eq!(all.ok(200).as_array().unwrap().len(), 2);
    app.call(
        Method::POST,
        &path,
        Some(&s.token),
        Some(json!({"delivery": "digest", "digest_minutes": 2})),
    )
    .await
    .problem_for_field(422, "digest_minutes");
    app.call(
        Method::POST,
        &path,
        Some(&s.token),
        Some(json!({"kind": "gossip"})),
    )
    .await
    .problem_for_field(422, "kind");

    app.record(&story, development("update")).await.ok(201);
    let got = receiver.wait_for_accepted(1, WAIT).await;
    let link = got[0].json()["data"]["links"]["unsubscribe"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = link.rsplit('/').next().unwrap().to_owned();
    let answer = app
        .call(
            Method::POST,
            &format!("/v1/unsubscribe/{token}"),
            None,
            None,
        )
        .await;
    assert_eq!(answer.ok(200)["subscriptions_removed"], 1);
    let p = app.record(&story, development("update")).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    app.wait_for_matcher(p, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "unsubscribed: no more alerts");

    // Suspended subscribers get nothing either.
    let suspended = WebhookReceiver::ok().await;
    let t = webhook_subscriber(&app, &suspended, &[json!({"story": story})]).await;
    app.call(
        Method::POST,
        &format!("/v1/subscribers/{}/suspension", t.id),
        Some(&app.admin),
        None,
    )
    .await
    .ok(204);
    let p = app.record(&story, development("update")).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    app.wait_for_matcher(p, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(suspended.received().is_empty());
}

#[tokio::test]
async fn webhook_secret_rotation_signs_with_both_keys() {
    let (app, story) = spawn_app_with_story(false).await;
    let receiver = WebhookReceiver::ok().await;
    let mut s = sign_up(&app, "Rotator", None).await;
    let endpoint = add_endpoint(
        &app,
        &mut s,
        json!({"kind": "webhook", "url": receiver.url}),
    )
    .await;
    subscribe(&app, &s, json!({"story": story})).await;
    let old = s.secret.clone().unwrap();
    let rotated = app
        .call(
            Method::POST,
            &format!(
                "/v1/subscribers/{}/endpoints/{}/secret",
                s.id,
                endpoint["id"].as_str().unwrap()
            ),
            Some(&s.token),
            None,
        )
        .await;
    let new = WebhookSecret::parse(rotated.ok(200)["secret"].as_str().unwrap()).unwrap();
    app.record(&story, development("update")).await.ok(201);
    let got = receiver.wait_for_accepted(1, WAIT).await;
    let a = &got[0];
    assert_eq!(
        a.signature.split(' ').count(),
        2,
        "signed with the new and the old key"
    );
    for key in [&old, &new] {
        verify(
            key,
            &a.id,
            &a.timestamp,
            &a.signature,
            &a.body,
            Utc::now().timestamp(),
            300,
        )
        .unwrap();
    }
}

#[tokio::test]
async fn alerts_fan_out_to_many_subscribers_each_once() {
    let (app, story) = spawn_app_with_story(false).await;
    let receiver = WebhookReceiver::ok().await;
    for _ in 0..20 {
        webhook_subscriber(&app, &receiver, &[json!({"story": story})]).await;
    }
    for _ in 0..5 {
        app.record(&story, development("update")).await.ok(201);
    }
    receiver.wait_for_accepted(100, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 100);
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &accepted {
        *per_id.entry(r.id.clone()).or_default() += 1;
    }
    assert!(per_id.values().all(|n| *n == 1));
}

/// A notifier over a log of its own, without the rest of newsroom, for the tests that kill it
/// and build it again over the same files. Commands go straight to a `CommandService`; the
/// views the notifier reads are brought up to date after each.
struct BareNotifier {
    _dir: tempfile::TempDir,
    log: newsroom_log::SqliteStore,
    views: newsroom_projection::ViewStore,
    tokens: newsroom_web::Tokens,
    service: newsroom_command::CommandService,
    settings: newsroom_notifier::NotifierSettings,
}

impl BareNotifier {
    fn new() -> Self {
        use newsroom_command::{CommandService, ServiceOptions};
        use newsroom_log::{SqliteOptions, SqliteStore};
        let dir = tempfile::tempdir().unwrap();
        let log = SqliteStore::open(&dir.path().join("log.db"), SqliteOptions::default()).unwrap();
        Self {
            tokens: newsroom_web::Tokens::new(log.clone()),
            service: CommandService::new(log.clone(), ServiceOptions::default()),
            views: newsroom_projection::ViewStore::open(&dir.path().join("views.db")).unwrap(),
            settings: test_notifier_settings(&dir),
            log,
            _dir: dir,
        }
    }

    async fn build(&self) -> newsroom_notifier::Notifier {
        newsroom_notifier::Notifier::build(
            self.settings.clone(),
            self.log.clone(),
            Arc::new(newsroom::NotifierViews {
                log: self.log.clone().into(),
                views: self.views.clone(),
            }),
            self.tokens.clone(),
            Arc::new(newsroom_notifier::SystemClock),
        )
        .await
        .unwrap()
    }

    /// Projects everything logged so far into the views.
    async fn project(&self) {
        newsroom_projection::Projector::new(self.log.clone(), self.views.clone())
            .catch_up()
            .await
            .unwrap();
    }

    async fn open(&self, story: newsroom_domain::StoryId, slug: &str) {
        let open: newsroom_command::http::OpenStoryRequest =
            serde_json::from_value(json!({"slug": slug, "headline": "A story"})).unwrap();
        let reporter = principal(newsroom_domain::Role::Reporter);
        self.service
            .execute(story, &reporter, open.parse(story).unwrap())
            .await
            .unwrap();
        self.project().await;
    }

    async fn record(&self, story: newsroom_domain::StoryId, filing: Value) {
        let filing: newsroom_command::http::RecordDevelopmentRequest =
            serde_json::from_value(filing).unwrap();
        let reporter = principal(newsroom_domain::Role::Reporter);
        self.service
            .execute(story, &reporter, filing.parse().unwrap())
            .await
            .unwrap();
        self.project().await;
    }
}

fn principal(role: newsroom_domain::Role) -> newsroom_web::Principal {
    newsroom_web::Principal {
        token_id: "t".into(),
        name: "Rita".into(),
        role,
    }
}

/// Serves a notifier's subscriber API on a port of its own; returns its address.
async fn serve_api(notifier: &newsroom_notifier::Notifier) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let router = notifier.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    api
}

/// Signs up through the API at `api` with a webhook to `receiver` and one subscription.
async fn bare_subscriber(api: &str, name: &str, receiver: &WebhookReceiver, filter: Value) {
    let client = reqwest::Client::new();
    let s: Value = client
        .post(format!("{api}/v1/subscribers"))
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, token) = (s["id"].as_str().unwrap(), s["token"].as_str().unwrap());
    for (path, body) in [
        ("endpoints", json!({"kind": "webhook", "url": receiver.url})),
        ("subscriptions", filter),
    ] {
        let r = client
            .post(format!("{api}/v1/subscribers/{id}/{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
}

#[tokio::test]
async fn a_notifier_killed_mid_fan_out_resumes_and_every_subscriber_gets_every_alert_once() {
    let bare = BareNotifier::new();
    let first = bare.build().await;
    let api = serve_api(&first).await;
    let receiver = WebhookReceiver::slow(Duration::from_millis(15)).await;
    let story = newsroom_domain::StoryId::new();
    for n in 0..10 {
        let filter = json!({"story": story.to_string()});
        bare_subscriber(&api, &format!("Desk {n}"), &receiver, filter).await;
    }
    bare.open(story, "fan-out").await;
    for _ in 0..10 {
        bare.record(story, development("update")).await;
    }

    // Kill the notifier once some of the 100 alerts are out.
    let running = tokio::spawn(first.run_until_stopped(std::future::pending()));
    receiver.wait_for_accepted(15, WAIT).await;
    running.abort();
    let _ = running.await;
    let before_restart = ids(&receiver.accepted()).len();
    assert!(
        before_restart < 100,
        "killed mid-fan-out ({before_restart} delivered)"
    );

    let second = bare.build().await;
    let store = second.store().clone();
    let restarted = tokio::spawn(second.run_until_stopped(std::future::pending()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while ids(&receiver.accepted()).len() < 100 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stalled at {}",
            ids(&receiver.accepted()).len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    restarted.abort();
    let queued: Vec<String> = store
        .read(|c| {
            Ok(c.statement("SELECT id FROM alerts")?
                .query_map(newsroom_log::args![], |r| r.get(0))?
                .collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(
        queued.len(),
        100,
        "one alert per (subscriber, development), none twice"
    );
    let delivered = ids(&receiver.accepted());
    assert_eq!(
        delivered,
        queued.into_iter().collect::<HashSet<_>>(),
        "every alert arrived"
    );
}

#[tokio::test]
async fn a_restarted_notifier_reads_the_story_from_the_views_and_alerts_a_correction() {
    let bare = BareNotifier::new();
    let first = bare.build().await;
    let api = serve_api(&first).await;
    let receiver = WebhookReceiver::ok().await;
    let story = newsroom_domain::StoryId::new();
    bare_subscriber(&api, "Desk", &receiver, json!({"actor": "Fancy Bear"})).await;
    bare.open(story, "restart").await;
    let original = development("attribution_claimed");
    let development_id = original["id"].as_str().unwrap().to_owned();
    for filing in [development("update"), original] {
        bare.record(story, filing).await;
    }
    let running = tokio::spawn(first.run_until_stopped(std::future::pending()));
    receiver.wait_for_accepted(2, WAIT).await;
    running.abort();
    let _ = running.await;

    // A new process knows the story only from the log and the views.
    let second = bare.build().await;
    let restarted = tokio::spawn(second.run_until_stopped(std::future::pending()));
    let correction: newsroom_command::http::CorrectionRequest = serde_json::from_value(json!({
        "note": "The statement named a unit, not the group.",
        "changes": {"actors": ["Unit 26165"]},
    }))
    .unwrap();
    let development = newsroom_domain::DevelopmentId::parse("id", &development_id).unwrap();
    let editor = principal(newsroom_domain::Role::Editor);
    bare.service
        .execute(story, &editor, correction.parse(development).unwrap())
        .await
        .unwrap();
    bare.project().await;
    let got = receiver.wait_for_accepted(3, WAIT).await;
    restarted.abort();
    let alert = got[2].json();
    assert_eq!(alert["type"], "story.correction");
    assert_eq!(alert["data"]["development"]["id"], development_id.as_str());
    let actors = alert["data"]["development"]["actors"].as_array().unwrap();
    assert_eq!(
        (actors.len(), &actors[0]["name"]),
        (1, &json!("Unit 26165")),
        "the alert shows the development as the correction left it"
    );
    assert_eq!(
        alert["data"]["correction"]["note"],
        "The statement named a unit, not the group."
    );
    assert_eq!(alert["data"]["story"]["slug"], "restart");
    assert_eq!(ids(&receiver.accepted()).len(), 3, "nothing sent twice");
}

#[tokio::test]
async fn nats_endpoints_get_alerts_with_the_alert_id_as_nats_msg_id() {
    let Some(nats_url) = nats_test_url() else {
        return;
    };
    let nats = async_nats::connect(&nats_url)
        .await
        .expect("the NATS test server answers");
    let url = nats_url.clone();
    let app = spawn_app_with(move |s| s.notifier.nats_url = Some(url)).await;
    let story = app.open_story(false).await;
    let mut s = sign_up(&app, "Machine consumer", None).await;
    // The subject registered is placed under the subscriber's own namespace.
    let endpoint = add_endpoint(
        &app,
        &mut s,
        json!({"kind": "nats", "subject": "desk.feed"}),
    )
    .await;
    let subject = format!("newsroom.alerts.{}.desk.feed", s.id);
    assert_eq!(endpoint["target"], "desk.feed");
    assert_eq!(endpoint["subject"], subject.as_str());
    let mut inbox = nats.subscribe(subject.clone()).await.unwrap();
    nats.flush().await.unwrap();
    subscribe(&app, &s, json!({"story": story})).await;
    app.record(&story, development("ruling_issued"))
        .await
        .ok(201);
    let message = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut inbox))
        .await
        .expect("an alert on the subject")
        .unwrap();
    let body: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(body["type"], "story.ruling_issued");
    let msg_id = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Msg-Id"))
        .unwrap()
        .to_string();
    assert!(msg_id.starts_with("msg_"), "{msg_id}");
    // The body is the webhook's, and says so.
    assert_eq!(
        message
            .headers
            .as_ref()
            .and_then(|h| h.get("Content-Type"))
            .map(|v| v.to_string())
            .as_deref(),
        Some("application/json")
    );
    let list = app.subscriber_get(&s, "/alerts").await;
    assert_eq!(list.ok(200)[0]["id"], msg_id.as_str());
}

#[tokio::test]
async fn an_endpoint_failing_for_a_day_is_disabled_and_its_subscriber_told_by_email() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app_clock: Arc<dyn Clock> = clock.clone();
    let app = spawn_app_with(move |s| {
        s.notifier.smtp_url = Some(url);
        s.notifier.retry.max_attempts = 100;
        s.clock = app_clock;
    })
    .await;
    let story = app.open_story(false).await;
    let receiver = WebhookReceiver::scripted(|_| (500, None)).await;
    let mut s = sign_up(&app, "Flaky desk", Some("flaky@example.org")).await;
    // Told only at a confirmed address: the subscriber confirms theirs as an email endpoint
    // (which follows nothing here).
    add_endpoint(
        &app,
        &mut s,
        json!({"kind": "email", "address": "flaky@example.org"}),
    )
    .await;
    app.confirm_from_mail(&sink.wait_for(1, WAIT).await[0])
        .await;
    add_endpoint(
        &app,
        &mut s,
        json!({"kind": "webhook", "url": receiver.url}),
    )
    .await;
    subscribe(&app, &s, json!({"story": story})).await;
    app.record(&story, development("update")).await.ok(201);
    poll(WAIT, || async {
        (!receiver.received().is_empty()).then_some(())
    })
    .await;

    // An hour of failures is not a day.
    clock.advance(chrono::Duration::hours(1));
    poll(WAIT, || async {
        (receiver.received().len() >= 2).then_some(())
    })
    .await;
    let path = format!("/v1/subscribers/{}/endpoints", s.id);
    let list = app.call(Method::GET, &path, Some(&s.token), None).await;
    assert_eq!(list.ok(200)[1]["status"], "active");

    clock.advance(chrono::Duration::hours(24));
    let endpoints = poll(WAIT, || async {
        let list = app
            .call(Method::GET, &path, Some(&s.token), None)
            .await
            .ok(200)
            .clone();
        (list[1]["status"] == "disabled").then_some(list)
    })
    .await;
    assert!(endpoints[1]["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("day"));
    // The confirmation, the alert (the address is an endpoint too), then the notice.
    let notices = poll(WAIT, || async {
        let notices: Vec<_> = sink
            .messages()
            .into_iter()
            .filter(|m| {
                m.header("Subject").as_deref() == Some("[newsroom] an alert endpoint was disabled")
            })
            .collect();
        (!notices.is_empty()).then_some(notices)
    })
    .await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].to, ["flaky@example.org"]);
    // Quoted-printable soft line breaks aside, the mail names the endpoint.
    let text = notices[0].body().replace("=\r\n", "");
    assert!(text.contains(&receiver.url), "{text}");
    let failed = app.subscriber_get(&s, "/deliveries?status=failed").await;
    assert_eq!(
        failed.ok(200).as_array().unwrap().len(),
        1,
        "the pending alert is dead-lettered"
    );
}

#[tokio::test]
async fn an_address_the_relay_refuses_for_good_is_dead_lettered_at_once() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(move |s| s.notifier.smtp_url = Some(url)).await;
    let story = app.open_story(false).await;
    let mut s = sign_up(&app, "Gone reader", None).await;
    add_endpoint(
        &app,
        &mut s,
        json!({"kind": "email", "address": "gone@example.org"}),
    )
    .await;
    app.confirm_from_mail(&sink.wait_for(1, WAIT).await[0])
        .await;
    // The mailbox went away after it was confirmed.
    sink.reject_recipients_with(Some(550));
    subscribe(&app, &s, json!({"story": story})).await;
    app.record(&story, development("update")).await.ok(201);
    let path = format!("/v1/subscribers/{}/deliveries?status=failed", s.id);
    let failed = poll(WAIT, || async {
        let list = app
            .call(Method::GET, &path, Some(&s.token), None)
            .await
            .ok(200)
            .clone();
        (!list.as_array().unwrap().is_empty()).then_some(list)
    })
    .await;
    assert_eq!(
        failed[0]["attempts"], 1,
        "no retries for a permanent refusal"
    );
    assert_eq!(failed[0]["last_status"], 550);
}

#[tokio::test]
async fn an_alert_queued_again_after_the_queue_lost_its_last_commits_keeps_its_webhook_id() {
    let (app, story) = spawn_app_with_story(false).await;
    let receiver = WebhookReceiver::ok().await;
    webhook_subscriber(&app, &receiver, &[json!({"story": story})]).await;
    app.record(&story, development("hack_reported"))
        .await
        .ok(201);
    let first = receiver.wait_for_accepted(1, Duration::from_secs(20)).await;
    assert_eq!(first.len(), 1);

    // A power cut rolls the queue back to before the alert (its derived state is written without
    // waiting for the disk): alerts, deliveries and the checkpoint are gone; subscribers stay.
    let dir = app.stop().await;
    let db = rusqlite::Connection::open(dir.path().join("notifier.db")).unwrap();
    db.execute_batch(
        "DELETE FROM delivery_log; DELETE FROM deliveries; DELETE FROM alerted;
         DELETE FROM alerts; DELETE FROM checkpoints;",
    )
    .unwrap();
    drop(db);

    // The restarted notifier queues the alert again from the log, under the same id, so the
    // receiver can tell it already has it.
    let _again = spawn_app_in(dir, |_| {}).await;
    let both = receiver.wait_for_accepted(2, Duration::from_secs(20)).await;
    assert_eq!(both.len(), 2, "sent again after the rollback");
    assert_eq!(both[0].id, both[1].id, "with the same webhook-id");
    assert_eq!(ids(&both).len(), 1);
}

#[tokio::test]
async fn a_notifier_stopped_gracefully_finishes_its_sends_and_hands_back_the_rest_at_once() {
    // Leases far longer than the test: what is sent after the restart was handed back, not
    // left to run out.
    let long_leases = |s: &mut newsroom::NewsroomSettings| {
        s.notifier.retry.lease = Duration::from_secs(600);
    };
    let app = spawn_app_with(long_leases).await;
    let story = app.open_story(false).await;
    let receiver = WebhookReceiver::slow(Duration::from_millis(400)).await;
    webhook_subscriber(&app, &receiver, &[json!({"story": story})]).await;
    for _ in 0..5 {
        app.record(&story, development("update")).await.ok(201);
    }
    // One delivery per (endpoint, story) is sent at a time: the first is in flight, the others
    // wait behind it.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let dir = app.stop().await;
    let before = receiver.received();
    assert!(
        (1..5).contains(&before.len()),
        "the send in flight was finished, the rest held back: {}",
        before.len()
    );

    let _again = spawn_app_in(dir, long_leases).await;
    let all = receiver.wait_for_accepted(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = receiver.received();
    assert_eq!(ids(&all).len(), 5, "five alerts");
    assert_eq!(received.len(), 5, "none sent twice: {received:?}");
}

#[tokio::test]
async fn the_alert_list_answers_one_bounded_page_newest_first_and_links_the_older_one() {
    let app = spawn_app().await;
    let s = sign_up(&app, "Archive", None).await;
    let id = s.id.clone();
    app.notifier
        .write(move |tx| {
            for n in 1..=120 {
                tx.execute(
                    "INSERT INTO alerts (id, subscriber_id, position, story_id, type, payload,
                        mode, created_at)
                     VALUES (?1, ?2, NULL, 's', 'story.update', ?3, 'immediate', ?4)",
                    newsroom_log::args![
                        format!("msg_{n}"),
                        &id,
                        json!({"n": n}).to_string(),
                        "2026-11-26T10:00:00Z"
                    ],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let path = format!("/v1/subscribers/{}/alerts", s.id);
    let first = app.call(Method::GET, &path, Some(&s.token), None).await;
    let page = first.ok(200).as_array().unwrap().clone();
    assert_eq!(page.len(), 50, "50 by default");
    assert_eq!(page[0]["payload"]["n"], 120, "newest first");
    assert_eq!(page[49]["payload"]["n"], 71);
    let link = first.headers["link"].to_str().unwrap().to_owned();
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.split_once(">; rel=\"next\""))
        .map(|(url, _)| url.to_owned())
        .unwrap_or_else(|| panic!("a next link: {link}"));
    let second = app.call(Method::GET, &next, Some(&s.token), None).await;
    let page = second.ok(200).as_array().unwrap().clone();
    assert_eq!(
        page[0]["payload"]["n"], 70,
        "{next} goes on below the first page"
    );
    let all = app
        .call(
            Method::GET,
            &format!("{path}?limit=200"),
            Some(&s.token),
            None,
        )
        .await;
    assert_eq!(all.ok(200).as_array().unwrap().len(), 120);
    assert!(all.headers.get("link").is_none(), "nothing older");
    let forward = app
        .call(
            Method::GET,
            &format!("{path}?after=118"),
            Some(&s.token),
            None,
        )
        .await;
    let forward = forward.ok(200).as_array().unwrap().clone();
    assert_eq!(forward.len(), 2);
    assert_eq!(
        forward[0]["payload"]["n"], 119,
        "after= reads forward, oldest first"
    );
    app.call(
        Method::GET,
        &format!("{path}?limit=201"),
        Some(&s.token),
        None,
    )
    .await
    .problem_for_field(400, "limit");
    app.call(
        Method::GET,
        &format!("{path}?before=5&after=1"),
        Some(&s.token),
        None,
    )
    .await
    .problem_for_field(400, "before");
}

/// Opens `s`'s alert stream; the answer comes once the stream has read what it missed.
async fn open_stream(app: &TestApp, s: &Subscriber) -> reqwest::Response {
    app.client
        .get(format!(
            "{}/v1/subscribers/{}/alerts/stream",
            app.address, s.id
        ))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stream_gets_nothing_and_reads_nothing_when_another_subscriber_is_alerted() {
    let app = spawn_app().await;
    let hub = app.alert_hub.clone().expect("this app notifies");
    let (story_a, story_b) = (app.open_story(false).await, app.open_story(false).await);
    let a = sign_up(&app, "Reader A", None).await;
    let b = sign_up(&app, "Reader B", None).await;
    subscribe(&app, &a, json!({"story": story_a})).await;
    subscribe(&app, &b, json!({"story": story_b})).await;
    let mut streams_a = Vec::new();
    for _ in 0..3 {
        let r = open_stream(&app, &a).await;
        assert_eq!(r.status(), 200);
        streams_a.push(r);
    }
    let mut stream_b = SseLines::new(open_stream(&app, &b).await);
    let reads = hub.reads();

    for _ in 0..5 {
        app.record(&story_b, development("update")).await.ok(201);
    }
    for _ in 0..5 {
        assert_eq!(
            stream_b.next().await.0,
            "story.update",
            "B gets each of its alerts"
        );
    }
    // A's streams stay silent and nothing was read from the queue for any stream.
    for r in &mut streams_a {
        let quiet = tokio::time::timeout(Duration::from_millis(300), r.chunk()).await;
        assert!(quiet.is_err(), "A's stream got something: {quiet:?}");
    }
    assert_eq!(
        hub.reads(),
        reads,
        "alerts reach streams without a read per stream"
    );

    // A's own alert reaches each of A's streams, still without a read.
    app.record(&story_a, development("hack_reported"))
        .await
        .ok(201);
    for r in streams_a {
        assert_eq!(SseLines::new(r).next().await.0, "story.hack_reported");
    }
    assert_eq!(hub.reads(), reads);
}

#[tokio::test]
async fn alert_streams_over_the_caps_are_refused_with_429_or_503_and_retry_after() {
    let app = spawn_app_with(|s| {
        s.notifier.alert_streams_per_address = 2;
        s.notifier.alert_streams_total = 3;
    })
    .await;
    let a = sign_up(&app, "Reader A", None).await;
    let first = open_stream(&app, &a).await;
    let second = open_stream(&app, &a).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = TestApp::answer(open_stream(&app, &a).await).await;
    let problem = third.problem(429);
    assert_eq!(problem["status"], 429, "{problem}");
    assert!(
        third.headers.contains_key("retry-after"),
        "{:?}",
        third.headers
    );
    // Closing one makes room again.
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        let r = open_stream(&app, &a).await;
        if r.status() == 200 {
            again = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a closed stream gives its place back");

    // The total cap: a third stream from another address fills the server; a fourth is 503.
    let other_address = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let url = format!("{}/v1/subscribers/{}/alerts/stream", app.address, a.id);
    let open_elsewhere = || other_address.get(&url).bearer_auth(&a.token).send();
    let third_in_all = open_elsewhere().await.unwrap();
    assert_eq!(third_in_all.status(), 200);
    assert_eq!(app.alert_hub.as_ref().unwrap().open_streams(), 3);
    let full = TestApp::answer(open_elsewhere().await.unwrap()).await;
    let problem = full.problem(503);
    assert_eq!(problem["status"], 503, "{problem}");
    assert!(
        full.headers.contains_key("retry-after"),
        "{:?}",
        full.headers
    );
    drop((second, again, third_in_all));
}

#[tokio::test]
async fn on_a_shared_queue_the_hub_reads_new_alerts_once_for_every_stream() {
    let Some((app, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    let hub = app.alert_hub.clone().expect("this app notifies");
    let story = app.open_story(false).await;
    let a = sign_up(&app, "Reader A", None).await;
    subscribe(&app, &a, json!({"story": story})).await;
    let mut streams = Vec::new();
    for _ in 0..4 {
        streams.push(SseLines::new(open_stream(&app, &a).await));
    }
    let (reads, started) = (hub.reads(), std::time::Instant::now());
    for _ in 0..3 {
        app.record(&story, development("update")).await.ok(201);
    }
    for s in &mut streams {
        for _ in 0..3 {
            assert_eq!(s.next().await.0, "story.update");
        }
    }
    // The hub looks at the queue when this process queues alerts and once a second, whatever
    // the number of streams: not one read per stream per alert.
    let made = hub.reads() - reads;
    let seconds = started.elapsed().as_secs();
    assert!(
        made <= 4 + seconds,
        "{made} reads in {seconds} s for three alerts to four streams"
    );
}
