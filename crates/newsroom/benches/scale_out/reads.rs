//! Section 2a, projector copies: read throughput with 1 and 2 copies, and its report.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use hdrhistogram::Histogram;
use newsroom_testkit::http::GetLoad;
use newsroom_testkit::report::{load_average, quantiles, thousands};
use newsroom_testkit::BoxError;

use crate::common::*;

use crate::cpu::{cpu_snapshot, cpu_use, CpuUse};
use crate::processes::{
    bounded, fresh_deployment, http_client, ident, open_story, post_development,
};
use crate::Config;

#[derive(Debug)]
pub(crate) struct GetRun {
    pub(crate) copies: usize,
    pub(crate) cpu: CpuUse,
    pub(crate) rate: f64,
    requests: u64,
    pub(crate) errors: u64,
    latency: Histogram<u64>,
}

/// [`GetLoad`] on `urls` (worker i on `urls[i % len]`), with the CPU `procs` and the machine
/// used in the measured window; the rate counts good answers only.
async fn get_load(
    client: &reqwest::Client,
    urls: &[String],
    expected_len: usize,
    in_flight: usize,
    seconds: f64,
    procs: &[(u32, String)],
) -> Res<GetRun> {
    let load = GetLoad::start(client, urls, expected_len, in_flight, seconds);
    tokio::time::sleep_until(load.warm_until.into()).await;
    let cpu_before = cpu_snapshot();
    let tally = load.finish().await?;
    Ok(GetRun {
        copies: urls.len(),
        cpu: cpu_use(&cpu_before, &cpu_snapshot(), procs),
        rate: (tally.requests - tally.errors) as f64 / tally.window.as_secs_f64(),
        requests: tally.requests,
        errors: tally.errors,
        latency: tally.latency,
    })
}

/// The body of `path` at a projector copy (`base`), once it answers `reached` (the same path
/// with a `min_position` it must have applied).
async fn view_once_reached(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    reached: &str,
) -> Res<Bytes> {
    get_when_ready(client, &format!("{base}{reached}"), Duration::from_secs(60)).await?;
    get_when_ready(client, &format!("{base}{path}"), Duration::from_secs(5)).await
}

/// GETs `url` until it answers 200 (a read with `min_position` waits up to 5 s, then 503).
pub(crate) async fn get_when_ready(
    client: &reqwest::Client,
    url: &str,
    cap: Duration,
) -> Res<Bytes> {
    let deadline = Instant::now() + cap;
    loop {
        match client.get(url).send().await {
            Ok(r) if r.status() == StatusCode::OK => return Ok(r.bytes().await?),
            Ok(_) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Ok(r) => return Err(format!("GET {url}: {}", r.status()).into()),
            Err(e) => return Err(format!("GET {url}: {e}").into()),
        }
    }
}

#[derive(Debug)]
pub(crate) struct ReadRun {
    view_bytes: usize,
    pub(crate) runs: Vec<GetRun>,
    /// The same story and load on one embedded process (`--role all`, SQLite): the baseline.
    embedded: GetRun,
    pub(crate) load: (String, String),
}

/// Opens a story on `command` and records `developments` developments on it (8 in flight); the
/// story's id and the last position recorded.
async fn fill_story(
    client: &reqwest::Client,
    command: &str,
    reporter: &str,
    developments: usize,
) -> Res<(String, i64)> {
    let story = open_story(client, command, reporter).await?;
    let (c, base, token, s) = (
        client.clone(),
        command.to_owned(),
        reporter.to_owned(),
        story.clone(),
    );
    let posted = bounded((0..developments).collect(), 8, move |_| {
        let (client, base, token, story) = (c.clone(), base.clone(), token.clone(), s.clone());
        async move {
            let p = post_development(&client, &base, &token, &story).await;
            match (p.error, p.position) {
                (None, Some(position)) => Ok(position),
                (e, _) => Err(format!("filing the story: {e:?}").into()),
            }
        }
    })
    .await?;
    Ok((story, posted.into_iter().max().unwrap_or(0)))
}

/// The baseline of 2a: the same story read on one embedded process.
async fn embedded_reads(client: &reqwest::Client, cfg: &Config) -> Res<GetRun> {
    let dir = tempfile::tempdir()?;
    let env = Env::embedded();
    let reporter = env.reporter_token(&dir.path().join("all"))?;
    let mut all = env.spawn("all", dir.path(), "all")?;
    all.healthy(client).await?;
    let result = async {
        let (story, last) = fill_story(client, &all.base, &reporter, cfg.view_developments).await?;
        let path = format!("/v1/stories/{story}");
        let reached = format!("{path}?min_position={last}");
        let body = view_once_reached(client, &all.base, &path, &reached).await?;
        let url = vec![format!("{}{path}", all.base)];
        get_load(
            client,
            &url,
            body.len(),
            cfg.readers,
            cfg.seconds,
            &[ident(&all)],
        )
        .await
    }
    .await;
    all.stop().await;
    result
}

pub(crate) async fn read_case(cfg: &Config) -> Res<ReadRun> {
    let load_start = load_average();
    let client = http_client()?;
    let dir = tempfile::tempdir()?;
    let (db, stream, env) = fresh_deployment(cfg).await?;
    let reporter = env.reporter_token(&dir.path().join("command"))?;
    let mut command = env.spawn("command", dir.path(), "command")?;
    let mut first = env.spawn("projector", dir.path(), "projector-1")?;
    command.healthy(&client).await?;
    first.healthy(&client).await?;

    let result = async {
        eprintln!("  one story of {} developments", cfg.view_developments);
        let (story, last) =
            fill_story(&client, &command.base, &reporter, cfg.view_developments).await?;
        let path = format!("/v1/stories/{story}");
        let reached = format!("{path}?min_position={last}");
        let body = view_once_reached(&client, &first.base, &path, &reached).await?;
        let one = vec![format!("{}{path}", first.base)];

        eprintln!("  GET with 1 copy");
        let procs = [ident(&command), ident(&first)];
        let mut runs =
            vec![get_load(&client, &one, body.len(), cfg.readers, cfg.seconds, &procs).await?];

        eprintln!("  starting a second copy");
        let mut second = env.spawn("projector", dir.path(), "projector-2")?;
        second.healthy(&client).await?;
        let other = view_once_reached(&client, &second.base, &path, &reached).await?;
        if other != body {
            second.stop().await;
            return Err("the two copies answer the story with different bodies".into());
        }
        let two = vec![one[0].clone(), format!("{}{path}", second.base)];
        eprintln!("  GET with 2 copies");
        let all = [ident(&command), ident(&first), ident(&second)];
        let both = get_load(&client, &two, body.len(), cfg.readers, cfg.seconds, &all).await;
        second.stop().await;
        runs.push(both?);

        eprintln!("  GET with 1 copy again");
        runs.push(get_load(&client, &one, body.len(), cfg.readers, cfg.seconds, &procs).await?);
        Ok::<_, BoxError>((body.len(), runs))
    }
    .await;
    if result.is_err() {
        eprintln!(
            "--- command ---\n{}\n--- projector-1 ---\n{}",
            command.log_tail(),
            first.log_tail()
        );
    }
    first.stop().await;
    command.stop().await;
    drop(stream);
    drop(db);
    let (view_bytes, runs) = result?;
    eprintln!("  GET on one embedded process (the baseline)");
    let embedded = embedded_reads(&client, cfg).await?;
    Ok(ReadRun {
        view_bytes,
        runs,
        embedded,
        load: (load_start, load_average()),
    })
}

pub(crate) fn report_reads(out: &mut String, r: &ReadRun, cfg: &Config) -> std::fmt::Result {
    writeln!(
        out,
        "### 2a. Read throughput with 1 and 2 projector copies\n"
    )?;
    writeln!(
        out,
        "Scale-out (command + projector processes, PostgreSQL, JetStream); one story of {} developments (`GET /v1/stories/{{id}}`, {} B); {} GETs in flight back to back for {} s after 1 s of warm-up, spread evenly over the copies; a request counts when its whole answer arrived, 200 and of the expected length. Order: 1 copy, 2 copies (the second started and caught up first), 1 copy again (the second stopped).\n",
        cfg.view_developments,
        thousands(r.view_bytes as f64),
        cfg.readers,
        cfg.seconds
    )?;
    writeln!(
        out,
        "| copies | GET/s | requests | errors | p50 | p99 | max |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for g in &r.runs {
        let (p50, p99, max) = quantiles(&g.latency);
        writeln!(
            out,
            "| {} | {} | {} | {} | {p50} | {p99} | {max} |",
            g.copies,
            thousands(g.rate),
            thousands(g.requests as f64),
            g.errors
        )?;
    }
    let e = &r.embedded;
    let (p50, p99, max) = quantiles(&e.latency);
    writeln!(
        out,
        "| embedded (`--role all`, SQLite), the baseline | {} | {} | {} | {p50} | {p99} | {max} |",
        thousands(e.rate),
        thousands(e.requests as f64),
        e.errors
    )?;
    writeln!(out)?;
    if let Some(first) = r.runs.first() {
        writeln!(
            out,
            "- PostgreSQL mode, 1 copy (first run) ÷ embedded, GET/s: {:.2} (target ≥ 0.8: {}). Embedded CPU-seconds in the measured {} s: {}.",
            first.rate / e.rate.max(1e-9),
            if first.rate >= 0.8 * e.rate { "met" } else { "**missed**" },
            cfg.seconds,
            e.cpu.describe()
        )?;
    }
    for g in &r.runs {
        writeln!(
            out,
            "- {} {}: CPU-seconds in the measured {} s: {}.",
            g.copies,
            if g.copies == 1 { "copy" } else { "copies" },
            cfg.seconds,
            g.cpu.describe()
        )?;
    }
    let ones: Vec<f64> = r
        .runs
        .iter()
        .filter(|g| g.copies == 1)
        .map(|g| g.rate)
        .collect();
    if let Some(two) = r.runs.iter().find(|g| g.copies == 2) {
        let one = ones.iter().sum::<f64>() / ones.len().max(1) as f64;
        writeln!(
            out,
            "- 2 copies ÷ mean of the 1-copy runs: {:.2}. 1-minute load average {} at the start, {} at the end.",
            two.rate / one.max(f64::MIN_POSITIVE),
            r.load.0,
            r.load.1
        )?;
    }
    writeln!(out)
}
