//! Section 3, fan-out: one `flash` development to many webhook subscribers, and its report.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use newsroom_notifier::store::parse_ts;
use newsroom_testkit::http::wait_for;
use newsroom_testkit::report::{load_averages, mean, ms, thousands};
use newsroom_testkit::Res;

use crate::app::{matcher_checkpoint, ms_between, start_app};
use crate::receiver::{start_receivers, Arrival, Sink};
use crate::{opt_ms, Config, SETUP_IN_FLIGHT};

#[derive(Debug)]
pub(crate) struct FanoutRun {
    pub(crate) subscribers: usize,
    pub(crate) receivers: usize,
    setup: Duration,
    setup_errors: usize,
    first_error: Option<String>,
    warm_match: Option<Duration>,
    /// From the flash POST's answer.
    matcher_committed: Option<Duration>,
    first_arrival: Option<Duration>,
    pub(crate) last_arrival: Option<Duration>,
    pub(crate) command: Duration,
    pub(crate) distinct: usize,
    pub(crate) arrivals: usize,
    other_development: usize,
    per_receiver: (usize, usize),
    statuses: BTreeMap<String, usize>,
    pub(crate) retried: usize,
    batches: Vec<Batch>,
    /// Time the dispatcher spent between batches: last arrival of one to the first of the next.
    gaps: Vec<f64>,
    /// When the matcher took the batch, from the POST's answer (signed ms).
    created_after_post: Option<f64>,
    pub(crate) load: (String, String),
}

/// The deliveries the dispatcher recorded together (one `deliveries.updated_at`).
#[derive(Debug)]
struct Batch {
    size: usize,
    first: Instant,
    last: Instant,
}

pub(crate) async fn fanout(cfg: &Config) -> Res<FanoutRun> {
    let load_start = load_averages();
    let app = start_app().await?;
    let sink = Sink::default();
    let (urls, servers) = start_receivers(cfg.receivers, &sink).await?;
    let story = app.open_story().await?;
    let quiet_story = app.open_story().await?;

    eprintln!(
        "  setup: {} subscribers through the HTTP API, {SETUP_IN_FLIGHT} at a time",
        cfg.fanout
    );
    let started = Instant::now();
    let results: Vec<Res<()>> = futures_util::stream::iter(0..cfg.fanout)
        .map(|i| {
            let (app, url, story) = (&app, &urls[i % urls.len()], &story);
            async move { app.webhook_subscriber(url, story).await }
        })
        .buffer_unordered(SETUP_IN_FLIGHT)
        .collect()
        .await;
    let setup = started.elapsed();
    let setup_errors = results.iter().filter(|r| r.is_err()).count();
    let first_error = results
        .iter()
        .find_map(|r| r.as_ref().err().map(|e| e.to_string()));
    eprintln!(
        "  setup took {:.1} s ({setup_errors} errors)",
        setup.as_secs_f64()
    );

    // A development nobody follows, so that the matcher takes in the new subscriptions (its
    // index refreshes when it next matches something) before the measured one.
    let warm = app.post(&quiet_story, "routine").await;
    let mut warm_match = None;
    if let Some(position) = warm.position {
        loop {
            if app.matcher_checkpoint().await? >= position {
                warm_match = Some(warm.returned.elapsed());
                break;
            }
            if warm.returned.elapsed() > Duration::from_secs(120) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Watch the matcher's checkpoint: it moves in the transaction that queues the alerts.
    let before = app.matcher_checkpoint().await?;
    let notifier = app.notifier.clone();
    let watcher = tokio::spawn(async move {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(300) {
            let at = matcher_checkpoint(&notifier).await.unwrap_or(0);
            if at > before {
                return Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        None
    });
    let arrivals_before = sink.count();

    eprintln!("  one flash development");
    let flash = app.post(&story, "flash").await;
    if let Some(e) = &flash.error {
        return Err(format!("the flash POST failed: {e}").into());
    }
    let flash_id = flash.development.clone();
    let distinct_of_flash = || {
        sink.arrivals
            .lock()
            .expect("arrivals lock")
            .iter()
            .filter(|a| a.development.as_deref() == Some(flash_id.as_str()))
            .map(|a| a.webhook_id.clone())
            .collect::<HashSet<_>>()
            .len()
    };
    wait_for(
        cfg.fanout,
        Duration::from_secs(30),
        Duration::from_secs(600),
        distinct_of_flash,
    )
    .await;
    // Anything arriving late would be a duplicate or a stray: give it a moment.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let matcher_committed = watcher
        .await?
        .map(|at| at.saturating_duration_since(flash.returned));

    let arrivals: Vec<Arrival> = sink.arrivals().split_off(arrivals_before);
    let ours: Vec<&Arrival> = arrivals
        .iter()
        .filter(|a| a.development.as_deref() == Some(flash_id.as_str()))
        .collect();
    let distinct: HashSet<&str> = ours.iter().map(|a| a.webhook_id.as_str()).collect();
    let mut per_receiver = vec![0usize; cfg.receivers];
    for a in &ours {
        per_receiver[a.receiver] += 1;
    }
    let since_post = |at: Instant| at.saturating_duration_since(flash.returned);
    let first_arrival = ours.iter().map(|a| a.at).min().map(since_post);
    let last_arrival = ours.iter().map(|a| a.at).max().map(since_post);

    // The queue's view: each delivery's status, attempts, and when its step recorded it.
    let flash_for_query = flash_id.clone();
    let rows: Vec<(String, String, String, u32, String)> = app
        .notifier
        .read(move |c| {
            Ok(c.statement(
                "SELECT a.id, a.created_at, d.updated_at, d.attempts, d.status
                 FROM alerts a JOIN deliveries d ON d.alert_id = a.id
                 WHERE a.development_id = ?1",
            )?
            .query_map(newsroom_log::args![flash_for_query], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?)
        })
        .await?;
    let mut statuses = BTreeMap::new();
    let mut retried = 0;
    let mut step_of: HashMap<&str, &str> = HashMap::new();
    for (alert, _, updated, attempts, status) in &rows {
        *statuses.entry(status.clone()).or_insert(0) += 1;
        if *attempts > 1 {
            retried += 1;
        }
        step_of.insert(alert.as_str(), updated.as_str());
    }
    let created_after_post = rows
        .first()
        .map(|r| ms_between(flash.returned_wall, parse_ts(&r.1)));
    let mut by_step: HashMap<&str, Batch> = HashMap::new();
    for a in &ours {
        let Some(step) = step_of.get(a.webhook_id.as_str()) else {
            continue;
        };
        let b = by_step.entry(step).or_insert(Batch {
            size: 0,
            first: a.at,
            last: a.at,
        });
        b.size += 1;
        b.first = b.first.min(a.at);
        b.last = b.last.max(a.at);
    }
    let mut batches: Vec<Batch> = by_step.into_values().collect();
    batches.sort_by_key(|b| b.first);
    let gaps = batches
        .windows(2)
        .map(|w| {
            w[1].first
                .checked_duration_since(w[0].last)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        })
        .collect();

    let run = FanoutRun {
        subscribers: cfg.fanout,
        receivers: cfg.receivers,
        setup,
        setup_errors,
        first_error,
        warm_match,
        matcher_committed,
        first_arrival,
        last_arrival,
        command: flash.returned - flash.sent,
        distinct: distinct.len(),
        arrivals: ours.len(),
        other_development: arrivals.len() - ours.len(),
        per_receiver: (
            per_receiver.iter().copied().min().unwrap_or(0),
            per_receiver.iter().copied().max().unwrap_or(0),
        ),
        statuses,
        retried,
        batches,
        gaps,
        created_after_post,
        load: (load_start, load_averages()),
    };
    app.shutdown().await?;
    for s in servers {
        s.abort();
    }
    Ok(run)
}

pub(crate) fn report_fanout(out: &mut String, r: &FanoutRun) -> std::fmt::Result {
    writeln!(
        out,
        "## 3. Fan-out: one flash development to {} webhook subscribers\n",
        thousands(r.subscribers as f64)
    )?;
    writeln!(
        out,
        "{} subscribers, each with its own webhook endpoint (spread over {} axum receivers on 127.0.0.1) and a subscription to one story, created through the HTTP API ({SETUP_IN_FLIGHT} subscribers in flight, 3 requests each) in {:.1} s ({} errors{}); then one development on another story, followed by nobody, so the matcher's index takes the new subscriptions in ({} from its POST's answer to the matcher's checkpoint passing it); then the measured `flash` development. Load average {} at start, {} at end.\n",
        thousands(r.subscribers as f64),
        r.receivers,
        r.setup.as_secs_f64(),
        r.setup_errors,
        r.first_error.as_deref().map(|e| format!("; first: {e}")).unwrap_or_default(),
        opt_ms(r.warm_match),
        r.load.0,
        r.load.1,
    )?;
    let last = r.last_arrival.unwrap_or_default().as_secs_f64();
    let window = match (r.first_arrival, r.last_arrival) {
        (Some(f), Some(l)) => (l - f).as_secs_f64(),
        _ => 0.0,
    };
    writeln!(out, "| measurement | result |\n|---|---|")?;
    writeln!(
        out,
        "| POST …/developments (flash) round trip | {} |",
        ms(r.command)
    )?;
    writeln!(
        out,
        "| POST answered → matcher's transaction (alerts + deliveries queued) visible | {} |",
        opt_ms(r.matcher_committed)
    )?;
    writeln!(
        out,
        "| POST answered → first alert arrives | {} |",
        opt_ms(r.first_arrival)
    )?;
    writeln!(
        out,
        "| POST answered → last alert arrives | {} |",
        opt_ms(r.last_arrival)
    )?;
    writeln!(
        out,
        "| Alerts/s, from the POST's answer to the last arrival | {} |",
        thousands(r.distinct as f64 / last.max(1e-9))
    )?;
    writeln!(
        out,
        "| Alerts/s, first to last arrival | {} |",
        thousands(r.distinct.saturating_sub(1) as f64 / window.max(1e-9))
    )?;
    writeln!(
        out,
        "| Distinct webhook-ids arrived / expected | {} / {} ({}) |",
        thousands(r.distinct as f64),
        thousands(r.subscribers as f64),
        if r.distinct == r.subscribers {
            "exact"
        } else {
            "**not exact**"
        }
    )?;
    writeln!(
        out,
        "| Duplicates (arrivals − distinct ids); arrivals of anything else | {}; {} |",
        r.arrivals - r.distinct,
        r.other_development
    )?;
    writeln!(
        out,
        "| Per receiver, fewest / most alerts | {} / {} |",
        r.per_receiver.0, r.per_receiver.1
    )?;
    let statuses: Vec<String> = r.statuses.iter().map(|(s, n)| format!("{s} {n}")).collect();
    writeln!(
        out,
        "| Deliveries in the queue afterwards | {}; {} needed more than one attempt |\n",
        statuses.join(", "),
        r.retried
    )?;
    let sizes: Vec<f64> = r.batches.iter().map(|b| b.size as f64).collect();
    let windows: Vec<f64> = r
        .batches
        .iter()
        .map(|b| (b.last - b.first).as_secs_f64() * 1000.0)
        .collect();
    writeln!(
        out,
        "- Where the time went: the matcher took the event {} ms after the POST's answer (`alerts.created_at`; negative = before the answer). Its transaction's deliveries were handed to the dispatcher in memory and sent up to 64 at a time, their outcomes recorded alongside in {} group commits (deliveries sharing one `updated_at`), {:.0} per commit on average; first to last arrival among one commit's deliveries took {:.1} ms on average (sum {:.0} ms); from the last arrival of one commit's deliveries to the first of the next, {:.1} ms on average (sum {:.0} ms, max {:.1} ms; 0 where they overlap).\n",
        r.created_after_post.map_or("n/a".to_owned(), |v| format!("{v:.1}")),
        r.batches.len(),
        mean(&sizes),
        mean(&windows),
        windows.iter().sum::<f64>() + 0.0,
        mean(&r.gaps),
        r.gaps.iter().sum::<f64>() + 0.0,
        r.gaps.iter().copied().fold(0.0, f64::max),
    )?;
    Ok(())
}
