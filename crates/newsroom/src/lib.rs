//! newsroom as one process: the parts a [`ProcessRole`] runs, composed behind one HTTP listener
//! (the command crate's `Application` is the host). [`Newsroom::build`] opens the log, the views
//! (rebuilding outdated ones), the projector, the notifier, the relay and the embargo scheduler as
//! the role asks, and merges their routers and OpenAPI parts; [`Newsroom::run_until_stopped`] runs
//! the server and every part, and stops all if one fails, saying which. The binary (`main.rs`) and
//! the end-to-end tests both start newsroom through it.
//!
//! Roles (`newsroom serve --role all|command|projector|notifier|web`, or `NEWSROOM_ROLE`):
//! `command` serves the command API and runs the relay and the embargo scheduler; `projector` runs
//! the projector and serves the read API and pages; `notifier` runs the notifier and serves the
//! subscriber API; `web` serves the desk and the alert pages with the command and subscriber APIs
//! they write through (so it runs the relay and the embargo scheduler too), projects and matches
//! nothing, reads the views the projector processes keep beside the log, and waits for its own
//! writes to show through `ViewStore::follow_commits`; its notifier runs only
//! `run_front_until_stopped` (alert streams fed from the shared queue, ended when their token
//! goes). `all` (the default) runs everything. Every role serves `/healthz` and `/metrics`.
//! Projector and notifier processes follow the JetStream stream when `nats_url` is set (the log
//! otherwise), each through its own durable consumer, named once and kept beside its state
//! (`consumer_name`: `views.consumer`, `notifier.consumer`). SIGTERM stops a process gracefully:
//! the listener stops taking requests, the parts finish their batch, and consumers hand back (nak)
//! what they took and did not commit.
//!
//! With the log in PostgreSQL the views and the notifier's queue are there too, shared by all
//! copies: projector copies apply each batch once between them (the views' checkpoint rows are
//! locked per batch); notifier copies split the work in 64 partitions they lease
//! (`newsroom_notifier::partitions`).
//!
//! [`disable_transparent_huge_pages`]: the process runs without them, which keeps a rebuild's peak
//! memory and the RSS after live streams closed down.

pub mod config;
pub mod desk;
pub mod follow;
pub mod notifier_views;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use anyhow::Context;
use newsroom_command::embargo::EmbargoScheduler;
use newsroom_command::http::AppState;
use newsroom_command::{Application, Settings};
use newsroom_log::consumer::JetStreamFeed;
use newsroom_log::relay::{Relay, StreamSettings};
use newsroom_notifier::{Clock, Notifier, NotifierSettings, NotifierStore};
use newsroom_projection::api::{self, ReadState};
use newsroom_projection::{rebuild_outdated, LiveHub, LiveLimits, Projector, ViewStore};

pub use notifier_views::NotifierViews;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Keeps the process's resident memory close to what it uses: no transparent huge pages. On a
/// machine where the kernel backs every anonymous mapping with 2 MiB pages ("always"), a heap
/// whose pages are partly in use counts each of them whole, and memory freed inside them never
/// goes back (a rebuild of 200,000 events peaked 40 MB higher, and the RSS after live streams
/// closed stayed up). Call it first thing; it is a no-op where the kernel has no such switch.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "transparent huge pages stay as the kernel sets them");
    }
}

/// How many glibc malloc arenas the process may use (`MALLOC_ARENA_MAX`), unless its
/// environment already says.
pub const MALLOC_ARENAS: &str = "2";

/// Keeps what SQLite allocates (it calls the C library's `malloc`, not the Rust allocator) in
/// [`MALLOC_ARENAS`] arenas instead of one per thread that ever contended: each thread of the
/// blocking pool that ran a query kept an arena whose freed pages stayed resident, and a server
/// that had filed 150,000 developments held 210 MB instead of 139 MB (BENCHMARKS.md, long
/// history). glibc reads the setting when the process starts, so the process runs itself again
/// (same pid, arguments and environment) with `MALLOC_ARENA_MAX` set; it carries on as it is if
/// that fails. Call it first thing. A no-op outside glibc or when the variable is already set.
pub fn fewer_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        use std::os::unix::process::CommandExt;
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let failed = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("MALLOC_ARENA_MAX", MALLOC_ARENAS)
            .exec();
        eprintln!("newsroom: could not run again with MALLOC_ARENA_MAX set ({failed}); going on");
    }
}

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
    /// Which parts this process runs.
    pub role: ProcessRole,
    /// Caps on the read side's live streams.
    pub live: LiveLimits,
    /// How far apart the front page's marks are (`newsroom_projection::marks`; tests make
    /// them close).
    pub front_page_marks: newsroom_projection::MarkSpacing,
    /// The desk's undo window (`NEWSROOM_DESK_UNDO_SECS`): publishing and approving at the desk
    /// are held this long, during which they can be undone; none: at once.
    pub desk_undo: Option<newsroom_domain::Hold>,
}

/// Which parts of newsroom a process runs (`newsroom serve --role …`). Every role serves
/// `/healthz` and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProcessRole {
    /// Everything in one process: the embedded mode, and the web front (desk, alert pages).
    #[default]
    All,
    /// The command API and the relay to JetStream.
    Command,
    /// The projector and the read API and pages it feeds.
    Projector,
    /// The notifier and the subscriber API.
    Notifier,
    /// The web front of a scale-out deployment: the desk and the alert pages, with the command
    /// and subscriber APIs they write through, reading the views the projector processes keep
    /// (in the log's PostgreSQL database). It projects and matches nothing.
    Web,
}

impl ProcessRole {
    pub fn commands(self) -> bool {
        matches!(
            self,
            ProcessRole::All | ProcessRole::Command | ProcessRole::Web
        )
    }

    /// Serves the desk and the alert pages.
    pub fn web(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Web)
    }

    pub fn projects(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Projector)
    }

    pub fn notifies(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Notifier)
    }
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
    projector: Option<Projector>,
    /// The live streams' hub, woken by the projector's commits.
    live: Option<(LiveHub, tokio::sync::watch::Receiver<i64>)>,
    views: Option<ViewStore>,
    /// The notifier, and whether this process matches and delivers (else it serves only the
    /// web front's share of it).
    notifier: Option<(Notifier, bool)>,
    /// A web front's views, written by other processes, and the position they reached.
    followed_views: Option<(ViewStore, tokio::sync::watch::Sender<i64>)>,
    relay: Option<Relay>,
    /// Lifts embargoes as they come due (processes that serve commands).
    embargoes: Option<EmbargoScheduler>,
}

impl Newsroom {
    /// Opens the stores (rebuilding any view whose schema changed), binds the listener; only
    /// what the settings' role runs.
    pub async fn build(settings: NewsroomSettings) -> anyhow::Result<Self> {
        let role = settings.role;
        // The command side decides by the same clock as the notifier (tests move it).
        let clock = settings.clock.clone();
        let settings_desk_undo = settings.desk_undo;
        let mut app =
            Application::build_with_clock(settings.command, Arc::new(move || clock.now()))
                .await
                .context("starting the command side")?;
        if !role.commands() {
            app = app.without_commands();
        }
        let relay = match &settings.relay {
            Some(r) if role.commands() => {
                let client = newsroom_log::relay::connect(&r.nats_url)
                    .await
                    .context("connecting to NATS")?;
                let relay = Relay::new(app.state().store.clone(), client, r.stream.clone());
                app.set_relay_status(relay.status());
                Some(relay)
            }
            _ => None,
        };
        let log = app.state().store.clone();
        let embargoes = role
            .commands()
            .then(|| EmbargoScheduler::new(log.clone(), app.state().service.clone()));
        let mut routes = axum::Router::new();
        let mut document = utoipa::openapi::OpenApi::default();
        let (mut views, mut projector, mut live) = (None, None, None);
        let mut followed_views = None;
        if role.projects() {
            // Beside the log: a SQLite file of their own, or the log's PostgreSQL database.
            let store = ViewStore::beside(&log, &settings.views_path)
                .await
                .with_context(|| format!("opening the views at {}", settings.views_path.display()))?
                .with_marks(settings.front_page_marks);
            if let Some(report) = rebuild_outdated(&log, &store)
                .await
                .context("rebuilding outdated views")?
            {
                tracing::info!(views = ?report.views, events = report.events, "rebuilt views");
            }
            let mut p = Projector::new(log.clone(), store.clone());
            // A projector process of a scale-out deployment follows the event stream.
            if let (ProcessRole::Projector, Some(r)) = (role, &settings.relay) {
                p = p.with_stream(follow_stream(r, &settings.views_path, "projector", &log).await?);
            }
            app.add_follower("projector", p.status());
            let hub = LiveHub::new(store.clone(), log.clone(), settings.live)
                .await
                .context("starting the live streams")?;
            routes = routes.merge(api::router(ReadState {
                views: store.clone(),
                log: log.clone(),
                live: hub.clone(),
                public_url: settings
                    .notifier
                    .public_url
                    .trim_end_matches('/')
                    .to_owned(),
            }));
            document.merge(<api::ReadApiDoc as utoipa::OpenApi>::openapi());
            live = Some((hub, p.positions()));
            // Views shared with other copies that announce their commits (PostgreSQL): hearing
            // them lets this process serve reads it already holds without a round trip
            // (`ViewStore::heard_position`).
            if store.announces_commits() {
                followed_views = Some((store.clone(), tokio::sync::watch::channel(0).0));
            }
            views = Some(store);
            projector = Some(p);
        }
        // A web front reads the views the projector processes keep, and follows their commits.
        if role.web() && views.is_none() {
            let store = ViewStore::beside(&log, &settings.views_path)
                .await
                .context("opening the views")?;
            let (positions, _) = tokio::sync::watch::channel(0);
            followed_views = Some((store.clone(), positions));
            views = Some(store);
        }
        let mut notifier = None;
        if role.notifies() || role.web() {
            // Subscribers' NATS alerts must never land in the event stream.
            if let Some(r) = &settings.relay {
                newsroom_notifier::subjects::AlertSubjects::new(&settings.notifier.nats_alert_root)
                    .and_then(|s| s.apart_from_events(&r.stream.subject_prefix))
                    .context("NEWSROOM_NATS_ALERT_ROOT")?;
            }
            let path = settings.notifier.path.clone();
            // The notifier reads the views' history; a notifier process (scale-out) reads the
            // views the projector processes keep in the log's database.
            let notifier_views = match &views {
                Some(v) => v.clone(),
                None => ViewStore::beside(&log, &settings.views_path)
                    .await
                    .context("opening the views")?,
            };
            let mut n = Notifier::build(
                settings.notifier,
                log.clone(),
                Arc::new(NotifierViews {
                    log: log.clone(),
                    views: notifier_views,
                }),
                app.state().tokens.clone(),
                settings.clock,
            )
            .await
            .context("starting the notifier")?;
            // So does a notifier process.
            if let (ProcessRole::Notifier, Some(r)) = (role, &settings.relay) {
                n = n.with_stream(follow_stream(r, &path, "notifier", &log).await?);
            }
            // With the projector in this process, the matcher hears when the views hold a batch.
            if let Some(p) = &projector {
                n = n.hearing_views(p.positions());
            }
            if role.notifies() {
                app.add_follower("notifier", n.status());
            }
            routes = routes.merge(n.router());
            document
                .merge(<newsroom_notifier::api::SubscriberApiDoc as utoipa::OpenApi>::openapi());
            notifier = Some(n);
        }
        // The web front needs every part: the desk writes through the command service and reads
        // the views and the notifier's subscriptions; the alert pages use the subscriber API.
        if let (true, Some(v), Some(n)) = (role.web(), &views, &notifier) {
            let reached = match (&live, &followed_views) {
                (Some((hub, _)), _) => hub.reached(),
                (None, Some((_, positions))) => positions.subscribe(),
                (None, None) => anyhow::bail!("the desk has no views to follow"),
            };
            routes = routes
                .merge(follow::router(n.router(), v.clone()))
                .merge(desk::router(
                    app.state().clone(),
                    v.clone(),
                    reached,
                    n.store().clone(),
                    settings_desk_undo,
                ));
        }
        let app = app.with_routes(routes).with_document(document);
        Ok(Self {
            app,
            projector,
            live,
            views,
            notifier: notifier.map(|n| (n, role.notifies())),
            followed_views,
            relay,
            embargoes,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.app.local_addr()
    }

    pub fn state(&self) -> &AppState {
        self.app.state()
    }

    /// The views, if this role projects.
    pub fn views(&self) -> Option<&ViewStore> {
        self.views.as_ref()
    }

    /// The notifier's store, if this role notifies.
    pub fn notifier_store(&self) -> Option<&NotifierStore> {
        self.notifier.as_ref().map(|(n, _)| n.store())
    }

    /// The hub subscribers' alert streams are served from, if this role notifies.
    pub fn alert_hub(&self) -> Option<&newsroom_notifier::streams::AlertHub> {
        self.notifier.as_ref().map(|(n, _)| n.alert_hub())
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
        if let Some(projector) = self.projector {
            let s = stop.clone();
            parts.spawn(async move {
                let r = projector.run_until_stopped(s.cancelled()).await;
                ("projector", r.map_err(anyhow::Error::from))
            });
        }
        if let Some((hub, wake)) = self.live {
            let s = stop.clone();
            parts.spawn(async move {
                hub.run_until_stopped(wake, s.cancelled_owned()).await;
                ("live streams", Ok(()))
            });
        }
        if let Some((notifier, matches)) = self.notifier {
            let s = stop.clone();
            parts.spawn(async move {
                let stopped = async move { s.cancelled().await };
                let r = if matches {
                    notifier.run_until_stopped(stopped).await
                } else {
                    notifier.run_front_until_stopped(stopped).await
                };
                ("notifier", r.map_err(anyhow::Error::from))
            });
        }
        if let Some((views, positions)) = self.followed_views {
            let s = stop.clone();
            parts.spawn(async move {
                views.follow_commits(positions, s.cancelled()).await;
                ("views' follower", Ok(()))
            });
        }
        if let Some(relay) = self.relay {
            let s = stop.clone();
            parts.spawn(async move {
                let published = relay.run_until_stopped(s.cancelled()).await;
                tracing::info!(events = published.events, "relay stopped");
                ("relay", Ok(()))
            });
        }
        if let Some(embargoes) = self.embargoes {
            let s = stop.clone();
            parts.spawn(async move {
                embargoes.run_until_stopped(s.cancelled()).await;
                ("embargo scheduler", Ok(()))
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

/// The durable JetStream consumer through which the `part` whose state lives at `path` follows
/// the event stream.
async fn follow_stream(
    relay: &RelaySettings,
    path: &std::path::Path,
    part: &str,
    log: &newsroom_log::EventLog,
) -> anyhow::Result<JetStreamFeed> {
    let name = consumer_name(path, part)
        .with_context(|| format!("naming the {part}'s JetStream consumer"))?;
    let client = newsroom_log::relay::connect(&relay.nats_url)
        .await
        .context("connecting to NATS")?;
    let feed = JetStreamFeed::open(client, &relay.stream, &name, log.clone())
        .await
        .with_context(|| format!("opening the {part}'s JetStream consumer"))?;
    tracing::info!(consumer = %name, "the {part} follows the JetStream event stream");
    Ok(feed)
}

/// The durable consumer name of the process whose state lives at `path`: drawn once and kept in
/// `<path>.consumer`, so a restarted copy resumes its own consumer and every copy (each with its
/// own views) has one.
fn consumer_name(path: &std::path::Path, part: &str) -> std::io::Result<String> {
    let file = path.with_extension("consumer");
    match std::fs::read_to_string(&file) {
        Ok(name) if !name.trim().is_empty() => Ok(name.trim().to_owned()),
        _ => {
            let name = format!("{part}-{}", uuid::Uuid::new_v4().simple());
            std::fs::write(&file, &name)?;
            Ok(name)
        }
    }
}
