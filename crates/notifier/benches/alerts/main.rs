//! Alerts load benchmark: how much matching costs, how fast one alert arrives, how fast a flash
//! alert fans out.
//!
//! A custom-harness binary (`cargo bench -p newsroom-notifier --bench alerts`) that prints a
//! Markdown report on stdout (progress goes to stderr). Every figure is compared with a baseline
//! measured in the same run.
//!
//! 1. Matching cost: `SubscriptionIndex::matching` for random developments against 100,000
//!    subscriptions, against a linear scan of the same subscriptions with `Subscription::matches`.
//! 2. End-to-end latency: the whole app (`Newsroom::build`, as the end-to-end tests start it),
//!    one webhook subscriber following one story, a steady rate of `POST …/developments`:
//!    from the POST's answer to the alert's arrival at a real axum receiver on loopback. Baseline:
//!    plain HTTP POSTs of an alert-sized body straight to the same receiver, at the same rate.
//!    Then the same on a story grown to 5,000 developments, at 10 developments/s.
//! 3. Fan-out: 10,000 webhook subscribers (spread over 10 loopback receivers) following one
//!    story, one `flash` development: alerts/s and the time until the last alert arrives.
//!
//! Scale with `BENCH_SUBSCRIPTIONS` (default 100,000), `BENCH_TARGETS` (default 10,000),
//! `BENCH_RATE` (developments/s, default 50), `BENCH_SECONDS` (default 10), `BENCH_FANOUT`
//! (default 10,000), `BENCH_RECEIVERS` (default 10), `BENCH_LONG_STORY` (developments on the
//! long story of section 2, default 5,000; 0 skips it); `BENCH_SECTIONS=1,3` runs only some.

mod app;
mod fanout;
mod latency;
mod matching;
mod receiver;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use newsroom_testkit::report::{cores, load_averages, ms, us};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::{env_num, sections};
use newsroom_testkit::Res;

use fanout::{fanout, report_fanout};
use latency::{end_to_end, report_latency};
use matching::{matching_cost, report_matching};

const STORIES: usize = 10_000;
const ACTORS: usize = 5_000;
const TAGS: usize = 500;
const EVERYTHING_CAP: usize = 500;
/// Developments filed (and alerted) before the latency measurement, unrecorded.
const WARM_UP: usize = 20;
/// Requests kept in flight while signing the fan-out's subscribers up.
const SETUP_IN_FLIGHT: usize = 32;

#[derive(Debug, Clone)]
struct Config {
    subscriptions: usize,
    targets: usize,
    rate: f64,
    seconds: f64,
    fanout: usize,
    long_story: usize,
    receivers: usize,
    sections: Vec<u8>,
}

impl Config {
    fn from_env() -> Self {
        let sections = sections(&[1, 2, 3]);
        Self {
            subscriptions: (env_num("BENCH_SUBSCRIPTIONS", 100_000.0) as usize).max(100),
            targets: (env_num("BENCH_TARGETS", 10_000.0) as usize).max(10),
            rate: env_num("BENCH_RATE", 50.0).clamp(1.0, 10_000.0),
            seconds: env_num("BENCH_SECONDS", 10.0).max(0.5),
            fanout: (env_num("BENCH_FANOUT", 10_000.0) as usize).max(1),
            long_story: std::env::var("BENCH_LONG_STORY")
                .ok()
                .and_then(|v| v.trim().replace('_', "").parse::<usize>().ok())
                .unwrap_or(5_000),
            receivers: (env_num("BENCH_RECEIVERS", 10.0) as usize).max(1),
            sections,
        }
    }

    fn runs(&self, section: u8) -> bool {
        self.sections.contains(&section)
    }
}

// =============================================================================================
// Report

fn opt_ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "n/a".to_owned(), ms)
}

/// Nanoseconds as microseconds with two decimals.
fn ns_as_us(v: f64) -> String {
    format!("{:.2} µs", v / 1000.0)
}

/// A latency row's cells: samples, p50, p99, max.
fn cells(h: &Histogram<u64>) -> String {
    format!(
        "{} | {} | {} | {}",
        h.len(),
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.max())
    )
}

fn main() -> Res<()> {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let cfg = Config::from_env();
    let rt = runtime()?;
    let started = Instant::now();
    let load_start = load_averages();

    let matching = cfg.runs(1).then(|| {
        eprintln!("1. matching cost");
        let r = matching_cost(&cfg);
        eprintln!(
            "  indexed {:.2} µs, linear {:.2} µs per development",
            r.full.mean_indexed_ns() / 1000.0,
            r.full.mean_linear_ns() / 1000.0
        );
        r
    });
    let latency = if cfg.runs(2) {
        eprintln!("2. end-to-end latency");
        let r = rt.block_on(end_to_end(&cfg))?;
        eprintln!(
            "  alert p99 {}, baseline p99 {}",
            us(r.alert.value_at_quantile(0.99)),
            us(r.baseline.value_at_quantile(0.99))
        );
        Some(r)
    } else {
        None
    };
    let fan = if cfg.runs(3) {
        eprintln!("3. fan-out");
        let r = rt.block_on(fanout(&cfg))?;
        eprintln!(
            "  last of {} alerts after {}",
            r.distinct,
            opt_ms(r.last_arrival)
        );
        Some(r)
    } else {
        None
    };

    let cores = cores();
    let mut out = String::new();
    writeln!(out, "# newsroom alerts (notifier)\n")?;
    writeln!(
        out,
        "Rerun: `BENCH_SUBSCRIPTIONS={} BENCH_TARGETS={} BENCH_RATE={} BENCH_SECONDS={} BENCH_FANOUT={} BENCH_RECEIVERS={} BENCH_LONG_STORY={} cargo bench -p newsroom-notifier --bench alerts`\n",
        cfg.subscriptions, cfg.targets, cfg.rate, cfg.seconds, cfg.fanout, cfg.receivers, cfg.long_story
    )?;
    writeln!(
        out,
        "{cores} CPUs visible; SQLite {}; one tokio multi-thread runtime ({cores} workers) runs the app, its notifier, the receivers and the load client; load average {load_start} at start, {} at end; total {:.0} s.\n",
        rusqlite::version(),
        load_averages(),
        started.elapsed().as_secs_f64()
    )?;
    if let Some(r) = &matching {
        report_matching(&mut out, r)?;
    }
    if let Some(r) = &latency {
        report_latency(&mut out, r, &cfg)?;
    }
    if let Some(r) = &fan {
        report_fanout(&mut out, r)?;
    }
    print!("{out}");
    Ok(())
}
