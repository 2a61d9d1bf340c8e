//! Section 5: the HTTP API under a concurrent load client.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use newsroom_command::Settings;
use newsroom_log::Synchronous;
use newsroom_testkit::api::send_development;
use newsroom_testkit::report::{histogram, record};
use newsroom_testkit::Res;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{Config, ACTORS, BODY, HEADLINE, SOURCE};

#[derive(Debug)]
pub(crate) struct HttpRun {
    pub(crate) rate: f64,
    pub(crate) latency: Histogram<u64>,
    pub(crate) requests: u64,
    pub(crate) non_2xx: u64,
    pub(crate) transport_errors: u64,
}

/// How one load request ended.
enum Answer {
    Success,
    Status(String),
    Transport(String),
}

pub(crate) async fn http_load(path: &Path, sync: Synchronous, cfg: &Config) -> Res<HttpRun> {
    let app = newsroom_command::Application::build(Settings {
        listen: "127.0.0.1:0".into(),
        database_path: path.to_owned(),
        synchronous: sync,
        ..Default::default()
    })
    .await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let token = app
        .state()
        .tokens
        .bootstrap_admin()
        .await?
        .ok_or("a fresh store already had an admin")?
        .token;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(cfg.in_flight)
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut stories = Vec::with_capacity(cfg.stories);
    for i in 0..cfg.stories {
        let response = client
            .post(format!("{base}/v1/stories"))
            .bearer_auth(&token)
            .json(&json!({ "slug": format!("http-{i}"), "headline": "Campaign hack" }))
            .send()
            .await?
            .error_for_status()?;
        let body: Value = response.json().await?;
        stories.push(body["id"].as_str().ok_or("no story id")?.to_owned());
    }
    let stories = Arc::new(stories);

    // Half a second of unrecorded warm-up (connections, caches), then the measured window.
    let warm_until = Instant::now() + Duration::from_millis(500);
    let measure_until = warm_until + Duration::from_secs_f64(cfg.seconds);
    let workers: Vec<_> = (0..cfg.in_flight)
        .map(|w| {
            let (client, base, token, stories) =
                (client.clone(), base.clone(), token.clone(), stories.clone());
            tokio::spawn(async move {
                let mut latency = histogram();
                let (mut ok, mut non_2xx, mut transport) = (0u64, 0u64, 0u64);
                for k in 0.. {
                    let t = Instant::now();
                    if t >= measure_until {
                        break;
                    }
                    let measured = t >= warm_until;
                    let story = &stories[(w + k) % stories.len()];
                    let body = json!({
                        "id": Uuid::new_v4(),
                        "kind": "statement_issued",
                        "headline": HEADLINE,
                        "body": BODY,
                        "actors": ACTORS,
                        "source": { "name": SOURCE, "kind": "official_statement" },
                    });
                    let result = send_development(&client, &base, &token, story, &body).await;
                    let outcome = match result {
                        Ok(response) if response.status().is_success() => {
                            // A request is done when its whole answer has arrived.
                            match response.bytes().await {
                                Ok(_) => Answer::Success,
                                Err(e) => Answer::Transport(e.to_string()),
                            }
                        }
                        Ok(response) => {
                            let status = response.status();
                            let text = response.text().await.unwrap_or_default();
                            Answer::Status(format!("{status}: {text}"))
                        }
                        Err(e) => Answer::Transport(e.to_string()),
                    };
                    if !measured {
                        continue;
                    }
                    record(&mut latency, t.elapsed());
                    match outcome {
                        Answer::Success => ok += 1,
                        Answer::Status(e) => {
                            if non_2xx == 0 {
                                eprintln!("  HTTP error answer: {e}");
                            }
                            non_2xx += 1;
                        }
                        Answer::Transport(e) => {
                            if transport == 0 {
                                eprintln!("  HTTP transport error: {e}");
                            }
                            transport += 1;
                        }
                    }
                }
                (latency, ok, non_2xx, transport, Instant::now())
            })
        })
        .collect();
    let mut run = HttpRun {
        rate: 0.0,
        latency: histogram(),
        requests: 0,
        non_2xx: 0,
        transport_errors: 0,
    };
    let mut last_done = measure_until;
    for w in workers {
        let (h, ok, non_2xx, transport, done) = w.await?;
        run.latency.add(h)?;
        run.requests += ok + non_2xx + transport;
        run.non_2xx += non_2xx;
        run.transport_errors += transport;
        last_done = last_done.max(done);
    }
    run.rate = run.requests as f64 / (last_done - warm_until).as_secs_f64();

    drop(client);
    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(10), server).await {
        Ok(joined) => joined??,
        Err(_) => eprintln!("  server did not stop within 10 s; leaving it"),
    }
    Ok(run)
}
