//! Subscriptions: what a subscriber is alerted to (filters, or everything), immediately or in
//! digests.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use newsroom_domain::{Actor, DevelopmentKind, FieldError, Tag, Urgency};
use newsroom_log::args;
use newsroom_web::problem::{Problem, ProblemDetails};
use newsroom_web::{ApiPath, JsonBody};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::{record_change, ts};

use super::subscribers::find_subscriber;
use super::{ApiResult, Caller, Refusal, SubscriberApi};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewSubscription {
    #[serde(default)]
    story: Option<Uuid>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    kind: Option<DevelopmentKind>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    min_urgency: Urgency,
    #[serde(default)]
    delivery: DeliveryMode,
    /// Minutes between digests (`delivery: digest` only).
    #[serde(default, deserialize_with = "newsroom_web::whole_number")]
    #[schema(minimum = 5, maximum = 1440)]
    digest_minutes: Option<u32>,
    /// Every alert, whatever the story: must be asked for, never the result of no filters.
    #[serde(default)]
    everything: bool,
    /// With `story`: also one alert whenever an editor relates another story to it.
    #[serde(default)]
    include_related: bool,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum DeliveryMode {
    #[default]
    Immediate,
    Digest,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct SubscriptionView {
    id: String,
    story: Option<String>,
    actor: Option<String>,
    kind: Option<String>,
    tag: Option<String>,
    min_urgency: String,
    delivery: String,
    digest_minutes: Option<u32>,
    /// No filter: every alert.
    everything: bool,
    /// Also alerted when another story is related to `story`.
    include_related: bool,
}

impl SubscriptionView {
    fn filters_nothing(&self) -> bool {
        self.story.is_none()
            && self.actor.is_none()
            && self.kind.is_none()
            && self.tag.is_none()
            && self.min_urgency == Urgency::Routine.as_str()
    }
}

/// Subscribes to alerts: filters (all must match) or `everything`.
#[utoipa::path(post, path = "/v1/subscribers/{id}/subscriptions", tag = "subscribers", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "the subscriber's id")),
    request_body = NewSubscription,
    responses((status = 201, body = SubscriptionView), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)"),
        (status = 409, body = ProblemDetails, description = "as many subscriptions as allowed")))]
pub(super) async fn subscribe(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<NewSubscription>,
) -> ApiResult<(StatusCode, Json<SubscriptionView>)> {
    caller.may_manage(&id)?;
    find_subscriber(&state, &id).await?;
    let actor = body
        .actor
        .as_deref()
        .map(|a| Actor::parse("actor", a).map(|a| a.key().to_owned()))
        .transpose()?;
    let tag = body
        .tag
        .as_deref()
        .map(|t| Tag::parse("tag", t).map(|t| t.as_str().to_owned()))
        .transpose()?;
    let digest_minutes = match (body.delivery, body.digest_minutes) {
        (DeliveryMode::Immediate, None) => None,
        (DeliveryMode::Immediate, Some(_)) => {
            return Err(FieldError::new("digest_minutes", "only digests have an interval").into())
        }
        (DeliveryMode::Digest, Some(m)) if (5..=1440).contains(&m) => Some(m),
        (DeliveryMode::Digest, _) => {
            return Err(FieldError::new(
                "digest_minutes",
                "a digest needs an interval of 5 to 1440 minutes",
            )
            .into())
        }
    };
    let filtered = body.story.is_some()
        || actor.is_some()
        || body.kind.is_some()
        || tag.is_some()
        || body.min_urgency > Urgency::Routine;
    match (body.everything, filtered) {
        (true, true) => {
            return Err(FieldError::new(
                "everything",
                "a subscription to everything takes no filters: drop `everything` or the filters",
            )
            .into())
        }
        (false, false) => {
            return Err(FieldError::new(
                "everything",
                "a subscription needs a filter (story, actor, kind, tag, or a min_urgency above routine), or `\"everything\": true` to get every alert",
            )
            .into())
        }
        _ => {}
    }
    if body.include_related && body.story.is_none() {
        return Err(FieldError::new(
            "include_related",
            "only a subscription to a story hears of the stories related to it: name `story`",
        )
        .into());
    }
    let view = SubscriptionView {
        id: Uuid::now_v7().to_string(),
        story: body.story.map(|s| s.to_string()),
        actor,
        kind: body.kind.map(|k| k.as_str().to_owned()),
        tag,
        min_urgency: body.min_urgency.as_str().to_owned(),
        delivery: match body.delivery {
            DeliveryMode::Immediate => "immediate",
            DeliveryMode::Digest => "digest",
        }
        .to_owned(),
        digest_minutes,
        everything: body.everything,
        include_related: body.include_related,
    };
    let include_related = body.include_related;
    let row = (
        view.id.clone(),
        view.story.clone(),
        view.actor.clone(),
        view.kind.clone(),
        view.tag.clone(),
        view.min_urgency.clone(),
        view.delivery.clone(),
    );
    let cap = state.limits.subscriptions;
    let refused = state
        .store
        .write(move |tx| {
            let (sid, story, actor, kind, tag, urgency, delivery) = row;
            let n: i64 = tx.query_row(
                "SELECT COUNT(*) FROM subscriptions WHERE subscriber_id = ?1",
                args![&id],
                |r| r.get(0),
            )?;
            if n >= cap as i64 {
                return Ok(Some(Refusal::TooMany(cap)));
            }
            tx.execute(
                "INSERT INTO subscriptions (id, subscriber_id, story_id, actor_key, kind, tag,
                    min_urgency, delivery, digest_minutes, created_at, include_related)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                args![
                    sid,
                    id,
                    story,
                    actor,
                    kind,
                    tag,
                    urgency,
                    delivery,
                    digest_minutes,
                    ts(Utc::now()),
                    include_related
                ],
            )?;
            record_change(tx, Some(&sid), Some(&id))?;
            Ok(None)
        })
        .await?;
    if refused.is_some() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "too-many-subscriptions",
            "Too many subscriptions",
            format!("a subscriber may have {cap} subscriptions; remove one first"),
        )
        .into());
    }
    Ok((StatusCode::CREATED, Json(view)))
}

/// A subscriber's subscriptions.
#[utoipa::path(get, path = "/v1/subscribers/{id}/subscriptions", tag = "subscribers", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "the subscriber's id")),
    responses((status = 200, body = [SubscriptionView]), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)")))]
pub(super) async fn list_subscriptions(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<SubscriptionView>>> {
    caller.may_manage(&id)?;
    // An admin asking for a subscriber that does not exist: not an empty list.
    find_subscriber(&state, &id).await?;
    let list = state
        .store
        .read(move |c| {
            Ok(c.statement(
                "SELECT id, story_id, actor_key, kind, tag, min_urgency, delivery, digest_minutes,
                        include_related
                 FROM subscriptions WHERE subscriber_id = ?1 ORDER BY created_at",
            )?
            .query_map(args![id], |r| {
                Ok(SubscriptionView {
                    id: r.get(0)?,
                    story: r.get(1)?,
                    actor: r.get(2)?,
                    kind: r.get(3)?,
                    tag: r.get(4)?,
                    min_urgency: r.get(5)?,
                    delivery: r.get(6)?,
                    digest_minutes: r.get(7)?,
                    everything: false,
                    include_related: r.get(8)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let list = list
        .into_iter()
        .map(|mut s| {
            s.everything = s.filters_nothing();
            s
        })
        .collect();
    Ok(Json(list))
}

/// Ends one subscription.
#[utoipa::path(delete, path = "/v1/subscribers/{id}/subscriptions/{subscription}", tag = "subscribers", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "the subscriber's id"), ("subscription" = uuid::Uuid, Path, description = "the subscription's id")),
    responses((status = 204, description = "ended"), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber or subscription")))]
pub(super) async fn unsubscribe_one(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath((id, subscription)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.may_manage(&id)?;
    let n = state
        .store
        .write(move |tx| {
            let n = tx.execute(
                "DELETE FROM subscriptions WHERE id = ?1 AND subscriber_id = ?2",
                args![subscription, id],
            )?;
            record_change(tx, Some(&subscription), Some(&id))?;
            Ok(n)
        })
        .await?;
    if n == 0 {
        return Err(Problem::not_found("no such subscription").into());
    }
    Ok(StatusCode::NO_CONTENT)
}
