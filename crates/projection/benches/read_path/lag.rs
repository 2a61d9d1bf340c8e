//! Section 3, lag: how far the views trail the log under a steady write load; and its report.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use newsroom_testkit::report::{histogram, record, secs, thousands, us};
use newsroom_testkit::{BoxError, Res};
use tokio::sync::watch;

use crate::app::{filing, RunningApp};
use crate::Config;

#[derive(Debug)]
pub(crate) struct LagRun {
    commands: usize,
    pub(crate) errors: usize,
    achieved_rate: f64,
    post_latency: Histogram<u64>,
    /// From the POST's answer to the views' checkpoint reaching its position.
    lag_answer: Histogram<u64>,
    /// From the store's commit signal to the views' checkpoint reaching the position.
    lag_commit: Histogram<u64>,
    /// Commands whose position the views had already reached when the answer arrived.
    already_visible: usize,
    checkpoint_steps: usize,
    poll_interval: Duration,
    catch_up: Duration,
}

/// Records, for each value a position source takes, the first instant it was seen.
type Seen = Arc<Mutex<Vec<(i64, Instant)>>>;

/// The first instant at which a position ≥ `p` was seen.
fn first_seen(seen: &[(i64, Instant)], p: i64) -> Option<Instant> {
    let i = seen.partition_point(|(q, _)| *q < p);
    seen.get(i).map(|(_, t)| *t)
}

pub(crate) async fn lag_case(cfg: &Config) -> Res<LagRun> {
    let app = Arc::new(RunningApp::start().await?);
    let mut stories = Vec::new();
    for i in 0..cfg.lag_stories {
        stories.push(app.open_story(&format!("lag-story-{i}")).await?);
    }
    let prefill_started = Instant::now();
    if cfg.lag_prefill > 0 {
        eprintln!(
            "[3] recording {} developments on each of the {} stories first",
            cfg.lag_prefill, cfg.lag_stories
        );
        let fills: Vec<_> = stories
            .iter()
            .map(|story| {
                let (app, story, n) = (app.clone(), story.clone(), cfg.lag_prefill);
                tokio::spawn(async move {
                    let mut last = 0;
                    for k in 0..n {
                        let answer = app
                            .post(
                                &format!("/v1/stories/{story}/developments"),
                                filing(k, None, "statement_issued"),
                            )
                            .await?;
                        last = answer["position"].as_i64().unwrap_or(0);
                    }
                    Ok::<_, BoxError>(last)
                })
            })
            .collect();
        let mut head = 0;
        for fill in fills {
            head = head.max(fill.await??);
        }
        while app.views.position().await? < head {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!(
            "  recorded and projected in {:.1} s",
            prefill_started.elapsed().as_secs_f64()
        );
    }
    let (stop_tx, stop_rx) = watch::channel(false);

    // The views' checkpoint, polled every millisecond.
    let views_seen: Seen = Arc::default();
    let poller = {
        let (views, seen, mut stop) = (app.views.clone(), views_seen.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let (mut last, mut polls) = (i64::MIN, 0u64);
            let started = Instant::now();
            while !*stop.borrow_and_update() {
                let p = views.position().await?;
                polls += 1;
                if p > last {
                    seen.lock().expect("lock").push((p, Instant::now()));
                    last = p;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(1)) => {},
                    _ = stop.changed() => {},
                }
            }
            Ok::<_, BoxError>(started.elapsed() / polls.max(1) as u32)
        })
    };
    // The store's commit signal (the head after each group commit).
    let commits_seen: Seen = Arc::default();
    let committer = {
        let (mut head, seen, mut stop) = (app.log.subscribe(), commits_seen.clone(), stop_rx);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = head.changed() => {
                        if changed.is_err() { break; }
                        let p = *head.borrow_and_update();
                        seen.lock().expect("lock").push((p, Instant::now()));
                    }
                    _ = stop.changed() => break,
                }
            }
        })
    };

    eprintln!(
        "[3] {:.0} developments/s over {} stories for {} s",
        cfg.lag_rate, cfg.lag_stories, cfg.lag_seconds
    );
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / cfg.lag_rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(cfg.lag_seconds);
    let mut tasks = Vec::new();
    let mut k = 0usize;
    loop {
        tick.tick().await;
        if Instant::now() >= until {
            break;
        }
        let story = stories[k % stories.len()].clone();
        let app = app.clone();
        let body = filing(k, None, "statement_issued");
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let answer = app
                .post(&format!("/v1/stories/{story}/developments"), body)
                .await;
            let returned = Instant::now();
            answer.map(|a| (sent, returned, a["position"].as_i64().unwrap_or(0)))
        }));
        k += 1;
    }
    let mut done = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for task in tasks {
        match task.await? {
            Ok(d) => done.push(d),
            Err(e) => {
                if errors == 0 {
                    eprintln!("  POST failed: {e}");
                }
                errors += 1;
            }
        }
    }
    let last_answer = done.iter().map(|d| d.1).max().unwrap_or(started);
    let achieved_rate = done.len() as f64 / (last_answer - started).as_secs_f64();
    let head = done.iter().map(|d| d.2).max().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.views.position().await? < head {
        if Instant::now() > deadline {
            return Err(format!("the views did not reach {head} within 60 s").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let catch_up = last_answer.elapsed();
    // Let the poller see the last step too.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _ = stop_tx.send(true);
    let poll_interval = poller.await??;
    committer.await?;

    let views_seen = views_seen.lock().expect("lock").clone();
    let commits_seen = commits_seen.lock().expect("lock").clone();
    let mut run = LagRun {
        commands: done.len(),
        errors,
        achieved_rate,
        post_latency: histogram(),
        lag_answer: histogram(),
        lag_commit: histogram(),
        already_visible: 0,
        checkpoint_steps: views_seen.len(),
        poll_interval,
        catch_up,
    };
    for (sent, returned, position) in &done {
        record(&mut run.post_latency, *returned - *sent);
        let seen = first_seen(&views_seen, *position).ok_or("position never seen")?;
        if seen <= *returned {
            run.already_visible += 1;
        }
        record(
            &mut run.lag_answer,
            seen.saturating_duration_since(*returned),
        );
        if let Some(committed) = first_seen(&commits_seen, *position) {
            record(
                &mut run.lag_commit,
                seen.saturating_duration_since(committed),
            );
        }
    }
    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await?,
        Err(_) => eprintln!("  the app is still shared; not stopping it"),
    }
    Ok(run)
}

fn ms(v: u64) -> String {
    format!("{:.1} ms", v as f64 / 1000.0)
}

pub(crate) fn report_lag(out: &mut String, l: &LagRun, cfg: &Config) -> std::fmt::Result {
    writeln!(out, "### 3. Projection lag under a steady write load\n")?;
    writeln!(
        out,
        "`POST /v1/stories/{{id}}/developments` at {:.0}/s (open loop, one task per request) spread over {} stories{} for {} s: {} commands answered ({:.0}/s achieved), {} errors; POST latency p50 {}, p99 {}. The views' checkpoint (`ViewStore::position()`) was polled every {:.2} ms on average and advanced {} times (≈ {:.1} commands per projector step). After the last answer the views caught up in {}.\n",
        cfg.lag_rate,
        cfg.lag_stories,
        if cfg.lag_prefill > 0 {
            format!(" that already had {} developments each", thousands(cfg.lag_prefill as f64))
        } else {
            String::new()
        },
        cfg.lag_seconds,
        thousands(l.commands as f64),
        l.achieved_rate,
        l.errors,
        us(l.post_latency.value_at_quantile(0.5)),
        us(l.post_latency.value_at_quantile(0.99)),
        l.poll_interval.as_secs_f64() * 1000.0,
        l.checkpoint_steps,
        l.commands as f64 / l.checkpoint_steps.max(1) as f64,
        secs(l.catch_up),
    )?;
    writeln!(
        out,
        "| lag, per command | p50 | p99 | max |\n|---|---|---|---|"
    )?;
    writeln!(
        out,
        "| from the POST's answer until the views' checkpoint reached its `position` | {} | {} | {} |",
        ms(l.lag_answer.value_at_quantile(0.5)),
        ms(l.lag_answer.value_at_quantile(0.99)),
        ms(l.lag_answer.max()),
    )?;
    writeln!(
        out,
        "| from the store's commit signal (`subscribe()`) until the same | {} | {} | {} |",
        ms(l.lag_commit.value_at_quantile(0.5)),
        ms(l.lag_commit.value_at_quantile(0.99)),
        ms(l.lag_commit.max()),
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{} of {} commands were already visible in the views when their answer arrived (lag 0). Resolution is the poll interval.\n",
        thousands(l.already_visible as f64),
        thousands(l.commands as f64)
    )?;
    Ok(())
}
