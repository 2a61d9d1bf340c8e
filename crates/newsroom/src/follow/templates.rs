//! The alert pages' markup (maud escapes every text), inside the reader pages' layout.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{html, Markup};
use newsroom_domain::DevelopmentKind;
use newsroom_projection::pages::words::kind_label;
use newsroom_projection::pages::{actor_path, story_path};
use newsroom_web::page::{reader_page, ALERTS_PATH};
use serde_json::Value;

use super::{AlertLine, Followed, Following, Typed, DIGEST_CHOICES};

fn time(at: &DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(SecondsFormat::Secs, true)) {
            (at.format("%-d %B %Y, %H:%M UTC"))
        }
    }
}

fn describe(f: &Followed) -> Markup {
    match f {
        Followed::Story { slug, headline, .. } => html! {
            "the story " a href=(story_path(slug)) { (headline) }
        },
        Followed::Actor { name, key } => html! {
            "developments naming " a href=(actor_path(key)) { (name) }
        },
    }
}

fn field_error(field: &str, error: Option<(&str, &str)>) -> Option<String> {
    error
        .filter(|(f, _)| *f == field)
        .map(|(_, detail)| detail.to_owned())
}

/// `/alerts/follow`: sign up (if this browser is not yet) and follow a story or an actor.
pub(crate) fn follow_page(
    followed: &Followed,
    reader: Option<&str>,
    csrf: &str,
    typed: &Typed,
    error: Option<(&str, &str)>,
) -> Markup {
    let name_error = field_error("name", error);
    let email_error = field_error("email", error);
    let digest_error = field_error("digest", error);
    // An error about anything else (the subscription itself) is shown above the form.
    let other_error = error
        .filter(|(f, _)| !matches!(*f, "name" | "email" | "digest"))
        .map(|(_, d)| d);
    let (title, back) = match followed {
        Followed::Story { headline, slug, .. } => {
            (format!("Get alerts: {headline}"), story_path(slug))
        }
        Followed::Actor { name, key } => (format!("Get alerts: {name}"), actor_path(key)),
    };
    let content = html! {
        div.follow {
            h1.page-title { "Get alerts" }
            p.lede { "You will be alerted to every new development of " (describe(followed)) ", and to its corrections and retractions." }
            @if let Some(e) = other_error {
                div.form-error role="alert" { (e) }
            }
            form.follow-form method="post" action=(format!("{ALERTS_PATH}/follow")) novalidate {
                input type="hidden" name="csrf" value=(csrf);
                @match followed {
                    Followed::Story { slug, .. } => { input type="hidden" name="story" value=(slug); }
                    Followed::Actor { name, .. } => { input type="hidden" name="actor" value=(name); }
                }
                @if let Some(name) = reader {
                    p { "Alerts go to " strong { (name) } " on this browser." }
                } @else {
                    div.field {
                        label for="follow-name" { "Your name" }
                        @if let Some(e) = &name_error {
                            p.field-error #follow-name-error { (e) }
                        }
                        input #follow-name type="text" name="name" value=(typed.name) required
                            autocomplete="name" maxlength="200"
                            aria-invalid=[name_error.as_ref().map(|_| "true")]
                            aria-describedby=[name_error.as_ref().map(|_| "follow-name-error")];
                    }
                    div.field {
                        label for="follow-email" { "Email address " span.optional { "(optional)" } }
                        p.hint #follow-email-hint { "If you give one, alerts are emailed to you as well, once you confirm it with the link we send there." }
                        @if let Some(e) = &email_error {
                            p.field-error #follow-email-error { (e) }
                        }
                        input #follow-email type="email" name="email" value=(typed.email)
                            autocomplete="email" maxlength="320"
                            aria-invalid=[email_error.as_ref().map(|_| "true")]
                            aria-describedby=(if email_error.is_some() { "follow-email-hint follow-email-error" } else { "follow-email-hint" });
                    }
                }
                fieldset.field {
                    legend { "How often" }
                    @if let Some(e) = &digest_error {
                        p.field-error { (e) }
                    }
                    label.choice {
                        input type="radio" name="digest" value="immediate"
                            checked[typed.digest.is_empty() || typed.digest == "immediate"];
                        " As it happens"
                    }
                    @for (minutes, label) in DIGEST_CHOICES {
                        label.choice {
                            input type="radio" name="digest" value=(minutes)
                                checked[typed.digest == minutes.to_string()];
                            " A digest, " (label)
                        }
                    }
                    p.hint { "Flash developments always come at once." }
                }
                div.actions {
                    button.button type="submit" { "Follow" }
                    " "
                    a href=(back) { "Cancel" }
                }
            }
        }
    };
    reader_page(&title, &[], content)
}

/// A page for a follow link to something that does not exist.
pub(crate) fn nothing_to_follow() -> Markup {
    let content = html! {
        h1.page-title { "Nothing to follow here" }
        p { "That story or name is not known. Open a story and choose " em { "Get alerts for this story" } "." }
        p { a href="/" { "See all running stories" } }
    };
    reader_page("Nothing to follow", &[], content)
}

/// The refusal of a form that did not come from our page.
pub(crate) fn refused_page() -> Markup {
    let content = html! {
        h1.page-title { "This form cannot be accepted" }
        p { "It did not come from a page of ours that you have open. Nothing was changed. Go back, reload the page and try again." }
        p { a href=(ALERTS_PATH) { "Your alerts" } }
    };
    reader_page("Refused", &[], content)
}

/// `/alerts` for a browser that follows nothing.
pub(crate) fn no_alerts_page(forgotten: bool) -> Markup {
    let content = html! {
        h1.page-title { "Your alerts" }
        @if forgotten {
            div.notice role="status" { "Your alerts are stopped and this browser no longer knows you." }
        }
        p { "You do not follow anything yet on this browser." }
        p { "Open a story and choose " em { "Get alerts for this story" } ", or follow a person or organisation from their page. Alerts then appear here the moment something happens." }
        p { a href="/" { "See all running stories" } }
    };
    reader_page("Your alerts", &[], content)
}

fn alert_label(kind: &str, payload: &Value) -> String {
    match kind {
        "story.correction" => "Correction".to_owned(),
        "story.retraction" => "Retraction".to_owned(),
        _ => serde_json::from_value::<DevelopmentKind>(
            payload["data"]["development"]["kind"].clone(),
        )
        .map(|k| kind_label(k).to_owned())
        .unwrap_or_else(|_| "Development".to_owned()),
    }
}

fn alert_item(a: &AlertLine) -> Markup {
    let data = &a.payload["data"];
    let story_headline = data["story"]["headline"].as_str().unwrap_or_default();
    let slug = data["story"]["slug"].as_str().unwrap_or_default();
    let development = &data["development"];
    let headline = development["headline"].as_str().unwrap_or_default();
    let link = match development["id"].as_str() {
        Some(id) => format!("{}#development-{id}", story_path(slug)),
        None => story_path(slug),
    };
    let at = a.payload["timestamp"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let note = data["correction"]["note"].as_str();
    let reason = data["retraction"]["reason"].as_str();
    html! {
        li.alert-item data-seq=(a.seq) {
            p.alert-meta {
                span.badge.kind { (alert_label(&a.kind, &a.payload)) }
                " "
                a href=(story_path(slug)) { (story_headline) }
                @if let Some(at) = at { " · " (time(&at)) }
            }
            p.alert-headline { a href=(link) { (headline) } }
            @if let Some(n) = note { p.alert-note { "Correction: " (n) } }
            @if let Some(r) = reason { p.alert-note { "Retracted: " (r) } }
        }
    }
}

/// Every alert type the stream names its events by, for `alerts.js` to listen to.
fn alert_types() -> String {
    let mut types: Vec<String> = DevelopmentKind::ALL
        .iter()
        .map(|k| format!("story.{}", k.as_str()))
        .collect();
    types.push("story.correction".into());
    types.push("story.retraction".into());
    types.join(" ")
}

/// One page of alerts, newest first.
pub(crate) struct AlertPage<'a> {
    pub alerts: &'a [AlertLine],
    /// The oldest alert shown, when there are older ones to page back to.
    pub older: Option<i64>,
    /// The latest page, kept current by `alerts.js`; an older page is not.
    pub live: bool,
}

/// The list of alerts (also served alone at `/alerts/list`).
pub(crate) fn alert_list(page: &AlertPage<'_>) -> Markup {
    let alerts = page.alerts;
    let last = alerts.first().map_or(0, |a| a.seq);
    let id = if page.live {
        "alert-list"
    } else {
        "older-alert-list"
    };
    html! {
        div id=(id) data-last-seq=(last) {
            @if alerts.is_empty() {
                @if page.live {
                    p.empty { "No alerts yet. They appear here the moment something you follow happens." }
                } @else {
                    p.empty { "No older alerts." }
                }
            } @else {
                ol.alert-list {
                    @for a in alerts { (alert_item(a)) }
                }
            }
            nav.pager aria-label="Alert pages" {
                @if !page.live {
                    a href=(ALERTS_PATH) { "Latest alerts" }
                    " "
                }
                @if let Some(oldest) = page.older {
                    a rel="next" href=(format!("{ALERTS_PATH}?before={oldest}")) { "Older alerts" }
                }
            }
        }
    }
}

/// `/alerts`: what this reader follows and the latest alerts, live.
/// The alerts page's scripts, and the key "Notify me on this device" subscribes with.
#[derive(Debug)]
pub(crate) struct Scripts<'a> {
    /// Keeps the latest alerts live.
    pub alerts: &'a str,
    /// Subscribes this device to pushes.
    pub push: &'a str,
    /// The VAPID public key browsers subscribe with.
    pub push_key: &'a str,
}

pub(crate) fn alerts_page(
    name: &str,
    email: Option<(&str, bool)>,
    csrf: &str,
    following: &[Following],
    alerts: &AlertPage<'_>,
    notice: Option<&str>,
    scripts: &Scripts<'_>,
) -> Markup {
    let content = html! {
        div.alerts-page {
            h1.page-title { "Your alerts" }
            @if let Some(n) = notice { div.notice role="status" { (n) } }
            p.lede {
                "Signed up as " strong { (name) }
                @match email {
                    Some((e, true)) => { ", alerts also emailed to " (e) "." }
                    Some((e, false)) => {
                        ". Alerts will also be emailed to " (e)
                        " once you confirm it: open the link we sent there and press its button."
                    }
                    None => { "." }
                }
            }
            section aria-labelledby="following-heading" {
                h2 #following-heading .section-heading { "You follow" }
                @if following.is_empty() {
                    p.empty { "Nothing at the moment." }
                } @else {
                    ul.following-list {
                        @for f in following {
                            li {
                                (describe(&f.what)) ", " (f.delivery) " · "
                                form.inline method="post" action=(format!("{ALERTS_PATH}/subscriptions/{}/delete", f.id)) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.button-link type="submit" { "Stop following" }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="alerts-heading" {
                h2 #alerts-heading .section-heading data-alert-types=(alert_types()) {
                    @if alerts.live {
                        "Latest alerts "
                        span #alerts-live .live-status role="status" aria-live="polite" hidden {}
                    } @else {
                        "Older alerts"
                    }
                }
                (alert_list(alerts))
            }
            // Shown by push.js where the browser can take push messages.
            section #push .push aria-labelledby="push-heading" data-key=(scripts.push_key) data-csrf=(csrf) hidden {
                h2 #push-heading .section-heading { "On this device" }
                p { "Get a notification on this device as soon as something you follow happens, even with this page closed." }
                button #push-button .button type="button" { "Notify me on this device" }
                p #push-status role="status" aria-live="polite" {}
            }
            form.forget method="post" action=(format!("{ALERTS_PATH}/forget")) {
                input type="hidden" name="csrf" value=(csrf);
                button.button-link type="submit" { "Stop all alerts and forget me" }
            }
        }
    };
    let live = [scripts.alerts, scripts.push];
    let paths: &[&str] = if alerts.live { &live } else { &live[1..] };
    reader_page("Your alerts", paths, content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn alerts_are_escaped_and_labelled() {
        let a = AlertLine {
            seq: 7,
            kind: "story.correction".into(),
            payload: json!({
                "type": "story.correction",
                "timestamp": "2026-11-26T10:00:00Z",
                "data": {
                    "story": {"slug": "s", "headline": "<script>x</script>"},
                    "development": {"id": "d1", "headline": "H", "kind": "denial"},
                    "correction": {"note": "fixed <b>"},
                }
            }),
        };
        let html = alert_list(&AlertPage {
            alerts: &[a],
            older: Some(7),
            live: true,
        })
        .into_string();
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("Correction: fixed &lt;b&gt;"), "{html}");
        assert!(html.contains(r#"data-last-seq="7""#), "{html}");
        assert!(html.contains(r#"href="/alerts?before=7""#), "{html}");
        assert!(
            html.contains(r##"href="/stories/s#development-d1""##),
            "{html}"
        );
    }

    #[test]
    fn follow_form_keeps_what_was_typed_and_names_the_field() {
        let f = Followed::Actor {
            name: "Fancy Bear".into(),
            key: "fancy bear".into(),
        };
        let typed = Typed {
            name: String::new(),
            email: "not-an-address".into(),
            digest: "1440".into(),
        };
        let html = follow_page(
            &f,
            None,
            "tok",
            &typed,
            Some(("email", "must be an email address")),
        )
        .into_string();
        assert!(html.contains(r#"value="not-an-address""#), "{html}");
        assert!(html.contains("must be an email address"), "{html}");
        assert!(html.contains(r#"aria-invalid="true""#), "{html}");
        assert!(html.contains(r#"value="1440" checked"#), "{html}");
    }
}
