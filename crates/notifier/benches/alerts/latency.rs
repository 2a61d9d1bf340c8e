//! Section 2, end-to-end latency: from a development's POST to its alert's arrival, against
//! plain POSTs to the same receiver; then on a long story. And its report.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use newsroom_notifier::store::parse_ts;
use newsroom_testkit::http::wait_for;
use newsroom_testkit::report::{
    histogram, load_averages, mean, percentile, record, thousands, verdict,
};
use newsroom_testkit::Res;

use crate::app::{ms_between, paced, start_app, App, Posted};
use crate::receiver::{start_receivers, Arrival, Sink};
use crate::{cells, Config, WARM_UP};

#[derive(Debug)]
struct BaselineRun {
    rtt: Histogram<u64>,
    requests: usize,
    errors: usize,
}

/// Plain POSTs of `body` straight to the receiver, at the run's rate.
async fn baseline(url: &str, body: Vec<u8>, cfg: &Config, tag: &str) -> Res<BaselineRun> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let body = Bytes::from(body);
    let signature = format!("v1,{}", "A".repeat(44));
    let results = paced(cfg.rate, cfg.seconds, |i| {
        let (client, url, body, signature) = (
            client.clone(),
            url.to_owned(),
            body.clone(),
            signature.clone(),
        );
        let id = format!("base_{tag}_{i:08}");
        async move {
            let sent = Instant::now();
            let result = client
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", Utc::now().timestamp().to_string())
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await;
            let ok = match result {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            };
            (ok, sent.elapsed())
        }
    })
    .await?;
    let mut run = BaselineRun {
        rtt: histogram(),
        requests: results.len(),
        errors: 0,
    };
    for (ok, rtt) in results {
        if ok {
            record(&mut run.rtt, rtt);
        } else {
            run.errors += 1;
        }
    }
    Ok(run)
}

#[derive(Debug)]
pub(crate) struct LatencyRun {
    baseline_before: BaselineRun,
    baseline_after: BaselineRun,
    pub(crate) baseline: Histogram<u64>,
    pub(crate) alert: Histogram<u64>,
    pub(crate) command: Histogram<u64>,
    posted: usize,
    post_errors: usize,
    missing: usize,
    early: usize,
    duplicates: usize,
    pub(crate) retried: usize,
    alert_bytes: usize,
    /// One-row SQLite commits (WAL, `synchronous = FULL`) beside the queue's file.
    commit: Histogram<u64>,
    /// Alert latency (ms) of the first and the last fifth of the measured developments.
    drift: (Vec<f64>, Vec<f64>),
    long: Option<LongStory>,
    /// Signed ms per stage: (label, values).
    stages: Vec<(&'static str, Vec<f64>)>,
    pub(crate) load: (String, String),
}

pub(crate) async fn end_to_end(cfg: &Config) -> Res<LatencyRun> {
    let load_start = load_averages();
    let app = start_app().await?;
    let sink = Sink::default();
    let (urls, servers) = start_receivers(1, &sink).await?;
    let story = app.open_story().await?;
    app.webhook_subscriber(&urls[0], &story).await?;

    eprintln!("  warm-up: {WARM_UP} developments");
    let warm = paced(cfg.rate, WARM_UP as f64 / cfg.rate, |_| {
        app.post(&story, "priority")
    })
    .await?;
    if let Some(e) = warm.iter().find_map(|p| p.error.clone()) {
        return Err(format!("warm-up POST failed: {e}").into());
    }
    if !wait_for(
        WARM_UP,
        Duration::from_secs(20),
        Duration::from_secs(60),
        || sink.count(),
    )
    .await
    {
        return Err(format!("only {} of {WARM_UP} warm-up alerts arrived", sink.count()).into());
    }
    let sample = sink
        .sample
        .lock()
        .expect("sample lock")
        .clone()
        .ok_or("no alert body seen")?;

    eprintln!("  baseline (before): plain POSTs to the receiver");
    let baseline_before = baseline(&urls[0], sample.clone(), cfg, "before").await?;

    eprintln!(
        "  alerts: {} developments/s for {} s",
        cfg.rate, cfg.seconds
    );
    let posted = paced(cfg.rate, cfg.seconds, |_| app.post(&story, "priority")).await?;
    let wanted = accepted(&posted);
    let arrived_of_wanted = || sink.arrived_of(&wanted, |a| a.webhook_id.starts_with("msg_"));
    wait_for(
        wanted.len(),
        Duration::from_secs(20),
        Duration::from_secs(120),
        arrived_of_wanted,
    )
    .await;

    eprintln!("  one-row SQLite commits beside the queue");
    let probe = app.dir.path().join("commit-probe.db");
    let commit = tokio::task::spawn_blocking(move || sqlite_commits(&probe, 200)).await??;

    eprintln!("  baseline (after): plain POSTs to the receiver");
    let baseline_after = baseline(&urls[0], sample.clone(), cfg, "after").await?;

    // Per development: its first alert's arrival; any further arrival is a duplicate.
    let arrivals = sink.arrivals();
    let mut first: HashMap<&str, &Arrival> = HashMap::new();
    let mut seen_ids: HashSet<&str> = HashSet::new();
    let mut duplicates = 0;
    for a in arrivals.iter().filter(|a| a.webhook_id.starts_with("msg_")) {
        if !seen_ids.insert(a.webhook_id.as_str()) {
            duplicates += 1;
        }
        if let Some(d) = a.development.as_deref().filter(|d| wanted.contains(d)) {
            first.entry(d).or_insert(a);
        }
    }

    // The queue's own timestamps for each development's alert.
    let rows: Vec<(String, String, String, u32)> = app
        .notifier
        .read(|c| {
            Ok(c.statement(
                "SELECT a.development_id, a.created_at, d.updated_at, d.attempts
                 FROM alerts a JOIN deliveries d ON d.alert_id = a.id",
            )?
            .query_map(newsroom_log::args![], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?)
        })
        .await?;
    let queue: HashMap<String, (DateTime<Utc>, DateTime<Utc>, u32)> = rows
        .into_iter()
        .map(|(d, created, updated, attempts)| {
            (d, (parse_ts(&created), parse_ts(&updated), attempts))
        })
        .collect();

    let mut run = LatencyRun {
        baseline: histogram(),
        baseline_before,
        baseline_after,
        alert: histogram(),
        command: histogram(),
        posted: posted.len(),
        post_errors: posted.iter().filter(|p| p.error.is_some()).count(),
        missing: 0,
        early: 0,
        duplicates,
        retried: 0,
        alert_bytes: sample.len(),
        commit,
        drift: (Vec::new(), Vec::new()),
        long: None,
        stages: Vec::new(),
        load: (String::new(), String::new()),
    };
    run.baseline.add(&run.baseline_before.rtt)?;
    run.baseline.add(&run.baseline_after.rtt)?;
    let mut stage_values: [Vec<f64>; 4] = Default::default();
    // Latency (ms) by filing order, to see whether it drifts as the story grows.
    let mut in_order: Vec<f64> = Vec::new();
    for p in posted.iter().filter(|p| p.error.is_none()) {
        record(&mut run.command, p.returned - p.sent);
        let Some(a) = first.get(p.development.as_str()) else {
            run.missing += 1;
            continue;
        };
        in_order.push(
            a.at.checked_duration_since(p.returned)
                .unwrap_or_default()
                .as_secs_f64()
                * 1000.0,
        );
        match a.at.checked_duration_since(p.returned) {
            Some(d) => record(&mut run.alert, d),
            None => {
                run.early += 1;
                record(&mut run.alert, Duration::ZERO);
            }
        }
        if let Some((created, updated, attempts)) = queue.get(&p.development) {
            if *attempts > 1 {
                run.retried += 1;
            }
            let sent_wall = p.returned_wall
                - chrono::Duration::from_std(p.returned - p.sent).unwrap_or_default();
            stage_values[0].push(ms_between(sent_wall, *created));
            stage_values[1].push(ms_between(p.returned_wall, *created));
            stage_values[2].push(ms_between(*created, a.wall));
            stage_values[3].push(ms_between(a.wall, *updated));
        }
    }
    let fifth = (in_order.len() / 5).max(1).min(in_order.len());
    run.drift = (
        in_order[..fifth].to_vec(),
        in_order[in_order.len() - fifth..].to_vec(),
    );
    let [s0, s1, s2, s3] = stage_values;
    run.stages = vec![
        (
            "POST sent → matcher took the batch (`alerts.created_at`)",
            s0,
        ),
        (
            "POST returned → matcher took the batch (negative: before the answer)",
            s1,
        ),
        ("`alerts.created_at` → arrival at the receiver", s2),
        (
            "arrival → dispatcher records the outcome (`deliveries.updated_at`)",
            s3,
        ),
    ];

    if cfg.long_story > 0 {
        run.long = Some(long_story(&app, &sink, &urls[0], cfg).await?);
    }

    app.shutdown().await?;
    for s in servers {
        s.abort();
    }
    run.load = (load_start, load_averages());
    Ok(run)
}

/// Alert latency on a long story.
#[derive(Debug)]
pub(crate) struct LongStory {
    developments: usize,
    grow: Duration,
    grow_errors: usize,
    pub(crate) rate: f64,
    pub(crate) seconds: f64,
    pub(crate) alert: Histogram<u64>,
    missing: usize,
}

/// Grows a story nobody follows to `cfg.long_story` developments (32 POSTs in flight), waits
/// for the matcher to pass them, subscribes a second webhook subscriber to it, then files 10
/// developments/s on it for 5 s and times their alerts.
async fn long_story(app: &App, sink: &Sink, url: &str, cfg: &Config) -> Res<LongStory> {
    eprintln!("  long story: growing to {} developments", cfg.long_story);
    let story = app.open_story().await?;
    let started = Instant::now();
    let grown: Vec<Posted> = futures_util::stream::iter(0..cfg.long_story)
        .map(|_| app.post(&story, "routine"))
        .buffer_unordered(32)
        .collect()
        .await;
    let grow_errors = grown.iter().filter(|p| p.error.is_some()).count();
    let last = grown.iter().filter_map(|p| p.position).max().unwrap_or(0);
    while app.matcher_checkpoint().await? < last {
        if started.elapsed() > Duration::from_secs(600) {
            return Err("the matcher did not catch up with the long story".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let grow = started.elapsed();
    app.webhook_subscriber(url, &story).await?;

    let (rate, seconds) = (10.0, 5.0);
    eprintln!("  long story: {rate} developments/s for {seconds} s");
    let posted = paced(rate, seconds, |_| app.post(&story, "priority")).await?;
    let wanted = accepted(&posted);
    let arrived = || sink.arrived_of(&wanted, |_| true);
    wait_for(
        wanted.len(),
        Duration::from_secs(30),
        Duration::from_secs(300),
        arrived,
    )
    .await;
    let arrivals = sink.arrivals();
    let mut first: HashMap<&str, Instant> = HashMap::new();
    for a in &arrivals {
        if let Some(d) = a.development.as_deref().filter(|d| wanted.contains(d)) {
            first.entry(d).or_insert(a.at);
        }
    }
    let mut alert = histogram();
    let mut missing = 0;
    for p in posted.iter().filter(|p| p.error.is_none()) {
        match first.get(p.development.as_str()) {
            Some(at) => record(&mut alert, at.saturating_duration_since(p.returned)),
            None => missing += 1,
        }
    }
    Ok(LongStory {
        developments: cfg.long_story,
        grow,
        grow_errors,
        rate,
        seconds,
        alert,
        missing: missing + posted.len() - wanted.len(),
    })
}

/// The developments among `posted` whose POST succeeded.
fn accepted(posted: &[Posted]) -> HashSet<&str> {
    posted
        .iter()
        .filter(|p| p.error.is_none())
        .map(|p| p.development.as_str())
        .collect()
}

/// `n` one-row write transactions on a fresh SQLite file with the queue's durability (WAL,
/// `synchronous = FULL`): what each of the notifier's transactions pays at least.
fn sqlite_commits(path: &std::path::Path, n: usize) -> Res<Histogram<u64>> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
        [],
    )?;
    let mut h = histogram();
    for i in 0..n {
        let started = Instant::now();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("INSERT INTO t (v) VALUES (?1)", [format!("row {i}")])?;
        tx.commit()?;
        record(&mut h, started.elapsed());
    }
    Ok(h)
}

pub(crate) fn report_latency(out: &mut String, r: &LatencyRun, cfg: &Config) -> std::fmt::Result {
    let b99 = r.baseline.value_at_quantile(0.99);
    let a99 = r.alert.value_at_quantile(0.99);
    let ratio = a99 as f64 / b99.max(1) as f64;
    writeln!(
        out,
        "## 2. End-to-end latency: POST answered → webhook arrives\n"
    )?;
    writeln!(
        out,
        "One subscriber, one webhook endpoint, one subscription to the story; {} developments/s for {} s (open loop, each POST its own task), after {WARM_UP} unrecorded warm-up developments. Baseline: POSTs of the first alert's body ({} B) with webhook-style headers straight to the same receiver at the same rate and duration, once before and once after the alert run (pooled for the ratio). Load average {} at start, {} at end.\n",
        cfg.rate, cfg.seconds, r.alert_bytes, r.load.0, r.load.1
    )?;
    writeln!(
        out,
        "| case | samples | p50 | p99 | max | ratio p99 | target |\n|---|---|---|---|---|---|---|"
    )?;
    writeln!(
        out,
        "| Alert: POST …/developments answered → receiver has the alert | {} | {ratio:.2} × baseline | ≤ 5: {} |",
        cells(&r.alert),
        verdict(ratio <= 5.0)
    )?;
    writeln!(
        out,
        "| Baseline: plain POST round trip to the receiver (before + after) | {} | 1.00 (reference) | |",
        cells(&r.baseline),
    )?;
    for (label, h) in [("before", &r.baseline_before), ("after", &r.baseline_after)] {
        writeln!(
            out,
            "| Baseline, {label} the alert run only | {} | | |",
            cells(&h.rtt),
        )?;
    }
    writeln!(
        out,
        "| (for scale) one SQLite write transaction, 1 row, WAL, synchronous = FULL, beside `notifier.db` | {} | | |",
        cells(&r.commit),
    )?;
    if let Some(l) = &r.long {
        writeln!(
            out,
            "| Alert on a story of {} developments (a second subscriber; {} developments/s for {} s) | {} | {:.2} × baseline | |",
            thousands(l.developments as f64),
            l.rate,
            l.seconds,
            cells(&l.alert),
            l.alert.value_at_quantile(0.99) as f64 / b99.max(1) as f64,
        )?;
    }
    writeln!(
        out,
        "| (for scale) the POST …/developments itself | {} | | |\n",
        cells(&r.command),
    )?;
    writeln!(
        out,
        "- p50 ratio {:.2}. POSTs {} ({} failed); alerts missing {}; arrived before the POST's answer was read {}; duplicate webhook-ids {}; deliveries needing more than one attempt {}; baseline errors {} of {} before, {} of {} after.",
        r.alert.value_at_quantile(0.5) as f64 / r.baseline.value_at_quantile(0.5).max(1) as f64,
        r.posted,
        r.post_errors,
        r.missing,
        r.early,
        r.duplicates,
        r.retried,
        r.baseline_before.errors,
        r.baseline_before.requests,
        r.baseline_after.errors,
        r.baseline_after.requests,
    )?;
    writeln!(
        out,
        "- As the story grew: alert latency p50 / p99 {:.2} / {:.2} ms over the first fifth of the measured developments, {:.2} / {:.2} ms over the last fifth (the matcher's fold of the story lives in memory; nothing per story is rewritten per batch).",
        percentile(&r.drift.0, 0.5),
        percentile(&r.drift.0, 0.99),
        percentile(&r.drift.1, 0.5),
        percentile(&r.drift.1, 0.99),
    )?;
    if let Some(l) = &r.long {
        writeln!(
            out,
            "- Long story: grown through the HTTP API (32 POSTs in flight, nobody following it yet) and matched in {:.1} s ({} errors); {} of its measured alerts missing.",
            l.grow.as_secs_f64(),
            l.grow_errors,
            l.missing,
        )?;
    }
    writeln!(
        out,
        "- Stages (wall clock, the queue's own timestamps; signed ms):\n"
    )?;
    writeln!(out, "| stage | p50 | p99 | mean |\n|---|---|---|---|")?;
    for (label, v) in &r.stages {
        writeln!(
            out,
            "| {label} | {:.2} | {:.2} | {:.2} |",
            percentile(v, 0.5),
            percentile(v, 0.99),
            mean(v)
        )?;
    }
    writeln!(out)?;
    Ok(())
}
