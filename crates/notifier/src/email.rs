//! Alert email: this module owns the SMTP side of delivery — the [`Mailer`] built from
//! `NEWSROOM_SMTP_URL` (plain `smtp://host:port` to a relay, no TLS, no authentication) and a
//! from-address, sending one plain-text message per call with a bounded time, and the
//! classification of failures into permanent (a 5xx reply, a bad address: don't retry) and
//! transient (the relay is unreachable, timed out or answered 4xx: retry later).
//!
//! Alert mails carry `List-Unsubscribe`, and `List-Unsubscribe-Post` (RFC 8058's one-click) when
//! the link is https. Addresses are parsed by [`parse_address`] (lettre's syntax, no IP literals).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use lettre::address::AddressError;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use newsroom_domain::FieldError;
use url::{Host, Url};

/// The environment variable with the relay's URL.
pub const SMTP_URL_ENV: &str = "NEWSROOM_SMTP_URL";
/// The port used when the URL names none.
pub const DEFAULT_SMTP_PORT: u16 = 25;
/// The default bound on one [`Mailer::send`], connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a [`Mailer`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailerConfigError {
    #[error("{SMTP_URL_ENV} is not a valid URL ({0}); expected smtp://host:port")]
    InvalidUrl(String),
    #[error(
        "{SMTP_URL_ENV} uses `{0}://`; only plain `smtp://host:port` is supported (no TLS), \
         for a relay on a trusted network"
    )]
    UnsupportedScheme(String),
    #[error("{SMTP_URL_ENV} has no host; expected smtp://host:port")]
    MissingHost,
    #[error(
        "{SMTP_URL_ENV} must be just smtp://host:port: user names, passwords, paths and query \
         options are not supported"
    )]
    UnsupportedParts,
    #[error("the from-address {address:?} is not a valid email address: {source}")]
    InvalidFrom {
        address: String,
        #[source]
        source: AddressError,
    },
}

/// Why one email was not sent. [`EmailError::is_permanent`] tells whether retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("{address:?} is not a valid email address: {source}")]
    InvalidAddress {
        address: String,
        #[source]
        source: AddressError,
    },
    #[error("the email could not be built: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("the mail relay refused the message permanently: {0}")]
    Rejected(#[source] smtp::Error),
    #[error("the mail relay deferred the message: {0}")]
    Deferred(#[source] smtp::Error),
    #[error("the mail relay could not be reached: {0}")]
    Unavailable(#[source] smtp::Error),
    #[error("sending the email took longer than {0:?}")]
    Timeout(Duration),
}

impl EmailError {
    /// Whether retrying cannot help: a 5xx reply, an invalid address or message, or a request the
    /// client itself refuses to make. Connection failures, timeouts and 4xx replies are
    /// transient.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::InvalidAddress { .. } | Self::Build(_) | Self::Rejected(_) => true,
            Self::Deferred(_) | Self::Unavailable(_) | Self::Timeout(_) => false,
        }
    }

    /// The SMTP reply code, if the relay answered with an error.
    pub fn smtp_code(&self) -> Option<u16> {
        match self {
            Self::Rejected(error) | Self::Deferred(error) | Self::Unavailable(error) => {
                error.status().map(u16::from)
            }
            _ => None,
        }
    }

    fn from_smtp(error: smtp::Error) -> Self {
        if error.is_permanent() || error.is_client() {
            Self::Rejected(error)
        } else if error.is_transient() {
            Self::Deferred(error)
        } else {
            Self::Unavailable(error)
        }
    }
}

/// Sends alert emails through one SMTP relay.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    host: String,
    port: u16,
    from: Mailbox,
    timeout: Duration,
    /// The public domain: the SMTP greeting and the alerts' Message-IDs.
    domain: Option<String>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("relay", &format_args!("smtp://{}:{}", self.host, self.port))
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Mailer {
    /// A mailer for the relay at `smtp_url` (`smtp://host[:port]`, port 25 by default; anything
    /// else is refused with a clear error), sending as `from` (`alerts@example.org` or
    /// `Newsroom <alerts@example.org>`), each send bounded by [`DEFAULT_TIMEOUT`].
    pub fn new(smtp_url: &str, from: &str) -> Result<Self, MailerConfigError> {
        let (host, port) = parse_smtp_url(smtp_url)?;
        let from =
            Mailbox::from_str(from.trim()).map_err(|source| MailerConfigError::InvalidFrom {
                address: from.to_owned(),
                source,
            })?;
        Ok(Self {
            transport: transport(&host, port, DEFAULT_TIMEOUT),
            host,
            port,
            from,
            timeout: DEFAULT_TIMEOUT,
            domain: None,
        })
    }

    /// The same mailer with each send (connecting, every SMTP command, and the whole exchange)
    /// bounded by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.transport = match &self.domain {
            Some(domain) => transport_greeting(&self.host, self.port, timeout, domain),
            None => transport(&self.host, self.port, timeout),
        };
        self.timeout = timeout;
        self
    }

    /// The same mailer greeting the relay as `domain` (the public URL's host) and naming the
    /// Message-IDs of alerts by it, instead of this machine's host name.
    pub fn with_domain(mut self, domain: &str) -> Self {
        let domain = domain.trim().trim_end_matches('.');
        if domain.is_empty() {
            return self;
        }
        self.domain = Some(domain.to_owned());
        self.transport = transport_greeting(&self.host, self.port, self.timeout, domain);
        self
    }

    /// The relay's host and port.
    pub fn relay(&self) -> (&str, u16) {
        (&self.host, self.port)
    }

    /// The sender.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Sends one plain-text (UTF-8) message to `to` (a bare address, checked with lettre's
    /// [`Address`] parser), with a generated `Message-ID` and the current `Date`. Opens a
    /// connection per call.
    pub async fn send(&self, to: &str, subject: &str, text: &str) -> Result<(), EmailError> {
        self.send_listed(to, subject, text, None).await
    }

    /// [`Self::send`], for a message of a list the recipient may leave: `unsubscribe` (the
    /// link that ends their alerts) goes in `List-Unsubscribe` (RFC 2369), and, when it is an
    /// https URL, `List-Unsubscribe-Post: List-Unsubscribe=One-Click` says that a POST to it
    /// unsubscribes at once (RFC 8058), so mail clients can offer their own button.
    pub async fn send_listed(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        unsubscribe: Option<&str>,
    ) -> Result<(), EmailError> {
        let message = self
            .builder(to, subject, unsubscribe, None)?
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_owned())?;
        self.deliver(message).await
    }

    /// The mail of alert `alert_id`: [`Self::send_listed`] as a `multipart/alternative` of the
    /// text and an HTML rendering of it (escaped, links made links), whose `Message-ID` is made
    /// of the alert's id and the domain ([`Self::with_domain`]): a mail sent again for the same
    /// alert is known for the same message by mail clients.
    pub async fn send_alert(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        unsubscribe: Option<&str>,
        alert_id: &str,
    ) -> Result<(), EmailError> {
        let domain = self.domain.as_deref().unwrap_or("newsroom.invalid");
        // Only the id's safe characters go between the angle brackets.
        let local: String = alert_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            .collect();
        let message = self
            .builder(
                to,
                subject,
                unsubscribe,
                Some(format!("<{local}@{domain}>")),
            )?
            .multipart(MultiPart::alternative_plain_html(
                text.to_owned(),
                html_of(text),
            ))?;
        self.deliver(message).await
    }

    /// A message's headers: sender, recipient, subject, Message-ID (generated when `None`),
    /// and the unsubscribe headers of a listed mail.
    fn builder(
        &self,
        to: &str,
        subject: &str,
        unsubscribe: Option<&str>,
        message_id: Option<String>,
    ) -> Result<lettre::message::MessageBuilder, EmailError> {
        let address =
            Address::from_str(to.trim()).map_err(|source| EmailError::InvalidAddress {
                address: to.to_owned(),
                source,
            })?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, address))
            .subject(subject)
            .message_id(message_id);
        // Only a link of printable ASCII without `<`, `>` or spaces goes in a header.
        if let Some(link) = unsubscribe.filter(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
        }) {
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{link}>"),
            ));
            if link.starts_with("https://") {
                builder = builder.raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
            }
        }
        Ok(builder)
    }

    async fn deliver(&self, message: Message) -> Result<(), EmailError> {
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Err(_) => Err(EmailError::Timeout(self.timeout)),
            Ok(Err(error)) if error.is_timeout() => Err(EmailError::Timeout(self.timeout)),
            Ok(Err(error)) => Err(EmailError::from_smtp(error)),
            Ok(Ok(_response)) => Ok(()),
        }
    }
}

/// An address alerts may be sent to, as typed by a subscriber: `field` names it in the refusal.
/// Besides lettre's syntax check, an address at an IP literal (`root@[10.0.0.5]`,
/// `root@[IPv6:::1]`) or at an all-numeric "domain" (`root@10.0.0.5`) is refused: the relay
/// would refuse it anyway (so it could only ever fail), and it would aim the relay at a
/// machine by address, past DNS and MX.
pub fn parse_address(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let address = raw
        .trim()
        .parse::<Address>()
        .map_err(|_| FieldError::new(field, "must be an email address"))?;
    let domain = address.domain().trim_end_matches('.');
    let top = domain.rsplit('.').next().unwrap_or_default();
    if domain.starts_with('[')
        || domain.parse::<std::net::IpAddr>().is_ok()
        || top.is_empty()
        || top.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(FieldError::new(
            field,
            "must be an email address at a domain name, not at an IP address",
        ));
    }
    Ok(address.to_string())
}

fn transport(host: &str, port: u16, timeout: Duration) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(timeout))
        .build()
}

/// [`transport`], greeting the relay as `domain`.
fn transport_greeting(
    host: &str,
    port: u16,
    timeout: Duration,
    domain: &str,
) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(timeout))
        .hello_name(smtp::extension::ClientId::Domain(domain.to_owned()))
        .build()
}

/// The HTML alternative of an alert's text: escaped, paragraphs at blank lines, line breaks
/// kept, and each `http(s)://` word a link.
pub fn html_of(text: &str) -> String {
    fn escape(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    }
    let line = |l: &str| {
        l.split(' ')
            .map(|word| {
                if word.starts_with("https://") || word.starts_with("http://") {
                    let url = escape(word);
                    format!(r#"<a href="{url}">{url}</a>"#)
                } else {
                    escape(word)
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            format!(
                "<p>{}</p>",
                p.lines().map(line).collect::<Vec<_>>().join("<br>\n")
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n{}\n</body></html>\n",
        paragraphs.join("\n")
    )
}

/// `smtp://host[:port]` → (host, port). IPv6 hosts are written in brackets and returned without.
fn parse_smtp_url(text: &str) -> Result<(String, u16), MailerConfigError> {
    let url = Url::parse(text.trim()).map_err(|e| MailerConfigError::InvalidUrl(e.to_string()))?;
    if url.scheme() != "smtp" {
        return Err(MailerConfigError::UnsupportedScheme(
            url.scheme().to_owned(),
        ));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(MailerConfigError::UnsupportedParts);
    }
    let host = match url.host() {
        None => return Err(MailerConfigError::MissingHost),
        Some(Host::Domain("")) => return Err(MailerConfigError::MissingHost),
        Some(Host::Domain(domain)) => domain.to_owned(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
    };
    Ok((host, url.port().unwrap_or(DEFAULT_SMTP_PORT)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_parse() {
        assert_eq!(
            parse_smtp_url("smtp://127.0.0.1:2525").unwrap(),
            ("127.0.0.1".to_owned(), 2525)
        );
        assert_eq!(
            parse_smtp_url(" smtp://mail.internal/ ").unwrap(),
            ("mail.internal".to_owned(), 25)
        );
        assert_eq!(
            parse_smtp_url("smtp://[::1]:1025").unwrap(),
            ("::1".to_owned(), 1025)
        );
    }

    #[test]
    fn other_smtp_urls_are_refused_clearly() {
        assert_eq!(
            parse_smtp_url("smtps://mail.example.org:465"),
            Err(MailerConfigError::UnsupportedScheme("smtps".into()))
        );
        assert_eq!(
            parse_smtp_url("http://mail.example.org"),
            Err(MailerConfigError::UnsupportedScheme("http".into()))
        );
        let error = parse_smtp_url("submission://mail.example.org").unwrap_err();
        assert!(error.to_string().contains("smtp://host:port"), "{error}");
        assert_eq!(
            parse_smtp_url("smtp://user:pw@mail.example.org"),
            Err(MailerConfigError::UnsupportedParts)
        );
        assert_eq!(
            parse_smtp_url("smtp://mail.example.org?tls=required"),
            Err(MailerConfigError::UnsupportedParts)
        );
        assert!(matches!(
            parse_smtp_url("mail.example.org:25"),
            Err(MailerConfigError::UnsupportedScheme(_)) | Err(MailerConfigError::InvalidUrl(_))
        ));
        assert!(matches!(
            parse_smtp_url("smtp://"),
            Err(MailerConfigError::MissingHost) | Err(MailerConfigError::InvalidUrl(_))
        ));
        assert!(matches!(
            parse_smtp_url(""),
            Err(MailerConfigError::InvalidUrl(_))
        ));
    }

    #[test]
    fn mailers_check_their_from_address() {
        let mailer = Mailer::new("smtp://127.0.0.1:2525", "Newsroom <alerts@example.org>")
            .unwrap()
            .with_timeout(Duration::from_secs(3));
        assert_eq!(mailer.relay(), ("127.0.0.1", 2525));
        assert_eq!(mailer.from().email.to_string(), "alerts@example.org");
        let debug = format!("{mailer:?}");
        assert!(debug.contains("smtp://127.0.0.1:2525"), "{debug}");

        assert!(Mailer::new("smtp://127.0.0.1:2525", "alerts@example.org").is_ok());
        assert!(matches!(
            Mailer::new("smtp://127.0.0.1:2525", "not an address"),
            Err(MailerConfigError::InvalidFrom { .. })
        ));
    }

    #[test]
    fn addresses_at_ip_literals_are_refused() {
        for bad in [
            "root@[10.0.0.5]",
            "root@[IPv6:::1]",
            "root@10.0.0.5",
            "root@10.0.0.5.",
            "root@127.1",
            "not an address",
        ] {
            let e = parse_address("address", bad).unwrap_err();
            assert_eq!(e.field, "address", "{bad}");
        }
        assert_eq!(
            parse_address("email", " night@example.org ").unwrap(),
            "night@example.org"
        );
        assert!(parse_address("email", "a@mail.example.co.uk").is_ok());
    }

    #[tokio::test]
    async fn bad_recipients_fail_permanently_before_connecting() {
        // Nothing listens on the relay: the address is refused before any connection.
        let mailer = Mailer::new("smtp://127.0.0.1:9", "alerts@example.org").unwrap();
        for bad in ["", "no-at-sign", "a@b@c", "two words@example.org", "x@"] {
            let error = mailer.send(bad, "s", "t").await.unwrap_err();
            assert!(
                matches!(error, EmailError::InvalidAddress { .. }),
                "{bad}: {error:?}"
            );
            assert!(error.is_permanent());
            assert_eq!(error.smtp_code(), None);
        }
    }
}
