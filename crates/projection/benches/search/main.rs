//! Full-text search benchmark: how long `GET /v1/search` takes on a large index, and what the
//! index adds to a rebuild.
//!
//! A custom-harness binary (`cargo bench -p newsroom-projection --bench search`) that prints a
//! Markdown report on stdout (progress goes to stderr). Every figure is set against a baseline
//! measured in the same run.
//!
//! The logs: `BENCH_DEVELOPMENTS` developments (default 1,000,000) over `BENCH_STORIES` stories
//! (1,000), and a baseline log of `BENCH_BASELINE_DEVELOPMENTS` (10,000) made the same way. The
//! text is drawn word by word from a vocabulary with a Zipf distribution (s = 1): 145 real words
//! of news English first (`the` is the commonest), then 30,000 made-up words of four syllables;
//! one word in 30 or so starts a fixed two-word collocation (`justice department`). Headlines
//! of 6–11 words, bodies of 35–60 (some 300 bytes), one or two of 300 actors, one of 50
//! sources; one story in 20 is under desk review (its developments wait, for staff only); a
//! correction (a new body, re-indexed) every 100th event of a story; `occurred_at` one minute
//! apart over the whole log (1,000,000 minutes is 23 months).
//!
//! - `r` (rebuild): the large log rebuilt into fresh views without the full-text index
//!   (`rebuild_without_search_index`), then with it (`rebuild`, what `projection rebuild`
//!   runs); the index's share is the difference. `BENCH_REBUILD_RUNS` pairs (default 1).
//! - `q` (queries): the read API's router (`projection::api::router`, the handlers the app
//!   mounts, without the app's middleware) served by axum on 127.0.0.1 over each log's views;
//!   one reqwest client sends `GET /v1/search?q=…` one at a time (`BENCH_QUERIES` timed
//!   requests per case after 10 untimed ones; the two-word case 3 ×), each timed from send
//!   until its whole answer has been read, 200 expected. Baseline: the same requests on the
//!   baseline log's views.
//! - `p` (PostgreSQL): the scale-out views. Both logs (the same generated events) appended to a
//!   PostgreSQL log (`PgStore`, 64 appends in flight, group-committed) in a database of the
//!   bench's own on `BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//!   each rebuilt into the views in that database (`view_search`: `tsvector` + GIN), timed, as
//!   `newsroom projection rebuild` does in scale-out; then the same query cases as `q`, the
//!   same way, on the read API's router over those views.
//!
//! `BENCH_SEARCH_PARTS` (default `rq`) picks the parts. `BENCH_DIR=<dir>` keeps the logs and
//! views there and reuses them when run again (a log whose head is right is not filled again;
//! views at its head are not rebuilt for `q` alone): for trying queries on the same index. For
//! `p` it keeps the databases `bench_search_<developments>_<stories>` (never dropped; without
//! `BENCH_DIR` each run's database is fresh and dropped at its end), with a marker file in
//! `BENCH_DIR` saying the fill finished; views kept at the log's head are not rebuilt (the
//! rebuild is then not timed).
//! `BENCH_SEARCH_CASES=prefix,phrase` runs only the query cases whose names hold one of these.

/// The allocator of the `newsroom` binary, whose `projection rebuild` this measures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../common/mod.rs"]
mod common;
mod logs;
mod queries;
mod rebuilding;
mod story_gen;
mod text;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use newsroom_testkit::report::{cores, thousands, Started};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::env_num;
use newsroom_testkit::{BoxError, Res};

use logs::{open_log, open_pg_log};
use queries::{latency_table, serve, Index};
use rebuilding::{pg_views_at_head, rebuild_pair, views_at_head};

#[derive(Debug, Clone)]
struct Config {
    developments: usize,
    baseline_developments: usize,
    stories: usize,
    queries: usize,
    rebuild_runs: usize,
    parts: String,
    dir: Option<PathBuf>,
    /// The PostgreSQL server of part `p`, where its databases are created.
    database_url: String,
    /// Only the query cases whose names hold one of these (`BENCH_SEARCH_CASES`, comma-separated).
    cases: Vec<String>,
}

impl Config {
    fn from_env() -> Self {
        Self {
            developments: (env_num("BENCH_DEVELOPMENTS", 1_000_000.0) as usize).max(1_000),
            baseline_developments: (env_num("BENCH_BASELINE_DEVELOPMENTS", 10_000.0) as usize)
                .max(1_000),
            stories: (env_num("BENCH_STORIES", 1_000.0) as usize).max(1),
            queries: (env_num("BENCH_QUERIES", 300.0) as usize).max(10),
            rebuild_runs: (env_num("BENCH_REBUILD_RUNS", 1.0) as usize).max(1),
            parts: std::env::var("BENCH_SEARCH_PARTS")
                .ok()
                .filter(|p| p.contains(['r', 'q', 'p']))
                .unwrap_or_else(|| "rq".to_owned()),
            dir: std::env::var_os("BENCH_DIR").map(PathBuf::from),
            database_url: std::env::var("BENCH_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
            cases: std::env::var("BENCH_SEARCH_CASES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// The baseline log's stories: as many as the large log's, but at least 10 developments each.
    fn baseline_stories(&self) -> usize {
        self.stories.min(self.baseline_developments / 10).max(1)
    }
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

// ---------------------------------------------------------------------------------------------

fn main() -> Res<()> {
    newsroom::disable_transparent_huge_pages();
    let cfg = Config::from_env();
    let rt = runtime()?;
    let started = Started::now();
    let temp = tempfile::tempdir()?;
    let dir = match &cfg.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => temp.path().to_owned(),
    };
    let mut out = String::new();
    writeln!(
        out,
        "## Search (projection)
"
    )?;
    writeln!(
        out,
        "Rerun: `BENCH_DEVELOPMENTS={} BENCH_BASELINE_DEVELOPMENTS={} BENCH_STORIES={} BENCH_QUERIES={} BENCH_SEARCH_PARTS={} cargo bench -p newsroom-projection --bench search`
",
        cfg.developments, cfg.baseline_developments, cfg.stories, cfg.queries, cfg.parts
    )?;
    rt.block_on(async {
        if cfg.parts.contains(['r', 'q']) {
            sqlite_parts(&mut out, &cfg, &dir).await?;
        }
        if cfg.parts.contains('p') {
            postgres_part(&mut out, &cfg).await?;
        }
        Ok::<_, BoxError>(())
    })?;
    writeln!(
        out,
        "{} CPUs visible; SQLite {}; {}.",
        cores(),
        rusqlite::version(),
        started.summary()
    )?;
    print!("{out}");
    Ok(())
}

/// Parts `r` and `q`: the embedded views (SQLite, FTS5), the logs in `dir`.
async fn sqlite_parts(out: &mut String, cfg: &Config, dir: &Path) -> Res<()> {
    let big_path = format!("log-{}.db", cfg.developments);
    let log = open_log(dir, &big_path, cfg.developments, cfg.stories).await?;
    let views_path = dir.join(format!("views-{}.db", cfg.developments));
    if cfg.parts.contains('r') {
        writeln!(
            out,
            "### Rebuild with and without the full-text index
"
        )?;
        writeln!(
                out,
                "{} events ({} developments).\n\n| run | without the index | with it | index's share | load (1 min) before → after |
|---|---|---|---|---|",
                thousands(log.head() as f64),
                thousands(cfg.developments as f64)
            )?;
        for run in 1..=cfg.rebuild_runs {
            eprintln!("[r] rebuild pair {run}");
            let r = rebuild_pair(&log, dir, &views_path).await?;
            writeln!(
                out,
                "| {run} | {:.2} s | {:.2} s | **+{:.0} %** | {} → {} |",
                r.without.as_secs_f64(),
                r.with.as_secs_f64(),
                (r.with.as_secs_f64() / r.without.as_secs_f64() - 1.0) * 100.0,
                r.load.0,
                r.load.1
            )?;
        }
        writeln!(
            out,
            "
Index: {}
",
            Index::Sqlite(views_path.clone()).size().await?
        )?;
    }
    if cfg.parts.contains('q') {
        eprintln!("[q] views");
        let small_log = open_log(
            dir,
            &format!("log-{}.db", cfg.baseline_developments),
            cfg.baseline_developments,
            cfg.baseline_stories(),
        )
        .await?;
        let small_path = dir.join(format!("views-{}.db", cfg.baseline_developments));
        let small_views = views_at_head(&small_log, &small_path).await?;
        let big_views = views_at_head(&log, &views_path).await?;
        let small = serve(small_views, small_log).await?;
        let big = serve(big_views, log.clone()).await?;
        latency_table(
            out,
            cfg,
            "`GET /v1/search` latency",
            &small,
            &big,
            &Index::Sqlite(views_path.clone()),
        )
        .await?;
    }
    Ok(())
}

/// Part `p`: both logs in PostgreSQL, each rebuilt into the views beside it, and the query
/// cases of `q` on those views.
async fn postgres_part(out: &mut String, cfg: &Config) -> Res<()> {
    eprintln!("[p] logs");
    let dir = cfg.dir.as_deref();
    let small = open_pg_log(cfg, dir, cfg.baseline_developments, cfg.baseline_stories()).await?;
    let big = open_pg_log(cfg, dir, cfg.developments, cfg.stories).await?;
    eprintln!("[p] views");
    let (small_views, small_rebuild) = pg_views_at_head(&small).await?;
    let (big_views, big_rebuild) = pg_views_at_head(&big).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&big.pool)
        .await?;
    writeln!(
        out,
        "### PostgreSQL (scale-out views): fill and rebuild

PostgreSQL {version} on this machine. Each log in a database of its own, filled through `PgStore::append` (25 events of a story per append, 64 appends in flight, group-committed; not what is measured), then rebuilt into the views beside it (`ViewStore::open_postgres` on the log's pool, then `rebuild`: what `newsroom projection rebuild` runs in scale-out, one transaction).

| log | events | fill | rebuild | events/s rebuilt | load (1 min) before → after the rebuild |
|---|---|---|---|---|---|"
    )?;
    for (name, pg, rebuilt) in [
        ("baseline", &small, &small_rebuild),
        ("large", &big, &big_rebuild),
    ] {
        let fill = pg
            .fill
            .map_or("kept".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
        match rebuilt {
            Some(r) => writeln!(
                out,
                "| {name} | {} | {fill} | **{:.2} s** | {} | {} → {} |",
                thousands(r.events as f64),
                r.took.as_secs_f64(),
                thousands(r.events as f64 / r.took.as_secs_f64()),
                r.load.0,
                r.load.1
            )?,
            None => writeln!(
                out,
                "| {name} | {} | {fill} | kept from an earlier run (`BENCH_DIR`) | | |",
                thousands(pg.log.head() as f64)
            )?,
        }
    }
    let analysed = || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT COALESCE(bool_or(last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL), false)
               FROM pg_stat_user_tables WHERE relname = 'view_search'",
        )
        .fetch_one(&big.pool)
        .await
    };
    let analysed_before = analysed().await?;
    writeln!(out)?;
    let index = Index::Postgres(big.pool.clone());
    let small_served = serve(small_views, small.log.clone()).await?;
    let big_served = serve(big_views, big.log.clone()).await?;
    latency_table(
        out,
        cfg,
        "`GET /v1/search` latency on PostgreSQL",
        &small_served,
        &big_served,
        &index,
    )
    .await?;
    let yes = |b: bool| if b { "yes" } else { "not yet" };
    writeln!(
        out,
        "Planner statistics of the large `view_search` (the rebuild gathers them; kept views from before it did may lack them) when the queries began: {}; when they ended: {}.
",
        yes(analysed_before),
        yes(analysed().await?)
    )?;
    Ok(())
}
