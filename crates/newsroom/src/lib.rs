//! newsroom as one process: the command side and the read side (projector, read API, pages)
//! composed behind one HTTP listener. The binary (`main.rs`) and the end-to-end tests both start
//! newsroom through [`Newsroom::build`].

pub mod config;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use newsroom_command::http::AppState;
use newsroom_command::{Application, Settings};
use newsroom_projection::api::{self, ReadState};
use newsroom_projection::{rebuild_outdated, Projector, ViewStore};
use tokio_util::sync::CancellationToken;

/// Everything one process needs to start.
#[derive(Debug, Clone)]
pub struct NewsroomSettings {
    pub command: Settings,
    /// The SQLite file of the reader views.
    pub views_path: PathBuf,
}

/// A built, not yet running, newsroom.
#[derive(Debug)]
pub struct Newsroom {
    app: Application,
    projector: Projector,
    views: ViewStore,
}

impl Newsroom {
    /// Opens the stores (rebuilding any view whose schema changed), binds the listener.
    pub async fn build(settings: NewsroomSettings) -> anyhow::Result<Self> {
        let app = Application::build(settings.command)
            .await
            .context("starting the command side")?;
        let log = app.state().store.clone();
        let views = ViewStore::open(&settings.views_path)
            .with_context(|| format!("opening the views at {}", settings.views_path.display()))?;
        if let Some(report) = rebuild_outdated(&log, &views)
            .await
            .context("rebuilding outdated views")?
        {
            tracing::info!(views = ?report.views, events = report.events, "rebuilt views");
        }
        let projector = Projector::new(log.clone(), views.clone());
        let read = ReadState {
            views: views.clone(),
            log,
            positions: projector.positions(),
        };
        let app = app.with_routes(api::router(read));
        Ok(Self {
            app,
            projector,
            views,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.app.local_addr()
    }

    pub fn state(&self) -> &AppState {
        self.app.state()
    }

    pub fn views(&self) -> &ViewStore {
        &self.views
    }

    /// Serves and projects until `shutdown` completes; if either part fails, the other is
    /// stopped too and the error says which one.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let http_stop = stop.clone();
        let projector_stop = stop.clone();
        let mut http = tokio::spawn(
            self.app
                .run_until_stopped(async move { http_stop.cancelled().await }),
        );
        let mut projector = tokio::spawn(
            self.projector
                .run_until_stopped(async move { projector_stop.cancelled().await }),
        );
        let signal = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            signal.cancel();
        });
        // Whichever part ends first (on shutdown, both), the other is told to stop and
        // awaited, so in-flight requests and the current batch finish.
        let result = tokio::select! {
            r = &mut http => {
                stop.cancel();
                let other = projector.await;
                flatten("HTTP server", r).and(flatten("projector", other))
            }
            r = &mut projector => {
                stop.cancel();
                let other = http.await;
                flatten("projector", r).and(flatten("HTTP server", other))
            }
        };
        result
    }
}

fn flatten<E>(part: &str, r: Result<Result<(), E>, tokio::task::JoinError>) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    r.with_context(|| format!("the {part} panicked"))?
        .with_context(|| format!("the {part} failed"))
}
