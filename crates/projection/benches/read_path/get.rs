//! Section 2: GET of a long story from the app against a plain axum server serving the same
//! bytes; and its report.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::Router;
use hdrhistogram::Histogram;
use newsroom_testkit::http::GetLoad;
use newsroom_testkit::report::{histogram, thousands, us, verdict};
use newsroom_testkit::Res;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::{filing, RunningApp};
use crate::story_gen::body_text;
use crate::Config;

#[derive(Debug)]
pub(crate) struct LoadRun {
    rate: f64,
    requests: u64,
    pub(crate) errors: u64,
    latency: Histogram<u64>,
}

impl LoadRun {
    fn merge(runs: &[&LoadRun]) -> LoadRun {
        let mut latency = histogram();
        for r in runs {
            latency.add(&r.latency).expect("same bounds");
        }
        LoadRun {
            rate: runs.iter().map(|r| r.rate).sum::<f64>() / runs.len() as f64,
            requests: runs.iter().map(|r| r.requests).sum(),
            errors: runs.iter().map(|r| r.errors).sum(),
            latency,
        }
    }
}

/// [`GetLoad`] on `url`: `in_flight` workers GET it back to back for a warm-up second, then
/// `seconds`; a request counts when its whole answer has arrived, 200 and of the expected length.
async fn get_load(
    client: &reqwest::Client,
    url: &str,
    expected_len: usize,
    in_flight: usize,
    seconds: f64,
) -> Res<LoadRun> {
    let urls = [url.to_owned()];
    let tally = GetLoad::start(client, &urls, expected_len, in_flight, seconds)
        .finish()
        .await?;
    Ok(LoadRun {
        rate: tally.requests as f64 / tally.window.as_secs_f64(),
        requests: tally.requests,
        errors: tally.errors,
        latency: tally.latency,
    })
}

/// A plain axum server answering every GET of `/v1/stories/{id}` with `body` from memory.
async fn start_static(
    body: Bytes,
    content_type: HeaderValue,
) -> Res<(String, oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)> {
    let router = Router::new().route(
        "/v1/stories/{id}",
        get(move || {
            let (body, content_type) = (body.clone(), content_type.clone());
            async move { ([(header::CONTENT_TYPE, content_type)], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok((base, stop, server))
}

#[derive(Debug)]
pub(crate) struct GetRun {
    body_bytes: usize,
    content_type: String,
    timeline: usize,
    build_secs: f64,
    app: LoadRun,
    statik: LoadRun,
    app_runs: Vec<f64>,
    static_runs: Vec<f64>,
}

pub(crate) async fn get_case(cfg: &Config) -> Res<GetRun> {
    let app = RunningApp::start().await?;
    eprintln!(
        "[2] recording {} developments on one story over HTTP",
        cfg.timeline
    );
    let started = Instant::now();
    let story = app.open_story("long-story").await?;
    let mut claim: Option<String> = None;
    let mut devs: Vec<String> = Vec::new();
    let mut last = 0i64;
    for k in 1..=cfg.timeline {
        let (kind, responds) = match (k % 40, &claim) {
            (5, _) => ("attribution_claimed", None),
            (6 | 26, Some(c)) => ("denial_issued", Some((c.as_str(), "denies"))),
            (15, Some(c)) => ("report_published", Some((c.as_str(), "supports"))),
            (r, _) if r % 3 == 0 => ("update", None),
            (r, _) if r % 3 == 1 => ("statement_issued", None),
            _ => ("report_published", None),
        };
        let body = filing(k, responds, kind);
        let id = body["id"].as_str().expect("an id").to_owned();
        last = app
            .post_position(&format!("/v1/stories/{story}/developments"), body)
            .await?;
        if kind == "attribution_claimed" {
            claim = Some(id.clone());
        }
        devs.push(id);
        // A few corrections and retractions, as a running story has.
        if k % 97 == 0 {
            last = app
                .post_position(
                    &format!(
                        "/v1/stories/{story}/developments/{}/corrections",
                        devs[k - 7]
                    ),
                    json!({
                        "note": "An earlier version misstated the date of the breach.",
                        "changes": {"body": body_text(k + 1), "evidence": "confirmed"},
                    }),
                )
                .await?;
        }
        if k % 331 == 0 {
            last = app
                .post_position(
                    &format!(
                        "/v1/stories/{story}/developments/{}/retraction",
                        devs[k - 3]
                    ),
                    json!({"reason": "The source withdrew the statement."}),
                )
                .await?;
        }
    }
    let url = format!("{}/v1/stories/{story}", app.base);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = app
            .client
            .get(format!("{url}?min_position={last}"))
            .send()
            .await?;
        if r.status() == reqwest::StatusCode::OK {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("views did not reach {last}: {}", r.status()).into());
        }
    }
    let build_secs = started.elapsed().as_secs_f64();
    let r = app.client.get(&url).send().await?;
    let content_type = r
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .ok_or("no content type")?;
    let body = r.bytes().await?;
    let doc: Value = serde_json::from_slice(&body)?;
    let timeline = doc["timeline"].as_array().map_or(0, Vec::len);
    if doc["position"].as_i64() != Some(last) || timeline != cfg.timeline {
        return Err(format!(
            "unexpected story: position {} (want {last}), {timeline} developments",
            doc["position"]
        )
        .into());
    }
    eprintln!(
        "  done in {build_secs:.1} s; the answer is {} bytes of {}",
        body.len(),
        content_type.to_str().unwrap_or("?")
    );

    let (static_base, static_stop, static_server) =
        start_static(body.clone(), content_type.clone()).await?;
    let static_url = format!("{static_base}/v1/stories/{story}");
    // One client for every run, so both servers see the same connection behaviour.
    let client = reqwest::Client::new();
    let mut app_runs = Vec::new();
    let mut static_runs = Vec::new();
    for (i, target) in ["static", "app", "app", "static"].into_iter().enumerate() {
        let u = if target == "app" { &url } else { &static_url };
        eprintln!(
            "[2] GET load {}/4 on {target}: {} in flight, {} s",
            i + 1,
            cfg.in_flight,
            cfg.seconds
        );
        let run = get_load(&client, u, body.len(), cfg.in_flight, cfg.seconds).await?;
        eprintln!(
            "  {:.0} requests/s, p50 {}, p99 {}, {} errors",
            run.rate,
            us(run.latency.value_at_quantile(0.5)),
            us(run.latency.value_at_quantile(0.99)),
            run.errors
        );
        if target == "app" {
            app_runs.push(run);
        } else {
            static_runs.push(run);
        }
    }
    let _ = static_stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), static_server).await;
    app.stop().await?;
    Ok(GetRun {
        body_bytes: body.len(),
        content_type: content_type.to_str().unwrap_or("?").to_owned(),
        timeline,
        build_secs,
        app: LoadRun::merge(&app_runs.iter().collect::<Vec<_>>()),
        statik: LoadRun::merge(&static_runs.iter().collect::<Vec<_>>()),
        app_runs: app_runs.iter().map(|r| r.rate).collect(),
        static_runs: static_runs.iter().map(|r| r.rate).collect(),
    })
}

pub(crate) fn report_get(out: &mut String, g: &GetRun, cfg: &Config) -> std::fmt::Result {
    writeln!(out, "### 2. GET of a {}-development timeline\n", g.timeline)?;
    writeln!(
        out,
        "One story with {} developments (plus corrections and retractions) recorded over HTTP, built and projected in {:.1} s. The answer is {} bytes of `{}`. Baseline: a plain axum server in the same process serving those bytes from memory with the same content type. Same reqwest client, {} requests in flight, 1 s warm-up then {} s per run, order static, app, app, static; a request counts when its whole body has arrived.\n",
        g.timeline,
        g.build_secs,
        thousands(g.body_bytes as f64),
        g.content_type,
        cfg.in_flight,
        cfg.seconds
    )?;
    writeln!(
        out,
        "| case | requests | requests/s (per run) | p50 | p99 | ratio | target |\n|---|---|---|---|---|---|---|"
    )?;
    let runs = |v: &[f64]| {
        v.iter()
            .map(|r| thousands(*r))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // requests (errors) | requests/s (per run) | p50 | p99
    let measured = |r: &LoadRun, per_run: &[f64]| {
        format!(
            "{} ({} errors) | {} ({}) | {} | {}",
            thousands(r.requests as f64),
            r.errors,
            thousands(r.rate),
            runs(per_run),
            us(r.latency.value_at_quantile(0.5)),
            us(r.latency.value_at_quantile(0.99)),
        )
    };
    writeln!(
        out,
        "| static bytes from memory (plain axum) | {} | 1.00 (reference) | |",
        measured(&g.statik, &g.static_runs),
    )?;
    let ratio = g.app.rate / g.statik.rate;
    writeln!(
        out,
        "| newsroom `GET /v1/stories/{{id}}` | {} | {:.2} × static | ≥ 0.8: {} |",
        measured(&g.app, &g.app_runs),
        ratio,
        verdict(ratio >= 0.8 && g.app.errors == 0)
    )?;
    writeln!(out)?;
    Ok(())
}
