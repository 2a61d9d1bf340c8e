//! Read-path load benchmark: how fast views are rebuilt, how fast a long story is served and how
//! far the views trail the log under a steady write load.
//!
//! A custom-harness binary (`cargo bench -p newsroom-projection --bench read_path`) that prints a
//! Markdown report on stdout (progress goes to stderr). Every figure is compared with a baseline
//! measured in the same run, on files in a fresh temporary directory.
//!
//! 1. Rebuild: an event log of `BENCH_EVENTS` events (default 1,000,000) over 1,000 stories is
//!    filled through `SqliteStore::append` (not measured). Baseline: read every row through
//!    `read_feed` pages of 10,000 and `decode` each (read and deserialise, apply nothing). Then
//!    `rebuild` into a fresh `ViewStore`. Afterwards the rebuild's steps are timed on their own.
//! 2. GET of a story with a 1,000-development timeline from the real app (built from the
//!    binary's configuration defaults, so the notifier runs too), against a plain axum server in
//!    the same process that serves the same bytes from memory; the same concurrent client loads
//!    both (`BENCH_SECONDS` per run, default 5; order static, app, app, static).
//! 3. Lag: developments POSTed at a steady rate (`BENCH_LAG_RATE`/s, default 200, over 10
//!    stories, for `BENCH_LAG_SECONDS`, default 10); per command, the time from its answer until
//!    the views' checkpoint (polled every millisecond) reaches its position.
//!    `BENCH_LAG_PREFILL=n` first records n developments on each of those stories.
//!
//! `BENCH_PARTS` (default `123`) picks the cases to run. Case 1 at the default size writes about
//! 4 GB of temporary files (the log, the rebuilt views and their WAL) and takes a few minutes.

/// The allocator of the `newsroom` binary, whose `projection rebuild` this measures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod app;
#[path = "../common/mod.rs"]
mod common;
mod get;
mod lag;
mod rebuilding;
mod story_gen;

use std::fmt::Write as _;

use newsroom_testkit::report::{cores, Started};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::env_num;
use newsroom_testkit::Res;

use get::{get_case, report_get};
use lag::{lag_case, report_lag};
use rebuilding::{rebuild_case, report_rebuild};

/// Feed page size of the baseline, the same as the rebuild's.
const PAGE: usize = 10_000;

#[derive(Debug, Clone)]
struct Config {
    events: usize,
    stories: usize,
    /// Events per append while filling the log.
    chunk: usize,
    /// Appends in flight while filling.
    fill_in_flight: usize,
    seconds: f64,
    in_flight: usize,
    timeline: usize,
    lag_seconds: f64,
    lag_rate: f64,
    lag_stories: usize,
    /// Developments recorded on each lag story before the measured load.
    lag_prefill: usize,
    /// Which cases run: a subset of "123".
    parts: String,
    /// Whether case 1 times the rebuild's steps on their own afterwards (`BENCH_BREAKDOWN=0`
    /// skips it: its in-memory replay holds the whole log's folds).
    breakdown: bool,
}

impl Config {
    fn from_env() -> Self {
        let events = (env_num("BENCH_EVENTS", 1_000_000.0) as usize).max(2_000);
        Self {
            events,
            stories: (env_num("BENCH_STORIES", 1_000.0) as usize).max(1),
            chunk: 25,
            fill_in_flight: 64,
            seconds: env_num("BENCH_SECONDS", 5.0).max(0.5),
            in_flight: 32,
            timeline: 1_000,
            lag_seconds: env_num("BENCH_LAG_SECONDS", 10.0).max(1.0),
            lag_rate: env_num("BENCH_LAG_RATE", 200.0).max(1.0),
            lag_stories: 10,
            lag_prefill: env_num("BENCH_LAG_PREFILL", 0.0) as usize,
            parts: std::env::var("BENCH_PARTS")
                .ok()
                .filter(|p| p.chars().any(|c| matches!(c, '1'..='3')))
                .unwrap_or_else(|| "123".to_owned()),
            breakdown: std::env::var("BENCH_BREAKDOWN").map_or(true, |v| v != "0"),
        }
    }
}

fn main() -> Res<()> {
    // As the `newsroom` binary does.
    newsroom::disable_transparent_huge_pages();
    // `cargo bench` passes `--bench`; filters are not supported (see `BENCH_PARTS`).
    let cfg = Config::from_env();
    let rt = runtime()?;
    let started = Started::now();

    let rebuild_run = if cfg.parts.contains('1') {
        let dir = tempfile::tempdir()?;
        let run = rt.block_on(rebuild_case(dir.path(), &cfg))?;
        // The rebuild's files are large; free the disk before the HTTP cases.
        drop(dir);
        Some(run)
    } else {
        None
    };
    let get_run = if cfg.parts.contains('2') {
        Some(rt.block_on(get_case(&cfg))?)
    } else {
        None
    };
    let lag_run = if cfg.parts.contains('3') {
        Some(rt.block_on(lag_case(&cfg))?)
    } else {
        None
    };

    let cores = cores();
    let mut env = format!(
        "BENCH_EVENTS={} BENCH_SECONDS={} BENCH_LAG_RATE={} BENCH_LAG_SECONDS={}",
        cfg.events, cfg.seconds, cfg.lag_rate, cfg.lag_seconds
    );
    if cfg.lag_prefill > 0 {
        write!(env, " BENCH_LAG_PREFILL={}", cfg.lag_prefill)?;
    }
    if cfg.parts != "123" {
        write!(env, " BENCH_PARTS={}", cfg.parts)?;
    }
    let mut out = String::new();
    writeln!(out, "## Read side (projection)\n")?;
    writeln!(
        out,
        "Rerun: `{env} cargo bench -p newsroom-projection --bench read_path`\n"
    )?;
    writeln!(
        out,
        "{cores} CPUs visible; SQLite {}; one tokio multi-thread runtime ({cores} workers) shared by the app (command side, projector, notifier), the baseline server and the load clients; apps run with `synchronous = NORMAL`; {}.\n",
        rusqlite::version(),
        started.summary()
    )?;
    if let Some(r) = &rebuild_run {
        report_rebuild(&mut out, r, &cfg)?;
    }
    if let Some(g) = &get_run {
        report_get(&mut out, g, &cfg)?;
    }
    if let Some(l) = &lag_run {
        report_lag(&mut out, l, &cfg)?;
    }
    print!("{out}");
    Ok(())
}
