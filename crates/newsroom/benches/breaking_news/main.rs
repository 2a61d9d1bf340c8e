//! Breaking-news benchmark: what a long story and thousands of live readers cost the server, each
//! figure as a ratio against a baseline measured in the same run (issue 13, "Measured").
//!
//! A custom-harness binary (`cargo bench -p newsroom --bench breaking_news`) that prints a Markdown
//! report on stdout (progress goes to stderr). It starts the release `newsroom` binary cargo builds
//! for the bench (`CARGO_BIN_EXE_newsroom`) as a real process, `serve --role all` in embedded mode
//! (SQLite) in a temporary directory on a free loopback port, with a reporter token made by
//! `newsroom token create`, rate limits off and the live-stream caps raised
//! (`NEWSROOM_LIVE_STREAMS_PER_ADDRESS` and `NEWSROOM_LIVE_STREAMS_TOTAL` = 1,000,000, and no cap
//! on connections per address) so that every
//! reader is let in. The load clients run in this process. A live reader is a raw tokio
//! `TcpStream` speaking HTTP/1.1 (`GET /v1/stories/{id}/stream`) with a small parser for chunked
//! transfer coding and server-sent events that notes when each event's `id:` arrived; it is cheap
//! enough that 10,000 of them fit here. The server's CPU time is its utime + stime from
//! `/proc/<pid>/stat`; its memory is `VmRSS` from `/proc/<pid>/status`.
//!
//! Set-up: a long story of `BENCH_LONG` developments (default 10,000), filed over HTTP as fast as
//! it goes by `BENCH_FILL_REPORTERS` reporters (default 4), and a short one of 10.
//!
//! 1. **Unrelated writes**: 200 sequential developments on a fresh short story, server CPU per write
//!    (CPU delta from the first write until the server is back to what it used before them — at
//!    most 30 s —, ÷ writes answered), with `BENCH_STREAMS` (default 1,000) streams open on the
//!    long story ÷ the same with none. Target ≤ 1.2.
//! 2. **Fan-out**: with the streams open, 20 developments on the long story, 250 ms apart (the next
//!    one waits for the previous answer if that is later); per development the time from sending
//!    the POST to each stream receiving the event whose `id:` is the position the POST answered;
//!    p50/p99 over all (stream, development) pairs, the streams that received all 20, and server CPU
//!    per delivered event per stream (CPU delta from the first POST until every stream had every
//!    event, ÷ (20 × streams)), and per event per further stream (that CPU less the baseline's, ÷
//!    (20 × (streams − 1))). Targets p99 ≤ 250 ms, all streams, ≤ 10 µs. Baseline: the same 20
//!    developments on a short story with one stream open on it (before the others open). The
//!    floor: the same number of streams on a bare broadcast server (this bench's executable run
//!    again as a child process: a tokio runtime, a task per connection, one `write` of each
//!    event's chunk per stream, events of the size newsroom's streams received), its CPU per
//!    event per stream measured the same way; newsroom's ÷ the floor.
//! 3. **Memory**: server RSS idle after the set-up, idle again right before the streams open
//!    (after the baselines' writes), with them open (and the peak while sections 1 and 2 ran), and
//!    3 s after they all closed. Targets: open < 1 GB; after ≤ 1.1 × idle right before they opened.
//!    Then a second cycle (idle, the streams open, the same 20-development fan-out, closed): RSS 3 s
//!    after ÷ idle right before, telling memory the streams keep from a high-water mark the
//!    first cycle left (page caches, the allocator's).
//! 4. **Reads, long vs short**: `GET /v1/stories/{id}?limit=5` p50/p99 (200 requests each,
//!    alternating between the two stories: pages of the same size, so that the ratio shows what
//!    the story's length costs),
//!    `GET /v1/stories/{id}?as_of=<when the story was half filed>&limit=5` likewise (the short
//!    story then had 5 developments); the first write after a restart (SIGTERM, start on the same data, one write to a
//!    third story to warm the process, then the timed POST on the story measured; median of 3
//!    restarts per story). Targets: long ÷ short ≤ 1.5; `as_of` ÷ current ≤ 2.
//! 5. **Sustained** (`BENCH_SUSTAINED_SECS`, default 60; 0 skips): 16 reporters on 16 fresh
//!    stories, each keeping one POST in flight; developments/s over the whole window ÷ over its first
//!    10 s. Target ≥ 0.8.
//!
//! Every request that fails is counted and its first messages printed. Each measured phase has its
//! own deadline (`BENCH_TIMEOUT_SECS`, default 300; the long fill `BENCH_FILL_TIMEOUT_SECS`, default
//! 900): a phase that runs out says so and reports what it saw by then. A guard kills the server if
//! its RSS passes `BENCH_MAX_RSS_MB` (default 8,000), so a server that grows with its readers cannot
//! take the machine down; what the killed process could not finish is reported as not run, and
//! sections 4 and 5 run on a new process started on the same data. `BENCH_SECTIONS=1,2,3,4,5`
//! picks sections; `BENCH_NEWSROOM_BIN` runs another build of the server than the one cargo made;
//! `BENCH_SERVER_ENV="NEWSROOM_A=1 NEWSROOM_B=2"` sets variables on the server.

mod bare;
#[path = "../common/mod.rs"]
mod common;
mod fan_out;
mod fill;
mod readers;
mod reads;
mod server;
mod sustained;
mod writes;

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use newsroom_testkit::http::Failures;
use newsroom_testkit::report::{
    closing, cores, median, met_cell, quantile, quantile_us, ratio, ratio_cell, secs, table_head,
    table_row, thousands, Started,
};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::{env_num, sections, sections_setting};

use common::*;

use bare::{bare_serve, Bare};
use fan_out::{fan_out, Source};
use fill::fill;
use readers::{self_check, Readers};
use reads::{reads, restarts};
use server::Server;
use sustained::sustained;
use writes::unrelated_writes;

/// Developments of the short stories.
const SHORT: usize = 10;
/// Sequential writes per case of section 1.
const WRITES: usize = 200;
/// Developments recorded while the streams watch (section 2).
const FANOUT: usize = 20;
const FANOUT_GAP: Duration = Duration::from_millis(250);
/// Requests per story and kind of GET (section 4).
const GETS: usize = 200;
/// Restarts per story for the first write after a restart (section 4).
const RESTARTS: usize = 3;
/// Reporters (and stories) of the sustained section.
const SUSTAINED_REPORTERS: usize = 16;
const FIRST_WINDOW: Duration = Duration::from_secs(10);
/// How long after the streams closed the memory is read.
const AFTER_CLOSE: Duration = Duration::from_secs(3);
/// Readers connecting at once (the rest wait), so the server's accept backlog never overflows.
const CONNECTING: usize = 256;
/// Why a case was not measured after the guard stepped in.
const KILLED: &str = "the server was killed by the RSS guard";
/// The longest wait for the server to go idle after a measured phase.
const SETTLE_CAP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Config {
    long: usize,
    streams: usize,
    sustained: Duration,
    fill_reporters: usize,
    timeout: Duration,
    fill_timeout: Duration,
    max_rss: u64,
    sections: Vec<u8>,
}

impl Config {
    fn from_env() -> Self {
        // 0 is a valid setting here (skip the section), which `env_num` does not accept.
        let sustained = std::env::var("BENCH_SUSTAINED_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| *v >= 0.0)
            .unwrap_or(60.0);
        Self {
            long: (env_num("BENCH_LONG", 10_000.0) as usize).max(SHORT),
            streams: (env_num("BENCH_STREAMS", 1_000.0) as usize).max(1),
            sustained: Duration::from_secs_f64(sustained),
            fill_reporters: (env_num("BENCH_FILL_REPORTERS", 4.0) as usize).max(1),
            timeout: Duration::from_secs_f64(env_num("BENCH_TIMEOUT_SECS", 300.0)),
            fill_timeout: Duration::from_secs_f64(env_num("BENCH_FILL_TIMEOUT_SECS", 900.0)),
            max_rss: (env_num("BENCH_MAX_RSS_MB", 8_000.0) * 1024.0 * 1024.0) as u64,
            sections: sections(&[1, 2, 3, 4, 5]),
        }
    }

    fn runs(&self, section: u8) -> bool {
        self.sections.contains(&section)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }
}

// =============================================================================================
// Report

#[derive(Debug)]
struct Row {
    case: String,
    result: String,
    baseline: String,
    ratio: Option<f64>,
    target: String,
    met: Option<bool>,
}

impl Row {
    fn new(case: impl Into<String>, result: impl Into<String>) -> Self {
        Self {
            case: case.into(),
            result: result.into(),
            baseline: "–".into(),
            ratio: None,
            target: "–".into(),
            met: None,
        }
    }

    fn baseline(mut self, b: impl Into<String>) -> Self {
        self.baseline = b.into();
        self
    }

    fn ratio(mut self, r: f64) -> Self {
        if r.is_finite() {
            self.ratio = Some(r);
        }
        self
    }

    fn target(mut self, t: impl Into<String>, met: bool) -> Self {
        self.target = t.into();
        self.met = Some(met);
        self
    }
}

fn ms(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "–".into();
    }
    let micros = seconds * 1e6;
    if micros < 1000.0 {
        format!("{micros:.1} µs")
    } else if micros < 1e6 {
        format!("{:.2} ms", micros / 1000.0)
    } else {
        format!("{seconds:.2} s")
    }
}

fn mb(bytes: u64) -> String {
    format!("{} MB", thousands((bytes >> 20) as f64))
}

fn div(a: Option<u64>, b: Option<u64>) -> f64 {
    ratio(a, b).unwrap_or(f64::NAN)
}

/// Everything the sections found, for the report.
#[derive(Debug, Default)]
struct Findings {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Findings {
    fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    fn note(&mut self, s: impl Into<String>) {
        let s = s.into();
        eprintln!("  {s}");
        self.notes.push(s);
    }

    fn skipped(&mut self, section: &str, why: &str) {
        self.row(Row::new(section, format!("not run: {why}")));
    }

    /// A case the server could not be measured on because it failed (killed, timed out): the
    /// target is missed.
    fn failed(&mut self, case: &str, why: &str, target: &str) {
        self.row(Row::new(case, format!("**not measured**: {why}")).target(target, false));
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = table_head(&["case", "result", "baseline", "ratio", "target", "met"]);
    for r in rows {
        let row = table_row(&[
            r.case.as_str(),
            &r.result,
            &r.baseline,
            &ratio_cell(r.ratio),
            &r.target,
            met_cell(r.met),
        ]);
        writeln!(out, "{row}").expect("writing to a String");
    }
    out
}

// =============================================================================================
// The run

async fn run(cfg: &Config, f: &mut Findings) -> Res<()> {
    eprintln!("starting the server (embedded, SQLite) with the live-stream caps raised");
    let mut server = Arc::new(Server::start(cfg).await?);
    f.note(format!(
        "The server started in {} with `NEWSROOM_LIVE_STREAMS_PER_ADDRESS=1000000 NEWSROOM_LIVE_STREAMS_TOTAL=1000000` set; idle RSS {}.",
        secs(server.starts[0]),
        mb(server.rss())
    ));

    let needs_long = [1, 2, 3, 4].iter().any(|s| cfg.runs(*s));
    let needs_streams = [1, 2, 3].iter().any(|s| cfg.runs(*s));
    let (mut long, mut short) = (None, None);
    if needs_long {
        eprintln!(
            "filling the long story: {} developments, {} reporters",
            cfg.long, cfg.fill_reporters
        );
        let failures = Arc::new(Failures::default());
        let deadline = Instant::now() + cfg.fill_timeout;
        let l = fill(
            &server,
            cfg.long,
            cfg.fill_reporters,
            deadline,
            &failures,
            true,
        )
        .await?;
        f.note(format!(
            "Set-up: long story of {} developments filed in {} ({:.0} developments/s, server CPU {:.1} s){}; {}.",
            thousands(l.developments as f64),
            secs(l.took),
            l.developments as f64 / l.took.as_secs_f64(),
            l.cpu,
            if l.timed_out { " — **fill timed out**" } else { "" },
            failures.describe()
        ));
        let failures = Arc::new(Failures::default());
        let s = fill(&server, SHORT, 1, cfg.deadline(), &failures, false).await?;
        f.note(format!(
            "Set-up: short story of {} developments; {}.",
            s.developments,
            failures.describe()
        ));
        long = Some(l);
        short = Some(s);
    }

    let idle = if needs_streams {
        server.settle(SETTLE_CAP, 0).await;
        Some(server.rss())
    } else {
        None
    };

    // Baselines first, with no stream open anywhere.
    let failures1 = Arc::new(Failures::default());
    let failures2 = Arc::new(Failures::default());
    let mut write_base = None;
    let mut floor = 0;
    if cfg.runs(1) {
        eprintln!("1. unrelated writes, no stream open");
        write_base = Some(unrelated_writes(&server, cfg, &failures1, floor).await?);
    }
    let mut fan_base = None;
    if cfg.runs(2) {
        eprintln!("2. fan-out baseline: one stream on a short story");
        let story = fill(&server, SHORT, 1, cfg.deadline(), &failures2, false)
            .await?
            .id;
        let readers = Readers::open(server.addr(), &story, 1, cfg.deadline()).await;
        server.settle(SETTLE_CAP, 0).await;
        let run = fan_out(
            &Source::Newsroom(&server, &story),
            &readers,
            cfg.deadline(),
            &failures2,
        )
        .await;
        let described = readers.close().await;
        f.note(format!("2. Baseline stream: {described}."));
        fan_base = Some(run);
    }

    let (mut write_streams, mut fan) = (None, None);
    let (mut open_rss, mut peak_rss, mut after_rss) = (None, None, None);
    // (idle, after) of the second open/close cycle.
    let mut second_cycle = None;
    // Idle again right before the streams open, after the baselines' writes warmed the server's
    // caches: what the streams are compared with when they are gone.
    let mut idle_before = None;
    if needs_streams {
        let long = long.as_ref().expect("the long story was filled");
        server.settle(SETTLE_CAP, 0).await;
        idle_before = Some(server.rss());
        eprintln!("opening {} streams on the long story", cfg.streams);
        let readers = Readers::open(server.addr(), &long.id, cfg.streams, cfg.deadline()).await;
        let opened = server.settle(SETTLE_CAP, 0).await;
        // What the open streams cost with nothing happening: later phases wait for that, not 0.
        floor = opened.ticks;
        if !server.killed() {
            open_rss = Some(server.rss());
        }
        f.note(format!(
            "Streams: {}; {} after they opened the server was {} ({} % of a core in the last second).",
            readers.describe(),
            secs(opened.waited),
            if opened.quiet { "quiet" } else { "still busy" },
            opened.ticks
        ));
        server.guard.take_peak();
        if cfg.runs(1) && !server.killed() {
            eprintln!("1. unrelated writes, {} streams open", cfg.streams);
            write_streams = Some(unrelated_writes(&server, cfg, &failures1, floor).await?);
        }
        if cfg.runs(2) && !server.killed() {
            eprintln!("2. fan-out to {} streams", cfg.streams);
            let run = fan_out(
                &Source::Newsroom(&server, &long.id),
                &readers,
                cfg.deadline(),
                &failures2,
            )
            .await;
            fan = Some(run);
        }
        peak_rss = Some(server.guard.take_peak());
        let described = readers.close().await;
        f.note(format!("Streams at the end: {described}."));
        if !server.killed() {
            tokio::time::sleep(AFTER_CLOSE).await;
            after_rss = Some(server.rss());
        }
        // A second cycle on the same server: idle, the streams open, the same fan-out, closed.
        // What the first cycle left that a second one does not add to is a high-water mark
        // (caches, the allocator's), not memory the streams keep.
        if cfg.runs(3) && !server.killed() {
            eprintln!(
                "3. a second cycle: {} streams open and close again",
                cfg.streams
            );
            server.settle(SETTLE_CAP, 0).await;
            let idle = server.rss();
            let readers = Readers::open(server.addr(), &long.id, cfg.streams, cfg.deadline()).await;
            server.settle(SETTLE_CAP, 0).await;
            fan_out(
                &Source::Newsroom(&server, &long.id),
                &readers,
                cfg.deadline(),
                &failures2,
            )
            .await;
            readers.close().await;
            if !server.killed() {
                tokio::time::sleep(AFTER_CLOSE).await;
                second_cycle = Some((idle, server.rss()));
            }
        }
    }
    // The floor of section 2: the same streams and events on a bare broadcast server.
    let mut floor_run = None;
    if let (true, Some(run)) = (cfg.runs(2), fan.as_ref()) {
        // The event's bytes without the chunk framing (size line and two CRLFs).
        let size = run.frame_bytes.saturating_sub(8).max(64);
        eprintln!(
            "2. the floor: a bare broadcast server, {} streams, frames of {size} B",
            cfg.streams
        );
        let bare = Bare::start(size).await?;
        let readers = Readers::open(bare.addr(), "bare", cfg.streams, cfg.deadline()).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let run = fan_out(&Source::Bare(&bare), &readers, cfg.deadline(), &failures2).await;
        let described = readers.close().await;
        f.note(format!("2. Floor streams: {described}."));
        bare.stop().await;
        floor_run = Some((size, run));
    }

    // 1.
    if cfg.runs(1) {
        let base = write_base.as_ref().expect("measured");
        let case = format!(
            "1. CPU per write to a short story, {} streams open on a {}-development story",
            thousands(cfg.streams as f64),
            thousands(long.as_ref().map_or(0, |l| l.developments) as f64)
        );
        match &write_streams {
            Some(w) if w.ok == 0 => f.failed(
                &case,
                if w.killed {
                    KILLED
                } else {
                    "no write answered before the deadline"
                },
                "≤ 1.2",
            ),
            Some(w) => {
                let ratio = w.cpu_per_write() / base.cpu_per_write();
                // A phase cut short by its deadline or the guard missed, whatever its ratio.
                let met = ratio <= 1.2 && !w.timed_out && !w.killed;
                f.row(
                    Row::new(
                        case,
                        format!(
                            "{} ({} writes, server CPU {:.2} s)",
                            ms(w.cpu_per_write()),
                            w.ok,
                            w.cpu
                        ),
                    )
                    .baseline(format!(
                        "{} ({} writes, no streams, server CPU {:.2} s)",
                        ms(base.cpu_per_write()),
                        base.ok,
                        base.cpu
                    ))
                    .ratio(ratio)
                    .target("≤ 1.2", met),
                );
                let (wl, bl) = (
                    w.latency.as_ref().expect("measured"),
                    base.latency.as_ref().expect("measured"),
                );
                f.row(
                    Row::new(
                        "1. write latency p50 / p99 (same writes)",
                        format!("{} / {}", quantile_us(wl, 0.5), quantile_us(wl, 0.99)),
                    )
                    .baseline(format!(
                        "{} / {}",
                        quantile_us(bl, 0.5),
                        quantile_us(bl, 0.99)
                    ))
                    .ratio(div(quantile(wl, 0.99), quantile(bl, 0.99))),
                );
            }
            None => f.failed(&case, KILLED, "≤ 1.2"),
        }
        if let (Some(row), true) = (
            f.rows.last_mut(),
            write_streams.as_ref().is_none_or(|w| w.ok == 0),
        ) {
            row.baseline = format!(
                "{} ({} writes, no streams, server CPU {:.2} s)",
                ms(base.cpu_per_write()),
                base.ok,
                base.cpu
            );
        }
        let runs = [
            ("no streams", Some(base)),
            ("streams open", write_streams.as_ref()),
        ];
        for (name, run) in runs {
            let Some(run) = run else { continue };
            if run.killed {
                f.note(format!(
                    "1. {name}: {} of {WRITES} writes answered before {KILLED}.",
                    run.ok
                ));
                continue;
            }
            f.note(format!(
                "1. {name}: {} of {WRITES} writes in time{}; CPU counted until the server was {} ({} after the last answer).",
                run.ok,
                if run.timed_out { " (**timed out**)" } else { "" },
                if run.settled { "quiet" } else { "**still busy** (cut off)" },
                secs(run.settle)
            ));
        }
        f.note(format!("1. {}.", failures1.describe()));
    }

    // 2.
    if cfg.runs(2) {
        let base = fan_base.as_ref().expect("measured");
        let bl = base.latency.as_ref().expect("measured");
        match &fan {
            Some(r) => {
                let l = r.latency.as_ref().expect("measured");
                let p99 = quantile(l, 0.99);
                // Every development posted and delivered, neither deadline nor guard stepping in.
                let whole = r.posted == FANOUT && r.missing == 0 && !r.timed_out && !r.killed;
                f.row(
                    Row::new(
                        format!(
                            "2. fan-out p99: POST → every stream's `id:` ({} streams, {} developments)",
                            thousands(r.streams as f64),
                            r.posted
                        ),
                        quantile_us(l, 0.99),
                    )
                    .baseline(format!("{} (1 stream, short story)", quantile_us(bl, 0.99)))
                    .ratio(div(p99, quantile(bl, 0.99)))
                    .target(
                        "≤ 250 ms",
                        whole && p99.is_some_and(|v| v <= 250_000),
                    ),
                );
                f.row(
                    Row::new("2. fan-out p50", quantile_us(l, 0.5))
                        .baseline(format!("{} (1 stream)", quantile_us(bl, 0.5)))
                        .ratio(div(quantile(l, 0.5), quantile(bl, 0.5))),
                );
                f.row(
                    Row::new(
                        format!("2. streams that received all {FANOUT} events"),
                        format!(
                            "{} of {} ({} pairs missing)",
                            thousands(r.complete as f64),
                            thousands(r.streams as f64),
                            thousands(r.missing as f64)
                        ),
                    )
                    .baseline(format!("{} of {}", base.complete, base.streams))
                    .target("all", whole && r.complete == r.streams),
                );
                let per = r.cpu_per_delivery();
                f.row(
                    Row::new(
                        "2. server CPU per delivered event per stream",
                        format!("{} (server CPU {:.2} s)", ms(per), r.cpu),
                    )
                    .baseline(format!(
                        "{} per development with 1 stream (server CPU {:.2} s)",
                        ms(base.cpu_per_delivery()),
                        base.cpu
                    ))
                    .ratio(per / base.cpu_per_delivery())
                    .target("≤ 10 µs", whole && per <= 10e-6),
                );
                // What each further stream adds: the server CPU beyond the baseline's (the same
                // developments written with one stream open), per event per further stream.
                let beyond = (r.cpu - base.cpu).max(0.0)
                    / (FANOUT * r.streams.saturating_sub(1)).max(1) as f64;
                f.row(
                    Row::new(
                        "2. server CPU per event per further stream (beyond the writes' own)",
                        ms(beyond),
                    )
                    .baseline(format!(
                        "server CPU {:.2} s with 1 stream, {:.2} s with {}",
                        base.cpu,
                        r.cpu,
                        thousands(r.streams as f64)
                    ))
                    .target("≤ 10 µs", whole && beyond <= 10e-6),
                );
                if let Some((size, floor)) = &floor_run {
                    let bare = floor.cpu_per_delivery();
                    let complete = floor.complete == floor.streams && floor.missing == 0;
                    f.row(
                        Row::new(
                            format!(
                                "2. the floor: CPU per event per stream of a bare broadcast server ({} streams, events of {size} B)",
                                thousands(floor.streams as f64)
                            ),
                            format!(
                                "{} (CPU {:.2} s; {} of {} streams got all {FANOUT})",
                                ms(bare),
                                floor.cpu,
                                thousands(floor.complete as f64),
                                thousands(floor.streams as f64)
                            ),
                        )
                        .baseline(format!("{} per delivered event per stream, newsroom", ms(per)))
                        .ratio(if complete { per / bare } else { f64::NAN }),
                    );
                }
                f.note(format!(
                    "2. {} of {FANOUT} developments answered; {} of {} (stream, development) pairs delivered in {}{}.",
                    r.posted,
                    thousands(r.pairs as f64),
                    thousands((r.posted * r.streams) as f64),
                    secs(r.took),
                    if r.killed {
                        " (**the server was killed by the RSS guard**)"
                    } else if r.timed_out {
                        " (**timed out** waiting)"
                    } else {
                        ""
                    }
                ));
            }
            None => f.failed("2. fan-out", KILLED, "≤ 250 ms, all streams, ≤ 10 µs"),
        }
        f.note(format!("2. {}.", failures2.describe()));
    }

    // 3.
    if cfg.runs(3) {
        let idle = idle.unwrap_or(0);
        match open_rss {
            Some(open) => f.row(
                Row::new(
                    format!("3. RSS with {} streams open", thousands(cfg.streams as f64)),
                    mb(open),
                )
                .baseline(format!("{} idle", mb(idle)))
                .ratio(open as f64 / idle as f64)
                .target("< 1 GB", open < 1 << 30),
            ),
            None => f.failed("3. RSS with streams open", KILLED, "< 1 GB"),
        }
        if let Some(peak) = peak_rss.filter(|p| *p > 0) {
            let desc = if server.killed() {
                " (**killed by the RSS guard**)"
            } else {
                ""
            };
            f.row(
                Row::new(
                    "3. peak RSS while sections 1–2 ran with the streams open",
                    format!("{}{desc}", mb(peak)),
                )
                .baseline(format!("{} idle", mb(idle)))
                .ratio(peak as f64 / idle as f64)
                .target("< 1 GB", peak < 1 << 30),
            );
        }
        match after_rss {
            Some(after) => {
                let before = idle_before.unwrap_or(idle);
                let ratio = after as f64 / before as f64;
                f.row(
                    Row::new(
                        format!(
                            "3. RSS {} s after the streams closed",
                            AFTER_CLOSE.as_secs()
                        ),
                        mb(after),
                    )
                    .baseline(format!(
                        "{} idle right before they opened ({} idle after the set-up, before the baselines' writes)",
                        mb(before),
                        mb(idle)
                    ))
                    .ratio(ratio)
                    .target("≤ 1.1", ratio <= 1.1),
                );
            }
            None => f.failed("3. RSS after the streams closed", KILLED, "≤ 1.1"),
        }
        if let Some((idle2, after2)) = second_cycle {
            let ratio = after2 as f64 / idle2 as f64;
            f.row(
                Row::new(
                    format!(
                        "3. second cycle: RSS {} s after the streams closed again",
                        AFTER_CLOSE.as_secs()
                    ),
                    mb(after2),
                )
                .baseline(format!("{} idle right before they opened again", mb(idle2)))
                .ratio(ratio)
                .target("≤ 1.1", ratio <= 1.1),
            );
        }
    }

    // 4. and 5. run on a new process (same data) if the guard killed the first one.
    if server.killed() && (cfg.runs(4) || cfg.runs(5)) {
        let s = Arc::get_mut(&mut server).expect("no other holder of the server");
        s.restart().await?;
        s.guard.tripped.store(false, Ordering::Relaxed);
        f.note("The RSS guard had killed the server: sections 4 and 5 ran on a new process started on the same data.");
    }

    if cfg.runs(4) {
        let (long, short) = (
            long.as_ref().expect("filled"),
            short.as_ref().expect("filled"),
        );
        eprintln!("4. reads on the long and the short story");
        let quiet = server.settle(SETTLE_CAP, 0).await;
        if !quiet.quiet {
            f.note(format!(
                "4. The server was still busy ({} % of a core) {} after the streams closed.",
                quiet.ticks,
                secs(quiet.waited)
            ));
        }
        let failures = Failures::default();
        let r = reads(&server, long, short, cfg, &failures).await;
        let [cl, cs] = &r.current;
        let [al, as_] = &r.as_of;
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            let ratio = div(quantile(cl, q), quantile(cs, q));
            f.row(
                Row::new(
                    format!("4. GET story {name}, long ÷ short"),
                    format!("{} (long)", quantile_us(cl, q)),
                )
                .baseline(format!("{} (short)", quantile_us(cs, q)))
                .ratio(ratio)
                .target("≤ 1.5", ratio <= 1.5),
            );
        }
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            let ratio = div(quantile(al, q), quantile(as_, q));
            f.row(
                Row::new(
                    format!("4. GET story `as_of` {name}, long ÷ short"),
                    format!("{} (long)", quantile_us(al, q)),
                )
                .baseline(format!("{} (short)", quantile_us(as_, q)))
                .ratio(ratio)
                .target("≤ 1.5", ratio <= 1.5),
            );
        }
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            let ratio = div(quantile(al, q), quantile(cl, q));
            f.row(
                Row::new(
                    format!("4. GET `as_of` ÷ current GET {name}, long story"),
                    format!("{} (`as_of`)", quantile_us(al, q)),
                )
                .baseline(format!("{} (current)", quantile_us(cl, q)))
                .ratio(ratio)
                .target("≤ 2", ratio <= 2.0),
            );
        }
        f.note(format!(
            "4. {} + {} current GETs, {} + {} `as_of` GETs (long + short; `as_of` = when each story was half filed), server CPU {:.2} s{}.",
            cl.len(),
            cs.len(),
            al.len(),
            as_.len(),
            r.cpu,
            if r.timed_out { " (**timed out**)" } else { "" }
        ));
        let warm = fill(
            &server,
            0,
            1,
            cfg.deadline(),
            &Arc::new(Failures::default()),
            false,
        )
        .await?
        .id;
        let server_mut = Arc::get_mut(&mut server).expect("no other holder of the server");
        let rs = restarts(server_mut, [&long.id, &short.id], &warm, cfg, &failures).await?;
        let (ml, msh) = (median(&rs.first[0]), median(&rs.first[1]));
        let ratio = match (ml, msh) {
            (Some(a), Some(b)) => a.as_secs_f64() / b.as_secs_f64(),
            _ => f64::NAN,
        };
        f.row(
            Row::new(
                "4. first write after a restart, long ÷ short (median)",
                format!(
                    "{} (long)",
                    ml.map_or_else(|| "–".into(), |d| ms(d.as_secs_f64()))
                ),
            )
            .baseline(format!(
                "{} (short)",
                msh.map_or_else(|| "–".into(), |d| ms(d.as_secs_f64()))
            ))
            .ratio(ratio)
            .target("≤ 1.5", ratio <= 1.5),
        );
        let all = |v: &[Duration]| {
            v.iter()
                .map(|d| ms(d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        f.note(format!(
            "4. First writes after a restart: long {}; short {}; start-up to healthy {}{}{}; {}.",
            all(&rs.first[0]),
            all(&rs.first[1]),
            server
                .starts
                .iter()
                .skip(1)
                .map(|d| secs(*d))
                .collect::<Vec<_>>()
                .join(", "),
            if rs.killed > 0 {
                format!("; **{} stops needed SIGKILL**", rs.killed)
            } else {
                String::new()
            },
            if rs.timed_out { " (**timed out**)" } else { "" },
            failures.describe()
        ));
    }

    if cfg.runs(5) {
        if cfg.sustained.is_zero() {
            f.skipped("5. sustained", "BENCH_SUSTAINED_SECS=0");
        } else {
            eprintln!(
                "5. sustained: {SUSTAINED_REPORTERS} reporters for {} s",
                cfg.sustained.as_secs_f64()
            );
            server.settle(SETTLE_CAP, 0).await;
            let failures = Arc::new(Failures::default());
            let s = sustained(&server, cfg, &failures).await?;
            let ratio = s.rate() / s.first_rate();
            f.row(
                Row::new(
                    format!(
                        "5. sustained developments/s, {SUSTAINED_REPORTERS} reporters, whole {} s ÷ first {} s",
                        s.window.as_secs_f64(),
                        FIRST_WINDOW.min(s.window).as_secs_f64()
                    ),
                    format!(
                        "{:.0}/s ({} developments, server CPU {:.1} s)",
                        s.rate(),
                        thousands(s.all as f64),
                        s.cpu
                    ),
                )
                .baseline(format!(
                    "{:.0}/s ({} developments, server CPU {:.1} s)",
                    s.first_rate(),
                    thousands(s.first as f64),
                    s.first_cpu
                ))
                .ratio(ratio)
                .target("≥ 0.8", ratio >= 0.8),
            );
            f.note(format!("5. {}.", failures.describe()));
        }
    }

    if let Some(s) = Arc::get_mut(&mut server) {
        s.stop().await;
    }
    Ok(())
}

fn main() -> Res<()> {
    if std::env::var_os("BENCH_BARE_SSE").is_some() {
        return bare_serve();
    }
    // `cargo bench` passes `--bench`; filters are not supported (see `BENCH_SECTIONS`).
    self_check()?;
    let cfg = Config::from_env();
    let rt = runtime()?;
    let started = Started::now();
    let mut findings = Findings::default();
    let outcome = rt.block_on(run(&cfg, &mut findings));

    let cores = cores();
    let env = format!(
        "BENCH_LONG={} BENCH_STREAMS={} BENCH_SUSTAINED_SECS={} BENCH_TIMEOUT_SECS={}",
        cfg.long,
        cfg.streams,
        cfg.sustained.as_secs_f64(),
        cfg.timeout.as_secs_f64()
    ) + &sections_setting(&cfg.sections, &[1, 2, 3, 4, 5]);
    let mut out = opening("Breaking news", &env, "breaking_news");
    writeln!(
        out,
        "{cores} CPUs visible; one `newsroom serve` process (embedded, SQLite, logging at `warn`, rate limits off) and the bench's clients on this machine; {}.\n",
        started.summary()
    )?;
    out.push_str(&table(&findings.rows));
    out.push('\n');
    out.push_str(&closing(&findings.notes, &outcome));
    print!("{out}");
    outcome
}
