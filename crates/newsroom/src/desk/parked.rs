//! Forms posted after their session lapsed, kept for a while so that signing in again leads back
//! to them with everything as typed.
//!
//! A desk form sent without a valid session (the cookie expired during a long filing, or its
//! token was revoked) is not thrown away: what was typed (not its CSRF value) is parked here
//! under a random key, the browser gets that key in a cookie, and the sign-in page leads back to
//! `/desk/parked/{key}`, which shows the same form again, filled in, with nothing recorded yet.
//!
//! - Kept in this process's memory (the desk is served by one process, role `all`), each form for
//!   [`KEEP`], at most [`MAX_FORMS`] and [`MAX_BYTES`] in all (the oldest go first); lost on a
//!   restart.
//! - Parked only when the browser says the form came from this site (`Sec-Fetch-Site:
//!   same-origin`, or an `Origin` naming this host): another site's page cannot plant text in a
//!   desk form.
//! - Shown only to a signed-in user of the browser that parked it: the key must come back in the
//!   `HttpOnly; SameSite=Strict` cookie [`PARKED_COOKIE`] as well as in the path.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};

use super::forms::FormData;
use super::session;

/// The cookie naming the form this browser parked.
pub const PARKED_COOKIE: &str = "newsroom_desk_parked";
/// How long a parked form is kept.
pub const KEEP: Duration = Duration::from_secs(60 * 60);
/// At most this many forms are kept...
pub const MAX_FORMS: usize = 1_000;
/// ...and at most this many bytes of them.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

/// A parked form: where it was posted, and what was typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    pub path: String,
    pub form: FormData,
}

impl Parked {
    fn size(&self) -> usize {
        self.path.len() + self.form.size()
    }
}

#[derive(Debug, Default)]
struct Shelf {
    /// Oldest first.
    forms: VecDeque<(String, Instant, Parked)>,
    bytes: usize,
}

impl Shelf {
    fn drop_expired(&mut self, now: Instant) {
        while let Some((_, at, _)) = self.forms.front() {
            if now.duration_since(*at) < KEEP {
                break;
            }
            self.drop_oldest();
        }
    }

    fn drop_oldest(&mut self) {
        if let Some((_, _, parked)) = self.forms.pop_front() {
            self.bytes -= parked.size();
        }
    }
}

/// The parked forms of this process. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ParkedForms(Arc<Mutex<Shelf>>);

impl ParkedForms {
    /// Parks a form; returns its key, or `None` if it is too large to keep.
    pub fn park(&self, parked: Parked) -> Option<String> {
        let size = parked.size();
        if size > MAX_BYTES {
            return None;
        }
        let key = session::nonce();
        let now = Instant::now();
        let mut shelf = self.0.lock().expect("parked forms lock poisoned");
        shelf.drop_expired(now);
        while shelf.forms.len() >= MAX_FORMS || shelf.bytes + size > MAX_BYTES {
            shelf.drop_oldest();
        }
        shelf.bytes += size;
        shelf.forms.push_back((key.clone(), now, parked));
        Some(key)
    }

    /// The form parked under `key`, if it is still kept and `headers` carry its cookie.
    pub fn find(&self, key: &str, headers: &HeaderMap) -> Option<Parked> {
        let cookie = session::cookie(headers, PARKED_COOKIE)?;
        if !session::same_secret(cookie, key) {
            return None;
        }
        let mut shelf = self.0.lock().expect("parked forms lock poisoned");
        shelf.drop_expired(Instant::now());
        shelf
            .forms
            .iter()
            .find(|(k, _, _)| session::same_secret(k, key))
            .map(|(_, _, parked)| parked.clone())
    }
}

/// `Set-Cookie` binding a parked form to this browser.
pub fn parked_cookie(request: &HeaderMap, key: &str) -> HeaderValue {
    session::scoped_cookie(
        request,
        session::COOKIE_PATH,
        PARKED_COOKIE,
        key,
        KEEP.as_secs() as u32,
    )
}

/// Whether the browser says this request comes from a page of this site.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return site == "same-origin";
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parked(text: &str) -> Parked {
        Parked {
            path: "/desk/stories".into(),
            form: FormData::parse(format!("headline={text}").as_bytes()),
        }
    }

    fn with_cookie(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{PARKED_COOKIE}={key}")).unwrap(),
        );
        headers
    }

    #[test]
    fn a_parked_form_is_found_only_with_its_cookie() {
        let shelf = ParkedForms::default();
        let key = shelf.park(parked("Water main bursts")).unwrap();
        let other = shelf.park(parked("Another")).unwrap();
        assert_ne!(key, other);
        assert_eq!(
            shelf.find(&key, &with_cookie(&key)),
            Some(parked("Water main bursts"))
        );
        assert_eq!(shelf.find(&key, &HeaderMap::new()), None, "no cookie");
        assert_eq!(shelf.find(&key, &with_cookie(&other)), None, "another's");
        assert_eq!(shelf.find("unknown", &with_cookie("unknown")), None);
    }

    #[test]
    fn the_shelf_keeps_at_most_its_limit_dropping_the_oldest() {
        let shelf = ParkedForms::default();
        let first = shelf.park(parked("first")).unwrap();
        let keys: Vec<String> = (0..MAX_FORMS)
            .map(|i| shelf.park(parked(&i.to_string())).unwrap())
            .collect();
        assert_eq!(shelf.find(&first, &with_cookie(&first)), None);
        let last = keys.last().unwrap();
        assert!(shelf.find(last, &with_cookie(last)).is_some());
        let huge = Parked {
            path: String::new(),
            form: FormData::parse(&vec![b'a'; MAX_BYTES + 1]),
        };
        assert_eq!(shelf.park(huge), None);
    }

    #[test]
    fn only_forms_from_this_site_are_parked() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://desk.example"),
            ("host", "desk.example"),
        ])));
        assert!(same_origin(&headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080"),
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:8080"),
        ])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[("origin", "null"), ("host", "x")])));
    }
}
