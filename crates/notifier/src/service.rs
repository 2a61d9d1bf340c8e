//! The notifier as one unit: its store, the matcher, the dispatcher, the digester and the
//! subscriber API, built from [`NotifierSettings`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use newsroom_log::consumer::JetStreamFeed;
use newsroom_log::EventLog;
use newsroom_web::Tokens;
use tokio_util::sync::CancellationToken;

use crate::api::{self, SubscriberApi};
use crate::clock::Clock;
use crate::digest::Digester;
use crate::dispatch::{Dispatcher, RetryPolicy};
use crate::email::Mailer;
use crate::error::NotifyError;
use crate::fanout::Fanout;
use crate::matcher::Matcher;
use crate::partitions::{Leases, Ownership};
use crate::queue::Links;
use crate::retention::{Retention, PRUNE_BATCH};
use crate::ssrf::{AllowList, Guard};
use crate::store::NotifierStore;
use crate::streams::{AlertHub, StreamLimits};
use crate::subjects::AlertSubjects;
use crate::views::ViewsHistory;
use crate::webpush::Vapid;

/// Everything the notifier is configured with.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// The queue's SQLite file, beside an embedded log (with a PostgreSQL log the queue is in
    /// its database).
    pub path: PathBuf,
    /// Base URL of the reader pages and API, for links in alerts.
    pub public_url: String,
    /// `smtp://host:port` of the relay for email alerts.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    /// `nats://host:port` for NATS endpoints.
    pub nats_url: Option<String>,
    /// Subscribers' NATS alerts go to `<root>.<subscriber id>.<their subject>`
    /// (`newsroom.alerts`); it must not overlap the event stream's subjects.
    pub nats_alert_root: String,
    /// `NEWSROOM_WEBHOOK_ALLOWLIST`: addresses or CIDRs webhooks may reach although private.
    pub webhook_allowlist: String,
    pub retry: RetryPolicy,
    /// How often due digests are looked for.
    pub digest_every: Duration,
    /// How long alerts (with their deliveries and logs) are kept; `None` keeps them forever.
    pub alert_retention: Option<Duration>,
    /// How often expired alerts are looked for.
    pub prune_every: Duration,
    /// Open alert streams allowed per client address, and in all.
    pub alert_streams_per_address: usize,
    pub alert_streams_total: usize,
    /// Endpoints one subscriber may have (409 beyond), and subscriptions: one development is
    /// sent at most this many times to one subscriber, however they set themselves up.
    pub endpoints_per_subscriber: usize,
    pub subscriptions_per_subscriber: usize,
    /// An event alerting at least this many subscribers is queued in chunks: with a shared
    /// queue by subscriber partition, which every copy turns into alerts (`crate::fanout`);
    /// embedded, this many per transaction, each sent as it commits.
    pub chunk_from: usize,
}

/// A day.
pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);

impl NotifierSettings {
    /// Keeps alerts 30 days, looks for expired ones every 10 minutes, and allows 8 alert streams per address and 10,000 in all, and 10 endpoints and 100
    /// subscriptions per subscriber; the rest as given.
    pub fn defaults(path: PathBuf, public_url: String) -> Self {
        Self {
            path,
            public_url,
            smtp_url: None,
            mail_from: "newsroom@localhost".into(),
            nats_url: None,
            nats_alert_root: crate::subjects::DEFAULT_ROOT.into(),
            webhook_allowlist: String::new(),
            retry: RetryPolicy::default(),
            digest_every: Duration::from_secs(30),
            alert_retention: Some(30 * DAY),
            prune_every: Duration::from_secs(600),
            alert_streams_per_address: crate::api::ALERT_STREAMS_PER_ADDRESS,
            alert_streams_total: crate::api::ALERT_STREAMS_TOTAL,
            endpoints_per_subscriber: crate::api::ENDPOINTS_PER_SUBSCRIBER,
            subscriptions_per_subscriber: crate::api::SUBSCRIPTIONS_PER_SUBSCRIBER,
            chunk_from: crate::fanout::CHUNK_FROM,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifierStartError {
    #[error(transparent)]
    Store(#[from] NotifyError),
    #[error("NEWSROOM_WEBHOOK_ALLOWLIST: {0}")]
    AllowList(#[from] crate::ssrf::AllowListError),
    #[error("NEWSROOM_SMTP_URL: {0}")]
    Mailer(#[from] crate::email::MailerConfigError),
    #[error("NEWSROOM_NATS_ALERT_ROOT: {0}")]
    AlertRoot(#[from] crate::subjects::RootError),
    #[error("cannot connect to NATS at {url}: {source}")]
    Nats {
        url: String,
        source: async_nats::ConnectError,
    },
}

/// The notifier, built and not yet running.
pub struct Notifier {
    store: NotifierStore,
    matcher: Matcher,
    dispatcher: Dispatcher,
    digester: Digester,
    api: SubscriberApi,
    digest_every: Duration,
    retention: Option<Retention>,
    prune_every: Duration,
    hub: AlertHub,
    queued: tokio::sync::watch::Receiver<u64>,
    /// The partitions this copy leases, with a shared queue.
    leases: Option<Leases>,
    /// With a shared queue: wakes the dispatcher when another copy queued deliveries.
    wake: Option<(sqlx::PgPool, Arc<tokio::sync::watch::Sender<u64>>)>,
    /// With a shared queue: takes the chunks of big fan-outs of the partitions it owns.
    fanout: Option<Fanout>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier following `log`; `views` (kept current by a projector, in this process or
    /// another) tell it what each story looked like right after each event (`crate::views`).
    pub async fn build(
        settings: NotifierSettings,
        log: impl Into<EventLog>,
        views: Arc<dyn ViewsHistory>,
        tokens: Tokens,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, NotifierStartError> {
        let log = log.into();
        let store = NotifierStore::beside(&log, &settings.path).await?;
        store.checkpoint_in_background(std::time::Duration::from_millis(500))?;
        let guard = Arc::new(Guard::new(AllowList::parse(&settings.webhook_allowlist)?));
        let subjects = AlertSubjects::new(&settings.nats_alert_root)?;
        // Mail greets the relay and names its messages by the public URL's host, not this
        // machine's name.
        let domain = url::Url::parse(&settings.public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let mailer = settings
            .smtp_url
            .as_deref()
            .map(|url| Mailer::new(url, &settings.mail_from).map(|m| m.with_domain(&domain)))
            .transpose()?;
        if let Some(m) = &mailer {
            let sender = m.from().email.domain().to_owned();
            if sender == "localhost" || !sender.contains('.') {
                tracing::warn!(
                    from = %m.from(),
                    "alert mail goes out from an address at `{sender}`, which relays and \
                     recipients refuse or file as spam: set NEWSROOM_MAIL_FROM"
                );
            }
        }
        let nats =
            match &settings.nats_url {
                Some(url) => Some(async_nats::connect(url).await.map_err(|source| {
                    NotifierStartError::Nats {
                        url: url.clone(),
                        source,
                    }
                })?),
                None => None,
            };
        let links = Links {
            base: settings.public_url.trim_end_matches('/').to_owned(),
        };
        // Push services are told who sends (RFC 8292's `sub`): the public site if it is https,
        // else the address alert mail comes from.
        let subject = if links.base.starts_with("https://") {
            links.base.clone()
        } else {
            format!("mailto:{}", settings.mail_from)
        };
        let vapid = Arc::new(Vapid::load_or_create(&store, subject).await?);
        let hub = AlertHub::new(
            store.clone(),
            StreamLimits {
                per_address: settings.alert_streams_per_address,
                total: settings.alert_streams_total,
            },
        );
        // With a shared queue, copies split the work by partitions they lease.
        let (leases, ownership) = match store.pool() {
            Some(pool) => {
                let (leases, ownership) = Leases::new(pool.clone(), crate::partitions::REBALANCE);
                (Some(leases), ownership)
            }
            None => (None, Ownership::single()),
        };
        let mut matcher = Matcher::new(log, store.clone(), views, clock.clone(), links.clone())
            .publish_to(hub.clone())
            .partitioned(ownership.clone())
            .chunked_from(settings.chunk_from);
        let (handoff, handed) = tokio::sync::mpsc::unbounded_channel();
        matcher.hand_over_to(handoff, settings.retry.lease);
        let queued = matcher.queued();
        let waiting = matcher.waiting_sender();
        // It queues what it takes as the matcher does: the same dispatcher, hub and signals.
        let fanout = store.is_shared().then(|| {
            Fanout::new(
                store.clone(),
                ownership.clone(),
                clock.clone(),
                links.clone(),
                matcher.outlets(),
            )
        });
        let wake = store.pool().map(|pool| (pool.clone(), waiting.clone()));
        let digester = Digester::new(
            store.clone(),
            clock.clone(),
            links.clone(),
            matcher.queue_sender(),
            waiting.clone(),
        )
        .publish_to(hub.clone());
        let dispatcher = Dispatcher::new(
            store.clone(),
            clock.clone(),
            settings.retry.clone(),
            guard.clone(),
            mailer.clone(),
            nats,
            subjects.clone(),
            waiting.subscribe(),
            handed,
        )
        .partitioned(ownership)
        .pushing(crate::dispatch::Pusher {
            vapid: vapid.clone(),
            alerts_page: format!("{}/alerts", links.base),
        });
        let api = SubscriberApi {
            store: store.clone(),
            tokens,
            guard,
            hub: hub.clone(),
            subjects,
            limits: crate::api::SubscriberLimits {
                endpoints: settings.endpoints_per_subscriber,
                subscriptions: settings.subscriptions_per_subscriber,
            },
            mailer,
            links,
            confirmations: crate::api::ConfirmationMails::default(),
            vapid: vapid.clone(),
        };
        let retention = settings.alert_retention.map(|keep| {
            Retention::new(
                store.clone(),
                clock.clone(),
                chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX),
                PRUNE_BATCH,
            )
        });
        Ok(Self {
            store,
            matcher,
            dispatcher,
            digester,
            api,
            digest_every: settings.digest_every,
            retention,
            prune_every: settings.prune_every,
            hub,
            queued,
            leases,
            wake,
            fanout,
        })
    }

    /// Hears where the views stand from the projector of this process (`Projector::positions`),
    /// so that the matcher waits for the views without asking them again and again.
    pub fn hearing_views(mut self, reached: tokio::sync::watch::Receiver<i64>) -> Self {
        self.matcher = self.matcher.hearing_views(reached);
        self
    }

    /// Matches the events of a durable JetStream consumer instead of reading the log (a
    /// `--role notifier` process of a scale-out deployment).
    pub fn with_stream(mut self, stream: JetStreamFeed) -> Self {
        self.matcher = self.matcher.with_stream(stream);
        self
    }

    /// How the matcher's last step went: shared with `/healthz`.
    pub fn status(&self) -> newsroom_log::consumer::FollowerStatus {
        self.matcher.status()
    }

    pub fn store(&self) -> &NotifierStore {
        &self.store
    }

    /// The hub alert streams are served from.
    pub fn alert_hub(&self) -> &AlertHub {
        &self.hub
    }

    /// The subscriber API's routes.
    pub fn router(&self) -> Router {
        api::router(self.api.clone())
    }

    /// Runs only what a web front needs of the notifier (`--role web`: the alert pages and the
    /// subscriber API) until `shutdown` completes: alert streams fed from the shared queue the
    /// notifier processes fill, ended when their token goes. Matching, digests and deliveries
    /// stay with the notifier processes.
    pub async fn run_front_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), NotifyError> {
        let stop = CancellationToken::new();
        let signal = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            signal.cancel();
        });
        let (hub, queued, tokens) = (self.hub, self.queued, self.api.tokens.clone());
        let checker = hub.clone();
        let (a, b) = (stop.clone(), stop.clone());
        tokio::try_join!(
            checker.revalidate_until_stopped(tokens, crate::streams::REVALIDATE, a.cancelled()),
            hub.follow_shared_queue(queued, b.cancelled()),
        )?;
        Ok(())
    }

    /// Matches, digests and dispatches until `shutdown` completes.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), NotifyError> {
        let stop = CancellationToken::new();
        let (a, c) = (stop.clone(), stop.clone());
        let signal = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            signal.cancel();
        });
        let every = self.digest_every;
        let (prune_every, retention) = (self.prune_every, self.retention);
        let d = stop.clone();
        let e = stop.clone();
        let (hub, queued) = (self.hub, self.queued);
        let (checker, tokens) = (hub.clone(), self.api.tokens.clone());
        let f = stop.clone();
        let g = stop.clone();
        let h = stop.clone();
        let leases = self.leases;
        let wake = self.wake;
        let fanout = self.fanout;
        let i = stop.clone();
        // The dispatcher stops after the matcher and the chunks' taker, so that it gives back
        // the leases of whatever their last transactions handed over.
        let matched = CancellationToken::new();
        let b = matched.clone();
        let result = tokio::try_join!(
            async {
                let (matching, taking) = tokio::join!(
                    async {
                        let r = self.matcher.run_until_stopped(a.cancelled()).await;
                        stop.cancel();
                        r
                    },
                    async {
                        let Some(fanout) = fanout else { return Ok(()) };
                        fanout.run_until_stopped(i.cancelled()).await
                    },
                );
                matched.cancel();
                matching.and(taking)
            },
            async {
                let r = self.dispatcher.run_until_stopped(b.cancelled()).await;
                stop.cancel();
                r
            },
            async {
                let r = self.digester.run_until_stopped(every, c.cancelled()).await;
                stop.cancel();
                r
            },
            async {
                let Some(retention) = retention else {
                    return Ok(());
                };
                let r = retention
                    .run_until_stopped(prune_every, d.cancelled())
                    .await;
                stop.cancel();
                r
            },
            async {
                let Some((pool, waiting)) = wake else {
                    return Ok(());
                };
                crate::partitions::listen_for_deliveries(pool, waiting, h.cancelled()).await
            },
            async {
                // Held until everything else stopped; a copy that dies loses them with its
                // session.
                let Some(leases) = leases else { return Ok(()) };
                let r = leases.run_until_stopped(g.cancelled()).await;
                stop.cancel();
                r
            },
            async {
                // Streams end when whoever opened them may no longer read them.
                checker
                    .revalidate_until_stopped(tokens, crate::streams::REVALIDATE, f.cancelled())
                    .await
            },
            async {
                // Only with a shared queue: alerts other processes queue reach streams here.
                let r = hub.follow_shared_queue(queued, e.cancelled()).await;
                if r.is_err() {
                    stop.cancel();
                }
                r
            },
        );
        result.map(|_| ())
    }
}
