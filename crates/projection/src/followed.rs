//! What a process reading PostgreSQL views knows of them without asking the database: the
//! commits it has heard, and which stories each changed.
//!
//! Every transaction that moves a view's checkpoint announces it on
//! [`VIEWS_CHANNEL`](crate::rows::VIEWS_CHANNEL) in the same statement ([`announcement`]): the
//! view, the position, and the stories the batch changed (or `*`, everything: a rebuild, or a
//! batch of more than [`MAX_NAMED`] stories). PostgreSQL delivers notifications at commit, in
//! commit order, so a process listening from a known position and applying each announcement
//! before counting it as heard knows, for every story, whether anything changed it since a given
//! position. A rendered story body read when the process had heard up to `seen` is current as
//! long as no announcement after `seen` named the story or a story it shows as related — and is
//! served from memory, with no round trip to the database, to any read whose `min_position` the
//! process has heard. What the process cannot know (before listening, after a lost connection,
//! an announcement it cannot read) makes every body read before it stale.
//!
//! Every process serving PostgreSQL views (projector copies, `--role web`) listens from a position
//! it read after `LISTEN`. `Followed` keeps per story the last position that changed it, for
//! `REMEMBERED` (16,384) stories; a story forgotten raises a floor. An announcement names each
//! event's story and the other story of a relation made or undone. `ViewStore::heard_position` is
//! also what `min_position` is checked against first; a web front's desk waits for its own writes
//! through `ViewStore::follow_commits`, which takes the position from each announcement (reading it
//! again when one cannot be read) and reads it whenever listening starts (after a lost connection
//! too).
//!
//! **Architecture invariant:** a view write that changes a story body's inputs without an
//! announcement naming the story (or `*`) is a stale read.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use uuid::Uuid;

use crate::rows::ViewName;

/// The most stories an announcement names; a batch that changed more announces `*`. Each id
/// takes 37 bytes, and a notification's payload must stay under 8,000 bytes.
pub(crate) const MAX_NAMED: usize = 150;
/// How many stories' last changes are remembered: a story forgotten raises the position every
/// body must have been read at (`floor`), so forgetting only costs reads again.
const REMEMBERED: usize = 16_384;

/// The payload announcing that `view` reached `position`, having changed `stories` (`None`:
/// any story).
pub(crate) fn announcement(view: ViewName, position: i64, stories: Option<&[Uuid]>) -> String {
    let mut payload = format!("{} {position}", view.as_str());
    match stories {
        Some(ids) if ids.len() <= MAX_NAMED => {
            payload.push(' ');
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    payload.push(',');
                }
                payload.push_str(&id.to_string());
            }
        }
        _ => payload.push_str(" *"),
    }
    payload
}

/// What was heard of the views' commits (see the module comment).
#[derive(Debug)]
pub(crate) struct Followed {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Whether a listener is connected and started from a position it read.
    listening: bool,
    /// The last position announced for each view (in [`ViewName::ALL`]'s order).
    views: [i64; ViewName::ALL.len()],
    /// A body read before this position is stale.
    floor: i64,
    /// The position of the last announcement that named each story.
    changed: lru::LruCache<Uuid, i64>,
}

/// What hearing an announcement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Applied: the views' position as heard now (every view's last announcement, the least).
    At(i64),
    /// Not an announcement this code reads: the position must be read again ([`Followed::start`]).
    Unreadable,
}

impl Default for Followed {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                listening: false,
                views: [0; ViewName::ALL.len()],
                floor: 0,
                changed: lru::LruCache::new(NonZeroUsize::new(REMEMBERED).expect("non-zero")),
            }),
        }
    }
}

impl Followed {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Listening has started (again), and the views' position read after it is `position`:
    /// whatever was announced before is unknown, so every body read before it is stale.
    pub(crate) fn start(&self, position: i64) {
        let mut s = self.state();
        s.listening = true;
        s.views = [position; ViewName::ALL.len()];
        s.floor = s.floor.max(position);
        s.changed.clear();
    }

    /// The listener is gone: nothing is known until it starts again.
    pub(crate) fn stop(&self) {
        self.state().listening = false;
    }

    /// Applies one announcement's payload.
    pub(crate) fn hear(&self, payload: &str) -> Heard {
        let mut parts = payload.splitn(3, ' ');
        let (Some(view), Some(position), stories) = (parts.next(), parts.next(), parts.next())
        else {
            return Heard::Unreadable;
        };
        let (Ok(view), Ok(position)) = (view.parse::<ViewName>(), position.parse::<i64>()) else {
            return Heard::Unreadable;
        };
        let mut named = Vec::new();
        let mut everything = false;
        match stories {
            None | Some("") => {}
            Some("*") => everything = true,
            Some(ids) => {
                for id in ids.split(',') {
                    match Uuid::parse_str(id) {
                        Ok(id) => named.push(id),
                        Err(_) => return Heard::Unreadable,
                    }
                }
            }
        }
        let mut s = self.state();
        if everything {
            s.floor = s.floor.max(position);
        }
        for id in named {
            if let Some(last) = s.changed.get_mut(&id) {
                *last = (*last).max(position);
            } else if let Some((_, forgotten)) = s.changed.push(id, position) {
                // A story forgotten: bodies read before its last change are stale, whichever.
                s.floor = s.floor.max(forgotten);
            }
        }
        let slot = ViewName::ALL
            .iter()
            .position(|v| *v == view)
            .expect("every view is in ALL");
        s.views[slot] = s.views[slot].max(position);
        Heard::At(s.views.iter().copied().min().unwrap_or(0))
    }

    /// The views' position as heard, if listening: every commit up to it has been applied.
    pub(crate) fn known(&self) -> Option<i64> {
        let s = self.state();
        s.listening
            .then(|| s.views.iter().copied().min().unwrap_or(0))
    }

    /// Whether a body read when `seen` was known, showing `stories`, is still current: nothing
    /// announced after `seen` changed any of them (and listening went on throughout).
    pub(crate) fn current(&self, seen: i64, stories: impl IntoIterator<Item = Uuid>) -> bool {
        let mut s = self.state();
        if !s.listening || seen < s.floor {
            return false;
        }
        stories
            .into_iter()
            .all(|id| s.changed.get(&id).is_none_or(|at| *at <= seen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    #[test]
    fn nothing_is_known_before_listening_starts() {
        let f = Followed::default();
        assert_eq!(f.known(), None);
        assert!(!f.current(10, [Uuid::new_v4()]));
        f.start(10);
        assert_eq!(f.known(), Some(10));
        f.stop();
        assert_eq!(f.known(), None);
    }

    #[test]
    fn a_body_is_stale_once_a_later_announcement_names_its_story_or_a_related_one() {
        let f = Followed::default();
        let [a, b, c] = ids(3).try_into().unwrap();
        f.start(10);
        assert!(f.current(10, [a, b]));
        let said = announcement(ViewName::Stories, 12, Some(&[b]));
        assert_eq!(
            f.hear(&said),
            Heard::At(10),
            "the actors view is still at 10"
        );
        assert_eq!(
            f.hear(&announcement(ViewName::Actors, 12, Some(&[b]))),
            Heard::At(12)
        );
        assert!(!f.current(10, [a, b]), "b changed after 10");
        assert!(f.current(10, [a, c]));
        assert!(f.current(12, [a, b]), "read once 12 was heard");
    }

    #[test]
    fn a_body_read_before_listening_started_again_is_stale() {
        let f = Followed::default();
        let a = Uuid::new_v4();
        f.start(10);
        assert!(f.current(10, [a]));
        f.stop();
        f.start(20);
        assert!(!f.current(10, [a]));
        assert!(f.current(20, [a]));
    }

    #[test]
    fn everything_and_too_many_stories_make_every_older_body_stale() {
        let f = Followed::default();
        let a = Uuid::new_v4();
        f.start(1);
        let many = ids(MAX_NAMED + 1);
        let said = announcement(ViewName::Stories, 5, Some(&many));
        assert!(said.ends_with(" *"));
        assert!(said.len() < 8_000);
        assert!(announcement(ViewName::Stories, 5, Some(&ids(MAX_NAMED))).len() < 8_000);
        f.hear(&said);
        assert!(!f.current(4, [a]));
        assert!(f.current(5, [a]));
    }

    #[test]
    fn an_unreadable_announcement_is_said_so_and_changes_nothing() {
        let f = Followed::default();
        let a = Uuid::new_v4();
        f.start(3);
        assert_eq!(f.hear("7"), Heard::Unreadable);
        assert_eq!(f.hear("stories 7 nope"), Heard::Unreadable);
        assert_eq!(f.hear("pictures 7"), Heard::Unreadable);
        assert_eq!(f.known(), Some(3));
        assert!(f.current(3, [a]));
    }

    #[test]
    fn a_forgotten_story_raises_the_floor() {
        let f = Followed::default();
        f.start(0);
        let first = Uuid::new_v4();
        f.hear(&announcement(ViewName::Stories, 1, Some(&[first])));
        for (i, id) in ids(REMEMBERED).into_iter().enumerate() {
            f.hear(&announcement(ViewName::Stories, 2 + i as i64, Some(&[id])));
        }
        // `first` was pushed out: a body of any story read before 1 may have missed it.
        assert!(!f.current(0, [Uuid::new_v4()]));
        assert!(f.current(1, [Uuid::new_v4()]));
    }
}
