//! Section 3: the command service under many concurrent reporters (group commit).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use newsroom_command::{CommandService, ServiceOptions};
use newsroom_domain::StoryId;
use newsroom_log::{SqliteOptions, SqliteStore, Synchronous};
use newsroom_testkit::report::{histogram, record};
use newsroom_testkit::{BoxError, Res};
use newsroom_web::Principal;

use crate::rows::{open_story, record_development, reporter, template};
use crate::Config;

#[derive(Debug)]
pub(crate) struct ServiceRun {
    pub(crate) rate: f64,
    pub(crate) latency: Histogram<u64>,
    pub(crate) errors: usize,
    /// Appends per commit while reporters ran, from the store's batch-size metric.
    pub(crate) mean_batch: Option<f64>,
    /// Mean stored payload and metadata size of the recorded developments.
    pub(crate) payload_bytes: f64,
    pub(crate) metadata_bytes: f64,
}

fn open_store(path: &Path, sync: Synchronous) -> Res<SqliteStore> {
    Ok(SqliteStore::open(
        path,
        SqliteOptions {
            synchronous: sync,
            ..Default::default()
        },
    )?)
}

/// The store at `path` and a command service over it with default options.
pub(crate) fn open_service(
    path: &Path,
    sync: Synchronous,
) -> Res<(SqliteStore, Arc<CommandService>)> {
    let store = open_store(path, sync)?;
    let service = Arc::new(CommandService::new(
        store.clone(),
        ServiceOptions::default(),
    ));
    Ok((store, service))
}

/// (sum, count) of the store's batch-size histogram, from the process-wide recorder.
fn batch_metric() -> Option<(f64, f64)> {
    let text = newsroom_web::telemetry::metrics_handle().render();
    let find = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
    };
    Some((
        find("newsroom_store_batch_size_sum ")?,
        find("newsroom_store_batch_size_count ")?,
    ))
}

pub(crate) async fn open_stories(
    service: &Arc<CommandService>,
    by: &Principal,
    prefix: &str,
    n: usize,
) -> Res<Vec<StoryId>> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let service = service.clone();
            let by = by.clone();
            let slug = format!("{prefix}-{i}");
            tokio::spawn(async move {
                let id = StoryId::new();
                service.execute(id, &by, open_story(id, &slug)).await?;
                Ok::<_, BoxError>(id)
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(n);
    for task in tasks {
        ids.push(task.await??);
    }
    Ok(ids)
}

pub(crate) async fn service_throughput(
    path: &Path,
    sync: Synchronous,
    cfg: &Config,
) -> Res<ServiceRun> {
    let (store, service) = open_service(path, sync)?;
    let by = reporter();
    let template = Arc::new(template());
    let stories = Arc::new(open_stories(&service, &by, "load", cfg.stories).await?);

    let batches_before = batch_metric();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..cfg.reporters)
        .map(|r| {
            let (service, by, template, stories, next) = (
                service.clone(),
                by.clone(),
                template.clone(),
                stories.clone(),
                next.clone(),
            );
            let total = cfg.events;
            tokio::spawn(async move {
                let mut latency = histogram();
                let mut errors = 0;
                // Reporter r files its k-th development on story (r + k): the reporters spread
                // over all stories and only occasionally meet on one.
                for k in 0.. {
                    if next.fetch_add(1, Ordering::Relaxed) >= total {
                        break;
                    }
                    let story = stories[(r + k) % stories.len()];
                    let command = record_development(&template);
                    let t = Instant::now();
                    match service.execute(story, &by, command).await {
                        Ok(_) => record(&mut latency, t.elapsed()),
                        Err(e) => {
                            if errors == 0 {
                                eprintln!("  service error: {e}");
                            }
                            errors += 1;
                        }
                    }
                }
                (latency, errors)
            })
        })
        .collect();
    let mut latency = histogram();
    let mut errors = 0;
    for task in tasks {
        let (h, e) = task.await?;
        latency.add(h)?;
        errors += e;
    }
    let elapsed = started.elapsed();
    let batches_after = batch_metric();

    let mean_batch = match (batches_before, batches_after) {
        (Some((s0, c0)), Some((s1, c1))) if c1 > c0 => Some((s1 - s0) / (c1 - c0)),
        _ => None,
    };
    let expected = (cfg.stories + cfg.events - errors) as i64;
    assert_eq!(store.head(), expected, "the service lost events");
    let (payload_bytes, metadata_bytes) = store
        .with_conn(|c| {
            Ok(c.query_row(
                "SELECT AVG(LENGTH(payload)), AVG(LENGTH(metadata)) FROM events
                 WHERE event_type = 'DevelopmentRecorded'",
                [],
                |r| Ok((r.get::<_, f64>(0)?, r.get::<_, f64>(1)?)),
            )?)
        })
        .await?;
    Ok(ServiceRun {
        rate: (cfg.events - errors) as f64 / elapsed.as_secs_f64(),
        latency,
        errors,
        mean_batch,
        payload_bytes,
        metadata_bytes,
    })
}
