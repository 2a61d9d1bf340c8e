//! Section 2c: alerts with 1 and 2 notifier copies, and its report.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use newsroom_testkit::http::wait_for;
use newsroom_testkit::report::{load_average, secs, thousands};
use serde_json::json;

use crate::common::*;

use crate::cpu::{cpu_snapshot, cpu_use, CpuUse};
use crate::log_fill::{fill_log, relay_all};
use crate::processes::{call, fresh_deployment, http_client, ident, load_note};
use crate::receiver::{start_receiver, Sink};
use crate::{Config, EVENTS_PER_STORY};

/// One run of notifier copies over a fresh log and stream.
#[derive(Debug)]
pub(crate) struct NotifierPhase {
    pub(crate) copies: usize,
    pub(crate) developments: usize,
    /// Relay start → the last development's first alert.
    pub(crate) took: Duration,
    pub(crate) arrived: usize,
    pub(crate) duplicates: usize,
    pub(crate) repeats: usize,
    pub(crate) cpu: CpuUse,
}

impl NotifierPhase {
    pub(crate) fn rate(&self) -> f64 {
        self.arrived as f64 / self.took.as_secs_f64()
    }
}

#[derive(Debug)]
pub(crate) struct NotifierRun {
    pub(crate) events: usize,
    pub(crate) phases: Vec<NotifierPhase>,
    pub(crate) load: (String, String),
}

async fn notifier_phase(cfg: &Config, copies: usize) -> Res<NotifierPhase> {
    let client = http_client()?;
    let dir = tempfile::tempdir()?;
    let (db, stream, env) = fresh_deployment(cfg).await?;
    let mut procs = Vec::new();
    for i in 1..=copies {
        procs.push(env.spawn("notifier", dir.path(), &format!("notifier-{i}"))?);
    }
    // The matcher reads each story as it stood from the views' history: a projector keeps them.
    procs.push(env.spawn("projector", dir.path(), "projector")?);
    for p in &mut procs {
        p.healthy(&client).await?;
    }
    let sink = Sink::default();
    let (hook, receiver) = start_receiver(&sink).await?;
    let base = procs[0].base.clone();
    let signed = call(
        &client,
        format!("{base}/v1/subscribers"),
        None,
        json!({"name": "Wire desk"}),
    )
    .await?;
    let id = signed["id"].as_str().ok_or("no subscriber id")?.to_owned();
    let token = signed["token"].as_str().ok_or("no subscriber token")?;
    call(
        &client,
        format!("{base}/v1/subscribers/{id}/endpoints"),
        Some(token),
        json!({"kind": "webhook", "url": hook}),
    )
    .await?;
    // Every development of the fill names this actor.
    call(
        &client,
        format!("{base}/v1/subscribers/{id}/subscriptions"),
        Some(token),
        json!({"actor": "Fancy Bear"}),
    )
    .await?;
    eprintln!(
        "  {copies} notifier cop{}: filling a log of {} events",
        if copies == 1 { "y" } else { "ies" },
        cfg.notifier_events
    );
    let (log, _) = fill_log(&db.url, cfg.notifier_events).await?;
    let head = log.current_head().await?;
    let stories = (cfg.notifier_events / EVENTS_PER_STORY).max(1);
    let developments = head as usize - stories;
    let nats = async_nats::connect(&cfg.nats_url).await?;
    let pids: Vec<(u32, String)> = procs.iter().map(ident).collect();
    let cpu_before = cpu_snapshot();
    let started = Instant::now();
    relay_all(&log, &nats, &stream, head).await?;
    let first = |sink: &Sink| sink.inner.lock().expect("arrivals lock").first.len();
    let all = wait_for(
        developments,
        Duration::from_secs(30),
        Duration::from_secs(900),
        || first(&sink),
    )
    .await;
    let took = started.elapsed();
    let cpu = cpu_use(&cpu_before, &cpu_snapshot(), &pids);
    if !all {
        eprintln!(
            "  only {} of {developments} alerts arrived:\n{}",
            first(&sink),
            procs
                .iter()
                .map(Proc::log_tail)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // Longer than the copies take to send anything twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (arrived, duplicates, repeats) = {
        let a = sink.inner.lock().expect("arrivals lock");
        (a.first.len(), a.duplicates, a.repeats)
    };
    for p in procs {
        p.stop().await;
    }
    receiver.abort();
    drop(stream);
    drop(db);
    Ok(NotifierPhase {
        copies,
        developments,
        took,
        arrived,
        duplicates,
        repeats,
        cpu,
    })
}

pub(crate) async fn notifier_case(cfg: &Config) -> Res<NotifierRun> {
    let load_start = load_average();
    let mut phases = Vec::new();
    for copies in [1, 2] {
        phases.push(notifier_phase(cfg, copies).await?);
    }
    Ok(NotifierRun {
        events: cfg.notifier_events,
        phases,
        load: (load_start, load_average()),
    })
}

pub(crate) fn report_notifiers(out: &mut String, n: &NotifierRun) -> std::fmt::Result {
    writeln!(out, "### 2c. Alerts with 1 and 2 notifier copies\n")?;
    writeln!(
        out,
        "Per run: a fresh PostgreSQL database and stream; the notifier processes started (each with its own durable consumer; subscribers, the queue and its checkpoint shared in PostgreSQL); one subscriber signed up through the first, with a webhook endpoint (an axum receiver in the bench process) and a subscription to an actor every development names; a log of {} events ({} stories of {EVENTS_PER_STORY}) filled in-process while they wait (not measured); then `Relay` publishes it, and the clock runs from the relay's start until every development's alert has arrived.\n",
        thousands(n.events as f64),
        thousands((n.events / EVENTS_PER_STORY) as f64),
    )?;
    writeln!(
        out,
        "| copies | developments | alerts arrived | relay start → last alert | alerts/s | same `webhook-id` twice | another id for an alerted development |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for p in &n.phases {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            p.copies,
            thousands(p.developments as f64),
            thousands(p.arrived as f64),
            secs(p.took),
            thousands(p.rate()),
            p.duplicates,
            p.repeats
        )?;
    }
    if let [one, two] = &n.phases[..] {
        writeln!(
            out,
            "\n- 2 copies ÷ 1 copy, alerts/s: {:.2} ×.",
            two.rate() / one.rate()
        )?;
    }
    for p in &n.phases {
        writeln!(
            out,
            "- CPU-seconds, {} cop{}: {}.",
            p.copies,
            if p.copies == 1 { "y" } else { "ies" },
            p.cpu.describe()
        )?;
    }
    load_note(out, &n.load)
}
