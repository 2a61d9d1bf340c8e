//! Desk forms → the command API's request types.
//!
//! A form is turned into the same request structs the JSON API deserialises
//! (`OpenStoryRequest`, `RecordDevelopmentRequest`, `CorrectionRequest`, `ReasonRequest`), whose
//! `parse` makes the domain command: there is one set of rules and one write path. Form fields
//! are named like the API's fields (`headline`, `source.name`, `responds_to.stance`,
//! `changes.body`), so a refusal's `field` says which control to mark.

use chrono::{DateTime, Utc};
use newsroom_command::http::{
    ChangesRequest, CorrectionRequest, OpenStoryRequest, RecordDevelopmentRequest,
    RespondsToRequest, SourceRequest,
};
use newsroom_domain::{limits, DevelopmentKind, Evidence, SourceKind, Stance, Urgency};
use newsroom_readmodel::DevelopmentView;
use newsroom_web::problem::Problem;
use uuid::Uuid;

use super::zone::Zone;

/// The "Open a story" form as it first appears: a new story's developments wait for an
/// editor's approval unless whoever opens it unticks the box (the API's default stays as it was,
/// so integrations behave as before).
pub fn new_story_defaults() -> FormData {
    let mut form = FormData::default();
    form.set("review_required", "yes");
    form
}

/// The fields of a submitted form, in order, as typed (line breaks as `\n`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormData(Vec<(String, String)>);

impl FormData {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.replace("\r\n", "\n")))
                .collect(),
        )
    }

    /// The first value of `name`, or `""`.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Adds a value of `name` after those it has.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_owned(), value.into()));
    }

    /// Replaces every value of `name` with `value`.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(k, _)| k != name);
        self.0.push((name.to_owned(), value.into()));
    }

    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }

    /// The bytes its names and values take.
    pub fn size(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Its fields URL-encoded, as a browser sends them.
    pub fn encode(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.0.iter())
            .finish()
    }

    /// What was typed: every field but the session's CSRF value and the buttons' own.
    pub fn typed(&self) -> FormData {
        FormData(
            carried(self)
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

/// What a posted form asks for. A form that publishes is carried out only from its preview
/// page's own button (`confirm=<action>`); anything else — Enter in a field, a form sent without
/// a button, the form's own "Preview" button — shows the preview, and the preview's "Change it"
/// button (`step=edit`) shows the form again with everything as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Preview,
    Edit,
    Confirm,
}

impl Step {
    /// The step a form posted for `action` (`file`, `approve`, `correct`) asks for.
    pub fn of(form: &FormData, action: &str) -> Self {
        if form.get("confirm") == action {
            Step::Confirm
        } else if form.get("step") == "edit" {
            Step::Edit
        } else {
            Step::Preview
        }
    }
}

/// The fields of a form a preview page carries on, hidden, to its buttons: what was typed,
/// without the session's CSRF value and the buttons' own fields.
pub fn carried(form: &FormData) -> impl Iterator<Item = (&str, &str)> {
    form.0
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "csrf" | "step" | "confirm"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// Why a submitted form was refused, and which field it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    /// The form field (`source.name`), when the refusal concerns one.
    pub field: Option<String>,
    pub message: String,
}

impl FormError {
    pub fn new(field: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// The refusal of the command API, as the desk tells it.
    pub fn from_problem(problem: &Problem) -> Self {
        let details = problem.details();
        let field = details.field.clone().map(|f| match f.as_str() {
            // A denial that names nothing: the picker is where to fix it.
            "responds_to" => "responds_to.development".to_owned(),
            _ => f,
        });
        let raw = details
            .field
            .as_deref()
            .map_or(details.detail.as_str(), |f| {
                details
                    .detail
                    .strip_prefix(f)
                    .and_then(|rest| rest.strip_prefix(": "))
                    .unwrap_or(&details.detail)
            });
        if field.as_deref() == Some("id") {
            return Self::new(
                None,
                if problem.status() == axum::http::StatusCode::CONFLICT {
                    "This form had already been filed, with other content. It now has a new \
                     identity: submit it again to file it as another development."
                } else {
                    "This form had lost its identity. It has a new one: submit it again."
                },
            );
        }
        Self {
            field,
            message: sentence(&plain_words(raw)),
        }
    }

    /// The error for `field`, if it is this one.
    pub fn for_field(&self, field: &str) -> Option<&str> {
        (self.field.as_deref() == Some(field)).then_some(self.message.as_str())
    }
}

/// The API names values as code (`` `denial_issued` ``); the desk says "Denial issued".
fn plain_words(raw: &str) -> String {
    let mut out = raw.to_owned();
    for kind in DevelopmentKind::ALL {
        out = out.replace(
            &format!("`{}`", kind.as_str()),
            &format!("“{}”", newsroom_projection::pages::words::kind_label(*kind)),
        );
    }
    let mut quoted = false;
    out.chars()
        .map(|c| match c {
            '`' => {
                quoted = !quoted;
                if quoted {
                    '“'
                } else {
                    '”'
                }
            }
            other => other,
        })
        .collect()
}

/// Starts a message with a capital letter: "Must not be empty".
fn sentence(raw: &str) -> String {
    let mut chars = raw.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Whether a problem is about what was typed (and the form should be shown again) rather than a
/// failure of the server.
pub fn is_refusal(problem: &Problem) -> bool {
    problem.status().is_client_error()
}

fn invalid(field: &str, detail: impl Into<String>) -> Problem {
    Problem::invalid(field, detail)
}

/// Actor names from one or more fields, each holding names separated by commas or new lines.
pub fn split_actors<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    values
        .flat_map(|v| v.split([',', '\n']))
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Tags typed as `elections, cyber` or `elections cyber`.
pub fn split_tags(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A slug made from a headline: "Campaign reports a hack!" → `campaign-reports-a-hack`;
/// accents are dropped ("Über" → `uber`).
pub fn slug_from(headline: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut slug = String::new();
    let letters = headline
        .trim()
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c));
    for c in letters.flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_end_matches('-').to_owned();
    if slug.len() > limits::SLUG {
        slug.truncate(limits::SLUG);
        slug = slug.trim_end_matches('-').to_owned();
    }
    slug
}

/// `POST /desk/stories`: the story to open.
pub fn open_story_request(form: &FormData) -> OpenStoryRequest {
    let typed = form.get("slug").trim();
    let slug = if typed.is_empty() {
        slug_from(form.get("headline"))
    } else {
        typed.to_owned()
    };
    OpenStoryRequest {
        slug,
        headline: form.get("headline").to_owned(),
        summary: form.get("summary").to_owned(),
        tags: split_tags(form.get("tags")),
        review_required: form.checked("review_required"),
    }
}

fn parse_choice<T: std::str::FromStr>(
    form: &FormData,
    field: &str,
    default: Option<T>,
    missing: &str,
) -> Result<T, Problem> {
    let raw = form.get(field).trim();
    if raw.is_empty() {
        return default.ok_or_else(|| invalid(field, missing));
    }
    raw.parse::<T>()
        .map_err(|_| invalid(field, format!("`{raw}` is not one of the choices")))
}

fn source_request(
    form: &FormData,
    prefix: &str,
    required_when: bool,
) -> Result<Option<SourceRequest>, Problem> {
    let name = form.get(&format!("{prefix}.name"));
    let url = form.get(&format!("{prefix}.url")).trim();
    if !required_when && name.trim().is_empty() && url.is_empty() {
        return Ok(None);
    }
    let kind = parse_choice::<SourceKind>(
        form,
        &format!("{prefix}.kind"),
        None,
        "choose what kind of source this is",
    )?;
    Ok(Some(SourceRequest {
        name: name.to_owned(),
        kind,
        url: (!url.is_empty()).then(|| url.to_owned()),
    }))
}

fn occurred_at(form: &FormData, field: &str, zone: Zone) -> Result<Option<DateTime<Utc>>, Problem> {
    let raw = form.get(field).trim();
    if raw.is_empty() {
        return Ok(None);
    }
    zone.parse_input(raw)
        .map(Some)
        .map_err(|m| invalid(field, m))
}

/// The new moment of an embargo (`until`, the desk's local time).
pub fn embargo_until(form: &FormData, zone: Zone) -> Result<DateTime<Utc>, Problem> {
    occurred_at(form, "until", zone)?.ok_or_else(|| invalid("until", "say when the embargo ends"))
}

/// `POST /desk/stories/{id}/developments`: the filing. Its `id` comes from the form, drawn when
/// the form was first shown, so that sending it twice is an idempotent retry.
pub fn development_request(
    form: &FormData,
    zone: Zone,
) -> Result<RecordDevelopmentRequest, Problem> {
    let id = Uuid::parse_str(form.get("id").trim())
        .map_err(|_| Problem::bad_request(Some("id"), "the form lost its identity; reload it"))?;
    let kind = parse_choice::<DevelopmentKind>(
        form,
        "kind",
        None,
        "choose what kind of development this is",
    )?;
    let target = form.get("responds_to.development").trim();
    let responds_to = if target.is_empty() {
        None
    } else {
        let development = Uuid::parse_str(target).map_err(|_| {
            invalid(
                "responds_to.development",
                "choose one of the story's developments",
            )
        })?;
        let stance = parse_choice::<Stance>(
            form,
            "responds_to.stance",
            (kind == DevelopmentKind::DenialIssued).then_some(Stance::Denies),
            "say whether this supports, disputes or denies it",
        )?;
        Some(RespondsToRequest {
            development,
            stance,
        })
    };
    Ok(RecordDevelopmentRequest {
        id,
        kind,
        headline: form.get("headline").to_owned(),
        body: form.get("body").to_owned(),
        occurred_at: occurred_at(form, "occurred_at", zone)?,
        actors: split_actors(form.all("actors")),
        accused: split_actors(form.all("accused")),
        source: source_request(form, "source", false)?,
        evidence: parse_choice(form, "evidence", Some(Evidence::default()), "")?,
        urgency: parse_choice(form, "urgency", Some(Urgency::default()), "")?,
        responds_to,
        embargo_until: occurred_at(form, "embargo_until", zone)?,
        // The desk's undo window is the desk's to add (`DeskState::held`), never the form's.
        hold_seconds: None,
    })
}

/// The values a filing form starts with to revise and refile `d` (a rejected filing): all of it,
/// but a fresh `id`, and no response to a development that is not there to answer any more.
pub fn refile_defaults(
    d: &DevelopmentView,
    story: &newsroom_readmodel::StoryView,
    zone: Zone,
) -> FormData {
    let mut form = FormData::default();
    form.set("id", Uuid::now_v7().to_string());
    form.set("kind", d.kind.as_str());
    form.set("headline", d.headline.clone());
    form.set("body", d.body.clone());
    form.set("occurred_at", zone.input_value(d.occurred_at));
    for actor in d.actors.iter().filter(|a| !d.accused.contains(a)) {
        form.push("actors", actor.name());
    }
    let accused: Vec<&str> = d.accused.iter().map(|a| a.name()).collect();
    form.set("accused", accused.join(", "));
    if let Some(s) = &d.source {
        form.set("source.name", s.name.as_str());
        form.set("source.kind", s.kind.as_str());
        form.set("source.url", s.url.as_ref().map_or("", |u| u.as_str()));
    }
    form.set("evidence", d.evidence.as_str());
    form.set("urgency", d.urgency.as_str());
    let answered = d.responds_to.filter(|r| {
        story
            .development(r.development)
            .is_some_and(|t| t.state != newsroom_readmodel::DevelopmentStanding::Rejected)
    });
    if let Some(r) = answered {
        form.set("responds_to.development", r.development.to_string());
        form.set("responds_to.stance", r.stance.as_str());
    }
    form
}

/// The values a correction form starts with: the development as it is now.
pub fn correction_defaults(d: &DevelopmentView, zone: Zone) -> FormData {
    let mut form = FormData::default();
    form.set("changes.headline", d.headline.clone());
    form.set("changes.body", d.body.clone());
    form.set("changes.occurred_at", zone.input_value(d.occurred_at));
    form.set(
        "changes.actors",
        d.actors
            .iter()
            .map(|a| a.name().to_owned())
            .collect::<Vec<_>>()
            .join(", "),
    );
    if let Some(s) = &d.source {
        form.set("changes.source.name", s.name.as_str());
        form.set("changes.source.kind", s.kind.as_str());
        form.set(
            "changes.source.url",
            s.url.as_ref().map_or("", |u| u.as_str()),
        );
    }
    form.set("changes.evidence", d.evidence.as_str());
    form
}

/// The controls of the correction form, each shown with the development's current value.
pub const CORRECTION_CONTROLS: [&str; 8] = [
    "changes.headline",
    "changes.body",
    "changes.occurred_at",
    "changes.actors",
    "changes.source.name",
    "changes.source.kind",
    "changes.source.url",
    "changes.evidence",
];

/// The version of the story a form on a development was made from (`seen`, the position of the
/// story's latest event its view had applied), if it carries one.
pub fn seen(form: &FormData) -> Option<i64> {
    form.get("seen").trim().parse().ok().filter(|p| *p > 0)
}

/// Keeps, beside each correction control, the value the form showed (`was.<control>`, hidden),
/// so that a form sent over a newer change can tell what its editor changed.
pub fn keep_shown(form: &mut FormData) {
    for control in CORRECTION_CONTROLS {
        let shown = form.get(control).to_owned();
        form.set(&format!("was.{control}"), shown);
    }
}

/// A correction form sent over a newer change, moved onto the development as it is now: each
/// control its editor changed (from what the form showed, `was.*`) keeps what they typed; the
/// others show the new values. Also returns the controls both the editor and the newer change
/// changed, to differently.
pub fn rebase_correction(
    form: &FormData,
    now: &DevelopmentView,
    zone: Zone,
) -> (FormData, Vec<&'static str>) {
    let current = correction_defaults(now, zone);
    let mut rebased = current.clone();
    // What the form shows from now on is the development as it is now.
    keep_shown(&mut rebased);
    let mut both = Vec::new();
    for control in CORRECTION_CONTROLS {
        let typed = form.get(control);
        let shown = form.get(&format!("was.{control}"));
        let now = current.get(control);
        if typed.trim() != shown.trim() {
            if now.trim() != shown.trim() && now.trim() != typed.trim() {
                both.push(control);
            }
            rebased.set(control, typed);
        }
    }
    rebased.set("note", form.get("note"));
    (rebased, both)
}

/// `POST …/correct`: the editor's note and whichever fields differ from the development as it
/// is now (a field left as it was is not a change).
pub fn correction_request(
    form: &FormData,
    current: &DevelopmentView,
    zone: Zone,
) -> Result<CorrectionRequest, Problem> {
    let was = correction_defaults(current, zone);
    let changed = |field: &str| form.get(field).trim() != was.get(field).trim();
    let headline = changed("changes.headline").then(|| form.get("changes.headline").to_owned());
    let body = changed("changes.body").then(|| form.get("changes.body").to_owned());
    let occurred_at = if changed("changes.occurred_at") {
        occurred_at(form, "changes.occurred_at", zone)?
    } else {
        None
    };
    let actors = split_actors(form.all("changes.actors"));
    let actors = (actors != split_actors(was.all("changes.actors"))).then_some(actors);
    let source_fields = [
        "changes.source.name",
        "changes.source.kind",
        "changes.source.url",
    ];
    let source = if source_fields.iter().any(|f| changed(f)) {
        // A correction can change a source but not remove one: an emptied name is refused.
        source_request(form, "changes.source", current.source.is_some())?
    } else {
        None
    };
    let evidence = parse_choice::<Evidence>(form, "changes.evidence", Some(current.evidence), "")?;
    Ok(CorrectionRequest {
        note: form.get("note").to_owned(),
        changes: ChangesRequest {
            headline,
            body,
            occurred_at,
            actors,
            source,
            evidence: (evidence != current.evidence).then_some(evidence),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> FormData {
        FormData(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn form_bodies_keep_what_was_typed_with_plain_line_breaks() {
        let f = FormData::parse(b"headline=A+%3Cb%3E&body=one%0D%0Atwo&actors=x&actors=y");
        assert_eq!(f.get("headline"), "A <b>");
        assert_eq!(f.get("body"), "one\ntwo");
        assert_eq!(f.all("actors").collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(f.get("missing"), "");
    }

    #[test]
    fn only_the_preview_pages_button_carries_a_form_out() {
        let f = form(&[("csrf", "c"), ("headline", "Water main bur")]);
        assert_eq!(Step::of(&f, "file"), Step::Preview, "Enter sends no button");
        let f = form(&[("headline", "x"), ("step", "preview")]);
        assert_eq!(Step::of(&f, "file"), Step::Preview);
        let f = form(&[("headline", "x"), ("step", "edit")]);
        assert_eq!(Step::of(&f, "file"), Step::Edit);
        let f = form(&[("headline", "x"), ("confirm", "file")]);
        assert_eq!(Step::of(&f, "file"), Step::Confirm);
        assert_eq!(
            Step::of(&f, "approve"),
            Step::Preview,
            "one action's button is not another's"
        );
        let f = form(&[
            ("csrf", "c"),
            ("actors", "A"),
            ("actors", "B"),
            ("confirm", "file"),
            ("step", "edit"),
        ]);
        assert_eq!(
            carried(&f).collect::<Vec<_>>(),
            [("actors", "A"), ("actors", "B")]
        );
    }

    #[test]
    fn a_correction_sent_over_a_newer_change_keeps_only_what_its_editor_changed() {
        let d: DevelopmentView = serde_json::from_value(serde_json::json!({
            "id": Uuid::new_v4(), "kind": "update", "headline": "Theirs", "body": "New body",
            "occurred_at": "2026-03-01T09:30:00Z", "recorded_at": "2026-03-01T09:30:00Z",
            "actors": [], "evidence": "none_provided", "urgency": "routine",
            "state": "pending_review", "position": 1, "updated_position": 2,
            "updated_at": "2026-03-01T09:30:00Z"
        }))
        .unwrap();
        // The form showed headline "Old" and body "Old body"; its editor changed the headline
        // to "Mine" and left the body, which someone else changed meanwhile.
        let mut shown = form(&[
            ("changes.headline", "Old"),
            ("changes.body", "Old body"),
            ("changes.occurred_at", "2026-03-01T09:30"),
            ("changes.evidence", "none_provided"),
        ]);
        keep_shown(&mut shown);
        let mut sent = shown.clone();
        sent.set("changes.headline", "Mine");
        sent.set("note", "Subbed");
        let (rebased, both) = rebase_correction(&sent, &d, Zone::UTC);
        assert_eq!(rebased.get("changes.headline"), "Mine", "theirs is kept");
        assert_eq!(rebased.get("changes.body"), "New body", "not reverted");
        assert_eq!(rebased.get("note"), "Subbed");
        assert_eq!(both, ["changes.headline"], "both changed the headline");
        assert_eq!(rebased.get("was.changes.headline"), "Theirs");
        assert_eq!(rebased.get("was.changes.body"), "New body");
        // Sent again as it is, it changes only the headline.
        let request = correction_request(&rebased, &d, Zone::UTC).unwrap();
        assert!(request.changes.headline.is_some());
        assert!(request.changes.body.is_none());
        assert_eq!(seen(&form(&[("seen", "12")])), Some(12));
        assert_eq!(seen(&form(&[("seen", "x")])), None);
        assert_eq!(seen(&form(&[])), None);
    }

    #[test]
    fn actors_split_on_commas_and_lines() {
        let f = form(&[
            ("actors", "GRU, Fancy Bear\nState X"),
            ("actors", " "),
            ("actors", "Y"),
        ]);
        assert_eq!(
            split_actors(f.all("actors")),
            ["GRU", "Fancy Bear", "State X", "Y"]
        );
    }

    #[test]
    fn slugs_are_made_from_headlines_when_left_empty() {
        assert_eq!(
            slug_from("Campaign reports a hack!"),
            "campaign-reports-a-hack"
        );
        assert_eq!(slug_from("  --Ünïcode  2026 "), "unicode-2026");
        assert_eq!(slug_from("Zeitzone über alles ß"), "zeitzone-uber-alles");
        assert_eq!(slug_from("!!!"), "");
        let request = open_story_request(&form(&[
            ("headline", "Campaign hack"),
            ("slug", " "),
            ("tags", "Elections, cyber  x"),
            ("review_required", "yes"),
        ]));
        assert_eq!(request.slug, "campaign-hack");
        assert_eq!(request.tags, ["Elections", "cyber", "x"]);
        assert!(request.review_required);
    }

    #[test]
    fn a_denial_names_its_target_and_defaults_its_stance() {
        let id = Uuid::new_v4();
        let target = Uuid::new_v4().to_string();
        let id_s = id.to_string();
        let f = form(&[
            ("id", &id_s),
            ("kind", "denial_issued"),
            ("headline", "Ministry denies"),
            ("responds_to.development", &target),
            ("responds_to.stance", ""),
            ("source.name", ""),
            ("source.kind", "official_statement"),
            ("source.url", ""),
            ("occurred_at", "2026-03-01T10:00"),
        ]);
        let request = development_request(&f, Zone::UTC).unwrap();
        assert_eq!(request.id, id);
        assert!(request.source.is_none(), "no name, no URL: no source");
        let r = request.responds_to.unwrap();
        assert_eq!(r.stance, Stance::Denies);
        assert_eq!(r.development.to_string(), target);
        assert_eq!(
            request.occurred_at.unwrap().to_rfc3339(),
            "2026-03-01T10:00:00+00:00"
        );
    }

    #[test]
    fn refusals_name_the_field_of_the_form() {
        let f = form(&[("id", "x"), ("kind", "update")]);
        let p = development_request(&f, Zone::UTC).unwrap_err();
        assert_eq!(p.details().field.as_deref(), Some("id"));
        let id = Uuid::new_v4().to_string();
        let f = form(&[("id", &id), ("kind", "nonsense")]);
        let p = development_request(&f, Zone::UTC).unwrap_err();
        assert_eq!(FormError::from_problem(&p).field.as_deref(), Some("kind"));
        let f = form(&[("id", &id), ("kind", "update"), ("occurred_at", "soon")]);
        let e = FormError::from_problem(&development_request(&f, Zone::UTC).unwrap_err());
        assert_eq!(e.field.as_deref(), Some("occurred_at"));
        assert!(
            e.message.starts_with("Must be a date and time"),
            "{}",
            e.message
        );
        let f = form(&[
            ("id", &id),
            ("kind", "update"),
            ("responds_to.development", &id),
        ]);
        let e = FormError::from_problem(&development_request(&f, Zone::UTC).unwrap_err());
        assert_eq!(e.field.as_deref(), Some("responds_to.stance"));
    }

    #[test]
    fn api_problems_become_messages_without_the_field_prefix() {
        let p: Problem =
            newsroom_domain::FieldError::new("source.name", "must not be empty").into();
        let e = FormError::from_problem(&p);
        assert_eq!(e.field.as_deref(), Some("source.name"));
        assert_eq!(e.message, "Must not be empty");
        assert_eq!(e.for_field("source.name"), Some("Must not be empty"));
        assert_eq!(e.for_field("headline"), None);
        let p: Problem = newsroom_domain::FieldError::new(
            "source.name",
            "a named source is required for `denial_issued`; its stance is `denies`",
        )
        .into();
        assert_eq!(
            FormError::from_problem(&p).message,
            "A named source is required for “Denial issued”; its stance is “denies”"
        );
        let p: Problem =
            newsroom_domain::FieldError::new("responds_to", "a denial must name it").into();
        assert_eq!(
            FormError::from_problem(&p).field.as_deref(),
            Some("responds_to.development")
        );
    }
}
