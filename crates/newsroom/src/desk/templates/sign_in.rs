//! The sign-in page (`/desk/sign-in`) and the page to choose a sign-in name and password
//! (`/desk/password`).

use maud::{html, Markup};

use super::{csrf_field, error_summary, layout, Chrome, Ctl};
use crate::desk::forms::FormError;

/// `/desk/sign-in`: a name and password, or an API token. Neither secret is ever filled in again.
/// `error` names the field it concerns (`login`, `password` or `token`).
pub(crate) fn sign_in_page(
    csrf: &str,
    next: &str,
    error: Option<&FormError>,
    login: &str,
    notice: Option<&str>,
) -> Markup {
    let login_ctl = Ctl::new("login", "Sign-in name", error).required();
    let password_ctl = Ctl::new("password", "Password", error).required();
    let token_ctl = Ctl::new("token", "Your API token", error)
        .hint("It starts with nr_. The first admin token is printed when newsroom first starts; an admin makes one for you with: newsroom token create --role reporter --name \"Your Name\"")
        .required();
    let content = html! {
        div.narrow {
            h1 { "Sign in to the desk" }
            @if let Some(n) = notice { div.notice role="status" { (n) } }
            (error_summary(error, &["login", "password", "token"]))
            form.stack #password-sign-in method="post" action="/desk/sign-in" {
                (csrf_field(csrf))
                input type="hidden" name="next" value=(next);
                (login_ctl.wrap(html! {
                    input type="text" id=(login_ctl.id) name="login" value=(login) required
                        autocomplete="username" spellcheck="false" autocapitalize="off"
                        maxlength="64"
                        aria-describedby=[login_ctl.described_by()] aria-invalid=[login_ctl.invalid()];
                }))
                (password_ctl.wrap(html! {
                    input type="password" id=(password_ctl.id) name="password" required
                        autocomplete="current-password" maxlength="256"
                        aria-describedby=[password_ctl.described_by()] aria-invalid=[password_ctl.invalid()];
                }))
                div.actions { button.button type="submit" { "Sign in" } }
            }
            h2 { "With an API token" }
            p.small {
                "The first time, sign in with the token an admin gave you, then choose a "
                "sign-in name and password under “Password”."
            }
            form.stack #token-sign-in method="post" action="/desk/sign-in" {
                (csrf_field(csrf))
                input type="hidden" name="next" value=(next);
                (token_ctl.wrap(html! {
                    input type="password" id=(token_ctl.id) name="token" required
                        autocomplete="off" spellcheck="false" autocapitalize="off"
                        aria-describedby=[token_ctl.described_by()] aria-invalid=[token_ctl.invalid()];
                }))
                div.actions { button.button type="submit" { "Sign in with the token" } }
            }
            p.small {
                "A sign-in lasts up to twelve hours or until you sign out; the desk's cookie "
                "holds a key of its own, never your password or token."
            }
        }
    };
    layout("Sign in", None, content)
}

/// `/desk/password`: choose (or change) the sign-in name and password of this token's holder.
pub(crate) fn password_page(
    chrome: &Chrome<'_>,
    login: Option<&str>,
    error: Option<&FormError>,
    notice: Option<&str>,
) -> Markup {
    let login_ctl = Ctl::new("login", "Sign-in name", error)
        .hint("3 to 64 letters, digits, dots, dashes, underscores or @; not case-sensitive.")
        .required();
    let password_ctl = Ctl::new("password", "New password", error)
        .hint("At least 12 characters. A few unrelated words make a good one.")
        .required();
    let repeat_ctl = Ctl::new("repeat", "The new password again", error).required();
    let content = html! {
        div.narrow {
            h1 { "Sign-in name and password" }
            @if let Some(n) = notice { div.notice role="status" { (n) } }
            (error_summary(error, &["login", "password", "repeat"]))
            p {
                @match login {
                    Some(l) => { "You sign in as " strong { (l) } ". Change it or the password here." }
                    None => { "Choose a name and password to sign in with instead of your API token." }
                }
            }
            form.stack method="post" action="/desk/password" {
                (csrf_field(chrome.csrf))
                (login_ctl.wrap(html! {
                    input type="text" id=(login_ctl.id) name="login" value=(login.unwrap_or_default())
                        required autocomplete="username" spellcheck="false" autocapitalize="off"
                        maxlength="64"
                        aria-describedby=[login_ctl.described_by()] aria-invalid=[login_ctl.invalid()];
                }))
                (password_ctl.wrap(html! {
                    input type="password" id=(password_ctl.id) name="password" required
                        autocomplete="new-password" minlength="12" maxlength="256"
                        aria-describedby=[password_ctl.described_by()] aria-invalid=[password_ctl.invalid()];
                }))
                (repeat_ctl.wrap(html! {
                    input type="password" id=(repeat_ctl.id) name="repeat" required
                        autocomplete="new-password" minlength="12" maxlength="256"
                        aria-describedby=[repeat_ctl.described_by()] aria-invalid=[repeat_ctl.invalid()];
                }))
                div.actions { button.button type="submit" { "Save" } }
            }
        }
    };
    layout("Sign-in name and password", Some(chrome), content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_never_carries_a_token_and_escapes_what_it_shows() {
        let error = FormError::new(Some("password"), "bad <b>");
        let html = sign_in_page(
            "c<s>rf",
            "/desk\"><script>",
            Some(&error),
            "<i>login</i>",
            None,
        )
        .into_string();
        assert!(html.contains("&lt;i&gt;login&lt;/i&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("c&lt;s&gt;rf"));
        assert!(html.contains("bad &lt;b&gt;"));
        assert!(html.contains(r#"type="password""#));
        assert!(!html.contains("style="));
        assert!(html.contains(r#"<link rel="stylesheet" href="/desk/static/desk.css">"#));
    }
}
