//! Part `r`: the large log rebuilt without the full-text index, then with it; and views kept at
//! the log's head (not `rebuild`, which the crate's own module already names).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use newsroom_log::EventLog;
use newsroom_projection::rebuild::rebuild_without_search_index;
use newsroom_projection::{rebuild, ViewStore};
use newsroom_testkit::report::load_average;
use newsroom_testkit::Res;

use crate::logs::PgLog;

pub(crate) struct RebuildRun {
    pub(crate) without: Duration,
    pub(crate) with: Duration,
    pub(crate) load: (String, String),
}

fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// Rebuilds the log into fresh views without the index, then with it; leaves the latter in
/// `views_path`.
pub(crate) async fn rebuild_pair(log: &EventLog, dir: &Path, views_path: &Path) -> Res<RebuildRun> {
    let load_before = load_average();
    let bare = dir.join("bare-views.db");
    remove_sqlite(&bare);
    let views = ViewStore::open(&bare)?;
    let t = Instant::now();
    let report = rebuild_without_search_index(log, &views).await?;
    let without = t.elapsed();
    eprintln!(
        "  without the index: {} events in {:.2} s",
        report.events,
        without.as_secs_f64()
    );
    drop(views);
    remove_sqlite(&bare);
    remove_sqlite(views_path);
    let views = ViewStore::open(views_path)?;
    let t = Instant::now();
    let report = rebuild(log, &views, &[], None).await?;
    let with = t.elapsed();
    eprintln!(
        "  with the index: {} events in {:.2} s",
        report.events,
        with.as_secs_f64()
    );
    Ok(RebuildRun {
        without,
        with,
        load: (load_before, load_average()),
    })
}

/// Whether `views` (kept from an earlier run) are in their current shapes and at `log`'s head.
async fn at_head(views: &ViewStore, log: &EventLog) -> Res<bool> {
    let fresh = views
        .checkpoints()
        .await?
        .into_iter()
        .all(|(view, cp)| cp.schema_version == view.schema_version());
    Ok(fresh && views.position().await? == log.head())
}

/// Views of `log` at its head in `path`: kept from an earlier run, else rebuilt.
pub(crate) async fn views_at_head(log: &EventLog, path: &Path) -> Res<ViewStore> {
    if path.exists() {
        let views = ViewStore::open(path)?;
        if at_head(&views, log).await? {
            eprintln!("  reusing {}", path.display());
            return Ok(views);
        }
        drop(views);
        remove_sqlite(path);
    }
    let views = ViewStore::open(path)?;
    let t = Instant::now();
    rebuild(log, &views, &[], None).await?;
    eprintln!(
        "  rebuilt {} in {:.2} s",
        path.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(views)
}

/// The views of a PostgreSQL log, in its database: kept from an earlier run if at its head,
/// else rebuilt as `newsroom projection rebuild` does in scale-out (`ViewStore::beside` the
/// log, then `rebuild`). Returns how long the rebuild took, and the load average before and
/// after it.
pub(crate) async fn pg_views_at_head(pg: &PgLog) -> Res<(ViewStore, Option<RebuildTime>)> {
    let views = ViewStore::open_postgres(pg.pool.clone()).await?;
    if at_head(&views, &pg.log).await? {
        eprintln!("  reusing the views at position {}", pg.log.head());
        return Ok((views, None));
    }
    let load_before = load_average();
    let t = Instant::now();
    let report = rebuild(&pg.log, &views, &[], None).await?;
    let took = t.elapsed();
    eprintln!(
        "  rebuilt the views: {} events in {:.2} s",
        report.events,
        took.as_secs_f64()
    );
    Ok((
        views,
        Some(RebuildTime {
            events: report.events,
            took,
            load: (load_before, load_average()),
        }),
    ))
}

pub(crate) struct RebuildTime {
    pub(crate) events: u64,
    pub(crate) took: Duration,
    pub(crate) load: (String, String),
}
