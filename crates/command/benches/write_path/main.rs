//! Write-path load benchmark: how fast, and how flat, recording a development is.
//!
//! A custom-harness binary (`cargo bench -p newsroom-command --bench write_path`) that prints a
//! Markdown report on stdout (progress goes to stderr). Every figure is compared with baselines
//! measured in the same run, on files in a fresh temporary directory, with the same SQLite settings
//! (WAL, busy timeout, and the `synchronous` mode under test). The whole suite runs once with
//! `synchronous = FULL` and once with `NORMAL`.
//!
//! 1. Baseline A: raw rusqlite, one event row per transaction.
//! 2. Baseline B: the same through sqlx's SQLite driver.
//! 3. The command service under many concurrent reporters (group commit).
//! 4. Latency flatness: one development on a 10-event story vs a 10,000-event story, with the
//!    aggregate cache warm and cold.
//! 5. The HTTP API under a concurrent load client.
//!
//! Scale with `BENCH_EVENTS` (events per throughput case, default 20,000; the latency sample
//! count is a hundredth of it) and `BENCH_SECONDS` (HTTP load duration, default 5).
//! `BENCH_BIG_STORY` (default 10,000) sets the size of the long story, for quick trial runs.

mod baselines;
mod http_api;
mod latency;
mod rows;
mod service;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use newsroom_log::Synchronous;
use newsroom_testkit::report::{cores, load_average, ms, thousands, us, verdict, Started};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::env_num;
use newsroom_testkit::Res;

use baselines::{baseline_rusqlite, baseline_sqlx};
use http_api::{http_load, HttpRun};
use latency::{latency_flatness, LatencyRun};
use rows::recorded_payload;
use service::{service_throughput, ServiceRun};

/// The events table exactly as the store's migration creates it (columns, key, unique key).
const EVENTS_DDL: &str = "CREATE TABLE events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    sequence       INTEGER NOT NULL CHECK (sequence > 0),
    event_type     TEXT    NOT NULL,
    event_version  TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    recorded_at    TEXT    NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
)";

const INSERT: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
    event_version, payload, metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// The store's busy timeout, repeated for the baselines.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const HEADLINE: &str = "Ministry confirms breach of campaign mail server";
const BODY: &str = "Access occurred between March and May, the ministry said.";
const ACTORS: [&str; 2] = ["Interior Ministry", "APT28"];
const SOURCE: &str = "Interior Ministry";

#[derive(Debug, Clone)]
struct Config {
    events: usize,
    seconds: f64,
    stories: usize,
    reporters: usize,
    in_flight: usize,
    big_story: usize,
    small_story: usize,
    samples: usize,
}

impl Config {
    fn from_env() -> Self {
        let events = env_num("BENCH_EVENTS", 20_000.0) as usize;
        Self {
            events: events.max(100),
            seconds: env_num("BENCH_SECONDS", 5.0).max(0.5),
            stories: 64,
            reporters: 64,
            in_flight: 64,
            big_story: (env_num("BENCH_BIG_STORY", 10_000.0) as usize).max(20),
            small_story: 10,
            samples: (events / 100).clamp(20, 2_000),
        }
    }
}

fn mode_name(sync: Synchronous) -> &'static str {
    match sync {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    }
}

// ---------------------------------------------------------------------------------------------
// Report

#[derive(Debug)]
struct ModeRun {
    sync: Synchronous,
    rusqlite: f64,
    sqlx: f64,
    service: ServiceRun,
    latency: LatencyRun,
    http: HttpRun,
    secs: f64,
    /// The machine's 1-minute load average when the mode started and ended: other work on the
    /// machine (compiles, tests) shows here and skews every figure, fsync-bound ones most.
    load: (String, String),
}

fn p(h: &Histogram<u64>, q: f64) -> u64 {
    h.value_at_quantile(q)
}

fn report_mode(out: &mut String, run: &ModeRun, cfg: &Config) -> std::fmt::Result {
    let (a, b, s, l, h) = (
        run.rusqlite,
        run.sqlx,
        &run.service,
        &run.latency,
        &run.http,
    );
    writeln!(out, "## synchronous = {}\n", mode_name(run.sync))?;
    writeln!(
        out,
        "| # | case | result | p50 | p99 | ratio | target |\n|---|---|---|---|---|---|---|"
    )?;
    writeln!(
        out,
        "| 1 | Baseline A: rusqlite, 1 row per transaction, {} rows | {} rows/s | | | 1.00 (reference) | |",
        thousands(cfg.events as f64),
        thousands(a)
    )?;
    writeln!(
        out,
        "| 2 | Baseline B: sqlx, 1 row per transaction, {} rows | {} rows/s | | | {:.2} × A | |",
        thousands(cfg.events as f64),
        thousands(b),
        b / a
    )?;
    writeln!(
        out,
        "| 3 | CommandService::execute, {} reporters on {} stories, {} developments | {} commands/s | {} | {} | {:.2} × A, {:.2} × B | ≥ 0.5 × A: {} |",
        cfg.reporters,
        cfg.stories,
        thousands(cfg.events as f64),
        thousands(s.rate),
        us(p(&s.latency, 0.5)),
        us(p(&s.latency, 0.99)),
        s.rate / a,
        s.rate / b,
        verdict(s.rate / a >= 0.5 && s.errors == 0)
    )?;
    let flat = |big: &Histogram<u64>, small: &Histogram<u64>| {
        p(big, 0.5) as f64 / p(small, 0.5).max(1) as f64
    };
    let (warm, cold) = (
        flat(&l.warm_big, &l.warm_small),
        flat(&l.cold_big, &l.cold_small),
    );
    let rows = [
        ("warm cache", cfg.small_story, &l.warm_small, None),
        ("warm cache", cfg.big_story, &l.warm_big, Some(warm)),
        (
            "cold (fresh service per command)",
            cfg.small_story,
            &l.cold_small,
            None,
        ),
        (
            "cold (fresh service per command)",
            cfg.big_story,
            &l.cold_big,
            Some(cold),
        ),
    ];
    for (how, events, hist, ratio) in rows {
        let (ratio, target) = match ratio {
            Some(r) => (
                format!("p50 ratio {r:.2}"),
                format!("≤ 1.5: {}", verdict(r <= 1.5)),
            ),
            None => ("(reference)".to_owned(), String::new()),
        };
        writeln!(
            out,
            "| 4 | One development, sequential, {how}, {}-event story ({} samples) | | {} | {} | {ratio} | {target} |",
            thousands(events as f64),
            hist.len(),
            us(p(hist, 0.5)),
            us(p(hist, 0.99)),
        )?;
    }
    let errors = h.non_2xx + h.transport_errors;
    writeln!(
        out,
        "| 5 | HTTP POST /v1/stories/{{id}}/developments, {} in flight, {:.1} s, {} requests | {} requests/s | {} | {} | {:.2} × A | errors = 0: {} ({} non-2xx, {} transport) |",
        cfg.in_flight,
        cfg.seconds,
        thousands(h.requests as f64),
        thousands(h.rate),
        us(p(&h.latency, 0.5)),
        us(p(&h.latency, 0.99)),
        h.rate / a,
        verdict(errors == 0),
        h.non_2xx,
        h.transport_errors
    )?;
    writeln!(out)?;
    let batch = s.mean_batch.map_or("n/a".to_owned(), |m| format!("{m:.1}"));
    writeln!(
        out,
        "- Service run: {} errors; mean group-commit batch {batch} appends per transaction; stored development payload {:.0} B + metadata {:.0} B.",
        s.errors, s.payload_bytes, s.metadata_bytes
    )?;
    let k = &l.breakdown;
    let snapshot_commands = if l.snapshot_commands.is_empty() {
        "none of the measured commands crossed a snapshot boundary".to_owned()
    } else {
        let list: Vec<String> = l.snapshot_commands.iter().map(|d| ms(*d)).collect();
        format!(
            "the measured commands on it that also wrote its snapshot (warm, then cold) took {}",
            list.join(", ")
        )
    };
    writeln!(
        out,
        "- Long story: built through the service in {:.1} s; {snapshot_commands}.",
        l.build_secs
    )?;
    writeln!(
        out,
        "- Cold load of the long story ({} B snapshot + {} events after it), median of 7: `load_aggregate` {} = `get_snapshot` (SQL + text → Value) {} + cqrs-es's clone of the Value {} + Value → Story {} + drop of the Value {} + `get_last_events` {} + events → StoryEvent and applied {}. Writing a snapshot: Story → Value {} (command task, story lock held) + Value → text {} (single writer thread, inside a group commit).",
        thousands(k.snapshot_bytes as f64),
        k.events_after_snapshot,
        ms(k.load_aggregate),
        ms(k.get_snapshot),
        ms(k.clone_value),
        ms(k.value_to_story),
        ms(k.drop_value),
        ms(k.events_after),
        ms(k.apply_events),
        ms(k.story_to_value),
        ms(k.value_to_text)
    )?;
    writeln!(
        out,
        "- Max latency: warm {} / {}, cold {} / {} (short / long story).",
        us(l.warm_small.max()),
        us(l.warm_big.max()),
        us(l.cold_small.max()),
        us(l.cold_big.max())
    )?;
    writeln!(
        out,
        "- This mode took {:.0} s; 1-minute load average of the machine {} at its start, {} at its end.\n",
        run.secs, run.load.0, run.load.1
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------

fn run_mode(rt: &tokio::runtime::Runtime, sync: Synchronous, cfg: &Config) -> Res<ModeRun> {
    let started = Started::now();
    let dir = tempfile::tempdir()?;
    let file = |name: &str| -> PathBuf { dir.path().join(name) };
    let mode = mode_name(sync);

    eprintln!("[{mode}] 1. baseline A: rusqlite");
    let rusqlite = baseline_rusqlite(&file("baseline-rusqlite.db"), sync, cfg)?;
    eprintln!("  {} rows/s", thousands(rusqlite));

    eprintln!("[{mode}] 2. baseline B: sqlx");
    let sqlx = rt.block_on(baseline_sqlx(&file("baseline-sqlx.db"), sync, cfg))?;
    eprintln!("  {} rows/s", thousands(sqlx));

    eprintln!("[{mode}] 3. command service");
    let service = rt.block_on(service_throughput(&file("service.db"), sync, cfg))?;
    eprintln!("  {} commands/s", thousands(service.rate));

    eprintln!("[{mode}] 4. latency flatness");
    let latency = rt.block_on(latency_flatness(&file("latency.db"), sync, cfg))?;
    eprintln!(
        "  p50 warm {} / {}, cold {} / {}",
        us(p(&latency.warm_small, 0.5)),
        us(p(&latency.warm_big, 0.5)),
        us(p(&latency.cold_small, 0.5)),
        us(p(&latency.cold_big, 0.5))
    );

    eprintln!("[{mode}] 5. HTTP");
    let http = rt.block_on(http_load(&file("http.db"), sync, cfg))?;
    eprintln!("  {} requests/s", thousands(http.rate));

    Ok(ModeRun {
        sync,
        rusqlite,
        sqlx,
        service,
        latency,
        http,
        secs: started.secs(),
        load: (started.load, load_average()),
    })
}

fn main() -> Res<()> {
    // `cargo bench` passes `--bench`; a filter argument is not supported, everything runs.
    let cfg = Config::from_env();
    let rt = runtime()?;
    // Install the process-wide recorder the application uses, so that the store's batch-size
    // metric can be read (and so the service pays for metrics as it does in production).
    let _ = newsroom_web::telemetry::metrics_handle();

    let started = Instant::now();
    let mut runs = Vec::new();
    for sync in [Synchronous::Full, Synchronous::Normal] {
        runs.push(run_mode(&rt, sync, &cfg)?);
    }

    let cores = cores();
    let mut out = String::new();
    writeln!(out, "# newsroom write path\n")?;
    writeln!(
        out,
        "Rerun: `BENCH_EVENTS={} BENCH_SECONDS={} cargo bench -p newsroom-command --bench write_path`\n",
        cfg.events, cfg.seconds
    )?;
    writeln!(
        out,
        "{cores} CPUs visible; SQLite {} (WAL, busy timeout 5 s); tokio multi-thread runtime with {cores} workers shared by the HTTP server and its load client; baseline rows carry a {} B `DevelopmentRecorded` payload; {} latency samples per case; total {:.0} s.\n",
        rusqlite::version(),
        recorded_payload().0.len(),
        cfg.samples,
        started.elapsed().as_secs_f64()
    )?;
    for run in &runs {
        report_mode(&mut out, run, &cfg)?;
    }
    print!("{out}");
    Ok(())
}
