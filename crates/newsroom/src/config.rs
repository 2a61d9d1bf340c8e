//! Configuration: built-in defaults, then an optional TOML file, then `NEWSROOM_*` environment
//! variables (`NEWSROOM_LISTEN`, `NEWSROOM_DATA_DIR`, `NEWSROOM_DATABASE_URL`, ...).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use newsroom_command::Settings;
use newsroom_log::Synchronous;
use newsroom_projection::LiveLimits;
use newsroom_web::limits::RateLimits;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `host:port` to serve on.
    pub listen: String,
    /// Where the embedded store keeps its files.
    pub data_dir: PathBuf,
    /// `sqlite://<path>`; defaults to `<data_dir>/newsroom.db`.
    pub database_url: Option<String>,
    /// The reader views' SQLite file; defaults to `<data_dir>/views.db`.
    pub views_path: Option<PathBuf>,
    /// `full` (default: an answered commit survives power loss) or `normal`.
    pub sqlite_synchronous: Synchronous,
    pub snapshot_every: usize,
    pub aggregate_cache: usize,
    pub request_timeout_secs: u64,
    /// How long a connection may take to send a request's headers, counted from when the server
    /// waits for them: on a new connection and between kept-alive requests (the idle timeout).
    pub header_read_timeout_secs: u64,
    /// Open connections allowed per client address (IPv6: per /64); 0 turns the cap off.
    pub connections_per_address: usize,
    /// Log filter, in `tracing_subscriber::EnvFilter` syntax.
    pub log: String,
    /// The notifier's queue; defaults to `<data_dir>/notifier.db`.
    pub notifier_path: Option<PathBuf>,
    /// Base URL for links in alerts; defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// `smtp://host:port` of the relay email alerts go through.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    /// `nats://host:port`: turns on the JetStream fan-out of the event feed (the relay), and
    /// serves subscribers' NATS endpoints.
    pub nats_url: Option<String>,
    /// How many NATS servers hold each message of the `NEWSROOM_EVENTS` stream (3 on a cluster).
    pub nats_stream_replicas: usize,
    /// The JetStream stream the feed goes to (`NEWSROOM_EVENTS`); a second deployment sharing
    /// the NATS servers names its own.
    pub nats_stream: String,
    /// Subjects are `<prefix>.<story id>` (`newsroom.events`).
    pub nats_subject_prefix: String,
    /// Subscribers' NATS alerts go to `<root>.<subscriber id>.<their subject>`
    /// (`newsroom.alerts`); it must not overlap `<nats_subject_prefix>.>`.
    pub nats_alert_root: String,
    /// Addresses or CIDRs webhooks may reach although private or loopback.
    pub webhook_allowlist: String,
    /// How long a delivery being sent is reserved for its sender; a notifier killed mid-send
    /// leaves its deliveries to be sent again (same `webhook-id`) once their leases run out.
    pub delivery_lease_secs: u64,
    /// Writes allowed per token and per client address each minute, and self sign-ups per
    /// address each hour. 0 writes per token turns the limits off.
    pub writes_per_token_per_minute: u32,
    pub writes_per_address_per_minute: u32,
    pub sign_ups_per_address_per_hour: u32,
    /// Live story streams (`/v1/stories/{id}/stream`, open on every story page) one client
    /// address may hold open (429 beyond), and this process in all (503 beyond).
    pub live_streams_per_address: usize,
    pub live_streams_total: usize,
    /// Alerts (with their deliveries and delivery logs) are deleted this many days after they
    /// were made; 0 keeps them forever.
    pub alert_retention_days: u32,
    /// Open alert streams (`/v1/subscribers/{id}/alerts/stream`, `/alerts/stream`) allowed per
    /// client address (more are answered 429) and in all (503).
    pub alert_streams_per_address: usize,
    pub alert_streams_total: usize,
    /// Endpoints (webhooks, addresses, NATS subjects) one subscriber may have, and
    /// subscriptions: more are refused with 409.
    pub endpoints_per_subscriber: usize,
    pub subscriptions_per_subscriber: usize,
    /// Scale-out: an event alerting at least this many subscribers is queued in chunks by
    /// subscriber partition, so that every notifier copy writes and sends its share at once.
    pub alert_chunk_from: usize,
    /// The desk's undo window: publishing and approving at the desk are held this many seconds
    /// (0 to 600; 0: at once). The API publishes at once unless a request asks for a hold.
    pub desk_undo_secs: u32,
}

impl Default for Config {
    fn default() -> Self {
        let settings = Settings::default();
        Self {
            listen: settings.listen,
            data_dir: PathBuf::from("data"),
            database_url: None,
            views_path: None,
            sqlite_synchronous: settings.synchronous,
            snapshot_every: settings.snapshot_every,
            aggregate_cache: settings.aggregate_cache,
            request_timeout_secs: settings.request_timeout_secs,
            header_read_timeout_secs: settings.header_read_timeout_secs,
            connections_per_address: settings.connections_per_address,
            log: "info".into(),
            notifier_path: None,
            public_url: None,
            smtp_url: None,
            mail_from: "newsroom@localhost".into(),
            nats_url: None,
            nats_stream_replicas: 1,
            nats_stream: newsroom_log::relay::StreamSettings::default().stream,
            nats_subject_prefix: newsroom_log::relay::StreamSettings::default().subject_prefix,
            nats_alert_root: newsroom_notifier::subjects::DEFAULT_ROOT.into(),
            webhook_allowlist: String::new(),
            delivery_lease_secs: newsroom_notifier::RetryPolicy::default().lease.as_secs(),
            writes_per_token_per_minute: RateLimits::default().writes_per_token_per_minute,
            writes_per_address_per_minute: RateLimits::default().writes_per_address_per_minute,
            sign_ups_per_address_per_hour: RateLimits::default().sign_ups_per_address_per_hour,
            live_streams_per_address: LiveLimits::default().per_address,
            live_streams_total: LiveLimits::default().total,
            alert_retention_days: 30,
            alert_streams_per_address: newsroom_notifier::api::ALERT_STREAMS_PER_ADDRESS,
            alert_streams_total: newsroom_notifier::api::ALERT_STREAMS_TOTAL,
            endpoints_per_subscriber: newsroom_notifier::api::ENDPOINTS_PER_SUBSCRIBER,
            subscriptions_per_subscriber: newsroom_notifier::api::SUBSCRIPTIONS_PER_SUBSCRIBER,
            alert_chunk_from: newsroom_notifier::fanout::CHUNK_FROM,
            desk_undo_secs: 30,
        }
    }
}

/// The keys `NEWSROOM_*` variables may set. Other `NEWSROOM_*` variables belong to the client
/// (`NEWSROOM_TOKEN`, `NEWSROOM_SERVER`) or the test suite, and are not configuration.
const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "views_path",
    "sqlite_synchronous",
    "snapshot_every",
    "aggregate_cache",
    "request_timeout_secs",
    "header_read_timeout_secs",
    "connections_per_address",
    "log",
    "notifier_path",
    "public_url",
    "smtp_url",
    "mail_from",
    "nats_url",
    "nats_stream_replicas",
    "nats_stream",
    "nats_subject_prefix",
    "nats_alert_root",
    "webhook_allowlist",
    "delivery_lease_secs",
    "writes_per_token_per_minute",
    "writes_per_address_per_minute",
    "sign_ups_per_address_per_hour",
    "live_streams_per_address",
    "desk_undo_secs",
    "live_streams_total",
    "alert_retention_days",
    "alert_streams_per_address",
    "alert_streams_total",
    "endpoints_per_subscriber",
    "subscriptions_per_subscriber",
    "alert_chunk_from",
];

impl Config {
    /// Loads the configuration: defaults, then `file` (if given, it must exist), then the
    /// environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                bail!("configuration file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        figment
            .merge(Env::prefixed("NEWSROOM_").only(KEYS))
            .extract()
            .context("invalid configuration")
    }

    /// The SQLite file the log lives in (embedded mode).
    pub fn database_path(&self) -> anyhow::Result<PathBuf> {
        match self.database_url.as_deref() {
            None | Some("") => Ok(self.data_dir.join("newsroom.db")),
            Some(url) => {
                if let Some(path) = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                {
                    let path = path.split('?').next().unwrap_or(path);
                    Ok(PathBuf::from(path))
                } else if self.postgres_url().is_some() {
                    Ok(self.data_dir.join("newsroom.db"))
                } else {
                    bail!("NEWSROOM_DATABASE_URL must start with sqlite:// or postgres://")
                }
            }
        }
    }

    /// The PostgreSQL URL, when the log lives in PostgreSQL.
    pub fn postgres_url(&self) -> Option<String> {
        self.database_url
            .clone()
            .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    }

    /// Opens the event log this configuration names.
    pub async fn open_log(&self) -> anyhow::Result<newsroom_log::EventLog> {
        Ok(match self.postgres_url() {
            Some(url) => newsroom_log::PgStore::connect(&url)
                .await
                .context("connecting to the PostgreSQL event store")?
                .into(),
            None => {
                let path = self.database_path()?;
                newsroom_log::SqliteStore::open(&path, newsroom_log::SqliteOptions::default())
                    .with_context(|| format!("opening the store at {}", path.display()))?
                    .into()
            }
        })
    }

    pub fn views_path(&self) -> PathBuf {
        self.views_path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("views.db"))
    }

    pub fn newsroom_settings(&self) -> anyhow::Result<crate::NewsroomSettings> {
        Ok(crate::NewsroomSettings {
            command: self.settings()?,
            views_path: self.views_path(),
            notifier: self.notifier_settings(),
            clock: std::sync::Arc::new(newsroom_notifier::SystemClock),
            relay: self.relay_settings(),
            role: crate::ProcessRole::All,
            live: LiveLimits {
                per_address: self.live_streams_per_address,
                total: self.live_streams_total,
                ..LiveLimits::default()
            },
            front_page_marks: Default::default(),
            desk_undo: match self.desk_undo_secs {
                0 => None,
                secs => Some(
                    newsroom_domain::Hold::parse("desk_undo_secs", secs)
                        .map_err(|e| anyhow::anyhow!("NEWSROOM_DESK_UNDO_SECS: {e}"))?,
                ),
            },
        })
    }

    /// The relay to JetStream, when `nats_url` is set.
    pub fn relay_settings(&self) -> Option<crate::RelaySettings> {
        let url = self.nats_url.clone().filter(|u| !u.is_empty())?;
        Some(crate::RelaySettings {
            nats_url: url,
            stream: newsroom_log::relay::StreamSettings {
                stream: self.nats_stream.clone(),
                subject_prefix: self.nats_subject_prefix.clone(),
                replicas: self.nats_stream_replicas.max(1),
            },
        })
    }

    pub fn notifier_settings(&self) -> newsroom_notifier::NotifierSettings {
        newsroom_notifier::NotifierSettings {
            path: self
                .notifier_path
                .clone()
                .unwrap_or_else(|| self.data_dir.join("notifier.db")),
            public_url: self
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", self.listen)),
            smtp_url: self.smtp_url.clone().filter(|u| !u.is_empty()),
            mail_from: self.mail_from.clone(),
            nats_url: self.nats_url.clone().filter(|u| !u.is_empty()),
            nats_alert_root: self.nats_alert_root.clone(),
            webhook_allowlist: self.webhook_allowlist.clone(),
            retry: newsroom_notifier::RetryPolicy {
                lease: std::time::Duration::from_secs(self.delivery_lease_secs.max(1)),
                ..Default::default()
            },
            alert_retention: (self.alert_retention_days > 0)
                .then(|| newsroom_notifier::service::DAY * self.alert_retention_days),
            alert_streams_per_address: self.alert_streams_per_address,
            alert_streams_total: self.alert_streams_total,
            endpoints_per_subscriber: self.endpoints_per_subscriber,
            subscriptions_per_subscriber: self.subscriptions_per_subscriber,
            chunk_from: self.alert_chunk_from.max(1),
            ..newsroom_notifier::NotifierSettings::defaults(PathBuf::new(), String::new())
        }
    }

    pub fn settings(&self) -> anyhow::Result<Settings> {
        Ok(Settings {
            listen: self.listen.clone(),
            database_path: self.database_path()?,
            database_url: self.postgres_url(),
            synchronous: self.sqlite_synchronous,
            snapshot_every: self.snapshot_every,
            aggregate_cache: self.aggregate_cache,
            request_timeout_secs: self.request_timeout_secs,
            header_read_timeout_secs: self.header_read_timeout_secs,
            connections_per_address: self.connections_per_address,
            rate_limits: (self.writes_per_token_per_minute > 0).then_some(RateLimits {
                writes_per_token_per_minute: self.writes_per_token_per_minute,
                writes_per_address_per_minute: self.writes_per_address_per_minute,
                sign_ups_per_address_per_hour: self.sign_ups_per_address_per_hour,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_defaults_to_a_file_in_the_data_dir() {
        let config = Config {
            data_dir: "/var/lib/newsroom".into(),
            ..Config::default()
        };
        assert_eq!(
            config.database_path().unwrap(),
            PathBuf::from("/var/lib/newsroom/newsroom.db")
        );
    }

    #[test]
    fn the_example_configuration_in_deploy_loads() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/newsroom.toml");
        let config = Config::load(Some(&file)).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/newsroom"));
        assert_eq!(config.delivery_lease_secs, 60);
        // (Not `alert_retention_days`: the test below sets its variable while this one may run.)
        assert_eq!(config.alert_streams_per_address, 8);
        assert_eq!(config.header_read_timeout_secs, 10);
        assert_eq!(config.connections_per_address, 128);
        assert_eq!(config.relay_settings(), None, "scale-out is commented out");
    }

    #[test]
    fn the_desks_undo_window_is_thirty_seconds_unless_set_and_at_most_ten_minutes() {
        let hold = |secs| {
            Config {
                desk_undo_secs: secs,
                ..Config::default()
            }
            .newsroom_settings()
            .map(|s| s.desk_undo.map(|h| h.seconds()))
        };
        assert_eq!(Config::default().desk_undo_secs, 30);
        assert_eq!(hold(30).unwrap(), Some(30));
        assert_eq!(hold(0).unwrap(), None, "0: published at once");
        let refused = hold(601).unwrap_err().to_string();
        assert!(refused.contains("NEWSROOM_DESK_UNDO_SECS"), "{refused}");
    }

    #[test]
    fn sqlite_urls_name_the_file_and_other_schemes_are_refused() {
        let mut config = Config {
            database_url: Some("sqlite:///tmp/x.db?mode=rwc".into()),
            ..Config::default()
        };
        assert_eq!(config.database_path().unwrap(), PathBuf::from("/tmp/x.db"));
        config.database_url = Some("mysql://localhost".into());
        assert!(config.database_path().is_err());
        config.database_url = Some("postgres://postgres@127.0.0.1/newsroom".into());
        assert!(config.postgres_url().is_some());
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own error type, in its own test helper
    fn a_file_is_overridden_by_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "newsroom.toml",
                "listen = \"0.0.0.0:9000\"\nsnapshot_every = 7",
            )?;
            jail.set_env("NEWSROOM_LISTEN", "127.0.0.1:9100");
            jail.set_env("NEWSROOM_TOKEN", "nr_not_config");
            jail.set_env("NEWSROOM_REQUIRE_SERVICES", "1");
            let config = Config::load(Some(Path::new("newsroom.toml"))).unwrap();
            assert_eq!(config.listen, "127.0.0.1:9100");
            assert_eq!(config.snapshot_every, 7);
            assert_eq!(config.alert_retention_days, 30, "the default");
            jail.set_env("NEWSROOM_ALERT_RETENTION_DAYS", "7");
            let config = Config::load(Some(Path::new("newsroom.toml"))).unwrap();
            assert_eq!(config.alert_retention_days, 7);
            assert_eq!(
                config.notifier_settings().alert_retention,
                Some(newsroom_notifier::service::DAY * 7)
            );
            Ok(())
        });
    }
}
