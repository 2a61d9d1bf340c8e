//! Where NATS alerts go: every subscriber's NATS endpoints publish under a namespace of its own,
//! `<root>.<subscriber id>.<the subject they registered>`, with `root` from the configuration
//! (`newsroom.alerts` by default).
//!
//! Alerts go out on the same NATS servers that carry the event stream (`NEWSROOM_EVENTS`,
//! `newsroom.events.>`), so a subject a subscriber chooses must never land in it, nor in another
//! subscriber's namespace. The server builds the subject at every send, so this holds by
//! construction: a registered subject is only ever a suffix, the root is checked at start not to
//! overlap the stream's subjects, and a subscriber's id (a UUID the server drew) is one token.
//! Endpoints registered before the namespace existed (whole subjects) are sent under it too.

/// What a subscriber registers as their subject: dot-separated tokens of letters, digits, `-`
/// and `_` (no wildcards), at most this long.
pub const SUBJECT_MAX: usize = 200;

/// The namespace of subscribers' NATS alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSubjects {
    root: String,
}

/// A root that cannot hold subscribers' alerts.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("`{0}` is not a NATS subject of dot-separated tokens (letters, digits, - and _)")]
    Invalid(String),
    #[error("`{root}` overlaps the event stream's subjects `{events}.>`")]
    OverlapsEvents { root: String, events: String },
}

/// The default root.
pub const DEFAULT_ROOT: &str = "newsroom.alerts";

impl AlertSubjects {
    /// Alerts under `root`, which must be a plain subject (no wildcards).
    pub fn new(root: &str) -> Result<Self, RootError> {
        if is_plain_subject(root, usize::MAX) {
            Ok(Self {
                root: root.to_owned(),
            })
        } else {
            Err(RootError::Invalid(root.to_owned()))
        }
    }

    /// Refuses a root whose subjects and the event stream's (`<events_prefix>.>`) could meet:
    /// one is the other or lies under it.
    pub fn apart_from_events(&self, events_prefix: &str) -> Result<(), RootError> {
        let (a, b) = (tokens(&self.root), tokens(events_prefix));
        let shared = a.len().min(b.len());
        if a[..shared] == b[..shared] {
            Err(RootError::OverlapsEvents {
                root: self.root.clone(),
                events: events_prefix.to_owned(),
            })
        } else {
            Ok(())
        }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    /// The subject an alert of `subscriber` to its endpoint `registered` is published on; `None`
    /// if the id is not one token (never for an id the server drew).
    pub fn subject(&self, subscriber: &str, registered: &str) -> Option<String> {
        let one_token = is_plain_subject(subscriber, usize::MAX) && !subscriber.contains('.');
        one_token.then(|| format!("{}.{subscriber}.{registered}", self.root))
    }
}

/// What a subscriber may register: the part of the subject after their namespace.
pub fn parse_registered(raw: &str) -> Option<String> {
    is_plain_subject(raw, SUBJECT_MAX).then(|| raw.to_owned())
}

fn tokens(subject: &str) -> Vec<&str> {
    subject.split('.').collect()
}

/// Dot-separated non-empty tokens of ASCII letters, digits, `-` and `_`.
fn is_plain_subject(raw: &str, max: usize) -> bool {
    !raw.is_empty()
        && raw.len() <= max
        && raw.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_subject_lands_under_the_root_and_the_subscribers_id() {
        let subjects = AlertSubjects::new(DEFAULT_ROOT).unwrap();
        let id = "01a24a73-42ab-7365-8822-e23b3343485f";
        assert_eq!(
            subjects.subject(id, "newsroom.events.x").unwrap(),
            format!("newsroom.alerts.{id}.newsroom.events.x")
        );
        assert_eq!(subjects.subject("a.b", "x"), None);
        assert_eq!(subjects.subject("*", "x"), None);
    }

    #[test]
    fn only_plain_subjects_can_be_registered() {
        assert_eq!(
            parse_registered("desk.alerts").as_deref(),
            Some("desk.alerts")
        );
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "a.*",
            "a.>",
            "a b",
            "ä",
            &"x".repeat(201),
        ] {
            assert_eq!(parse_registered(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_root_that_meets_the_event_streams_subjects_is_refused() {
        for root in ["newsroom", "newsroom.events", "newsroom.events.alerts"] {
            let subjects = AlertSubjects::new(root).unwrap();
            assert!(
                subjects.apart_from_events("newsroom.events").is_err(),
                "{root}"
            );
        }
        for root in ["newsroom.alerts", "alerts", "newsroom.eventsx"] {
            let subjects = AlertSubjects::new(root).unwrap();
            assert!(
                subjects.apart_from_events("newsroom.events").is_ok(),
                "{root}"
            );
        }
        assert!(AlertSubjects::new("newsroom.*").is_err());
        assert!(AlertSubjects::new("").is_err());
    }
}
