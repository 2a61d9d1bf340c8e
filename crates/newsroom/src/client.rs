//! The reporter's terminal client: each subcommand is one call to a running server's API.

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};
use uuid::Uuid;

#[derive(Debug, Args)]
pub struct Connection {
    /// The newsroom server to talk to.
    #[arg(
        long,
        env = "NEWSROOM_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// Your API token.
    #[arg(long, env = "NEWSROOM_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum StoryVerb {
    /// Open a story.
    Open {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        headline: String,
        #[arg(long, default_value = "")]
        summary: String,
        /// A tag; repeat for several.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Reporters' developments wait for an editor's approval.
        #[arg(long)]
        review_required: bool,
    },
    /// Record a development on a story.
    Record(RecordArgs),
    /// Approve a pending development (editors).
    Approve { story: String, development: String },
    /// Lift a development's embargo now (editors).
    LiftEmbargo { story: String, development: String },
    /// Move a development's embargo (editors).
    MoveEmbargo {
        story: String,
        development: String,
        /// The new moment (RFC 3339).
        #[arg(long)]
        until: DateTime<Utc>,
    },
    /// Reject a pending development (editors).
    Reject {
        story: String,
        development: String,
        #[arg(long)]
        reason: String,
    },
    /// Correct a development (editors).
    Correct {
        story: String,
        development: String,
        /// Shown to readers as written.
        #[arg(long)]
        note: String,
        #[arg(long)]
        headline: Option<String>,
        #[arg(long)]
        body: Option<String>,
        #[arg(long)]
        occurred_at: Option<DateTime<Utc>>,
        #[arg(long = "actor")]
        actors: Option<Vec<String>>,
        #[arg(long)]
        evidence: Option<String>,
    },
    /// Retract a development (editors).
    Retract {
        story: String,
        development: String,
        #[arg(long)]
        reason: String,
    },
    /// Change a story's headline or tags (editors; not on a closed story).
    Revise {
        story: String,
        #[arg(long)]
        headline: Option<String>,
        #[arg(long = "tag")]
        tags: Option<Vec<String>>,
    },
    /// Close a story (editors).
    Close { story: String },
    /// Reopen a closed story (editors).
    Reopen { story: String },
    /// Show a story's raw event history (editors).
    Events { story: String },
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The story's id.
    pub story: String,
    /// One of hack_reported, attribution_claimed, denial_issued, charges_filed,
    /// statement_issued, report_published, comment_requested, investigation_opened,
    /// arrest_made, ruling_issued, update.
    #[arg(long)]
    pub kind: String,
    #[arg(long)]
    pub headline: String,
    #[arg(long, default_value = "")]
    pub body: String,
    /// When it happened (RFC 3339); defaults to now.
    #[arg(long)]
    pub occurred_at: Option<DateTime<Utc>>,
    /// A person or organisation involved; repeat for several.
    #[arg(long = "actor")]
    pub actors: Vec<String>,
    #[arg(long)]
    pub source_name: Option<String>,
    /// official_statement, document, report, anonymous, own_reporting or social_media.
    #[arg(long, default_value = "official_statement")]
    pub source_kind: String,
    #[arg(long)]
    pub source_url: Option<String>,
    /// none_provided, circumstantial, documentary or confirmed.
    #[arg(long, default_value = "none_provided")]
    pub evidence: String,
    /// routine, priority or flash.
    #[arg(long, default_value = "routine")]
    pub urgency: String,
    /// The development this one responds to.
    #[arg(long, requires = "stance")]
    pub responds_to: Option<Uuid>,
    /// supports, disputes or denies.
    #[arg(long)]
    pub stance: Option<String>,
    /// The development's id; choose one to retry safely. Defaults to a fresh one.
    #[arg(long)]
    pub id: Option<Uuid>,
    /// Held from readers, and alerted to nobody, until this moment (RFC 3339).
    #[arg(long)]
    pub embargo_until: Option<DateTime<Utc>>,
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v.into());
    }
}

impl RecordArgs {
    fn body(self) -> Value {
        let mut body = json!({
            "id": self.id.unwrap_or_else(Uuid::new_v4),
            "kind": self.kind,
            "headline": self.headline,
            "body": self.body,
            "actors": self.actors,
            "evidence": self.evidence,
            "urgency": self.urgency,
        });
        let map = body.as_object_mut().expect("an object");
        put(map, "occurred_at", self.occurred_at.map(|t| t.to_rfc3339()));
        put(
            map,
            "embargo_until",
            self.embargo_until.map(|t| t.to_rfc3339()),
        );
        if let Some(name) = self.source_name {
            let mut source = json!({ "name": name, "kind": self.source_kind });
            put(
                source.as_object_mut().expect("an object"),
                "url",
                self.source_url,
            );
            map.insert("source".into(), source);
        }
        if let (Some(development), Some(stance)) = (self.responds_to, self.stance) {
            map.insert(
                "responds_to".into(),
                json!({ "development": development, "stance": stance }),
            );
        }
        body
    }
}

impl StoryVerb {
    /// The method, path and body of the API call this subcommand makes.
    fn request(self) -> (reqwest::Method, String, Option<Value>) {
        use reqwest::Method;
        let dev_path = |story: &str, dev: &str, action: &str| {
            format!("/v1/stories/{story}/developments/{dev}/{action}")
        };
        match self {
            StoryVerb::Open {
                slug,
                headline,
                summary,
                tags,
                review_required,
            } => (
                Method::POST,
                "/v1/stories".into(),
                Some(json!({
                    "slug": slug, "headline": headline, "summary": summary,
                    "tags": tags, "review_required": review_required,
                })),
            ),
            StoryVerb::Record(args) => (
                Method::POST,
                format!("/v1/stories/{}/developments", args.story),
                Some(args.body()),
            ),
            StoryVerb::Approve { story, development } => (
                Method::POST,
                dev_path(&story, &development, "approval"),
                Some(json!({})),
            ),
            StoryVerb::LiftEmbargo { story, development } => (
                Method::POST,
                dev_path(&story, &development, "embargo/lift"),
                Some(json!({})),
            ),
            StoryVerb::MoveEmbargo {
                story,
                development,
                until,
            } => (
                Method::PUT,
                dev_path(&story, &development, "embargo"),
                Some(json!({ "until": until.to_rfc3339() })),
            ),
            StoryVerb::Reject {
                story,
                development,
                reason,
            } => (
                Method::POST,
                dev_path(&story, &development, "rejection"),
                Some(json!({ "reason": reason })),
            ),
            StoryVerb::Correct {
                story,
                development,
                note,
                headline,
                body,
                occurred_at,
                actors,
                evidence,
            } => {
                let mut changes = Map::new();
                put(&mut changes, "headline", headline);
                put(&mut changes, "body", body);
                put(
                    &mut changes,
                    "occurred_at",
                    occurred_at.map(|t| t.to_rfc3339()),
                );
                put(&mut changes, "actors", actors);
                put(&mut changes, "evidence", evidence);
                (
                    Method::POST,
                    dev_path(&story, &development, "corrections"),
                    Some(json!({ "note": note, "changes": changes })),
                )
            }
            StoryVerb::Retract {
                story,
                development,
                reason,
            } => (
                Method::POST,
                dev_path(&story, &development, "retraction"),
                Some(json!({ "reason": reason })),
            ),
            StoryVerb::Revise {
                story,
                headline,
                tags,
            } => {
                let mut body = Map::new();
                put(&mut body, "headline", headline);
                put(&mut body, "tags", tags);
                (
                    Method::PATCH,
                    format!("/v1/stories/{story}"),
                    Some(Value::Object(body)),
                )
            }
            StoryVerb::Close { story } => {
                (Method::POST, format!("/v1/stories/{story}/close"), None)
            }
            StoryVerb::Reopen { story } => {
                (Method::POST, format!("/v1/stories/{story}/reopen"), None)
            }
            StoryVerb::Events { story } => {
                (Method::GET, format!("/v1/stories/{story}/events"), None)
            }
        }
    }
}

/// Makes the call and prints the answer as JSON; a problem answer becomes an error.
pub async fn run(connection: Connection, command: StoryVerb) -> anyhow::Result<()> {
    let Some(token) = connection.token else {
        bail!("no token: pass --token or set NEWSROOM_TOKEN");
    };
    let (method, path, body) = command.request();
    let url = format!("{}{}", connection.server.trim_end_matches('/'), path);
    let mut request = reqwest::Client::new()
        .request(method, &url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {}", connection.server))?;
    let status = response.status();
    let text = response.text().await.context("reading the answer")?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_success() {
        println!("{}", serde_json::to_string_pretty(&value)?);
        Ok(())
    } else {
        let detail = value
            .get("detail")
            .and_then(Value::as_str)
            .unwrap_or("no detail");
        match value.get("field").and_then(Value::as_str) {
            Some(field) => bail!("{status}: {detail} (field `{field}`)"),
            None => bail!("{status}: {detail}"),
        }
    }
}
