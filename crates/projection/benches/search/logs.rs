//! The logs: filled once (SQLite or PostgreSQL), reused from `BENCH_DIR` when their head is right.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use newsroom_log::{EventLog, PgStore, SqliteOptions, SqliteStore, Synchronous};
use newsroom_testkit::pg::{kept_database, Database};
use newsroom_testkit::Res;
use sqlx::PgPool;

use crate::common::{drain_appends, per_story};
use crate::story_gen::{Pools, StoryGen};
use crate::Config;

/// The log's start: `occurred_at` runs one minute per development from here.
const BASE: &str = "2024-01-01T00:00:00Z";

/// Fills `log` (SQLite or PostgreSQL) with `developments` over `stories`, round-robin, 25
/// events of a story per append, 64 appends in flight (group-committed by either store).
/// Returns the number of events.
async fn fill(log: &EventLog, developments: usize, stories: usize) -> Res<u64> {
    let started = Instant::now();
    let pools = Pools::new();
    let mut gens: Vec<StoryGen> = (0..stories).map(StoryGen::new).collect();
    let per_story = per_story(developments, stories);
    let base: DateTime<Utc> = BASE.parse()?;
    let mut generated = 0usize;
    let (mut s, mut idle) = (0usize, 0usize);
    // The next append's events: the next story with developments to go, round-robin.
    let batches = std::iter::from_fn(move || {
        while idle < stories {
            let story = s;
            s = (s + 1) % stories;
            let mut events = Vec::with_capacity(25);
            while events.len() < 25 && gens[story].developments < per_story[story] {
                let at = base + chrono::Duration::minutes(generated as i64);
                generated += 1;
                events.push(
                    gens[story]
                        .serialized(&pools, at)
                        .expect("an event serialises"),
                );
            }
            if events.is_empty() {
                idle += 1;
            } else {
                idle = 0;
                return Some(events);
            }
        }
        None
    });
    let appends = stream::iter(batches)
        .map(|events| {
            let log = log.clone();
            async move {
                let n = events.len();
                log.append(events, None).await.map(|_| n)
            }
        })
        .buffered(64);
    let written = drain_appends(appends, started, 200_000).await?;
    Ok(written as u64)
}

/// A log of `developments` in `dir/name`, filled unless it already holds them (kept from an
/// earlier run in `BENCH_DIR`).
pub(crate) async fn open_log(
    dir: &Path,
    name: &str,
    developments: usize,
    stories: usize,
) -> Res<EventLog> {
    let store = SqliteStore::open(
        &dir.join(name),
        SqliteOptions {
            synchronous: Synchronous::Normal,
            ..Default::default()
        },
    )?;
    let log = EventLog::from(store);
    let place = dir.join(name).display().to_string();
    let marker = dir.join(format!("{name}.filled"));
    filled(&log, &place, Some(&marker), developments, stories).await?;
    Ok(log)
}

/// Fills `log` unless the marker file says an earlier run filled it with the same developments
/// (the marker is written once the fill is complete; `None`: a fresh log, nothing to reuse).
/// `place` names the log in messages.
async fn filled(
    log: &EventLog,
    place: &str,
    marker: Option<&Path>,
    developments: usize,
    stories: usize,
) -> Res<Option<Duration>> {
    let want = format!("{developments} developments over {stories} stories");
    let kept = marker.and_then(|m| std::fs::read_to_string(m).ok());
    if log.head() > 0 && kept.as_deref() == Some(&want) {
        eprintln!("  {place}: reusing {} events ({want})", log.head());
        return Ok(None);
    }
    if log.head() > 0 {
        return Err(format!("{place} holds another log (or an unfinished fill); remove it").into());
    }
    eprintln!("  {place}: filling {want}");
    let t = Instant::now();
    let events = fill(log, developments, stories).await?;
    eprintln!(
        "  {place}: {events} events in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    if let Some(marker) = marker {
        std::fs::write(marker, &want)?;
    }
    Ok(Some(t.elapsed()))
}

/// A log of part `p`, in a PostgreSQL database of its own, and its views beside it.
pub(crate) struct PgLog {
    pub(crate) log: EventLog,
    pub(crate) pool: PgPool,
    /// How long filling it took; `None` if kept from an earlier run.
    pub(crate) fill: Option<Duration>,
    /// The database, dropped with this; `None` when kept in `BENCH_DIR`'s name.
    _db: Option<Database>,
}

/// A PostgreSQL log of `developments`, in `bench_search_<developments>_<stories>` (kept, filled
/// unless the marker in `dir` says it was) when `dir` is given, else in a fresh database dropped
/// at the end.
pub(crate) async fn open_pg_log(
    cfg: &Config,
    dir: Option<&Path>,
    developments: usize,
    stories: usize,
) -> Res<PgLog> {
    let (url, db, marker) = match dir {
        Some(dir) => {
            let name = format!("bench_search_{developments}_{stories}");
            let url = kept_database(&cfg.database_url, &name).await?;
            (url, None, Some(dir.join(format!("{name}.filled"))))
        }
        None => {
            let db = Database::create(&cfg.database_url, "bench_search").await?;
            (db.url.clone(), Some(db), None)
        }
    };
    let store = PgStore::connect(&url).await?;
    let pool = store.pool().clone();
    let log = EventLog::from(store);
    let place = format!("PostgreSQL {}", url::Url::parse(&url)?.path());
    let fill = filled(&log, &place, marker.as_deref(), developments, stories).await?;
    Ok(PgLog {
        log,
        pool,
        fill,
        _db: db,
    })
}
