//! Which subscriptions a development matches, without scanning them all.
//!
//! Each subscription is filed under its most selective filter — story, else actor, else kind,
//! else tag, else "everything" — and a development looks up only the buckets its own story,
//! actors, kind and tags point at; the few candidates found are then checked against all their
//! filters. The index follows `subscription_changes`, so a matcher in any process sees every
//! change made through any API process.
//!
//! A subscription to a story may ask for `include_related`; [`SubscriptionIndex::following_related`]
//! finds those in the story's bucket, for the `story.related` alerts a new relation makes.

use std::collections::HashMap;
use std::sync::Arc;

use newsroom_domain::{Actor, DevelopmentKind, Urgency};
use newsroom_log::args;
use newsroom_log::sql::{OptionalRow, Row, Sql};
use uuid::Uuid;

use crate::error::NotifyError;

/// How a subscriber wants what a subscription matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Immediate,
    /// Collected and sent every this many minutes (5–1440).
    Digest {
        minutes: u32,
    },
}

/// One subscription: every filter that is set must match.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub id: String,
    pub subscriber_id: String,
    pub story: Option<Uuid>,
    pub actor_key: Option<String>,
    pub kind: Option<DevelopmentKind>,
    pub tag: Option<String>,
    pub min_urgency: Urgency,
    pub delivery: Delivery,
    /// With `story`: also alerted when another story is related to that story.
    pub include_related: bool,
}

/// What a development offers to match against.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub story: Uuid,
    pub tags: &'a [String],
    pub kind: DevelopmentKind,
    pub actor_keys: Vec<&'a str>,
    pub urgency: Urgency,
}

impl Subscription {
    pub fn matches(&self, t: &Target<'_>) -> bool {
        self.story.is_none_or(|s| s == t.story)
            && self.kind.is_none_or(|k| k == t.kind)
            && self
                .actor_key
                .as_deref()
                .is_none_or(|a| t.actor_keys.contains(&a))
            && self
                .tag
                .as_deref()
                .is_none_or(|tag| t.tags.iter().any(|x| x == tag))
            && t.urgency >= self.min_urgency
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Bucket {
    Story(Uuid),
    Actor(String),
    Kind(DevelopmentKind),
    Tag(String),
    Everything,
}

fn bucket(s: &Subscription) -> Bucket {
    if let Some(story) = s.story {
        Bucket::Story(story)
    } else if let Some(actor) = &s.actor_key {
        Bucket::Actor(actor.clone())
    } else if let Some(kind) = s.kind {
        Bucket::Kind(kind)
    } else if let Some(tag) = &s.tag {
        Bucket::Tag(tag.clone())
    } else {
        Bucket::Everything
    }
}

/// The in-memory index of active subscriptions of active subscribers.
#[derive(Debug, Default)]
pub struct SubscriptionIndex {
    /// Each subscription sits in exactly one bucket, so a lookup over distinct buckets never
    /// meets it twice.
    buckets: HashMap<Bucket, Vec<Arc<Subscription>>>,
    /// Where each subscription is filed, by id.
    filed: HashMap<String, Bucket>,
    /// The last `subscription_changes.seq` applied.
    seen: i64,
}

impl SubscriptionIndex {
    pub fn len(&self) -> usize {
        self.filed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filed.is_empty()
    }

    pub fn insert(&mut self, s: Subscription) {
        self.remove(&s.id);
        let b = bucket(&s);
        self.filed.insert(s.id.clone(), b.clone());
        self.buckets.entry(b).or_default().push(Arc::new(s));
    }

    pub fn remove(&mut self, id: &str) {
        if let Some(b) = self.filed.remove(id) {
            if let Some(list) = self.buckets.get_mut(&b) {
                list.retain(|s| s.id != id);
                if list.is_empty() {
                    self.buckets.remove(&b);
                }
            }
        }
    }

    /// The subscriptions a development matches.
    pub fn matching(&self, t: &Target<'_>) -> Vec<&Subscription> {
        let mut keys = vec![
            Bucket::Story(t.story),
            Bucket::Kind(t.kind),
            Bucket::Everything,
        ];
        for a in &t.actor_keys {
            let key = Bucket::Actor((*a).to_owned());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for tag in t.tags {
            let key = Bucket::Tag(tag.clone());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys.iter()
            .filter_map(|k| self.buckets.get(k))
            .flatten()
            .map(|s| s.as_ref())
            .filter(|s| s.matches(t))
            .collect()
    }

    /// The subscriptions to `story` that asked to hear of stories related to it.
    pub fn following_related(&self, story: Uuid) -> Vec<&Subscription> {
        self.buckets
            .get(&Bucket::Story(story))
            .into_iter()
            .flatten()
            .map(|s| s.as_ref())
            .filter(|s| s.include_related && s.story == Some(story))
            .collect()
    }

    fn ids_of(&self, subscriber: &str) -> Vec<String> {
        self.buckets
            .values()
            .flatten()
            .filter(|s| s.subscriber_id == subscriber)
            .map(|s| s.id.clone())
            .collect()
    }

    /// Applies every change recorded since the last refresh.
    pub fn refresh(&mut self, conn: &dyn Sql) -> Result<(), NotifyError> {
        let changes: Vec<(i64, Option<String>, Option<String>)> = conn
            .statement(
                "SELECT seq, subscription_id, subscriber_id FROM subscription_changes
                 WHERE seq > ?1 ORDER BY seq",
            )?
            .query_map(args![self.seen], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let Some(last) = changes.last().map(|(seq, _, _)| *seq) else {
            return Ok(());
        };
        if changes.len() >= RELOAD_FROM {
            // Cheaper to read every subscription once (one statement) than each change's.
            let all: Vec<Subscription> = conn
                .statement(SELECT)?
                .query_map(args![], row)?
                .collect::<Result<_, _>>()?;
            self.buckets.clear();
            self.filed.clear();
            for s in all {
                self.insert(s);
            }
            // Changes after `last` the reload may already show are applied again next time,
            // which leaves the same.
            self.seen = last;
            return Ok(());
        }
        for (seq, subscription, subscriber) in changes {
            if let Some(id) = subscription {
                self.remove(&id);
                if let Some(s) = load_subscription(conn, &id)? {
                    self.insert(s);
                }
            } else if let Some(subscriber) = subscriber {
                for id in self.ids_of(&subscriber) {
                    self.remove(&id);
                }
                for s in load_subscriptions_of(conn, &subscriber)? {
                    self.insert(s);
                }
            }
            self.seen = seq;
        }
        Ok(())
    }
}

/// From this many changes since the last refresh on (a copy starting, a bulk import), the index
/// is read whole instead of change by change.
const RELOAD_FROM: usize = 256;

const SELECT: &str = "SELECT s.id, s.subscriber_id, s.story_id, s.actor_key, s.kind, s.tag,
    s.min_urgency, s.delivery, s.digest_minutes, s.include_related
    FROM subscriptions s JOIN subscribers p ON p.id = s.subscriber_id AND p.status = 'active'";

fn row(r: &Row) -> Result<Subscription, newsroom_log::DbError> {
    let story: Option<String> = r.get(2)?;
    let kind: Option<String> = r.get(4)?;
    let urgency: String = r.get(6)?;
    let delivery: String = r.get(7)?;
    let minutes: Option<u32> = r.get(8)?;
    // A key stored under an older rule is brought to the rule events' keys are read with
    // (`Actor::normalise` is idempotent on keys), so a subscription made before confusables
    // were folded still matches.
    let actor_key: Option<String> = r.get(3)?;
    Ok(Subscription {
        id: r.get(0)?,
        subscriber_id: r.get(1)?,
        story: story.and_then(|s| Uuid::parse_str(&s).ok()),
        actor_key: actor_key.map(|k| Actor::normalise(&k)),
        kind: kind.and_then(|k| k.parse().ok()),
        tag: r.get(5)?,
        min_urgency: urgency.parse().unwrap_or_default(),
        delivery: match (delivery.as_str(), minutes) {
            ("digest", Some(minutes)) => Delivery::Digest { minutes },
            _ => Delivery::Immediate,
        },
        include_related: r.get(9)?,
    })
}

fn load_subscription(conn: &dyn Sql, id: &str) -> Result<Option<Subscription>, NotifyError> {
    Ok(conn
        .statement(&format!("{SELECT} WHERE s.id = ?1"))?
        .query_row(args![id], row)
        .optional()?)
}

fn load_subscriptions_of(
    conn: &dyn Sql,
    subscriber: &str,
) -> Result<Vec<Subscription>, NotifyError> {
    Ok(conn
        .statement(&format!("{SELECT} WHERE s.subscriber_id = ?1"))?
        .query_map(args![subscriber], row)?
        .collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, f: impl FnOnce(&mut Subscription)) -> Subscription {
        let mut s = Subscription {
            id: id.into(),
            subscriber_id: format!("subscriber-{id}"),
            story: None,
            actor_key: None,
            kind: None,
            tag: None,
            min_urgency: Urgency::Routine,
            delivery: Delivery::Immediate,
            include_related: false,
        };
        f(&mut s);
        s
    }

    #[test]
    fn every_set_filter_must_match_and_urgency_must_reach_the_minimum() {
        let story = Uuid::from_u128(1);
        let tags = vec!["elections".to_owned()];
        let t = Target {
            story,
            tags: &tags,
            kind: DevelopmentKind::DenialIssued,
            actor_keys: vec!["fancy bear", "gru"],
            urgency: Urgency::Priority,
        };
        let mut index = SubscriptionIndex::default();
        index.insert(sub("story", |s| s.story = Some(story)));
        index.insert(sub("story+kind", |s| {
            s.story = Some(story);
            s.kind = Some(DevelopmentKind::DenialIssued)
        }));
        index.insert(sub("story+wrong-kind", |s| {
            s.story = Some(story);
            s.kind = Some(DevelopmentKind::ArrestMade)
        }));
        index.insert(sub("actor", |s| s.actor_key = Some("gru".into())));
        index.insert(sub("tag", |s| s.tag = Some("elections".into())));
        index.insert(sub("other-tag", |s| s.tag = Some("courts".into())));
        index.insert(sub("everything", |_| {}));
        index.insert(sub("flash-only", |s| s.min_urgency = Urgency::Flash));
        let mut ids: Vec<&str> = index.matching(&t).iter().map(|s| s.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["actor", "everything", "story", "story+kind", "tag"]);
    }

    #[test]
    fn a_development_looks_only_at_its_own_buckets() {
        let mut index = SubscriptionIndex::default();
        for n in 0..100_000u128 {
            index.insert(sub(&n.to_string(), |s| s.story = Some(Uuid::from_u128(n))));
        }
        let tags = vec![];
        let t = Target {
            story: Uuid::from_u128(77),
            tags: &tags,
            kind: DevelopmentKind::Update,
            actor_keys: vec![],
            urgency: Urgency::Routine,
        };
        let found = index.matching(&t);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "77");
        assert_eq!(index.buckets.len(), 100_000);
        index.remove("77");
        assert!(index.matching(&t).is_empty());
    }
}
