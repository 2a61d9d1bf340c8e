//! Who is at the desk, and whether a form came from the desk.
//!
//! Staff sign in with a sign-in name and password (Argon2id, [`Tokens::sign_in_with_password`])
//! or with their API token; either opens a desk session ([`Tokens::open_session`]): a fresh
//! secret, of which only the digest is stored, kept in one cookie, `newsroom_desk`, as
//! `<nonce>.<secret>`: `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page
//! sends it), `Path=/desk` (the reader pages and the API never see it), `Secure` when the request
//! came over https. The nonce is 16 random bytes drawn at sign-in. Every request looks the
//! session up again ([`Tokens::session`]): it ends after twelve hours, at sign-out, or at once
//! when its token is revoked. Neither the password nor the API token is ever in the cookie.
//!
//! CSRF: every form carries a hidden `csrf` field, HMAC-SHA256 keyed with the session's secret
//! over the nonce. Only someone who holds the cookie can compute it, it changes with every
//! sign-in, and it survives a restart of the server (nothing is kept in memory). A POST whose
//! field does not match is refused with a 403 page before anything else happens. The sign-in
//! form, which has no session yet, is protected by a plain double submit: a random value in a
//! second `SameSite=Strict` cookie, `newsroom_desk_login`, that the field must repeat.
//!
//! The token itself is never logged, never put in a page, and never echoed back into the
//! sign-in form.

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use newsroom_log::StoreError;
use newsroom_web::{Principal, Tokens};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The session cookie: `<nonce>.<session secret>`.
pub const SESSION_COOKIE: &str = "newsroom_desk";
/// The sign-in form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "newsroom_desk_login";
/// Where the desk's cookies are sent.
pub const COOKIE_PATH: &str = "/desk";
/// How long a sign-in lasts: a long shift.
const SESSION_SECONDS: u32 = 12 * 60 * 60;
const LOGIN_SECONDS: u32 = 60 * 60;

/// A signed-in desk user.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// The value every form of this session must carry in its `csrf` field.
    pub csrf: String,
}

/// A fresh random value for cookies: 16 bytes, base64url.
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The CSRF token of a session: HMAC-SHA256(key = the API token, message = the nonce).
pub fn csrf_token(token: &str, nonce: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(b"newsroom desk csrf v1\0");
    mac.update(nonce.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Compares secrets in constant time (different lengths are simply unequal).
pub fn same_secret(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

/// Whether the request reached us over https (directly or through a proxy that says so).
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for a cookie sent only to `path`, `HttpOnly` and `SameSite=Strict`, `Secure` when
/// the request came over https. The desk's cookies and the reader's alert cookie are made here.
pub fn scoped_cookie(
    request: &HeaderMap,
    path: &str,
    name: &str,
    value: &str,
    max_age: u32,
) -> HeaderValue {
    let secure = if over_https(request) { "; Secure" } else { "" };
    let raw = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    HeaderValue::from_str(&raw).expect("cookie values are base64url, ids and tokens")
}

fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: u32) -> HeaderValue {
    scoped_cookie(headers, COOKIE_PATH, name, value, max_age)
}

/// `Set-Cookie` that signs `token` in, with a fresh nonce.
pub fn session_cookie(request: &HeaderMap, token: &str) -> HeaderValue {
    set_cookie(
        request,
        SESSION_COOKIE,
        &format!("{}.{token}", nonce()),
        SESSION_SECONDS,
    )
}

/// `Set-Cookie` that removes the session.
pub fn clear_session_cookie(request: &HeaderMap) -> HeaderValue {
    set_cookie(request, SESSION_COOKIE, "", 0)
}

/// `Set-Cookie` for the sign-in form's double submit.
pub fn login_cookie(request: &HeaderMap, value: &str) -> HeaderValue {
    set_cookie(request, LOGIN_COOKIE, value, LOGIN_SECONDS)
}

/// `Set-Cookie` that removes the sign-in form's cookie.
pub fn clear_login_cookie(request: &HeaderMap) -> HeaderValue {
    set_cookie(request, LOGIN_COOKIE, "", 0)
}

/// What the session cookie says.
#[derive(Debug)]
pub enum Lookup {
    /// No cookie: not signed in.
    Absent,
    /// A cookie whose token is unknown or revoked: it should be cleared.
    Invalid,
    Valid(Session),
}

/// The session secret the request's cookie carries, if any.
pub fn secret(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)?
        .split_once('.')
        .map(|(_, s)| s)
        .filter(|s| !s.is_empty())
}

/// Authenticates the session cookie of a request.
pub async fn lookup(tokens: &Tokens, headers: &HeaderMap) -> Result<Lookup, StoreError> {
    let Some(raw) = cookie(headers, SESSION_COOKIE).filter(|v| !v.is_empty()) else {
        return Ok(Lookup::Absent);
    };
    let Some((nonce, token)) = raw.split_once('.') else {
        return Ok(Lookup::Invalid);
    };
    if nonce.is_empty() {
        return Ok(Lookup::Invalid);
    }
    Ok(match tokens.session(token).await? {
        Some(principal) => Lookup::Valid(Session {
            principal,
            csrf: csrf_token(token, nonce),
        }),
        None => Lookup::Invalid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_depend_on_token_and_nonce() {
        let a = csrf_token("nr_secret", "n1");
        assert_eq!(a, csrf_token("nr_secret", "n1"));
        assert_ne!(a, csrf_token("nr_secret", "n2"));
        assert_ne!(a, csrf_token("nr_other", "n1"));
        assert!(!a.contains("secret"));
        assert!(same_secret(&a, &csrf_token("nr_secret", "n1")));
        assert!(!same_secret(&a, ""));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; newsroom_desk=x.nr_y"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("x.nr_y"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), None);
    }

    #[test]
    fn session_cookies_are_http_only_strict_and_scoped_to_the_desk() {
        let plain = HeaderMap::new();
        let c = session_cookie(&plain, "nr_abc");
        let c = c.to_str().unwrap();
        assert!(c.starts_with("newsroom_desk="), "{c}");
        assert!(c.contains(".nr_abc; Path=/desk; "), "{c}");
        assert!(c.contains("; HttpOnly; SameSite=Strict"), "{c}");
        assert!(!c.contains("Secure"), "{c}");
        let mut https = HeaderMap::new();
        https.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(session_cookie(&https, "nr_abc")
            .to_str()
            .unwrap()
            .ends_with("; Secure"));
        let cleared = clear_session_cookie(&plain);
        assert!(cleared
            .to_str()
            .unwrap()
            .starts_with("newsroom_desk=; Path=/desk; Max-Age=0;"));
    }
}
