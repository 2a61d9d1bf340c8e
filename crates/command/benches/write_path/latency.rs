//! Section 4, latency flatness: one development on a short story against one on a long story,
//! with the aggregate cache warm and cold.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use newsroom_command::{CommandService, ServiceOptions};
use newsroom_domain::{NewDevelopment, Story, StoryEvent, StoryId};
use newsroom_log::{SqliteStore, Synchronous};
use newsroom_testkit::report::{histogram, median, record};
use newsroom_testkit::{BoxError, Res};
use newsroom_web::Principal;

use crate::rows::{record_development, reporter, template};
use crate::service::{open_service, open_stories};
use crate::Config;

#[derive(Debug)]
pub(crate) struct LatencyRun {
    pub(crate) warm_small: Histogram<u64>,
    pub(crate) warm_big: Histogram<u64>,
    pub(crate) cold_small: Histogram<u64>,
    pub(crate) cold_big: Histogram<u64>,
    pub(crate) build_secs: f64,
    /// Latency of the measured long-story commands that also wrote its snapshot.
    pub(crate) snapshot_commands: Vec<Duration>,
    pub(crate) breakdown: Breakdown,
}

/// The steps of a cold load of the long story (and of writing its snapshot), each the median
/// of several runs, done with the same calls, in the same order, as the store, cqrs-es's
/// snapshot store and the command service.
#[derive(Debug, Default)]
pub(crate) struct Breakdown {
    pub(crate) snapshot_bytes: usize,
    pub(crate) events_after_snapshot: usize,
    /// The whole `PersistedEventStore::load_aggregate`, as the service calls it.
    pub(crate) load_aggregate: Duration,
    /// `SqliteStore::get_snapshot`: SQL read of the row and text → `Value`.
    pub(crate) get_snapshot: Duration,
    /// cqrs-es clones the snapshot's `Value` before parsing it...
    pub(crate) clone_value: Duration,
    /// ...then `Value` → `Story`...
    pub(crate) value_to_story: Duration,
    /// ...and drops the original `Value`.
    pub(crate) drop_value: Duration,
    /// `SqliteStore::get_last_events`: the events after the snapshot, rows → `Value`s.
    pub(crate) events_after: Duration,
    /// cqrs-es: each of those `Value`s → `StoryEvent` (and its metadata), applied to the story.
    pub(crate) apply_events: Duration,
    /// Writing a snapshot: `Story` → `Value` on the command's task, holding the story's lock...
    pub(crate) story_to_value: Duration,
    /// ...and `Value` → text on the store's single writer thread, inside the group commit.
    pub(crate) value_to_text: Duration,
}

async fn cold_load_breakdown(store: &SqliteStore, story: StoryId) -> Res<Breakdown> {
    use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
    use cqrs_es::EventStore;

    const RUNS: usize = 7;
    let id = story.to_string();
    let log: newsroom_log::EventLog = store.clone().into();
    let mut steps: [Vec<Duration>; 9] = Default::default();
    let mut b = Breakdown::default();
    for _ in 0..RUNS {
        let loader = PersistedEventStore::<newsroom_log::EventLog, Story>::new_snapshot_store(
            log.clone(),
            ServiceOptions::default().snapshot_every,
        );
        let t = Instant::now();
        let context = loader.load_aggregate(&id).await?;
        steps[0].push(t.elapsed());
        drop(context);

        let t = Instant::now();
        let snapshot = log
            .get_snapshot::<Story>(&id)
            .await?
            .ok_or("the long story has no snapshot")?;
        steps[1].push(t.elapsed());
        b.snapshot_bytes = snapshot.aggregate.to_string().len();

        let t = Instant::now();
        let copy = snapshot.aggregate.clone();
        steps[2].push(t.elapsed());
        let t = Instant::now();
        let mut parsed: Story = serde_json::from_value(copy)?;
        steps[3].push(t.elapsed());
        let t = Instant::now();
        drop(snapshot.aggregate);
        steps[4].push(t.elapsed());

        let t = Instant::now();
        let value = serde_json::to_value(&parsed)?;
        steps[6].push(t.elapsed());
        let t = Instant::now();
        let text = serde_json::to_string(&value)?;
        steps[7].push(t.elapsed());
        // The state the snapshot holds serialises back to the same text.
        assert_eq!(text.len(), b.snapshot_bytes);

        let t = Instant::now();
        let events = log
            .get_last_events::<Story>(&id, snapshot.current_sequence)
            .await?;
        steps[5].push(t.elapsed());
        b.events_after_snapshot = events.len();
        let t = Instant::now();
        for event in events {
            let payload: StoryEvent = serde_json::from_value(event.payload)?;
            let _metadata: std::collections::HashMap<String, String> =
                serde_json::from_value(event.metadata)?;
            cqrs_es::Aggregate::apply(&mut parsed, payload);
        }
        steps[8].push(t.elapsed());
    }
    let [load, get, clone, parse, drop_v, after, to_value, to_text, apply] =
        steps.map(|v| median(&v).expect("timed runs"));
    b.load_aggregate = load;
    b.get_snapshot = get;
    b.clone_value = clone;
    b.value_to_story = parse;
    b.drop_value = drop_v;
    b.events_after = after;
    b.apply_events = apply;
    b.story_to_value = to_value;
    b.value_to_text = to_text;
    Ok(b)
}

async fn record_n(
    service: &CommandService,
    by: &Principal,
    template: &NewDevelopment,
    id: StoryId,
    n: usize,
) -> Res<usize> {
    let mut sequence = 0;
    for _ in 0..n {
        sequence = service
            .execute(id, by, record_development(template))
            .await?
            .sequence;
    }
    Ok(sequence)
}

async fn timed(
    service: &CommandService,
    by: &Principal,
    template: &NewDevelopment,
    id: StoryId,
    h: &mut Histogram<u64>,
) -> Res<(Duration, usize)> {
    let command = record_development(template);
    let t = Instant::now();
    let outcome = service.execute(id, by, command).await?;
    let elapsed = t.elapsed();
    record(h, elapsed);
    Ok((elapsed, outcome.sequence))
}

pub(crate) async fn latency_flatness(
    path: &Path,
    sync: Synchronous,
    cfg: &Config,
) -> Res<LatencyRun> {
    let (store, service) = open_service(path, sync)?;
    let by = reporter();
    let template = Arc::new(template());

    // One long story, built sequentially through the service (a story's commands are serial);
    // meanwhile 2 × samples short stories are built concurrently, one per measured command so
    // that each measured short story has exactly `small_story` events before the command.
    let build_started = Instant::now();
    let big = open_stories(&service, &by, "long", 1).await?[0];
    let big_builder = {
        let (service, by, template) = (service.clone(), by.clone(), template.clone());
        let n = cfg.big_story - 1;
        tokio::spawn(async move { record_n(&service, &by, &template, big, n).await })
    };
    let small = Arc::new(open_stories(&service, &by, "short", 2 * cfg.samples).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let builders: Vec<_> = (0..cfg.reporters)
        .map(|_| {
            let (service, by, template, small, next) = (
                service.clone(),
                by.clone(),
                template.clone(),
                small.clone(),
                next.clone(),
            );
            let n = cfg.small_story - 1;
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&id) = small.get(i) else { break };
                    let sequence = record_n(&service, &by, &template, id, n).await?;
                    assert_eq!(sequence, n + 1);
                }
                Ok::<_, BoxError>(())
            })
        })
        .collect();
    for b in builders {
        b.await??;
    }
    let big_sequence = big_builder.await??;
    assert_eq!(
        big_sequence, cfg.big_story,
        "long story has the wrong length"
    );
    let build_secs = build_started.elapsed().as_secs_f64();

    // Warm: the service that built every story still caches them all. Alternate short and long
    // so that drift (WAL growth, checkpoints) hits both alike.
    let (mut warm_small, mut warm_big) = (histogram(), histogram());
    let every = ServiceOptions::default().snapshot_every;
    let mut snapshot_commands = Vec::new();
    for &id in &small[..cfg.samples] {
        timed(&service, &by, &template, id, &mut warm_small).await?;
        let (took, sequence) = timed(&service, &by, &template, big, &mut warm_big).await?;
        if sequence % every == 0 {
            snapshot_commands.push(took);
        }
    }

    // Cold: a fresh service (empty cache) before every measured command, so each one loads its
    // story through the snapshot store: latest snapshot plus the events after it.
    let (mut cold_small, mut cold_big) = (histogram(), histogram());
    for &id in &small[cfg.samples..] {
        let fresh = CommandService::new(store.clone(), ServiceOptions::default());
        timed(&fresh, &by, &template, id, &mut cold_small).await?;
        let fresh = CommandService::new(store.clone(), ServiceOptions::default());
        let (took, sequence) = timed(&fresh, &by, &template, big, &mut cold_big).await?;
        if sequence % every == 0 {
            snapshot_commands.push(took);
        }
    }

    // Where a cold load of the long story goes. First leave it half-way between two snapshots,
    // as it is on average during the cold runs above.
    let fresh = CommandService::new(store.clone(), ServiceOptions::default());
    record_n(&fresh, &by, &template, big, every / 2).await?;
    drop(fresh);
    let breakdown = cold_load_breakdown(&store, big).await?;

    Ok(LatencyRun {
        warm_small,
        warm_big,
        cold_small,
        cold_big,
        build_secs,
        snapshot_commands,
        breakdown,
    })
}
