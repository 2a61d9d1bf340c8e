//! The real app, built from the binary's configuration defaults, and the developments the cases
//! file on it.

use std::time::Duration;

use newsroom::config::Config as AppConfig;
use newsroom::{Newsroom, NewsroomSettings};
use newsroom_log::{EventLog, Synchronous};
use newsroom_projection::ViewStore;
use newsroom_testkit::api::story;
use newsroom_testkit::http::post_json_to;
use newsroom_testkit::Res;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::story_gen::{body_text, ACTORS, HEADLINES};

pub(crate) struct RunningApp {
    pub(crate) base: String,
    token: String,
    pub(crate) views: ViewStore,
    pub(crate) log: EventLog,
    pub(crate) client: reqwest::Client,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), String>>>,
    _dir: tempfile::TempDir,
}

impl RunningApp {
    pub(crate) async fn start() -> Res<Self> {
        let dir = tempfile::tempdir()?;
        // The settings the binary would build from this configuration (production defaults for
        // everything not named here, the notifier included), on port 0 in a temporary directory.
        let config = AppConfig {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_owned(),
            sqlite_synchronous: Synchronous::Normal,
            // One token drives the whole load: per-client write limits would turn it into 429s.
            writes_per_token_per_minute: 0,
            ..AppConfig::default()
        };
        let settings: NewsroomSettings = config.newsroom_settings()?;
        let app = Newsroom::build(settings).await?;
        let base = format!("http://{}", app.local_addr());
        let token = app
            .state()
            .tokens
            .bootstrap_admin()
            .await?
            .ok_or("a fresh store has no admin")?
            .token;
        let views = app.views().expect("role all projects").clone();
        let log = app.state().store.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| format!("{e:#}"))
        });
        Ok(Self {
            base,
            token,
            views,
            log,
            client: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
            _dir: dir,
        })
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Res<Value> {
        Ok(post_json_to(&self.client, &self.base, path, Some(&self.token), &body).await?)
    }

    /// [`App::post`], for the log position its answer gives.
    pub(crate) async fn post_position(&self, path: &str, body: Value) -> Res<i64> {
        let answer = self.post(path, body).await?;
        Ok(answer["position"].as_i64().ok_or("no position")?)
    }

    pub(crate) async fn open_story(&self, slug: &str) -> Res<String> {
        let answer = self.post("/v1/stories", story(slug)).await?;
        Ok(answer["id"].as_str().ok_or("no story id")?.to_owned())
    }

    pub(crate) async fn stop(mut self) -> Res<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            match tokio::time::timeout(Duration::from_secs(10), server).await {
                Ok(joined) => joined??,
                Err(_) => eprintln!("  the app did not stop within 10 s; leaving it"),
            }
        }
        Ok(())
    }
}

/// A filing as a reporter sends it: about 300 bytes of body, two actors, a named source.
pub(crate) fn filing(k: usize, responds_to: Option<(&str, &str)>, kind: &str) -> Value {
    let mut body = json!({
        "id": Uuid::new_v4(),
        "kind": kind,
        "headline": HEADLINES[k % HEADLINES.len()],
        "body": body_text(k),
        "actors": [ACTORS[k % ACTORS.len()], ACTORS[(k + 5) % ACTORS.len()]],
        "source": {"name": "Interior Ministry spokesperson", "kind": "official_statement"},
        "evidence": "documentary",
        "urgency": "priority",
    });
    if let Some((development, stance)) = responds_to {
        body["responds_to"] = json!({"development": development, "stance": stance});
    }
    body
}
