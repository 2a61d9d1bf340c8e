//! Scale-out benchmark: the same load on the embedded mode (one process, SQLite) and on the
//! scale-out mode (command, projector and notifier processes on PostgreSQL and JetStream), how
//! read throughput and catch-up change with projector copies, and what the relay achieves
//! against publishing the same messages to JetStream directly.
//!
//! A custom-harness binary (`cargo bench -p newsroom --bench scale_out`) that prints a Markdown
//! report on stdout (progress goes to stderr). It starts real `newsroom` processes (the release
//! binary cargo builds for this bench, `CARGO_BIN_EXE_newsroom`), each on its own loopback port,
//! with the machine's PostgreSQL (a fresh database per case, dropped at the end) and NATS (a fresh
//! stream and subject prefix per case, deleted at the end).
//!
//! 1. Embedded vs scale-out, same load, same run: `BENCH_STORIES` stories (default 64), one
//!    subscriber with a webhook endpoint (an axum receiver in this process) following every
//!    story. Two phases of `BENCH_SECONDS` (default 10) each: (a) `BENCH_RATE` (default 200)
//!    `POST /v1/stories/{id}/developments` per second on a fixed schedule, so both modes carry
//!    the same work and their latencies compare; (b) `BENCH_REPORTERS` (default 32) reporters
//!    each keeping one POST in flight, so each mode runs as fast as it answers. Per phase:
//!    commands/s (2xx answers), errors, POST latency; per alert, the time from the POST's answer
//!    to the webhook's arrival (matched by the development id in the payload); projection lag:
//!    a probe that, after each answered POST it sees, asks the read side for
//!    `GET /v1/stories?limit=1&min_position=<its position>` and times the answer from the POST's;
//!    the mean group-commit batch of the log (`/metrics`) and the CPU time each process used
//!    (`/proc`).
//! 2. Projector copies (scale-out): (a) read throughput, `BENCH_READERS` (default 32) GETs in
//!    flight on one story of `BENCH_VIEW_DEVELOPMENTS` (default 100) developments, with 1 copy,
//!    2 copies (requests spread evenly) and 1 copy again; (b) catch-up: a log of `BENCH_PREFILL`
//!    events (default 50,000) filled in-process and published to a fresh stream, then one fresh
//!    projector process, then (the shared views emptied again) two at once: how long until the
//!    views have applied everything. (c) Notifier copies: 1, then 2 notifier processes sharing
//!    the queue (and one projector process keeping the views they read), one subscriber (a
//!    webhook in this process) following an actor every
//!    development names; a log of `BENCH_NOTIFIER_EVENTS` events (default 20,000) filled while
//!    they wait, then published: how long until every development's alert arrived.
//! 3. Relay vs direct: a PostgreSQL log of `BENCH_EVENTS` events (default 100,000), published
//!    by `Relay` (in this process) into a fresh stream, against the same messages (subject,
//!    `Nats-Msg-Id`, `Newsroom-Position`, body) prepared beforehand and published with async-nats
//!    directly, pipelined the same way (batches of 256, then their acks), into another fresh
//!    stream; and the relay's reading and serialising of the feed alone. Two rounds of: feed
//!    read, direct, relay.
//!
//! 4. One flash development to `BENCH_FLASH_ENDPOINTS` webhook endpoints (default 100,000; one
//!    subscriber each, following the story or its tag), with 1, 2 and 4 notifier copies, each in
//!    a cgroup v1 `cpu` group of its own limited to `BENCH_COPY_CORES` cores (default 0.4;
//!    PostgreSQL and NATS unthrottled; needs `/sys/fs/cgroup/cpu` writable): the time until 90%
//!    and 100% of the alerts arrived at receivers in another process (this executable run again
//!    with `BENCH_FLASH_RECEIVER` set), each counted once by `webhook-id`. One subscriber signs up
//!    through the API; the rest are copies of its rows, inserted in SQL.
//!
//! `BENCH_SECTIONS=1,2,3,4` picks sections. `BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and `BENCH_NATS_URL` (default
//! `nats://127.0.0.1:4222`) say where the services are.

mod catch_up;
mod cgroup;
#[path = "../common/mod.rs"]
mod common;
mod cpu;
mod flash;
mod flash_receiver;
mod load;
mod log_fill;
mod notifiers;
mod processes;
mod reads;
mod receiver;
mod relay;
mod services;

use std::fmt::Write as _;
use std::time::Duration;

use newsroom_testkit::report::{cores, Started};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::{env_num, sections, sections_setting};

use common::*;

use catch_up::{catch_up_case, report_catch_up};
use flash::{flash_case, report_flash};
use flash_receiver::{run_flash_receiver, RECEIVER_ENV};
use load::{load_case, report_load, Mode};
use notifiers::{notifier_case, report_notifiers};
use reads::{read_case, report_reads};
use relay::{relay_case, report_relay};

/// Publishes the relay sends before awaiting their acks (`relay.rs`'s private `BATCH`).
const RELAY_BATCH: usize = 256;
/// Events per story in the logs filled in-process (sections 2b and 3).
const EVENTS_PER_STORY: usize = 100;
/// Tasks filing commands while a log is filled in-process.
const FILLERS: usize = 64;
/// Every section, the default.
const SECTIONS: [u8; 4] = [1, 2, 3, 4];
/// How long section 1 watches the processes' CPU with nothing to do.
const IDLE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
struct Config {
    seconds: f64,
    rate: f64,
    stories: usize,
    reporters: usize,
    readers: usize,
    view_developments: usize,
    prefill: usize,
    notifier_events: usize,
    events: usize,
    flash_endpoints: usize,
    copy_cores: f64,
    sections: Vec<u8>,
    database_url: String,
    nats_url: String,
}

impl Config {
    fn from_env() -> Self {
        let sections = sections(&SECTIONS);
        Self {
            seconds: env_num("BENCH_SECONDS", 10.0).max(1.0),
            rate: env_num("BENCH_RATE", 200.0).clamp(1.0, 100_000.0),
            stories: (env_num("BENCH_STORIES", 64.0) as usize).max(1),
            reporters: (env_num("BENCH_REPORTERS", 32.0) as usize).max(1),
            readers: (env_num("BENCH_READERS", 32.0) as usize).max(1),
            view_developments: (env_num("BENCH_VIEW_DEVELOPMENTS", 100.0) as usize).max(1),
            prefill: (env_num("BENCH_PREFILL", 50_000.0) as usize).max(EVENTS_PER_STORY),
            notifier_events: (env_num("BENCH_NOTIFIER_EVENTS", 20_000.0) as usize)
                .max(EVENTS_PER_STORY),
            events: (env_num("BENCH_EVENTS", 100_000.0) as usize).max(EVENTS_PER_STORY),
            flash_endpoints: (env_num("BENCH_FLASH_ENDPOINTS", 100_000.0) as usize).max(1),
            copy_cores: env_num("BENCH_COPY_CORES", 0.4).clamp(0.01, 64.0),
            sections,
            database_url: std::env::var("BENCH_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
            nats_url: std::env::var("BENCH_NATS_URL")
                .unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        }
    }

    fn runs(&self, section: u8) -> bool {
        self.sections.contains(&section)
    }
}

fn main() -> Res<()> {
    if std::env::var_os(RECEIVER_ENV).is_some() {
        return run_flash_receiver();
    }
    // `cargo bench` passes `--bench`; filters are not supported (see `BENCH_SECTIONS`).
    let cfg = Config::from_env();
    let rt = runtime()?;
    let started = Started::now();

    let mut loads = Vec::new();
    if cfg.runs(1) {
        for mode in [Mode::Embedded, Mode::ScaleOut] {
            eprintln!("1. {}", mode.describe());
            loads.push(rt.block_on(load_case(mode, &cfg))?);
        }
    }
    let (mut reads, mut catch, mut notifiers) = (None, None, None);
    if cfg.runs(2) {
        eprintln!("2a. read throughput with projector copies");
        reads = Some(rt.block_on(read_case(&cfg))?);
        eprintln!("2b. projection catch-up with projector copies");
        catch = Some(rt.block_on(catch_up_case(&cfg))?);
        eprintln!("2c. alerts with notifier copies");
        notifiers = Some(rt.block_on(notifier_case(&cfg))?);
    }
    let relay = if cfg.runs(3) {
        eprintln!("3. relay vs direct");
        Some(rt.block_on(relay_case(&cfg))?)
    } else {
        None
    };
    let flash = if cfg.runs(4) {
        eprintln!("4. one flash development to many webhook endpoints");
        Some(rt.block_on(flash_case(&cfg))?)
    } else {
        None
    };

    let cores = cores();
    let env = format!(
        "BENCH_SECONDS={} BENCH_RATE={} BENCH_STORIES={} BENCH_REPORTERS={} BENCH_READERS={} BENCH_VIEW_DEVELOPMENTS={} BENCH_PREFILL={} BENCH_NOTIFIER_EVENTS={} BENCH_EVENTS={} BENCH_FLASH_ENDPOINTS={} BENCH_COPY_CORES={}",
        cfg.seconds,
        cfg.rate,
        cfg.stories,
        cfg.reporters,
        cfg.readers,
        cfg.view_developments,
        cfg.prefill,
        cfg.notifier_events,
        cfg.events,
        cfg.flash_endpoints,
        cfg.copy_cores
    ) + &sections_setting(&cfg.sections, &SECTIONS);
    let mut out = String::new();
    writeln!(out, "## Scale-out\n")?;
    writeln!(
        out,
        "Rerun: `{env} cargo bench -p newsroom --bench scale_out`\n"
    )?;
    writeln!(
        out,
        "{cores} CPUs visible; every process (the newsroom processes, PostgreSQL, NATS, the bench's load clients and webhook receiver) on this one machine; newsroom processes log at `warn`, rate limits off, durability defaults (SQLite log `synchronous = FULL`, PostgreSQL `synchronous_commit = on`); {}.\n",
        started.summary()
    )?;
    if !loads.is_empty() {
        report_load(&mut out, &loads, &cfg)?;
    }
    if let Some(r) = &reads {
        report_reads(&mut out, r, &cfg)?;
    }
    if let Some(c) = &catch {
        report_catch_up(&mut out, c)?;
    }
    if let Some(n) = &notifiers {
        report_notifiers(&mut out, n)?;
    }
    if let Some(r) = &relay {
        report_relay(&mut out, r)?;
    }
    if let Some(f) = &flash {
        report_flash(&mut out, f)?;
    }
    print!("{out}");
    Ok(())
}
