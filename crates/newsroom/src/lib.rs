//! newsroom as one process: the command side and the read side (projector, read API, pages)
//! composed behind one HTTP listener. The binary (`main.rs`) and the end-to-end tests both start
//! newsroom through [`Newsroom::build`].

pub mod config;
pub mod desk;
pub mod follow;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use anyhow::Context;
use newsroom_command::http::AppState;
use newsroom_command::relay::{Relay, StreamSettings};
use newsroom_command::{Application, Settings};
use newsroom_notifier::{Clock, Notifier, NotifierSettings, NotifierStore};
use newsroom_projection::api::{self, ReadState};
use newsroom_projection::{rebuild_outdated, Projector, ViewStore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Everything one process needs to start.
#[derive(Debug, Clone)]
pub struct NewsroomSettings {
    pub command: Settings,
    /// The SQLite file of the reader views.
    pub views_path: PathBuf,
    pub notifier: NotifierSettings,
    /// The notifier's clock (digest windows, retry times); tests move it by hand.
    pub clock: Arc<dyn Clock>,
    /// Publishing the event feed to NATS JetStream (scale-out); off in embedded mode.
    pub relay: Option<RelaySettings>,
}

/// Where the relay publishes the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySettings {
    pub nats_url: String,
    pub stream: StreamSettings,
}

/// A built, not yet running, newsroom.
#[derive(Debug)]
pub struct Newsroom {
    app: Application,
    projector: Projector,
    views: ViewStore,
    notifier: Notifier,
    relay: Option<Relay>,
}

impl Newsroom {
    /// Opens the stores (rebuilding any view whose schema changed), binds the listener.
    pub async fn build(settings: NewsroomSettings) -> anyhow::Result<Self> {
        let mut app = Application::build(settings.command)
            .await
            .context("starting the command side")?;
        let relay = match &settings.relay {
            Some(r) => {
                let client = newsroom_command::relay::connect(&r.nats_url)
                    .await
                    .context("connecting to NATS")?;
                let relay = Relay::new(app.state().store.clone(), client, r.stream.clone());
                app.set_relay_status(relay.status());
                Some(relay)
            }
            None => None,
        };
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
        let notifier = Notifier::build(
            settings.notifier,
            log.clone(),
            app.state().tokens.clone(),
            settings.clock,
        )
        .await
        .context("starting the notifier")?;
        let read = ReadState {
            views: views.clone(),
            log,
            positions: projector.positions(),
        };
        let routes = api::router(read)
            .merge(notifier.router())
            .merge(follow::router(notifier.router(), views.clone()))
            .merge(desk::router(
                app.state().clone(),
                views.clone(),
                projector.positions(),
                notifier.store().clone(),
            ));
        let app = app.with_routes(routes);
        Ok(Self {
            app,
            projector,
            views,
            notifier,
            relay,
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

    pub fn notifier_store(&self) -> &NotifierStore {
        self.notifier.store()
    }

    /// Serves, projects and notifies until `shutdown` completes. If any part ends (fails), the
    /// others are stopped too, finish what they were doing, and the error says which part it was.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let mut parts = JoinSet::new();
        let s = stop.clone();
        parts.spawn(async move {
            let r = self
                .app
                .run_until_stopped(async move { s.cancelled().await })
                .await;
            ("HTTP server", r.map_err(anyhow::Error::from))
        });
        let s = stop.clone();
        parts.spawn(async move {
            let r = self.projector.run_until_stopped(s.cancelled()).await;
            ("projector", r.map_err(anyhow::Error::from))
        });
        let s = stop.clone();
        parts.spawn(async move {
            let r = self
                .notifier
                .run_until_stopped(async move { s.cancelled().await })
                .await;
            ("notifier", r.map_err(anyhow::Error::from))
        });
        if let Some(relay) = self.relay {
            let s = stop.clone();
            parts.spawn(async move {
                let published = relay.run_until_stopped(s.cancelled()).await;
                tracing::info!(events = published.events, "relay stopped");
                ("relay", Ok(()))
            });
        }
        let signal = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            signal.cancel();
        });
        let mut result = Ok(());
        while let Some(joined) = parts.join_next().await {
            stop.cancel();
            let outcome = match joined {
                Ok((part, r)) => r.with_context(|| format!("the {part} failed")),
                Err(e) => Err(anyhow::anyhow!("a part of newsroom panicked: {e}")),
            };
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }
}
