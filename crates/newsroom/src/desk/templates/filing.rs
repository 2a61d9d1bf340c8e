//! The filing form (`/desk/stories/{id}/file`) and its preview, with the words and choices only
//! the filing form offers.

use maud::{html, Markup};
use newsroom_domain::{DevelopmentKind, Stance, Urgency};
use newsroom_projection::pages::words::{kind_label, urgency_label};
use newsroom_readmodel::{DevelopmentStanding, DevelopmentView, StoryStatus, StoryView};
use newsroom_web::Principal;
use uuid::Uuid;

use super::development::development_body;
use super::{
    alert_note, csrf_field, error_summary, evidence_options, hidden_fields, layout, notice_banner,
    placeholder, publishing_warning, select, source_kind_options, state_class, state_label,
    story_desk_path, text_input, textarea, urgency_description, Chrome, Ctl,
};
use crate::desk::forms::{FormData, FormError};

/// The fields of the filing form, for the error summary's links.
const FILING_FIELDS: &[&str] = &[
    "kind",
    "headline",
    "body",
    "occurred_at",
    "embargo_until",
    "actors",
    "accused",
    "urgency",
    "source.name",
    "source.kind",
    "source.url",
    "evidence",
    "responds_to.development",
    "responds_to.stance",
];

/// How many actor boxes the filing form shows at least.
const ACTOR_BOXES: usize = 4;

/// Where the browser keeps the draft of a filing (`desk.js`): per story and per user, without
/// naming the user.
fn draft_key(who: &Principal, story: Uuid) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("newsroom desk draft\0{}", who.token_id));
    let user: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("newsroom-desk-draft:v1:{story}:{user}")
}

/// How a filing form came to hold what it holds, which tells `desk.js` whether the browser's
/// own draft may take its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opened {
    /// Just opened, nothing typed: the browser's draft, if any, fills it.
    Fresh,
    /// Filled from the person's draft on the server: the browser's draft takes its place only
    /// if it holds typing the server never got (`desk.js` knows which saves reached it).
    ServerDraft,
    /// Sent back with what was sent (an error, a story closed meanwhile, "change it").
    Sent,
}

/// `/desk/stories/{id}/file`: the filing form. `form` holds what was typed (or the defaults,
/// with a fresh `id`).
pub(crate) fn file_page(
    chrome: &Chrome<'_>,
    view: &StoryView,
    form: &FormData,
    error: Option<&FormError>,
    known_actors: &[String],
    opened: Opened,
    notice: Option<&Markup>,
) -> Markup {
    let fresh = opened == Opened::Fresh;
    let from_server = opened == Opened::ServerDraft;
    let kind = Ctl::new("kind", "Kind of development", error).required();
    let headline = Ctl::new("headline", "Headline", error)
        .hint("One line: what happened, who says so.")
        .required();
    let body = Ctl::new("body", "Text", error).hint("The details. You can leave it empty.");
    let occurred = Ctl::new("occurred_at", "When it happened", error).hint(
        "Local time in the newsroom's time zone. It starts as the moment you opened this form.",
    );
    let zone_hint = format!("Time zone: {}.", chrome.zone.name());
    let embargo = Ctl::new("embargo_until", "Embargoed until (optional)", error).hint(
        "Held from readers, and alerted to nobody, until this local time; then published. \
         Leave it empty to publish as usual.",
    );
    let urgency = Ctl::new("urgency", "Urgency", error);
    let source_name = Ctl::new("source.name", "Source name", error)
        .hint("Who or what it comes from. Required for attributions and denials.");
    let source_kind = Ctl::new("source.kind", "Kind of source", error);
    let source_url = Ctl::new("source.url", "Source link", error)
        .hint("An http or https address, if there is one.");
    let evidence = Ctl::new("evidence", "Evidence", error);
    let target = Ctl::new(
        "responds_to.development",
        "Earlier development it answers",
        error,
    )
    .hint("For denials, statements and other responses. Denials must name one.");
    let stance = Ctl::new("responds_to.stance", "It…", error);
    let actors_error = error.and_then(|e| e.for_field("actors"));
    let accused = Ctl::new("accused", "Accused", error).hint(
        "For a claim of attribution: whom it blames, separated by commas. Readers see them apart \
         from the target and the claimant; they are named with the others.",
    );

    let mut targets: Vec<(String, String)> = vec![placeholder("Not a response")];
    let mut earlier: Vec<&DevelopmentView> = view
        .developments
        .iter()
        .filter(|d| d.state != DevelopmentStanding::Rejected)
        .collect();
    earlier.sort_by_key(|d| (d.occurred_at, d.position));
    for d in earlier.iter().rev() {
        let state = match d.state {
            DevelopmentStanding::Published => String::new(),
            other => format!(" ({})", state_label(other).to_lowercase()),
        };
        targets.push((
            d.id.to_string(),
            format!(
                "{}: {} — {}{}",
                kind_label(d.kind),
                d.headline,
                chrome.zone.display(d.occurred_at),
                state
            ),
        ));
    }
    let typed_actors: Vec<&str> = form.all("actors").collect();
    let boxes = ACTOR_BOXES.max(typed_actors.len() + 1);
    let closed = view.status == StoryStatus::Closed;

    let content = html! {
        p.back { a href=(story_desk_path(view.id)) { "← " (view.headline) } }
        h1 { "File a development" }
        (notice_banner(notice))
        p.lede { "On " strong { (view.headline) } "."
            @if view.review_required && !chrome.is_editor() {
                " This story is under desk review: an editor approves your development before readers see it."
            }
        }
        @if closed {
            div.notice.notice-warning role="status" {
                "This story is closed: it takes no new developments until an editor reopens it."
            }
        }
        // A filing refused because the story closed meanwhile keeps its form: nothing typed is lost.
        @if !closed || error.is_some() {
            (error_summary(error, FILING_FIELDS))
            form.stack method="post" action=(format!("{}/developments", story_desk_path(view.id))) novalidate data-no-enter
                data-draft=(draft_key(chrome.who, view.id)) data-fresh[fresh] data-from-server-draft[from_server]
                data-server-draft=(format!("{}/draft", story_desk_path(view.id))) {
                (csrf_field(chrome.csrf))
                input type="hidden" name="id" value=(form.get("id"));
                fieldset {
                    legend { "What happened" }
                    (select(&kind, &kind_options(), form.get("kind")))
                    (text_input(&headline, "text", form.get("headline"), Some(newsroom_domain::limits::HEADLINE)))
                    (textarea(&body, form.get("body"), 6, Some(newsroom_domain::limits::BODY)))
                    (occurred.wrap(html! {
                        input type="datetime-local" id=(occurred.id) name="occurred_at"
                            value=(form.get("occurred_at")) step="60"
                            aria-describedby=(format!("{} {}-zone{}", occurred.hint_id(), occurred.id,
                                occurred.error.map(|_| format!(" {}", occurred.error_id())).unwrap_or_default()))
                            aria-invalid=[occurred.invalid()];
                        p.hint id=(format!("{}-zone", occurred.id)) { (zone_hint) }
                    }))
                    (select(&urgency, &urgency_options(chrome.is_editor()), form.get("urgency")))
                    (text_input(&embargo, "datetime-local", form.get("embargo_until"), None))
                }
                fieldset.field-invalid[actors_error.is_some()] #f-actors aria-describedby="f-actors-hint" {
                    legend { "Who is named" }
                    p.hint #f-actors-hint {
                        "People or organisations in this development, one per box. "
                        "Separate more names in a box with commas. Names already known are suggested."
                    }
                    @if let Some(e) = actors_error {
                        p.error-message #f-actors-error { span.visually-hidden { "Error: " } (e) }
                    }
                    div.actor-boxes {
                        @for i in 0..boxes {
                            @let id = format!("f-actor-{}", i + 1);
                            div.field {
                                label for=(id) { "Name " (i + 1) }
                                input type="text" id=(id) name="actors" list="known-actors"
                                    value=(typed_actors.get(i).copied().unwrap_or(""))
                                    autocomplete="off" aria-invalid=[actors_error.map(|_| "true")];
                            }
                        }
                    }
                    datalist #known-actors {
                        @for name in known_actors { option value=(name) {} }
                    }
                    (text_input(&accused, "text", form.get("accused"), None))
                }
                fieldset {
                    legend { "Source and evidence" }
                    (text_input(&source_name, "text", form.get("source.name"), Some(newsroom_domain::limits::SOURCE_NAME)))
                    (select(&source_kind, &source_kind_options(), form.get("source.kind")))
                    (text_input(&source_url, "url", form.get("source.url"), Some(newsroom_domain::limits::URL)))
                    (select(&evidence, &evidence_options(), form.get("evidence")))
                }
                fieldset {
                    legend { "Is it a response?" }
                    (select(&target, &targets, form.get("responds_to.development")))
                    (select(&stance, &stance_options(), form.get("responds_to.stance")))
                }
                div.actions {
                    button.button type="submit" name="step" value="preview" { "Preview" }
                    span.small { " Nothing is filed until you confirm it on the next page." }
                }
            }
        }
    };
    layout("File a development", Some(chrome), content)
}

/// The preview of a filing: the development as the reader model will hold it (`d`, folded into
/// `story` from the events the command would record), who is alerted, and the one button that
/// files it.
pub(crate) fn file_preview_page(
    chrome: &Chrome<'_>,
    story: &StoryView,
    d: &DevelopmentView,
    form: &FormData,
    subscribers: Option<i64>,
) -> Markup {
    let pending = d.state == DevelopmentStanding::PendingReview;
    let title = if pending {
        "Check it before filing it for review"
    } else {
        "Check it before publishing"
    };
    let content = html! {
        p.back { a href=(story_desk_path(story.id)) { "← " (story.headline) } }
        h1 { (title) }
        @if pending {
            div.notice.notice-review role="status" {
                @if story.review_required {
                    "This story is under desk review. "
                } @else {
                    "A flash alerts every subscriber at once, so a reporter's flash waits for an editor's approval. "
                }
                "Readers and subscribers see nothing of it until an editor approves it."
            }
        } @else {
            div.notice.notice-warning role="status" {
                (publishing_warning(chrome.undo, "Publishing"))
            }
        }
        section.preview aria-labelledby="preview-heading" {
            h2 #preview-heading {
                @if pending { "What the editor will review" } @else { "What readers will see" }
            }
            article.desk-dev.(state_class(d.state)) { (development_body(chrome.zone, Some(story), d)) }
        }
        section.preview aria-labelledby="alert-heading" {
            h2 #alert-heading { "Who is alerted" }
            @if pending { p { "Nobody until it is approved. Then:" } }
            (alert_note(d.urgency, subscribers))
        }
        // desk.js sends it again, as it is, until the desk answers (the id makes it one filing).
        form.stack method="post" action=(format!("{}/developments", story_desk_path(story.id))) data-retry {
            (csrf_field(chrome.csrf))
            (hidden_fields(form))
            div.actions {
                button.button type="submit" name="confirm" value="file" {
                    @if pending { "File it for review" } @else { "Publish" }
                }
                " "
                button.button.button-secondary type="submit" name="step" value="edit" { "Change it" }
            }
        }
    };
    layout(title, Some(chrome), content)
}

/// What each kind of development means, in plain words.
fn kind_description(kind: DevelopmentKind) -> &'static str {
    match kind {
        DevelopmentKind::HackReported => "systems or accounts were broken into, or someone says so",
        DevelopmentKind::AttributionClaimed => {
            "someone says who is behind it (needs a named source)"
        }
        DevelopmentKind::DenialIssued => {
            "the accused deny a claim (needs a named source and the development it denies)"
        }
        DevelopmentKind::ChargesFiled => "prosecutors charge someone",
        DevelopmentKind::StatementIssued => "someone involved says something on the record",
        DevelopmentKind::ReportPublished => "a report, investigation or analysis is published",
        DevelopmentKind::CommentRequested => "we asked someone for comment",
        DevelopmentKind::InvestigationOpened => {
            "police, prosecutors, a regulator or a company start investigating"
        }
        DevelopmentKind::ArrestMade => "someone is arrested",
        DevelopmentKind::RulingIssued => "a court or regulator decides",
        DevelopmentKind::Update => "anything else new on the story",
    }
}

fn stance_description(stance: Stance) -> &'static str {
    match stance {
        Stance::Supports => "supports it",
        Stance::Disputes => "disputes it",
        Stance::Denies => "denies it",
    }
}

fn kind_options() -> Vec<(String, String)> {
    std::iter::once(placeholder("Choose a kind…"))
        .chain(DevelopmentKind::ALL.iter().map(|k| {
            (
                k.as_str().to_owned(),
                format!("{} — {}", kind_label(*k), kind_description(*k)),
            )
        }))
        .collect()
}

/// The urgencies; a reporter is told that a flash waits for an editor.
fn urgency_options(editor: bool) -> Vec<(String, String)> {
    Urgency::ALL
        .iter()
        .map(|u| {
            let held = if *u == Urgency::Flash && !editor {
                " (from a reporter, only once an editor approves it)"
            } else {
                ""
            };
            (
                u.as_str().to_owned(),
                format!("{} — {}{held}", urgency_label(*u), urgency_description(*u)),
            )
        })
        .collect()
}

fn stance_options() -> Vec<(String, String)> {
    std::iter::once(placeholder("Choose…"))
        .chain(Stance::ALL.iter().map(|s| {
            (
                s.as_str().to_owned(),
                format!("It {}", stance_description(*s)),
            )
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_explained_in_the_picker() {
        let options = kind_options();
        assert_eq!(options.len(), DevelopmentKind::ALL.len() + 1);
        assert!(options
            .iter()
            .any(|(v, t)| v == "denial_issued" && t.starts_with("Denial issued — ")));
    }
}
