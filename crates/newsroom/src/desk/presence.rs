//! Who is working on which development, so that two editors do not race unawares.
//!
//! Opening a development's approval, correction or retraction form says "I am working on this";
//! `desk.js` repeats it every 30 s while the form stays open, and sending the form (or
//! leaving the page) ends it. Every page that shows the development — the review queue, the
//! story's desk page, the other forms — names who else has it open and since when. Nothing is
//! decided by it: the log's optimistic concurrency still refuses a form sent over a newer change.
//!
//! Kept in the desk process's memory (the desk is served by one process, role `all`): each mark
//! lasts [`KEEP`] after it was last repeated, at most [`MAX_MARKS`] in all (the oldest go first);
//! lost on a restart, which costs nothing but the notice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use newsroom_web::Principal;
use uuid::Uuid;

/// How long a mark lasts without being repeated: `desk.js` repeats it every 30 s, so a few
/// missed heartbeats.
pub const KEEP: Duration = Duration::from_secs(120);
/// At most this many marks are kept.
pub const MAX_MARKS: usize = 10_000;

/// What someone is doing with a development.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doing {
    Approving,
    Editing,
    Retracting,
}

impl Doing {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "approve" => Some(Doing::Approving),
            "correct" => Some(Doing::Editing),
            "retract" => Some(Doing::Retracting),
            _ => None,
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Doing::Approving => "is checking it for approval",
            Doing::Editing => "is editing it",
            Doing::Retracting => "is retracting it",
        }
    }
}

/// Someone else at work on a development.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Present {
    pub name: String,
    pub doing: Doing,
    /// When they opened the form.
    pub since: DateTime<Utc>,
}

#[derive(Debug)]
struct Mark {
    token_id: String,
    present: Present,
    seen: Instant,
}

/// The marks of this desk process. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    marks: Arc<Mutex<HashMap<Uuid, Vec<Mark>>>>,
}

impl Presence {
    /// `who` has `development`'s form for `doing` open (again).
    pub fn here(&self, development: Uuid, who: &Principal, doing: Doing) {
        let now = Instant::now();
        let mut marks = self.marks.lock().expect("presence lock");
        marks.retain(|_, list| {
            list.retain(|m| now.duration_since(m.seen) < KEEP);
            !list.is_empty()
        });
        let count: usize = marks.values().map(Vec::len).sum();
        if count >= MAX_MARKS {
            // The least recently repeated go first.
            let oldest = marks
                .iter()
                .flat_map(|(d, l)| l.iter().map(move |m| (m.seen, *d)))
                .min()
                .map(|(_, d)| d);
            if let Some(d) = oldest {
                marks.remove(&d);
            }
        }
        let list = marks.entry(development).or_default();
        match list
            .iter_mut()
            .find(|m| m.token_id == who.token_id && m.present.doing == doing)
        {
            Some(m) => m.seen = now,
            None => list.push(Mark {
                token_id: who.token_id.clone(),
                present: Present {
                    name: who.name.clone(),
                    doing,
                    since: Utc::now(),
                },
                seen: now,
            }),
        }
    }

    /// `who` is done with `development` (sent the form, or left it).
    pub fn gone(&self, development: Uuid, who: &Principal) {
        let mut marks = self.marks.lock().expect("presence lock");
        if let Some(list) = marks.get_mut(&development) {
            list.retain(|m| m.token_id != who.token_id);
            if list.is_empty() {
                marks.remove(&development);
            }
        }
    }

    /// Who other than `me` is at work on `development`, earliest first.
    pub fn others(&self, development: Uuid, me: &Principal) -> Vec<Present> {
        let now = Instant::now();
        let marks = self.marks.lock().expect("presence lock");
        let mut found: Vec<Present> = marks
            .get(&development)
            .into_iter()
            .flatten()
            .filter(|m| m.token_id != me.token_id && now.duration_since(m.seen) < KEEP)
            .map(|m| m.present.clone())
            .collect();
        found.sort_by_key(|p| p.since);
        found
    }
}

#[cfg(test)]
mod tests {
    use newsroom_domain::Role;

    use super::*;

    fn editor(id: &str, name: &str) -> Principal {
        Principal {
            token_id: id.into(),
            name: name.into(),
            role: Role::Editor,
        }
    }

    #[test]
    fn others_see_who_is_at_work_until_they_are_gone() {
        let presence = Presence::default();
        let (a, b) = (editor("a", "Ann"), editor("b", "Ben"));
        let d = Uuid::new_v4();
        presence.here(d, &a, Doing::Editing);
        presence.here(d, &a, Doing::Editing);
        assert_eq!(presence.others(d, &a), vec![]);
        let seen = presence.others(d, &b);
        assert_eq!(seen.len(), 1, "a repeated mark is one mark");
        assert_eq!(
            (seen[0].name.as_str(), seen[0].doing),
            ("Ann", Doing::Editing)
        );
        assert!(presence.others(Uuid::new_v4(), &b).is_empty());
        presence.gone(d, &a);
        assert!(presence.others(d, &b).is_empty());
    }
}
