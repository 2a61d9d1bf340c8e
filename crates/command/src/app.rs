//! Start-up: builds the store, the service and the HTTP server from [`Settings`], and runs them
//! until told to stop.
//!
//! [`Application`] is the host of every process role, not only of the command side: it opens the
//! log (SQLite or PostgreSQL) and the tokens, binds the listener, and serves the command router
//! (unless `without_commands`) together with whatever the process adds (`with_routes`, the other
//! parts' routers; `with_document`, their parts of the OpenAPI document), reporting the relay's and
//! each follower's status at `/healthz` (`set_relay_status`, `add_follower`). `build`, then
//! `run_until_stopped(shutdown)`; `port`/`local_addr` give the bound port (tests listen on port 0).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::http::{self, AppState};
use crate::service::{CommandService, ServiceOptions};
use newsroom_log::db::Synchronous;
use newsroom_log::feed::StoreError;
use newsroom_log::log::EventLog;
use newsroom_log::pg::PgStore;
use newsroom_log::sqlite::{SqliteOptions, SqliteStore};
use newsroom_web::auth::Tokens;

/// Settings of the command side.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address to listen on, `host:port`; port 0 picks a free port.
    pub listen: String,
    /// The SQLite event store file (embedded mode).
    pub database_path: PathBuf,
    /// `postgres://…`: keep the log in PostgreSQL instead (several command processes).
    pub database_url: Option<String>,
    pub synchronous: Synchronous,
    /// A snapshot of a story is stored every this many of its events.
    pub snapshot_every: usize,
    /// Stories whose aggregate stays in memory.
    pub aggregate_cache: usize,
    /// Requests taking longer are answered 408.
    pub request_timeout_secs: u64,
    /// A connection must send a request's headers within this long of the server starting to
    /// wait for them — on a new connection, and on a kept-alive one after each answer (so it is
    /// also the idle keep-alive timeout); else it is closed.
    pub header_read_timeout_secs: u64,
    /// Connections one client address (an IPv6 /64) may hold open; the next is answered 429 and
    /// closed. 0: no cap.
    pub connections_per_address: usize,
    /// Limits on writes; `None` turns them off (the library default; the binary turns them on).
    pub rate_limits: Option<newsroom_web::limits::RateLimits>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_path: PathBuf::from("data/newsroom.db"),
            database_url: None,
            synchronous: Synchronous::Full,
            snapshot_every: 10,
            aggregate_cache: 10_000,
            request_timeout_secs: 15,
            header_read_timeout_secs: 10,
            connections_per_address: 128,
            rate_limits: None,
        }
    }
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the event store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
}

/// The running command side: event store, command service, HTTP API.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    settings: Settings,
    extra: axum::Router,
    documented: Documented,
    commands: bool,
}

/// The OpenAPI document of the extra routes.
#[derive(Default)]
struct Documented(utoipa::openapi::OpenApi);

impl std::fmt::Debug for Documented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Documented").finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, crate::service::system_now()).await
    }

    /// As [`build`](Self::build), the command service deciding and recording by `now`.
    pub async fn build_with_clock(
        settings: Settings,
        now: crate::service::Now,
    ) -> Result<Self, StartupError> {
        let store: EventLog = match &settings.database_url {
            Some(url) => PgStore::connect(url).await?.into(),
            None => SqliteStore::open(
                &settings.database_path,
                SqliteOptions {
                    synchronous: settings.synchronous,
                    ..Default::default()
                },
            )?
            .into(),
        };
        let service = CommandService::new(
            store.clone(),
            ServiceOptions {
                snapshot_every: settings.snapshot_every,
                cache_capacity: settings.aggregate_cache,
            },
        )
        .with_clock(now);
        let listener = TcpListener::bind(&settings.listen)
            .await
            .map_err(|source| StartupError::Listen {
                address: settings.listen.clone(),
                source,
            })?;
        let state = AppState {
            service: Arc::new(service),
            tokens: Tokens::new(store.clone()),
            store,
            metrics: newsroom_web::telemetry::metrics_handle(),
            relay: None,
            followers: Vec::new(),
        };
        Ok(Self {
            listener,
            state,
            settings,
            extra: axum::Router::new(),
            documented: Documented::default(),
            commands: true,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Lets `/healthz` report the relay to NATS.
    pub fn set_relay_status(&mut self, status: newsroom_log::relay::RelayStatus) {
        self.state.relay = Some(status);
    }

    /// Lets `/healthz` report a part of this process that follows the feed.
    pub fn add_follower(
        &mut self,
        name: &'static str,
        status: newsroom_log::consumer::FollowerStatus,
    ) {
        self.state.followers.push((name, status));
    }

    /// Serves no command routes (a projector or notifier process in scale-out mode); the log is
    /// still open for reading, and `/healthz` and `/metrics` are still served.
    pub fn without_commands(mut self) -> Self {
        self.commands = false;
        self
    }

    /// Adds routes served by the same process (the read side), behind the same middleware.
    pub fn with_routes(mut self, routes: axum::Router) -> Self {
        self.extra = self.extra.merge(routes);
        self
    }

    /// Adds the OpenAPI document of routes added with [`Self::with_routes`] to the one served.
    pub fn with_document(mut self, document: utoipa::openapi::OpenApi) -> Self {
        self.documented.0.merge(document);
        self
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = http::router(
            self.state,
            Duration::from_secs(self.settings.request_timeout_secs.max(1)),
            self.settings.rate_limits,
            self.extra,
            self.documented.0,
            self.commands,
        );
        newsroom_web::serve::serve(
            self.listener,
            router,
            newsroom_web::serve::ConnectionLimits {
                header_read_timeout: Duration::from_secs(
                    self.settings.header_read_timeout_secs.max(1),
                ),
                per_address: self.settings.connections_per_address,
            },
            shutdown,
        )
        .await
    }
}
