//! Section 2b: projection catch-up with 1 and 2 projector copies, and its report.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use newsroom_testkit::report::{load_average, secs, thousands};

use crate::common::*;

use crate::cpu::{cpu_snapshot, cpu_use, CpuUse};
use crate::log_fill::{fill_log, relay_all};
use crate::processes::{fresh_deployment, http_client, ident, load_note};
use crate::{Config, EVENTS_PER_STORY};

#[derive(Debug)]
pub(crate) struct CatchUp {
    copy: String,
    /// Spawn → the first `/healthz` answer (the process is up, the projector has started).
    pub(crate) start_up: Duration,
    /// Spawn → the views have reached the head.
    done: Duration,
}

impl CatchUp {
    fn applying(&self) -> Duration {
        self.done.saturating_sub(self.start_up)
    }
}

#[derive(Debug)]
pub(crate) struct CatchUpRun {
    pub(crate) events: i64,
    pub(crate) fill: Duration,
    publish: Duration,
    one: Vec<CatchUp>,
    two: Vec<CatchUp>,
    two_wall: Duration,
    cpu_one: CpuUse,
    cpu_two: CpuUse,
    pub(crate) load: (String, String),
}

/// Spawn → the views at `head`. The first `/healthz` answer marks the process up (the projector
/// starts with the HTTP server); then `GET /v1/stories?limit=1&min_position=head` (which waits up
/// to 5 s for the views, then answers 503) is asked until it answers 200.
async fn catch_up(proc: &mut Proc, client: &reqwest::Client, head: i64) -> Res<CatchUp> {
    let start_up = proc.healthy(client).await?;
    let url = format!("{}/v1/stories?limit=1&min_position={head}", proc.base);
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if let Some(status) = proc.child.try_wait()? {
            return Err(format!("{} exited ({status}):\n{}", proc.name, proc.log_tail()).into());
        }
        match client.get(&url).send().await {
            Ok(r) if r.status() == StatusCode::OK => {
                let _ = r.bytes().await;
                return Ok(CatchUp {
                    copy: proc.name.clone(),
                    start_up,
                    done: proc.spawned.elapsed(),
                });
            }
            Ok(r) => {
                let _ = r.bytes().await;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
        if Instant::now() > deadline {
            return Err(format!("{} did not catch up:\n{}", proc.name, proc.log_tail()).into());
        }
    }
}

pub(crate) async fn catch_up_case(cfg: &Config) -> Res<CatchUpRun> {
    let load_start = load_average();
    let client = http_client()?;
    let dir = tempfile::tempdir()?;
    let (db, stream, env) = fresh_deployment(cfg).await?;
    eprintln!("  filling a PostgreSQL log with {} events", cfg.prefill);
    let (log, fill) = fill_log(&db.url, cfg.prefill).await?;
    let head = log.current_head().await?;
    eprintln!("  publishing them to the stream");
    let nats = async_nats::connect(&cfg.nats_url).await?;
    let (publish, _, _) = relay_all(&log, &nats, &stream, head).await?;

    eprintln!("  one projector copy catching up");
    let cpu_before = cpu_snapshot();
    let mut p = env.spawn("projector", dir.path(), "copy-1")?;
    let one = catch_up(&mut p, &client, head).await;
    let cpu_one = cpu_use(&cpu_before, &cpu_snapshot(), &[ident(&p)]);
    p.stop().await;
    let one = vec![one?];

    eprintln!("  two projector copies catching up at once, on views emptied again");
    reset_views(&db.url).await?;
    let cpu_before = cpu_snapshot();
    let started = Instant::now();
    let mut a = env.spawn("projector", dir.path(), "copy-2")?;
    let mut b = env.spawn("projector", dir.path(), "copy-3")?;
    let (ra, rb) = tokio::join!(
        catch_up(&mut a, &client, head),
        catch_up(&mut b, &client, head)
    );
    let two_wall = started.elapsed();
    let cpu_two = cpu_use(&cpu_before, &cpu_snapshot(), &[ident(&a), ident(&b)]);
    a.stop().await;
    b.stop().await;
    let two = vec![ra?, rb?];
    drop(stream);
    drop(db);
    Ok(CatchUpRun {
        events: head,
        fill,
        publish,
        one,
        two,
        two_wall,
        cpu_one,
        cpu_two,
        load: (load_start, load_average()),
    })
}

/// Empties the views the copies share (PostgreSQL, beside the log), back to position 0.
async fn reset_views(url: &str) -> Res<()> {
    let pool = sqlx::PgPool::connect(url).await?;
    sqlx::query("TRUNCATE view_stories, view_developments, view_actor_entries")
        .execute(&pool)
        .await?;
    sqlx::query("UPDATE view_checkpoints SET position = 0")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

pub(crate) fn report_catch_up(out: &mut String, c: &CatchUpRun) -> std::fmt::Result {
    writeln!(out, "### 2b. Projection catch-up with 1 and 2 copies\n")?;
    writeln!(
        out,
        "A PostgreSQL log of {} events ({} stories of {} events: opened, then developments), filled in-process through `CommandService` in {} and published to a fresh stream by `Relay` in {} (neither measured here). Then a fresh projector process (its own durable consumer; the views in PostgreSQL beside the log, empty) is started against it; then, the views emptied again, two at once, sharing them. Start-up: spawn → the first `/healthz` answer (the projector starts together with the HTTP server); applying: from there until `GET /v1/stories?limit=1&min_position=<head>` answers 200 on that copy.\n",
        thousands(c.events as f64),
        thousands((c.events as usize / EVENTS_PER_STORY) as f64),
        EVENTS_PER_STORY,
        secs(c.fill),
        secs(c.publish)
    )?;
    writeln!(
        out,
        "| run | copy | start-up | spawn → caught up | applying | events/s while applying |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    for (run, copies) in [("1 copy", &c.one), ("2 copies at once", &c.two)] {
        for u in copies.iter() {
            writeln!(
                out,
                "| {run} | {} | {} | {} | {} | {} |",
                u.copy,
                secs(u.start_up),
                secs(u.done),
                secs(u.applying()),
                thousands(c.events as f64 / u.applying().as_secs_f64())
            )?;
        }
    }
    let one = c
        .one
        .first()
        .map_or(f64::NAN, |u| c.events as f64 / u.applying().as_secs_f64());
    // The copies share the views: the events are applied once, by whichever copy takes a batch.
    let aggregate = c.events as f64 / c.two_wall.as_secs_f64();
    let single_wall = c
        .one
        .first()
        .map_or(f64::NAN, |u| c.events as f64 / u.done.as_secs_f64());
    writeln!(
        out,
        "\n- Events brought into the shared views per second, spawn to the last copy seeing the head: 1 copy {}, 2 copies {} ({:.2} ×). Per copy while applying: 1 copy {}, 2 copies {} and {}.",
        thousands(single_wall),
        thousands(aggregate),
        aggregate / single_wall,
        thousands(one),
        c.two
            .first()
            .map_or("–".into(), |u| thousands(c.events as f64 / u.applying().as_secs_f64())),
        c.two
            .get(1)
            .map_or("–".into(), |u| thousands(c.events as f64 / u.applying().as_secs_f64())),
    )?;
    writeln!(
        out,
        "- CPU-seconds, spawn to caught up: 1 copy: {}; 2 copies: {}.",
        c.cpu_one.describe(),
        c.cpu_two.describe()
    )?;
    load_note(out, &c.load)
}
