//! The live hub's promises, checked step by step against a real log and real views: the
//! projector and the hub are stepped by hand, so what each step costs and sends is exact.

use std::time::Duration;

use axum::body::Body;
use futures_util::StreamExt;
use newsroom_command::{CommandService, ServiceOptions};
use newsroom_domain::*;
use newsroom_log::{EventLog, SqliteOptions, SqliteStore, Synchronous};
use newsroom_projection::live::{LiveError, LiveStream};
use newsroom_projection::{LiveHub, LiveLimits, Projector, ViewStore};
use newsroom_web::Principal;
use uuid::Uuid;

struct World {
    _dir: tempfile::TempDir,
    service: CommandService,
    projector: Projector,
    hub: LiveHub,
}

async fn world(limits: LiveLimits) -> World {
    let dir = tempfile::tempdir().unwrap();
    let log: EventLog = SqliteStore::open(
        &dir.path().join("log.db"),
        SqliteOptions {
            synchronous: Synchronous::Normal,
            ..Default::default()
        },
    )
    .unwrap()
    .into();
    let service = CommandService::new(log.clone(), ServiceOptions::default());
    let views = ViewStore::open(&dir.path().join("views.db")).unwrap();
    let projector = Projector::new(log.clone(), views.clone());
    let hub = LiveHub::new(views, log, limits).await.unwrap();
    World {
        _dir: dir,
        service,
        projector,
        hub,
    }
}

fn reporter() -> Principal {
    Principal {
        token_id: "reporter-token".into(),
        name: "A reporter".into(),
        role: Role::Reporter,
    }
}

impl World {
    async fn open_story(&mut self, n: usize) -> StoryId {
        let id = StoryId::new();
        let command = StoryCommand::OpenStory {
            id,
            slug: Slug::parse("slug", &format!("story-{n}")).unwrap(),
            headline: Headline::parse("headline", &format!("Story {n}")).unwrap(),
            summary: Summary::parse("summary", "").unwrap(),
            tags: vec![],
            review_required: false,
        };
        self.service
            .execute(id, &reporter(), command)
            .await
            .unwrap();
        self.settle().await;
        id
    }

    /// Records a development; returns its id.
    async fn record(&mut self, story: StoryId, headline: &str) -> Uuid {
        let id = Uuid::new_v4();
        let new = NewDevelopment {
            embargo_until: None,
            accused: vec![],
            id: id.into(),
            kind: DevelopmentKind::Update,
            headline: Headline::parse("headline", headline).unwrap(),
            body: newsroom_domain::Body::parse("body", "Text").unwrap(),
            occurred_at: None,
            actors: vec![],
            source: None,
            evidence: Evidence::NoneProvided,
            urgency: Urgency::Routine,
            responds_to: None,
            hold: None,
        };
        self.service
            .execute(story, &reporter(), StoryCommand::RecordDevelopment(new))
            .await
            .unwrap();
        id
    }

    /// Projects everything written, then lets the hub follow.
    async fn settle(&mut self) {
        self.projector.catch_up().await.unwrap();
        self.hub.round().await.unwrap();
    }
}

/// The server-sent events of a stream's body, read until it ends or `wanted` arrived.
struct Reader {
    body: axum::body::BodyDataStream,
    text: String,
}

#[derive(Debug, PartialEq)]
struct Sse {
    id: Option<i64>,
    event: String,
    data: String,
}

impl Reader {
    fn new(stream: LiveStream) -> Self {
        Self {
            body: Body::new(stream.into_body()).into_data_stream(),
            text: String::new(),
        }
    }

    /// The next event, `None` if the stream ended or nothing came within a second.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut sse = Sse {
                    id: None,
                    event: "message".into(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        sse.id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        sse.event = v.into();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        sse.data = v.into();
                    }
                }
                if block.starts_with(':') {
                    continue;
                }
                return Some(sse);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(1), self.body.next())
                .await
                .ok()??
                .ok()?;
            self.text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn a_stream_of_one_story_receives_nothing_and_costs_nothing_when_another_story_is_written() {
    let mut w = world(LiveLimits::default()).await;
    let a = w.open_story(1).await;
    let b = w.open_story(2).await;
    let mut stream = Reader::new(w.hub.open(a.as_uuid(), None, None).await.unwrap());
    let before = w.hub.stats();
    assert_eq!(
        before.loads, 1,
        "the story is loaded once, for its first reader"
    );

    for n in 0..30 {
        w.record(b, &format!("On story B {n}")).await;
    }
    w.settle().await;
    let after_b = w.hub.stats();
    assert_eq!(after_b.loads, before.loads, "nothing was loaded for B");
    assert_eq!(after_b.folded, before.folded, "no event of B was folded");
    assert_eq!(after_b.log_reads, before.log_reads);

    let dev = w.record(a, "On story A").await;
    w.settle().await;
    let event = stream.next().await.expect("A's change arrives");
    assert_eq!(event.event, "added");
    assert!(event.data.contains(&dev.to_string()), "{}", event.data);
    assert!(
        event.data.contains("timeline-item"),
        "the page's markup comes with it"
    );
    assert_eq!(
        w.hub.stats().folded,
        before.folded + 1,
        "one event folded once"
    );

    // A second and a third reader of A cost no further load or fold.
    let mut second = Reader::new(w.hub.open(a.as_uuid(), None, None).await.unwrap());
    let mut third = Reader::new(w.hub.open(a.as_uuid(), None, None).await.unwrap());
    w.record(a, "Again on A").await;
    w.settle().await;
    let (x, y, z) = (
        stream.next().await.unwrap(),
        second.next().await.unwrap(),
        third.next().await.unwrap(),
    );
    assert_eq!(x, y);
    assert_eq!(y, z);
    let stats = w.hub.stats();
    assert_eq!(stats.loads, 1);
    assert_eq!(stats.folded, before.folded + 2);
    assert_eq!(stats.open_streams, 3);
}

#[tokio::test]
async fn a_stream_that_falls_behind_is_cut_off_and_resumes_exactly_after_what_it_got() {
    let limits = LiveLimits {
        buffer: 4,
        ring: 8,
        ..LiveLimits::default()
    };
    let mut w = world(limits).await;
    let story = w.open_story(1).await;
    let first = w.record(story, "First").await;
    w.settle().await;
    let mut slow = Reader::new(w.hub.open(story.as_uuid(), Some(0), None).await.unwrap());
    let got = slow
        .next()
        .await
        .expect("the first development, resumed from the log");
    assert!(got.data.contains(&first.to_string()));
    let last_seen = got.id.unwrap();

    // Twelve changes in one step of the hub: more than the stream may have waiting.
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(w.record(story, &format!("Burst {n}")).await);
    }
    w.settle().await;
    let cut = slow.next().await.expect("a last event");
    assert_eq!(cut.event, "resume");
    assert!(cut.data.contains(&format!("\"last_event_id\":{last_seen}")));
    assert!(slow.next().await.is_none(), "and the stream ends");

    // Resuming after what it got: the first four from the log (the ring holds the last 8),
    // the rest from the ring, each exactly once, in order.
    let reads = w.hub.stats().log_reads;
    let mut resumed = Reader::new(
        w.hub
            .open(story.as_uuid(), Some(last_seen), None)
            .await
            .unwrap(),
    );
    let mut seen = Vec::new();
    while let Some(e) = resumed.next().await {
        seen.push(e);
    }
    let positions: Vec<i64> = seen.iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(seen.len(), 12, "{positions:?}");
    assert!(positions.windows(2).all(|p| p[0] < p[1]), "{positions:?}");
    assert!(positions[0] > last_seen);
    for (e, id) in seen.iter().zip(&ids) {
        assert!(e.data.contains(&id.to_string()));
    }
    assert_eq!(w.hub.stats().log_reads, reads + 1);

    // Resuming inside the ring reads nothing from the log.
    let mut late = Reader::new(
        w.hub
            .open(story.as_uuid(), Some(positions[9]), None)
            .await
            .unwrap(),
    );
    assert_eq!(late.next().await.unwrap().id, Some(positions[10]));
    assert_eq!(late.next().await.unwrap().id, Some(positions[11]));
    assert_eq!(w.hub.stats().log_reads, reads + 1);
}

#[tokio::test]
async fn open_streams_are_capped_per_address_and_in_total_and_closing_one_frees_its_place() {
    let limits = LiveLimits {
        per_address: 2,
        total: 3,
        ..LiveLimits::default()
    };
    let mut w = world(limits).await;
    let story = w.open_story(1).await.as_uuid();
    let here: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let there: std::net::IpAddr = "192.0.2.2".parse().unwrap();
    let one = w.hub.open(story, None, Some(here)).await.unwrap();
    let _two = w.hub.open(story, None, Some(here)).await.unwrap();
    assert!(matches!(
        w.hub.open(story, None, Some(here)).await,
        Err(LiveError::TooManyFromAddress)
    ));
    let _three = w.hub.open(story, None, Some(there)).await.unwrap();
    assert!(matches!(
        w.hub.open(story, None, Some(there)).await,
        Err(LiveError::TooMany)
    ));
    drop(one);
    assert_eq!(w.hub.stats().open_streams, 2);
    w.hub.open(story, None, Some(here)).await.unwrap();
}

#[tokio::test]
async fn a_story_nobody_reads_is_not_followed() {
    let mut w = world(LiveLimits::default()).await;
    let story = w.open_story(1).await;
    let unknown = Uuid::new_v4();
    assert!(matches!(
        w.hub.open(unknown, None, None).await,
        Err(LiveError::NotFound(_))
    ));
    for n in 0..5 {
        w.record(story, &format!("Nobody reads {n}")).await;
    }
    w.settle().await;
    let stats = w.hub.stats();
    assert_eq!(
        (stats.loads, stats.folded, stats.watched_stories),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn changes_waiting_together_go_to_a_stream_in_one_write_each_once_in_order() {
    let mut w = world(LiveLimits::default()).await;
    let story = w.open_story(1).await;
    let stream = w.hub.open(story.as_uuid(), None, None).await.unwrap();
    let mut body = Body::new(stream.into_body()).into_data_stream();
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(w.record(story, &format!("Burst {n}")).await);
    }
    // Every change is handed to the stream before its body is read again.
    w.settle().await;
    let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("the burst arrives")
        .expect("the stream is open")
        .unwrap();
    let text = std::str::from_utf8(&chunk).unwrap();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| e.starts_with("id: "))
        .collect();
    assert_eq!(events.len(), 6, "one write holds the whole burst: {text}");
    let positions: Vec<i64> = events
        .iter()
        .map(|e| e.lines().next().unwrap()["id: ".len()..].parse().unwrap())
        .collect();
    assert!(positions.windows(2).all(|p| p[0] < p[1]), "{positions:?}");
    for (event, id) in events.iter().zip(&ids) {
        assert!(event.contains(&id.to_string()), "{event}");
    }
}
