//! Where webhooks may go (server-side request forgery defence). This module owns the rule that a
//! webhook never reaches an internal address — loopback, private, link-local, unique-local,
//! CGNAT, multicast, documentation and other special-purpose ranges, also when written as
//! IPv4-mapped IPv6 — unless the operator put the address on the allow-list
//! (`NEWSROOM_WEBHOOK_ALLOWLIST`: comma-separated addresses or CIDRs). It enforces the rule twice:
//! [`Guard::check_url`] when an endpoint is registered (and before each send), and
//! [`GuardedResolver`] inside the HTTP client built by [`webhook_client`] at connection time, so a
//! DNS answer that changes after registration (DNS rebinding) still cannot reach a forbidden
//! address. The client follows no redirects and bounds every request with timeouts.
//!
//! What a refusal tells the subscriber ([`Refusal::public_detail`]) never names a resolved
//! address; the whole reason is logged. A Web Push subscription's push service URL goes through the
//! same guard.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The environment variable holding the allow-list.
pub const ALLOWLIST_ENV: &str = "NEWSROOM_WEBHOOK_ALLOWLIST";

/// How long a DNS lookup may take, in [`Guard::check_url`] and in [`GuardedResolver`].
pub const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a [`webhook_client`] waits for a TCP connection (less if the total timeout is
/// shorter).
pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Addresses and networks an operator explicitly permits even though they are forbidden by
/// default (for example `127.0.0.1` in tests, or an internal receiver). Empty allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    nets: Vec<IpNet>,
}

/// A bad item in the allow-list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowListError {
    #[error("`{item}` in {ALLOWLIST_ENV} is neither an IP address nor a CIDR network (like 10.1.0.0/16)")]
    InvalidItem { item: String },
    #[error("{ALLOWLIST_ENV} is not valid Unicode")]
    NotUnicode,
}

impl AllowList {
    /// An allow-list that allows nothing.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses the `NEWSROOM_WEBHOOK_ALLOWLIST` syntax: comma-separated IP addresses or CIDRs,
    /// whitespace around items tolerated, empty items ignored (so `""` allows nothing). Host bits
    /// of a CIDR are ignored (`10.1.2.3/8` means `10.0.0.0/8`). The error names the bad item.
    pub fn parse(text: &str) -> Result<Self, AllowListError> {
        let mut nets = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let net = if let Ok(net) = item.parse::<IpNet>() {
                net.trunc()
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                IpNet::from(ip)
            } else {
                return Err(AllowListError::InvalidItem {
                    item: item.to_owned(),
                });
            };
            nets.push(net);
        }
        Ok(Self { nets })
    }

    /// Reads [`ALLOWLIST_ENV`]; unset means empty.
    pub fn from_env() -> Result<Self, AllowListError> {
        match std::env::var(ALLOWLIST_ENV) {
            Ok(text) => Self::parse(&text),
            Err(std::env::VarError::NotPresent) => Ok(Self::empty()),
            Err(std::env::VarError::NotUnicode(_)) => Err(AllowListError::NotUnicode),
        }
    }

    /// Whether `ip` is on the list. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) matches the
    /// entries for `a.b.c.d` too.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
    }

    /// The networks on the list.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

/// Whether webhooks to `ip` are forbidden by default; see [`forbidden_reason`].
pub fn is_forbidden(ip: IpAddr) -> bool {
    forbidden_reason(ip).is_some()
}

/// Why webhooks to `ip` are forbidden by default, in words (`"loopback"`, `"private"`, …), or
/// `None` for an ordinary public address. Covers: 0.0.0.0/8 and `::` (unspecified), loopback,
/// private (10/8, 172.16/12, 192.168/16), link-local (169.254/16, fe80::/10), unique-local
/// (fc00::/7), CGNAT (100.64/10), broadcast and reserved (240/4), multicast, documentation
/// (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20), IETF protocol
/// assignments (192.0.0/24), benchmarking (198.18/15), deprecated site-local (fec0::/10) and
/// IPv4-compatible (::/96) addresses, discard-only (100::/64), and tunnels that embed an IPv4
/// address (IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16,
/// Teredo 2001::/32) when the embedded address is forbidden (Teredo and local NAT64 always).
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_broadcast() => "broadcast",
        (0, _, _) => "unspecified (\"this network\")",
        (127, _, _) => "loopback",
        (10, _, _) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [h1, h2] = hi.to_be_bytes();
        let [l1, l2] = lo.to_be_bytes();
        Ipv4Addr::new(h1, h2, l1, l2)
    };
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4).map(|_| "IPv4-mapped internal");
    }
    Some(match segments[0] {
        0 if segments[1..6] == [0; 5] => "IPv4-compatible (deprecated)",
        0x0064 if segments[1..6] == [0xff9b, 0, 0, 0, 0] => {
            return forbidden_v4(embedded(segments[6], segments[7])).map(|_| "NAT64 internal");
        }
        0x0064 if segments[1..3] == [0xff9b, 1] => "local-use NAT64",
        0x0100 if segments[1..4] == [0, 0, 0] => "discard-only",
        0x2001 if segments[1] == 0 => "Teredo tunnel",
        0x2001 if segments[1] == 0x0db8 => "documentation",
        0x2002 => {
            return forbidden_v4(embedded(segments[1], segments[2])).map(|_| "6to4 internal");
        }
        0x3fff if segments[1] & 0xf000 == 0 => "documentation",
        s if s & 0xfe00 == 0xfc00 => "unique-local",
        s if s & 0xffc0 == 0xfe80 => "link-local",
        s if s & 0xffc0 == 0xfec0 => "site-local (deprecated)",
        s if s & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

/// Why a webhook URL or address is refused. The `Display` text is the whole story, for the
/// server's log; what the subscriber is told is [`Refusal::public_detail`], which never says what
/// a name resolves to (nor whether it resolves at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the webhook URL is not a valid absolute URL: {0}")]
    InvalidUrl(String),
    #[error("webhook URLs must use http or https, not `{0}`")]
    UnsupportedScheme(String),
    #[error("webhook URLs must not contain a user name or password")]
    Credentials,
    #[error("the webhook URL has no host")]
    MissingHost,
    #[error("the webhook host `{host}` could not be resolved: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("{}", forbidden_text(host.as_deref(), *ip, reason))]
    ForbiddenAddress {
        /// The host name that resolved to `ip`, if the URL named a host rather than an address.
        host: Option<String>,
        ip: IpAddr,
        reason: &'static str,
    },
}

impl Refusal {
    /// The refusal as the subscriber may read it. A host that resolves to an internal address
    /// and one that does not resolve are refused in the same words: otherwise registering
    /// webhooks would tell anyone what internal names exist and where they point.
    pub fn public_detail(&self) -> String {
        match self {
            Refusal::Unresolvable { .. } | Refusal::ForbiddenAddress { host: Some(_), .. } => {
                "the webhook URL's host must resolve to public internet addresses only".into()
            }
            Refusal::ForbiddenAddress { host: None, .. } => {
                "the webhook address is internal; webhooks may only be sent to public internet addresses".into()
            }
            other => other.to_string(),
        }
    }
}

fn forbidden_text(host: Option<&str>, ip: IpAddr, reason: &str) -> String {
    let subject = match host {
        Some(host) => format!("the webhook host `{host}` resolves to {ip}, which"),
        None => format!("the webhook address {ip}"),
    };
    format!(
        "{subject} is internal ({reason}); webhooks may only be sent to public internet addresses"
    )
}

/// Decides whether webhooks may go to a URL or address: forbidden addresses (see
/// [`forbidden_reason`]) are refused unless on the [`AllowList`].
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: AllowList,
}

impl Guard {
    pub fn new(allow: AllowList) -> Self {
        Self { allow }
    }

    /// A guard with the allow-list from [`ALLOWLIST_ENV`].
    pub fn from_env() -> Result<Self, AllowListError> {
        AllowList::from_env().map(Self::new)
    }

    pub fn allow_list(&self) -> &AllowList {
        &self.allow
    }

    /// Whether `ip` may be reached: not forbidden, or on the allow-list.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.check_ip(ip).is_ok()
    }

    /// Refuses a forbidden address that is not on the allow-list.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        match forbidden_reason(ip) {
            Some(reason) if !self.allow.allows(ip) => Err(Refusal::ForbiddenAddress {
                host: None,
                ip,
                reason,
            }),
            _ => Ok(()),
        }
    }

    /// Checks a webhook URL and returns it parsed: only `http`/`https`, no user name or
    /// password, a host required. An IP-literal host is checked directly; a name is resolved
    /// (bounded by [`DNS_TIMEOUT`]) and refused if **any** address it resolves to is forbidden and
    /// not allowed. Call it when an endpoint is registered and again before each delivery (see
    /// [`webhook_client`] for why).
    pub async fn check_url(&self, url: &str) -> Result<Url, Refusal> {
        let parsed = Url::parse(url.trim()).map_err(|e| Refusal::InvalidUrl(e.to_string()))?;
        match parsed.scheme() {
            "http" | "https" => {}
            other => return Err(Refusal::UnsupportedScheme(other.to_owned())),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Refusal::Credentials);
        }
        let port = parsed.port_or_known_default().unwrap_or(80);
        match parsed.host() {
            None => Err(Refusal::MissingHost),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(Host::Domain("")) => Err(Refusal::MissingHost),
            Some(Host::Domain(domain)) => {
                let addrs = resolve(domain, port)
                    .await
                    .map_err(|e| Refusal::Unresolvable {
                        host: domain.to_owned(),
                        reason: e.to_string(),
                    })?;
                for addr in addrs {
                    if let Err(Refusal::ForbiddenAddress { ip, reason, .. }) =
                        self.check_ip(addr.ip())
                    {
                        return Err(Refusal::ForbiddenAddress {
                            host: Some(domain.to_owned()),
                            ip,
                            reason,
                        });
                    }
                }
                Ok(())
            }
        }?;
        Ok(parsed)
    }
}

/// Why [`GuardedResolver`] gave no address.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("could not resolve `{host}`: {source}")]
    Lookup {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("resolving `{host}` took longer than {DNS_TIMEOUT:?}")]
    Timeout { host: String },
    #[error("`{host}` resolves to no address")]
    NoAddress { host: String },
    #[error("`{host}` resolves only to addresses webhooks may not reach ({addresses})")]
    Forbidden { host: String, addresses: String },
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
    let lookup = tokio::net::lookup_host((host, port));
    let addrs: Vec<SocketAddr> = tokio::time::timeout(DNS_TIMEOUT, lookup)
        .await
        .map_err(|_| ResolveError::Timeout {
            host: host.to_owned(),
        })?
        .map_err(|source| ResolveError::Lookup {
            host: host.to_owned(),
            source,
        })?
        .collect();
    if addrs.is_empty() {
        return Err(ResolveError::NoAddress {
            host: host.to_owned(),
        });
    }
    Ok(addrs)
}

/// A DNS resolver for reqwest that resolves with tokio and returns only the addresses the
/// [`Guard`] permits (an error if none is left), so the address the client connects to is the one
/// that was checked — a host whose DNS answer changed since registration cannot reach an
/// internal address.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    guard: Arc<Guard>,
}

impl GuardedResolver {
    pub fn new(guard: Guard) -> Self {
        Self {
            guard: Arc::new(guard),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = Arc::clone(&self.guard);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all = resolve(&host, 0).await?;
            let (permitted, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                all.into_iter().partition(|addr| guard.permits(addr.ip()));
            if permitted.is_empty() {
                let addresses = refused
                    .iter()
                    .map(|addr| addr.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(ResolveError::Forbidden { host, addresses }.into());
            }
            let addrs: Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

/// The user agent of webhook deliveries.
pub fn user_agent() -> String {
    format!("newsroom-webhooks/{}", env!("CARGO_PKG_VERSION"))
}

/// The HTTP client for webhook deliveries: follows no redirects (a 3xx is the receiver's answer),
/// ignores proxy environment variables (so the resolver sees the receiver's own host), connects
/// within `min(timeout, MAX_CONNECT_TIMEOUT)`, finishes each request within `timeout`, resolves
/// names through a [`GuardedResolver`] for `guard`, and sends `User-Agent:
/// newsroom-webhooks/<version>`.
///
/// **IP-literal URLs (`http://10.0.0.1/`, `http://[::1]/`) bypass the resolver**: reqwest connects
/// to them directly. Callers must therefore call [`Guard::check_url`] (or [`Guard::check_ip`] for
/// a literal) before each send, not only at registration.
///
/// # Panics
/// If reqwest cannot initialise its TLS backend (rustls), which does not happen in practice.
pub fn webhook_client(guard: &Guard, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .timeout(timeout)
        .dns_resolver(Arc::new(GuardedResolver::new(guard.clone())))
        .user_agent(user_agent())
        .build()
        .expect("the webhook HTTP client builds (rustls initialises)")
}

impl fmt::Display for AllowList {
    /// The list in the `NEWSROOM_WEBHOOK_ALLOWLIST` syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.nets.iter().map(IpNet::to_string).collect();
        f.write_str(&items.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn allowing(list: &str) -> Guard {
        Guard::new(AllowList::parse(list).unwrap())
    }

    #[test]
    fn what_the_subscriber_is_told_never_names_a_resolved_address() {
        let private = Refusal::ForbiddenAddress {
            host: Some("db.internal".into()),
            ip: ip("10.0.0.5"),
            reason: "private",
        };
        let unknown = Refusal::Unresolvable {
            host: "db.internal".into(),
            reason: "no such host".into(),
        };
        assert!(
            private.to_string().contains("10.0.0.5"),
            "the log says it all"
        );
        assert_eq!(private.public_detail(), unknown.public_detail());
        assert!(!private.public_detail().contains("10.0.0.5"));
        assert!(!private.public_detail().contains("db.internal"));
        let literal = Refusal::ForbiddenAddress {
            host: None,
            ip: ip("10.0.0.5"),
            reason: "private",
        };
        assert!(!literal.public_detail().contains("10.0.0.5"));
    }

    #[test]
    fn internal_ranges_are_forbidden() {
        for forbidden in [
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2001::1",
            "100::1",
            "fec0::1",
        ] {
            assert!(is_forbidden(ip(forbidden)), "{forbidden} must be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_not_forbidden() {
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.0.1",
            "192.169.0.1",
            "11.0.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:93.184.216.34",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860:4860::8888",
        ] {
            assert!(!is_forbidden(ip(public)), "{public} must be allowed");
        }
    }

    #[test]
    fn reasons_name_the_range() {
        assert_eq!(forbidden_reason(ip("127.0.0.1")), Some("loopback"));
        assert_eq!(forbidden_reason(ip("10.0.0.1")), Some("private"));
        assert_eq!(forbidden_reason(ip("fe80::1")), Some("link-local"));
        assert_eq!(forbidden_reason(ip("8.8.8.8")), None);
    }

    #[test]
    fn allow_lists_parse_addresses_and_networks() {
        let list = AllowList::parse(" 127.0.0.1 , 10.0.0.0/8,::1,  fd00::/8 ,").unwrap();
        assert_eq!(list.nets().len(), 4);
        assert!(list.allows(ip("127.0.0.1")));
        assert!(!list.allows(ip("127.0.0.2")));
        assert!(list.allows(ip("10.200.3.4")));
        assert!(list.allows(ip("::1")));
        assert!(list.allows(ip("fd00::5")));
        assert!(!list.allows(ip("fc00::5")));
        // IPv4-mapped addresses match their IPv4 entries.
        assert!(list.allows(ip("::ffff:127.0.0.1")));
        assert_eq!(list.to_string(), "127.0.0.1/32,10.0.0.0/8,::1/128,fd00::/8");
        // Host bits are dropped.
        assert!(AllowList::parse("10.1.2.3/8")
            .unwrap()
            .allows(ip("10.9.9.9")));

        for empty in ["", "   ", ",", " , "] {
            let list = AllowList::parse(empty).unwrap();
            assert!(list.nets().is_empty());
            assert!(!list.allows(ip("127.0.0.1")));
        }
    }

    #[test]
    fn bad_allow_list_items_are_named() {
        for (text, bad) in [
            ("127.0.0.1, localhost", "localhost"),
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("300.1.1.1", "300.1.1.1"),
            ("127.0.0.1 10.0.0.1", "127.0.0.1 10.0.0.1"),
            ("fe80::1%eth0", "fe80::1%eth0"),
        ] {
            let error = AllowList::parse(text).unwrap_err();
            assert_eq!(
                error,
                AllowListError::InvalidItem {
                    item: bad.to_owned()
                }
            );
            assert!(error.to_string().contains(bad), "{error}");
        }
    }

    #[tokio::test]
    async fn loopback_urls_are_refused_unless_allowed() {
        let refusal = Guard::default()
            .check_url("http://127.0.0.1:9/x")
            .await
            .unwrap_err();
        assert_eq!(
            refusal,
            Refusal::ForbiddenAddress {
                host: None,
                ip: ip("127.0.0.1"),
                reason: "loopback"
            }
        );
        assert!(refusal.to_string().contains("127.0.0.1"), "{refusal}");

        for list in ["127.0.0.1", "127.0.0.0/8", "10.0.0.1, 127.0.0.0/8"] {
            let url = allowing(list)
                .check_url("http://127.0.0.1:9/x")
                .await
                .unwrap();
            assert_eq!(url.as_str(), "http://127.0.0.1:9/x");
        }
        // Other loopback addresses stay refused when only one is allowed.
        assert!(allowing("127.0.0.1")
            .check_url("http://127.0.0.2/")
            .await
            .is_err());
        // Shorthand IPv4 forms are normalised by the URL parser, then refused.
        for sneaky in ["http://2130706433/", "http://0x7f.1/", "http://127.1/"] {
            assert!(
                Guard::default().check_url(sneaky).await.is_err(),
                "{sneaky}"
            );
        }
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        let refusal = Guard::default()
            .check_url("http://localhost/")
            .await
            .unwrap_err();
        match &refusal {
            Refusal::ForbiddenAddress {
                host: Some(host),
                ip,
                ..
            } => {
                assert_eq!(host, "localhost");
                assert!(ip.is_loopback());
            }
            other => panic!("expected a forbidden address, got {other:?}"),
        }
        assert!(refusal.to_string().contains("localhost"), "{refusal}");
    }

    #[tokio::test]
    async fn other_schemes_credentials_and_missing_hosts_are_refused() {
        let guard = allowing("0.0.0.0/0, ::/0");
        assert_eq!(
            guard.check_url("ftp://example.com/x").await,
            Err(Refusal::UnsupportedScheme("ftp".into()))
        );
        assert_eq!(
            guard.check_url("file:///etc/passwd").await,
            Err(Refusal::UnsupportedScheme("file".into()))
        );
        assert_eq!(
            guard.check_url("http://user:pw@example.com/").await,
            Err(Refusal::Credentials)
        );
        assert_eq!(
            guard.check_url("https://user@example.com/").await,
            Err(Refusal::Credentials)
        );
        assert!(matches!(
            guard.check_url("not a url").await,
            Err(Refusal::InvalidUrl(_))
        ));
        assert!(matches!(
            guard.check_url("http://").await,
            Err(Refusal::InvalidUrl(_))
        ));
        assert!(matches!(
            guard.check_url("http://does-not-exist.invalid/hook").await,
            Err(Refusal::Unresolvable { .. })
        ));
    }

    #[tokio::test]
    async fn ipv4_mapped_ipv6_is_refused() {
        for url in [
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]:8080/",
            "http://[::ffff:169.254.169.254]/latest/meta-data",
            "http://[::1]/",
            "http://[fe80::1]/",
        ] {
            assert!(
                matches!(
                    Guard::default().check_url(url).await,
                    Err(Refusal::ForbiddenAddress { .. })
                ),
                "{url}"
            );
        }
        // Allowing the IPv4 address also allows its mapped form.
        allowing("127.0.0.1")
            .check_url("http://[::ffff:127.0.0.1]/")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn public_ip_literals_pass() {
        let url = Guard::default()
            .check_url("https://93.184.216.34/hooks?a=1")
            .await
            .unwrap();
        assert_eq!(url.host_str(), Some("93.184.216.34"));
    }

    #[tokio::test]
    async fn the_guarded_resolver_returns_only_permitted_addresses() {
        let name: Name = "localhost".parse().unwrap();
        let error = match GuardedResolver::new(Guard::default()).resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(error) => error,
        };
        assert!(error.to_string().contains("localhost"), "{error}");

        let name: Name = "localhost".parse().unwrap();
        let addrs: Vec<SocketAddr> = GuardedResolver::new(allowing("127.0.0.1"))
            .resolve(name)
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip() == ip("127.0.0.1")), "{addrs:?}");
    }

    async fn redirecting_server() -> SocketAddr {
        use axum::http::{header, StatusCode};
        use axum::routing::get;
        let app = axum::Router::new()
            .route(
                "/hook",
                get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/landed")]) })
                    .post(|| async { (StatusCode::FOUND, [(header::LOCATION, "/landed")]) }),
            )
            .route(
                "/landed",
                get(|| async { "followed" }).post(|| async { "followed" }),
            )
            .route(
                "/ua",
                get(|headers: axum::http::HeaderMap| async move {
                    headers
                        .get(header::USER_AGENT)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    #[tokio::test]
    async fn the_webhook_client_does_not_follow_redirects() {
        let addr = redirecting_server().await;
        let guard = allowing("127.0.0.1");
        let client = webhook_client(&guard, Duration::from_secs(5));
        let url = guard
            .check_url(&format!("http://{addr}/hook"))
            .await
            .unwrap();
        let response = client.post(url.clone()).body("{}").send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::FOUND);
        assert_eq!(response.headers()["location"], "/landed");
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::FOUND);

        let ua = client
            .get(format!("http://{addr}/ua"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            ua,
            format!("newsroom-webhooks/{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[tokio::test]
    async fn the_webhook_client_cannot_reach_a_forbidden_name() {
        // As if `localhost` had been registered while it resolved elsewhere: the resolver still
        // refuses to hand the client a loopback address.
        let addr = redirecting_server().await;
        let client = webhook_client(&Guard::default(), Duration::from_secs(5));
        let error = client
            .get(format!("http://localhost:{}/landed", addr.port()))
            .send()
            .await
            .unwrap_err();
        let mut source: Option<&dyn std::error::Error> = Some(&error);
        let mut refused = false;
        while let Some(cause) = source {
            refused |= matches!(
                cause.downcast_ref::<ResolveError>(),
                Some(ResolveError::Forbidden { .. })
            );
            source = cause.source();
        }
        assert!(refused, "expected the resolver's refusal: {error:?}");

        // Allowed, the same name works (through the resolver, on 127.0.0.1).
        let client = webhook_client(&allowing("127.0.0.1"), Duration::from_secs(5));
        let body = client
            .get(format!("http://localhost:{}/landed", addr.port()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "followed");
    }
}
