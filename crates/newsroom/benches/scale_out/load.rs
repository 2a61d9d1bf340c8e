//! Section 1, embedded vs scale-out: the same load on both deployments, and its report.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use hdrhistogram::Histogram;
use newsroom_testkit::http::wait_for;
use newsroom_testkit::pg::Database;
use newsroom_testkit::report::{histogram, load_average, quantiles, record, secs, thousands};
use serde_json::json;
use tokio::sync::watch;

use crate::common::*;

use crate::cpu::{cpu_snapshot, cpu_use, CpuUse};
use crate::processes::{
    bounded, call, fresh_deployment, http_client, ident, open_story, post_development,
};
use crate::receiver::{start_receiver, Sink};
use crate::services::Stream;
use crate::{Config, IDLE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Embedded,
    ScaleOut,
}

impl Mode {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Mode::Embedded => "embedded: 1 process `--role all`, SQLite log",
            Mode::ScaleOut => {
                "scale-out: `--role command` + `--role projector` + `--role notifier`, PostgreSQL log, JetStream"
            }
        }
    }
}

/// The processes of one deployment and where each API is.
pub(crate) struct Deployment {
    pub(crate) procs: Vec<Proc>,
    command: String,
    reads: String,
    subscribers: String,
    reporter: String,
    started: Duration,
    // Dropped after the processes (fields drop in order): the files, the stream, the database.
    _dir: tempfile::TempDir,
    _stream: Option<Stream>,
    _db: Option<Database>,
}

impl Deployment {
    pub(crate) async fn start(mode: Mode, cfg: &Config, client: &reqwest::Client) -> Res<Self> {
        let dir = tempfile::tempdir()?;
        let (db, stream, env) = match mode {
            Mode::Embedded => (None, None, Env::embedded()),
            Mode::ScaleOut => {
                let (db, stream, env) = fresh_deployment(cfg).await?;
                (Some(db), Some(stream), env)
            }
        };
        let started = Instant::now();
        let (procs, reporter) = match mode {
            Mode::Embedded => {
                let reporter = env.reporter_token(&dir.path().join("all"))?;
                (vec![env.spawn("all", dir.path(), "all")?], reporter)
            }
            Mode::ScaleOut => {
                let reporter = env.reporter_token(&dir.path().join("command"))?;
                (
                    vec![
                        env.spawn("command", dir.path(), "command")?,
                        env.spawn("projector", dir.path(), "projector")?,
                        env.spawn("notifier", dir.path(), "notifier")?,
                    ],
                    reporter,
                )
            }
        };
        let mut procs = procs;
        for p in &mut procs {
            p.healthy(client).await?;
        }
        let base = |name: &str| base_of(&procs, name);
        let (command, reads, subscribers) = match mode {
            Mode::Embedded => (base("all"), base("all"), base("all")),
            Mode::ScaleOut => (base("command"), base("projector"), base("notifier")),
        };
        Ok(Self {
            procs,
            command,
            reads,
            subscribers,
            reporter,
            started: started.elapsed(),
            _dir: dir,
            _stream: stream,
            _db: db,
        })
    }

    pub(crate) async fn stop(mut self) {
        for p in self.procs.drain(..) {
            p.stop().await;
        }
    }

    /// The processes' ids and names, in start order, for the CPU accounting.
    fn pids(&self) -> Vec<(u32, String)> {
        self.procs.iter().map(ident).collect()
    }

    fn log_tails(&self) -> String {
        self.procs
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.name, p.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How a phase offers its load.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pace {
    /// Developments started on a fixed schedule (open loop: a slow answer delays nothing).
    Rate(f64),
    /// Reporters each keeping one development in flight (closed loop: as fast as answered).
    Reporters(usize),
}

#[derive(Debug)]
pub(crate) struct Phase {
    pace: Pace,
    pub(crate) window: Duration,
    pub(crate) ok: usize,
    pub(crate) errors: usize,
    first_error: Option<String>,
    pub(crate) post: Histogram<u64>,
    alert: Histogram<u64>,
    alerts_missing: usize,
    pub(crate) duplicates: usize,
    pub(crate) repeats: usize,
    lag: Histogram<u64>,
    lag_timeouts: usize,
    pub(crate) cpu: CpuUse,
    /// Mean appends per log transaction in the process taking commands.
    batch: Option<f64>,
    /// The share of its commands' time spent waiting for PostgreSQL's append lock.
    lock_share: Option<f64>,
    pub(crate) load: (String, String),
}

impl Phase {
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }
}

#[derive(Debug)]
pub(crate) struct LoadRun {
    mode: Mode,
    pub(crate) start_up: Duration,
    /// CPU used with nothing to do (after the warm-up, before the phases).
    idle: CpuUse,
    pub(crate) phases: Vec<Phase>,
}

pub(crate) async fn load_case(mode: Mode, cfg: &Config) -> Res<LoadRun> {
    let client = http_client()?;
    eprintln!("  starting: {}", mode.describe());
    let app = Deployment::start(mode, cfg, &client).await?;
    let result = drive_load(cfg, &client, &app).await;
    if result.is_err() {
        eprintln!("{}", app.log_tails());
    }
    let start_up = app.started;
    app.stop().await;
    let (idle, phases) = result?;
    Ok(LoadRun {
        mode,
        start_up,
        idle,
        phases,
    })
}

async fn drive_load(
    cfg: &Config,
    client: &reqwest::Client,
    app: &Deployment,
) -> Res<(CpuUse, Vec<Phase>)> {
    let sink = Sink::default();
    let (hook, receiver) = start_receiver(&sink).await?;

    eprintln!(
        "  opening {} stories, one subscriber following each",
        cfg.stories
    );
    let stories = {
        let (client, base, token) = (client.clone(), app.command.clone(), app.reporter.clone());
        bounded((0..cfg.stories).collect(), 16, move |_| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            async move { open_story(&client, &base, &token).await }
        })
        .await?
    };
    let signed = call(
        client,
        format!("{}/v1/subscribers", app.subscribers),
        None,
        json!({"name": "Wire desk"}),
    )
    .await?;
    let id = signed["id"].as_str().ok_or("no subscriber id")?.to_owned();
    let token = signed["token"]
        .as_str()
        .ok_or("no subscriber token")?
        .to_owned();
    call(
        client,
        format!("{}/v1/subscribers/{id}/endpoints", app.subscribers),
        Some(&token),
        json!({"kind": "webhook", "url": hook}),
    )
    .await?;
    {
        let (client, url, token) = (
            client.clone(),
            format!("{}/v1/subscribers/{id}/subscriptions", app.subscribers),
            token.clone(),
        );
        bounded(stories.clone(), 16, move |story| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            async move { call(&client, url, Some(&token), json!({"story": story})).await }
        })
        .await?;
    }

    // Warm-up, unrecorded: one development per story, and its alert.
    eprintln!("  warm-up: one development per story");
    let warm = {
        let (client, base, token) = (client.clone(), app.command.clone(), app.reporter.clone());
        bounded(stories.clone(), cfg.reporters, move |story| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            async move { Ok(post_development(&client, &base, &token, &story).await) }
        })
        .await?
    };
    if let Some(e) = warm.iter().find_map(|p| p.error.clone()) {
        return Err(format!("warm-up POST failed: {e}").into());
    }
    if !wait_for(
        warm.len(),
        Duration::from_secs(15),
        Duration::from_secs(60),
        || sink.count(),
    )
    .await
    {
        return Err(format!("warm-up: {} of {} alerts arrived", sink.count(), warm.len()).into());
    }

    // What the processes cost with nothing to do (polling, timers).
    eprintln!("  idle for {IDLE:?}");
    let before = cpu_snapshot();
    tokio::time::sleep(IDLE).await;
    let idle = cpu_use(&before, &cpu_snapshot(), &app.pids());

    let stories = Arc::new(stories);
    let mut phases = Vec::new();
    // The fixed rate first, while every deployment's stories are the same size.
    for pace in [Pace::Rate(cfg.rate), Pace::Reporters(cfg.reporters)] {
        phases.push(run_phase(pace, cfg, client, app, &stories, &sink).await?);
    }
    receiver.abort();
    Ok((idle, phases))
}

async fn run_phase(
    pace: Pace,
    cfg: &Config,
    client: &reqwest::Client,
    app: &Deployment,
    stories: &Arc<Vec<String>>,
    sink: &Sink,
) -> Res<Phase> {
    let load_start = load_average();
    let (count_before, duplicates_before, repeats_before) = {
        let a = sink.inner.lock().expect("arrivals lock");
        (sink.count(), a.duplicates, a.repeats)
    };
    let batch_before = batch_metric(client, &app.command).await;
    let cpu_before = cpu_snapshot();
    match pace {
        Pace::Rate(r) => eprintln!("  load: {r} developments/s for {} s", cfg.seconds),
        Pace::Reporters(k) => eprintln!("  load: {k} reporters for {} s", cfg.seconds),
    }
    let (answers, _) = watch::channel::<Option<(i64, Instant)>>(None);
    let answers = Arc::new(answers);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(cfg.seconds);

    // The lag probe: after each answer it sees, how long until the read side shows it.
    let probe = {
        let (client, base) = (client.clone(), app.reads.clone());
        let mut seen = answers.subscribe();
        tokio::spawn(async move {
            let mut lag = histogram();
            let mut timeouts = 0;
            while Instant::now() < until {
                if tokio::time::timeout_at(until.into(), seen.changed())
                    .await
                    .is_err()
                {
                    break;
                }
                let Some((position, answered)) = *seen.borrow_and_update() else {
                    continue;
                };
                let shown = client
                    .get(format!("{base}/v1/stories?limit=1&min_position={position}"))
                    .send()
                    .await;
                match shown {
                    Ok(r) if r.status() == StatusCode::OK => {
                        let _ = r.bytes().await;
                        record(&mut lag, answered.elapsed());
                    }
                    _ => timeouts += 1,
                }
            }
            (lag, timeouts)
        })
    };

    let mut posted = Vec::new();
    let mut last_done = until;
    match pace {
        Pace::Reporters(k) => {
            let reporters: Vec<_> = (0..k)
                .map(|r| {
                    let (client, base, token, stories, answers) = (
                        client.clone(),
                        app.command.clone(),
                        app.reporter.clone(),
                        stories.clone(),
                        answers.clone(),
                    );
                    tokio::spawn(async move {
                        let mut posted = Vec::new();
                        // Reporter r files its k-th development on story (r + k): reporters
                        // spread over all stories and only occasionally meet on one.
                        for k in 0.. {
                            if Instant::now() >= until {
                                break;
                            }
                            let story = &stories[(r + k) % stories.len()];
                            let p = post_development(&client, &base, &token, story).await;
                            if let Some(position) = p.position {
                                answers.send_replace(Some((position, p.answered)));
                            }
                            posted.push(p);
                        }
                        posted
                    })
                })
                .collect();
            for r in reporters {
                posted.extend(r.await?);
            }
        }
        Pace::Rate(rate) => {
            let n = (rate * cfg.seconds).round().max(1.0) as usize;
            let period = Duration::from_secs_f64(1.0 / rate);
            let start = tokio::time::Instant::from_std(started);
            let mut tasks = Vec::with_capacity(n);
            for i in 0..n {
                tokio::time::sleep_until(start + period.mul_f64(i as f64)).await;
                let (client, base, token, story, answers) = (
                    client.clone(),
                    app.command.clone(),
                    app.reporter.clone(),
                    stories[i % stories.len()].clone(),
                    answers.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let p = post_development(&client, &base, &token, &story).await;
                    if let Some(position) = p.position {
                        answers.send_replace(Some((position, p.answered)));
                    }
                    p
                }));
            }
            for t in tasks {
                posted.push(t.await?);
            }
        }
    }
    for p in &posted {
        last_done = last_done.max(p.answered);
    }
    let window = last_done - started;
    let (lag, lag_timeouts) = probe.await?;
    let cpu = cpu_use(&cpu_before, &cpu_snapshot(), &app.pids());
    let (batch, lock_share) = match (batch_before, batch_metric(client, &app.command).await) {
        (Some(a), Some(b)) if b.batch_count > a.batch_count => {
            let commands = b.command_seconds - a.command_seconds;
            (
                Some((b.batch_sum - a.batch_sum) / (b.batch_count - a.batch_count)),
                (commands > 0.0).then(|| (b.lock_wait_seconds - a.lock_wait_seconds) / commands),
            )
        }
        _ => (None, None),
    };

    let mut phase = Phase {
        pace,
        window,
        ok: 0,
        errors: 0,
        first_error: None,
        post: histogram(),
        alert: histogram(),
        alerts_missing: 0,
        duplicates: 0,
        repeats: 0,
        lag,
        lag_timeouts,
        cpu,
        batch,
        lock_share,
        load: (load_start, String::new()),
    };
    let mut expected = HashMap::new();
    for p in &posted {
        match &p.error {
            None => {
                phase.ok += 1;
                record(&mut phase.post, p.took);
                expected.insert(p.development.clone(), p.answered);
            }
            Some(e) => {
                phase.errors += 1;
                phase.first_error.get_or_insert_with(|| e.clone());
            }
        }
    }
    eprintln!(
        "  {} answered ({} errors) in {:.1} s; waiting for their alerts",
        phase.ok,
        phase.errors,
        window.as_secs_f64()
    );
    wait_for(
        count_before + expected.len(),
        Duration::from_secs(15),
        Duration::from_secs(300),
        || sink.count(),
    )
    .await;
    let arrivals = sink.inner.lock().expect("arrivals lock");
    for (development, answered) in &expected {
        match arrivals.first.get(development) {
            Some(at) => record(&mut phase.alert, at.saturating_duration_since(*answered)),
            None => phase.alerts_missing += 1,
        }
    }
    phase.duplicates = arrivals.duplicates - duplicates_before;
    phase.repeats = arrivals.repeats - repeats_before;
    if arrivals.unparsed > 0 {
        return Err(format!(
            "{} webhook requests carried no development id",
            arrivals.unparsed
        )
        .into());
    }
    phase.load.1 = load_average();
    Ok(phase)
}

/// What the process taking commands reports of its log's writer (`/metrics`): the sum and count
/// of its group-commit batch sizes, the seconds its commands took in all, and the seconds they
/// waited for PostgreSQL's append lock in all (none in embedded mode).
#[derive(Debug, Clone, Copy)]
struct WriterMetrics {
    batch_sum: f64,
    batch_count: f64,
    command_seconds: f64,
    lock_wait_seconds: f64,
}

async fn batch_metric(client: &reqwest::Client, base: &str) -> Option<WriterMetrics> {
    let metrics = Metrics::read(client, base).await?;
    Some(WriterMetrics {
        batch_sum: metrics.sum("newsroom_store_batch_size_sum")?,
        batch_count: metrics.sum("newsroom_store_batch_size_count")?,
        // One sample per command name: `newsroom_command_seconds_sum{command="…"} 1.5`.
        command_seconds: metrics.sum("newsroom_command_seconds_sum").unwrap_or(0.0),
        lock_wait_seconds: metrics
            .sum("newsroom_store_append_lock_wait_seconds_sum")
            .unwrap_or(0.0),
    })
}

pub(crate) fn report_load(out: &mut String, runs: &[LoadRun], cfg: &Config) -> std::fmt::Result {
    writeln!(out, "### 1. Embedded vs scale-out, same load\n")?;
    writeln!(
        out,
        "{} stories; one subscriber with a webhook endpoint (axum receiver in the bench process) following each; one unrecorded development per story first. Then, on each deployment, two phases of {} s: (a) a fixed rate of {} `POST /v1/stories/{{id}}/developments` per second (open loop, round-robin over the stories), (b) {} reporters each keeping one POST in flight (closed loop: as fast as answered). Alert latency: POST answered → webhook arrived, per development. Projection lag: POST answered → `GET /v1/stories?limit=1&min_position=<its position>` answered by the read side (a sequential probe taking the newest answer each time). Commands/s counts 2xx answers; errors are non-2xx answers and transport failures.\n",
        cfg.stories, cfg.seconds, cfg.rate, cfg.reporters
    )?;
    let phases = runs.iter().map(|r| r.phases.len()).max().unwrap_or(0);
    for i in 0..phases {
        let title = match runs.iter().find_map(|r| r.phases.get(i)).map(|p| p.pace) {
            Some(Pace::Rate(rate)) => format!("(a) {rate} developments/s, open loop"),
            Some(Pace::Reporters(k)) => format!("(b) {k} reporters, closed loop"),
            None => continue,
        };
        writeln!(out, "#### {title}\n")?;
        writeln!(
            out,
            "| mode | commands/s (2xx) | errors | POST p50 / p99 | alerts | alert p50 | alert p99 | alert max | projection lag p50 / p99 (samples) |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
        for r in runs {
            let Some(p) = r.phases.get(i) else { continue };
            let (p50, p99, _) = quantiles(&p.post);
            let (a50, a99, amax) = quantiles(&p.alert);
            let (l50, l99, _) = quantiles(&p.lag);
            writeln!(
                out,
                "| {} | {} ({} in {:.1} s) | {} | {p50} / {p99} | {} arrived, {} missing, {} duplicate ids | {a50} | {a99} | {amax} | {l50} / {l99} ({}{}) |",
                r.mode.describe(),
                thousands(p.rate()),
                thousands(p.ok as f64),
                p.window.as_secs_f64(),
                p.errors,
                thousands(p.alert.len() as f64),
                p.alerts_missing,
                p.duplicates,
                p.lag.len(),
                if p.lag_timeouts > 0 {
                    format!(", {} not shown within 5 s", p.lag_timeouts)
                } else {
                    String::new()
                },
            )?;
        }
        writeln!(out)?;
        let find = |m: Mode| {
            runs.iter()
                .find(|r| r.mode == m)
                .and_then(|r| r.phases.get(i))
        };
        if let (Some(e), Some(s)) = (find(Mode::Embedded), find(Mode::ScaleOut)) {
            let ratio = |a: &Histogram<u64>, b: &Histogram<u64>, q: f64| {
                b.value_at_quantile(q) as f64 / a.value_at_quantile(q).max(1) as f64
            };
            writeln!(
                out,
                "- Scale-out ÷ embedded: commands/s {:.2}; alert p50 {:.2}, p99 {:.2}; projection lag p50 {:.2}, p99 {:.2}.",
                s.rate() / e.rate().max(f64::MIN_POSITIVE),
                ratio(&e.alert, &s.alert, 0.5),
                ratio(&e.alert, &s.alert, 0.99),
                ratio(&e.lag, &s.lag, 0.5),
                ratio(&e.lag, &s.lag, 0.99),
            )?;
        }
        for r in runs {
            let Some(p) = r.phases.get(i) else { continue };
            writeln!(
                out,
                "- {}: mean group-commit batch {}; {:.2} ms of CPU per command (newsroom processes, PostgreSQL and NATS together); CPU-seconds in the window: {}; 1-minute load average {} at the start, {} at the end.{}{}",
                match r.mode {
                    Mode::Embedded => "Embedded",
                    Mode::ScaleOut => "Scale-out",
                },
                match (p.batch, p.lock_share) {
                    (Some(b), Some(share)) if r.mode == Mode::ScaleOut => format!(
                        "{b:.1} appends per transaction, {:.1} % of the commands' time waiting for the append lock",
                        share * 100.0
                    ),
                    (Some(b), _) => format!("{b:.1} appends per transaction"),
                    (None, _) => "n/a".to_owned(),
                },
                p.cpu.system() * 1000.0 / p.ok.max(1) as f64,
                p.cpu.describe(),
                p.load.0,
                p.load.1,
                if p.repeats > 0 {
                    format!(" {} developments alerted twice under different ids.", p.repeats)
                } else {
                    String::new()
                },
                p.first_error
                    .as_ref()
                    .map(|e| format!(" First error: `{}`.", e.chars().take(200).collect::<String>()))
                    .unwrap_or_default(),
            )?;
        }
        writeln!(out)?;
    }
    for r in runs {
        writeln!(
            out,
            "- {}: processes healthy {} after spawn; idle for {} s after the warm-up, CPU-seconds: {}.",
            r.mode.describe(),
            secs(r.start_up),
            IDLE.as_secs(),
            r.idle.describe()
        )?;
    }
    writeln!(out)
}
