//! The desk driven over plain HTTP: a signed-in session ([`DeskSession`]), forms' hidden
//! fields, cookies, and [`TestApp`]'s desk helpers.

use crate::app::*;

/// A desk session driven over plain HTTP: the cookie it signed in with, and the CSRF token its
/// forms carry.
#[derive(Debug, Clone)]
pub struct DeskSession {
    pub cookie: String,
    pub csrf: String,
}

impl DeskSession {
    /// A session of `cookie` alone, before its page gave it a CSRF value.
    pub fn of_cookie(cookie: String) -> Self {
        Self {
            cookie,
            csrf: String::new(),
        }
    }
}

/// The value of the hidden field `name` in a desk page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// The `Set-Cookie` headers of an answer.
pub fn set_cookies(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

/// The `name=value` part of the `Set-Cookie` for `name`.
pub fn cookie_pair(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

impl TestApp {
    /// Waits until the notifier's matcher has read the log up to `position` (at most `within`).
    pub async fn wait_for_matcher(&self, position: i64, within: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let at: i64 = self
                .notifier
                .read(|c| {
                    Ok(c.query_row(
                        "SELECT COALESCE(MAX(position), 0) FROM checkpoints WHERE name = 'matcher'",
                        newsroom_log::args![],
                        |r| r.get(0),
                    )?)
                })
                .await
                .unwrap();
            if at >= position {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the matcher stalled at {at}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// A client that does not follow redirects, to see the desk's 303s and cookies.
    pub fn desk_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("client")
    }

    /// GETs a desk page with the session's cookie (if any).
    pub async fn desk_get(&self, session: Option<&DeskSession>, path: &str) -> reqwest::Response {
        let mut request = self.desk_client().get(format!("{}{path}", self.address));
        if let Some(s) = session {
            request = request.header(reqwest::header::COOKIE, &s.cookie);
        }
        request.send().await.expect("request sent")
    }

    /// The text of a desk page, GET with the session's cookie (if any), whatever its status.
    pub async fn desk_text(&self, session: Option<&DeskSession>, path: &str) -> String {
        self.desk_get(session, path).await.text().await.unwrap()
    }

    /// A desk form's POST of exactly the fields given, with `cookie` (if any), to be sent.
    pub fn desk_form(
        &self,
        cookie: Option<&str>,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request = self
            .desk_client()
            .post(format!("{}{path}", self.address))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        if let Some(cookie) = cookie {
            request = request.header(reqwest::header::COOKIE, cookie);
        }
        request
    }

    /// POSTs a desk form with the session's cookie (if any), exactly the fields given.
    pub async fn desk_post(
        &self,
        session: Option<&DeskSession>,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let cookie = session.map(|s| s.cookie.as_str());
        self.desk_form(cookie, path, fields)
            .send()
            .await
            .expect("request sent")
    }

    /// Sends the desk's sign-in form (fetched first, for its cookie and CSRF value) with
    /// `fields` (`token`, or `login` and `password`); the answer.
    pub async fn desk_sign_in_with(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        let form = self.desk_get(None, "/desk/sign-in").await;
        assert_eq!(form.status(), 200);
        let login = cookie_pair(form.headers(), "newsroom_desk_login").expect("a login cookie");
        let html = form.text().await.unwrap();
        let csrf = hidden_field(&html, "csrf").expect("the sign-in form has a csrf field");
        let login_session = DeskSession {
            cookie: login,
            csrf: csrf.clone(),
        };
        let mut sent = vec![("csrf", csrf.as_str()), ("next", "/desk")];
        sent.extend_from_slice(fields);
        self.desk_post(Some(&login_session), "/desk/sign-in", &sent)
            .await
    }

    /// Signs in at the desk with `token`, as the sign-in form does.
    pub async fn desk_sign_in(&self, token: &str) -> DeskSession {
        let answer = self.desk_sign_in_with(&[("token", token)]).await;
        assert_eq!(answer.status(), 303, "signed in");
        let cookie = cookie_pair(answer.headers(), "newsroom_desk").expect("a session cookie");
        let session = DeskSession {
            cookie,
            csrf: String::new(),
        };
        let home = self.desk_get(Some(&session), "/desk").await;
        assert_eq!(home.status(), 200);
        let csrf = hidden_field(&home.text().await.unwrap(), "csrf").expect("csrf field");
        DeskSession { csrf, ..session }
    }
}
