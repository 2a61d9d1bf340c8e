//! Processes of the newsroom binary in scale-out mode, and the HTTP calls the cases make to them.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use newsroom_testkit::api::{development, send_development, slug, story};
use newsroom_testkit::http::{answered_position, post_json};
use newsroom_testkit::pg::Database;
use newsroom_testkit::BoxError;
use serde_json::Value;
use uuid::Uuid;

use crate::common::*;

use crate::services::Stream;
use crate::Config;

/// The variables of a scale-out deployment: its database, NATS and stream.
fn scale_out_env(db: &Database, stream: &Stream) -> Env {
    Env {
        vars: vec![
            ("NEWSROOM_DATABASE_URL".into(), db.url.clone()),
            ("NEWSROOM_NATS_URL".into(), stream.nats_url.clone()),
            (
                "NEWSROOM_NATS_STREAM".into(),
                stream.settings.stream.clone(),
            ),
            (
                "NEWSROOM_NATS_SUBJECT_PREFIX".into(),
                stream.settings.subject_prefix.clone(),
            ),
        ],
    }
}

/// A process's id and name, for the CPU accounting.
pub(crate) fn ident(p: &Proc) -> (u32, String) {
    (p.child.id(), format!("newsroom {}", p.name))
}

/// A case report's closing line: the 1-minute load average at its start and at its end.
pub(crate) fn load_note(out: &mut String, (start, end): &(String, String)) -> std::fmt::Result {
    writeln!(
        out,
        "- 1-minute load average {start} at the start, {end} at the end.\n"
    )
}

/// A fresh database and stream for one case, and the variables of a deployment on them.
pub(crate) async fn fresh_deployment(cfg: &Config) -> Res<(Database, Stream, Env)> {
    let db = Database::create(&cfg.database_url, "bench").await?;
    let stream = Stream::new(&cfg.nats_url);
    let env = scale_out_env(&db, &stream);
    Ok((db, stream, env))
}

pub(crate) fn http_client() -> Res<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build()?)
}

pub(crate) async fn open_story(client: &reqwest::Client, base: &str, token: &str) -> Res<String> {
    let body = story(&slug("bench"));
    let answer = call(client, format!("{base}/v1/stories"), Some(token), body).await?;
    Ok(answer["id"].as_str().ok_or("no story id")?.to_owned())
}

/// `POST url` of `body` as JSON (and a bearer token): the answer's JSON.
pub(crate) async fn call(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> Res<Value> {
    Ok(post_json(client, &url, token, &body).await?)
}

/// One `POST …/developments`: its id, when its answer had fully arrived, its position.
#[derive(Debug)]
pub(crate) struct Posted {
    pub(crate) development: String,
    pub(crate) took: Duration,
    pub(crate) answered: Instant,
    pub(crate) position: Option<i64>,
    pub(crate) error: Option<String>,
}

pub(crate) async fn post_development(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    story: &str,
) -> Posted {
    let id = Uuid::new_v4();
    let sent = Instant::now();
    let result = send_development(client, base, token, story, &development(id)).await;
    let (position, error) = answered_position(result, |s| s.is_success()).await;
    let answered = Instant::now();
    Posted {
        development: id.to_string(),
        took: answered - sent,
        answered,
        position,
        error,
    }
}

/// Runs `f` on every item, at most `n` at a time.
pub(crate) async fn bounded<T, F, Fut, O>(items: Vec<T>, n: usize, f: F) -> Res<Vec<O>>
where
    T: Send + 'static,
    O: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Res<O>> + Send + 'static,
{
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    stream::iter(items.into_iter().map(|i| tokio::spawn(f(i))))
        .buffered(n.max(1))
        .map(|joined| joined.map_err(BoxError::from).and_then(|r| r))
        .try_collect()
        .await
}
