//! Section 3: the relay against publishing the same messages to JetStream directly, and its
//! report.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use newsroom_log::relay::POSITION_HEADER;
use newsroom_log::EventLog;
use newsroom_testkit::pg::Database;
use newsroom_testkit::report::{load_average, secs, thousands};

use crate::common::*;

use crate::cpu::{cpu_snapshot, cpu_use, CpuUse};
use crate::log_fill::{fill_log, relay_all};
use crate::processes::load_note;
use crate::services::Stream;
use crate::{Config, EVENTS_PER_STORY, RELAY_BATCH};

#[derive(Debug)]
pub(crate) struct Publish {
    pub(crate) took: Duration,
    pub(crate) cpu: CpuUse,
    pub(crate) events: u64,
    pub(crate) duplicates: u64,
    stored: u64,
}

impl Publish {
    pub(crate) fn rate(&self) -> f64 {
        self.events as f64 / self.took.as_secs_f64()
    }
}

/// One round: the feed read alone, the direct publisher, the relay.
#[derive(Debug)]
pub(crate) struct Round {
    /// `read_feed` pages of `RELAY_BATCH` and the serialisation of each event: the relay's work
    /// besides publishing.
    pub(crate) read: Duration,
    direct: Publish,
    relay: Publish,
}

#[derive(Debug)]
pub(crate) struct RelayRun {
    pub(crate) events: i64,
    pub(crate) fill: Duration,
    mean_body: f64,
    rounds: Vec<Round>,
    pub(crate) load: (String, String),
}

/// The relay's message for `e` as `Relay::message` builds it, but with the story id in place of
/// the subject (each run publishes to a stream, and so a subject prefix, of its own).
fn message(e: &newsroom_log::FeedEvent) -> Res<(String, async_nats::HeaderMap, Bytes)> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "Nats-Msg-Id",
        format!("{}:{}", e.story_id, e.sequence).as_str(),
    );
    headers.insert(POSITION_HEADER, e.position.to_string().as_str());
    Ok((
        e.story_id.clone(),
        headers,
        Bytes::from(serde_json::to_vec(e)?),
    ))
}

/// The baseline: the prepared messages published with async-nats, `RELAY_BATCH` publishes sent
/// before their acks are awaited, as the relay does.
async fn publish_direct(
    client: &async_nats::Client,
    stream: &Stream,
    messages: &[(String, async_nats::HeaderMap, Bytes)],
) -> Res<Publish> {
    let js = async_nats::jetstream::new(client.clone());
    js.get_or_create_stream(stream.settings.config()).await?;
    let cpu_before = cpu_snapshot();
    let started = Instant::now();
    let (mut events, mut duplicates) = (0, 0);
    for batch in messages.chunks(RELAY_BATCH) {
        let mut acks = Vec::with_capacity(batch.len());
        for (subject, headers, body) in batch {
            acks.push(
                js.publish_with_headers(subject.clone(), headers.clone(), body.clone())
                    .await?,
            );
        }
        for ack in acks {
            let ack = ack.await?;
            events += 1;
            if ack.duplicate {
                duplicates += 1;
            }
        }
    }
    let took = started.elapsed();
    let cpu = cpu_use(&cpu_before, &cpu_snapshot(), &[]);
    Ok(Publish {
        took,
        cpu,
        events,
        duplicates,
        stored: stream.messages(client).await?,
    })
}

/// The relay's reading and encoding alone: the whole feed in pages of `RELAY_BATCH`, each event
/// serialised as the relay serialises it (and dropped).
async fn read_only(log: &EventLog, head: i64) -> Res<Duration> {
    let started = Instant::now();
    let (mut after, mut bytes) = (0, 0usize);
    while after < head {
        let page = log.read_feed(after, RELAY_BATCH).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in &page {
            bytes += serde_json::to_vec(e)?.len();
        }
    }
    std::hint::black_box(bytes);
    Ok(started.elapsed())
}

pub(crate) async fn relay_case(cfg: &Config) -> Res<RelayRun> {
    let load_start = load_average();
    let db = Database::create(&cfg.database_url, "bench").await?;
    eprintln!("  filling a PostgreSQL log with {} events", cfg.events);
    let (log, fill) = fill_log(&db.url, cfg.events).await?;
    let head = log.current_head().await?;
    let client = async_nats::connect(&cfg.nats_url).await?;

    eprintln!("  preparing the direct publisher's messages");
    let mut messages = Vec::with_capacity(head as usize);
    let mut after = 0;
    loop {
        let page = log.read_feed(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in &page {
            messages.push(message(e)?);
        }
    }
    let mean_body =
        messages.iter().map(|m| m.2.len()).sum::<usize>() as f64 / messages.len().max(1) as f64;

    let mut rounds = Vec::new();
    for round in 1..=2 {
        eprintln!("  round {round}: feed read only");
        let read = read_only(&log, head).await?;

        // The same messages to a fresh stream each time: its subjects are its own.
        let direct = Stream::new(&cfg.nats_url);
        let prepared: Vec<_> = messages
            .iter()
            .map(|(story, h, b)| (direct.settings.subject(story), h.clone(), b.clone()))
            .collect();
        eprintln!("  round {round}: direct");
        let direct_run = publish_direct(&client, &direct, &prepared).await?;
        drop(prepared);
        drop(direct);

        eprintln!("  round {round}: relay");
        let relayed = Stream::new(&cfg.nats_url);
        let cpu_before = cpu_snapshot();
        let (took, events, duplicates) = relay_all(&log, &client, &relayed, head).await?;
        let cpu = cpu_use(&cpu_before, &cpu_snapshot(), &[]);
        let relay_run = Publish {
            took,
            cpu,
            events,
            duplicates,
            stored: relayed.messages(&client).await?,
        };
        drop(relayed);
        rounds.push(Round {
            read,
            direct: direct_run,
            relay: relay_run,
        });
    }
    drop(log);
    drop(db);
    Ok(RelayRun {
        events: head,
        fill,
        mean_body,
        rounds,
        load: (load_start, load_average()),
    })
}

pub(crate) fn report_relay(out: &mut String, r: &RelayRun) -> std::fmt::Result {
    writeln!(out, "### 3. Relay vs direct publishing\n")?;
    writeln!(
        out,
        "A PostgreSQL log of {} events ({} stories), filled in-process through `CommandService` in {} (not measured). Each publishing run sends all of them into a fresh JetStream stream (file storage, 1 replica, 2-minute duplicate window). Relay: `Relay::run_until_stopped` in the bench process, from its start (it creates the stream) until its published position reaches the head; it reads the feed from PostgreSQL {} events a round, serialises them, publishes them, and awaits their acks while it reads the next page (when the page was full). Direct: the same subjects, headers (`Nats-Msg-Id`, `{}`) and bodies (mean {:.0} B), prepared before the clock starts, published with async-nats, {} publishes then their acks. Feed read only: the relay's reading and serialising without publishing (`read_feed` pages of {}). One NATS connection for all. Each round: feed read, direct, relay.\n",
        thousands(r.events as f64),
        thousands((r.events as usize / EVENTS_PER_STORY) as f64),
        secs(r.fill),
        RELAY_BATCH,
        POSITION_HEADER,
        r.mean_body,
        RELAY_BATCH,
        RELAY_BATCH,
    )?;
    writeln!(
        out,
        "| round | case | time | events/s | acks marked duplicate | messages in the stream | relay ÷ direct |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for (i, round) in r.rounds.iter().enumerate() {
        writeln!(
            out,
            "| {} | feed read + serialise only | {} | {} | | | |",
            i + 1,
            secs(round.read),
            thousands(r.events as f64 / round.read.as_secs_f64()),
        )?;
        for (what, p) in [
            ("direct (async-nats)", &round.direct),
            ("Relay", &round.relay),
        ] {
            writeln!(
                out,
                "| {} | {what} | {} | {} | {} | {} | {} |",
                i + 1,
                secs(p.took),
                thousands(p.rate()),
                p.duplicates,
                thousands(p.stored as f64),
                if what == "Relay" {
                    format!("{:.2}", round.relay.rate() / round.direct.rate())
                } else {
                    String::new()
                }
            )?;
        }
    }
    let n = r.rounds.len().max(1) as f64;
    let relay = r.rounds.iter().map(|x| x.relay.rate()).sum::<f64>() / n;
    let direct = r.rounds.iter().map(|x| x.direct.rate()).sum::<f64>() / n;
    let ratio = relay / direct;
    writeln!(
        out,
        "\n- **Relay ÷ direct: {:.2}** (mean relay {} events/s ÷ mean direct {} events/s). Target ≥ 0.50: {}.",
        ratio,
        thousands(relay),
        thousands(direct),
        if ratio >= 0.5 { "met" } else { "**missed**" }
    )?;
    let serial: Vec<String> = r
        .rounds
        .iter()
        .map(|x| {
            format!(
                "{} + {} = {} against {}",
                secs(x.read),
                secs(x.direct.took),
                secs(x.read + x.direct.took),
                secs(x.relay.took)
            )
        })
        .collect();
    writeln!(
        out,
        "- Feed read + direct publish, added up, against the relay's time, per round: {}.",
        serial.join("; ")
    )?;
    for (i, round) in r.rounds.iter().enumerate() {
        writeln!(
            out,
            "- Round {}, CPU-seconds: direct: {}; relay: {}.",
            i + 1,
            round.direct.cpu.describe(),
            round.relay.cpu.describe()
        )?;
    }
    load_note(out, &r.load)
}
