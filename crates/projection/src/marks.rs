//! Front-page marks: what lets `GET /v1/stories?as_of=…` read a bounded number of rows
//! whatever the length of the log and the number of stories.
//!
//! `story_versions` holds every story's front-page line after each of its events, each with
//! its place on the front page (`sort_key`). The front page at a time `T` is every story's
//! newest line recorded by `T`, ordered by place; read directly, that is one probe per story
//! ever opened. A **mark**, written every [`MarkSpacing::every`] positions, lists the first
//! [`MarkSpacing::length`] stories of the front page right after the event at its position
//! (as the positions of their lines). The front page at `T` is then the newest mark whose
//! every line was recorded by `T`, with the lines recorded after the mark (and by `T`) put in
//! their places: a mark's list, the few lines after it, and the entries shown.
//!
//! Events are not recorded in position order across stories (each command takes its time
//! before its append), so each mark keeps two times: `high`, the latest recording time of any
//! line at or before it (a mark is used for `T` only when `high <= T`), and `low`, the earliest
//! of any line after it (lowered as later lines arrive), from which the lines after it are
//! found by the `story_versions_recorded` index.
//!
//! A mark's list is cut at `length` stories: enough for the longest front page after every
//! story changed until the next mark has left it. When a read needs a story beyond the cut
//! (many stories moved down at once), it falls back to the probe per story, exact but
//! unbounded; [`crate::ViewStore::front_page_fallbacks`] counts those.

use std::collections::{BTreeSet, HashMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension};
use sqlx::{PgConnection, PgPool};

use crate::rows::{MarkRow, NO_LOW};
use crate::rows::{StoryVersionRow, ViewError};

/// How often the projector and a rebuild write a front-page mark, and how many stories each
/// lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkSpacing {
    /// Positions between marks (at least; the projector writes one at the end of the batch
    /// that reaches it).
    pub every: i64,
    /// Stories a mark lists.
    pub length: usize,
}

/// The longest front page asked for (`limit` of `GET /v1/stories`).
pub const FRONT_PAGE_MAX: usize = 1_000;

impl Default for MarkSpacing {
    fn default() -> Self {
        let every = 1_000;
        Self {
            every,
            // The stories changed until the next mark are at most `every` plus one batch.
            length: FRONT_PAGE_MAX + every as usize + crate::rows::BATCH,
        }
    }
}

/// A rebuild's marks: it sees every line in position order and keeps every story's place.
pub(crate) struct Marker {
    spacing: MarkSpacing,
    places: HashMap<String, (String, i64)>,
    order: BTreeSet<(String, i64)>,
    high: String,
    last: i64,
    /// Every mark written so far and its `low`, in position order (so `low` never falls
    /// along it).
    lows: Vec<(i64, String)>,
}

impl Marker {
    pub(crate) fn new(spacing: MarkSpacing) -> Self {
        Self {
            spacing,
            places: HashMap::new(),
            order: BTreeSet::new(),
            high: String::new(),
            last: 0,
            lows: Vec::new(),
        }
    }

    /// Follows the next line; the mark due right after it, if one is.
    pub(crate) fn follow(&mut self, line: &StoryVersionRow) -> Option<MarkRow> {
        for (_, low) in self.lows.iter_mut().rev() {
            if *low <= line.recorded_at {
                break;
            }
            low.clone_from(&line.recorded_at);
        }
        if line.recorded_at > self.high {
            self.high.clone_from(&line.recorded_at);
        }
        let place = (line.sort_key.clone(), line.position);
        if let Some(old) = self.places.insert(line.story_id.clone(), place.clone()) {
            self.order.remove(&old);
        }
        self.order.insert(place);
        if line.position < self.last + self.spacing.every {
            return None;
        }
        self.last = line.position;
        self.lows.push((line.position, NO_LOW.to_owned()));
        let listed: Vec<i64> = self
            .order
            .iter()
            .rev()
            .take(self.spacing.length + 1)
            .map(|(_, p)| *p)
            .collect();
        Some(MarkRow::new(
            line.position,
            self.high.clone(),
            &listed,
            self.spacing.length,
        ))
    }

    /// The marks' final `low`s (those lowered since they were written).
    pub(crate) fn lows(self) -> Vec<(i64, String)> {
        self.lows.into_iter().filter(|(_, l)| l != NO_LOW).collect()
    }
}

/// A story's line and its place on the front page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) position: i64,
    pub(crate) story_id: String,
    pub(crate) sort_key: String,
}

impl Placed {
    fn place(&self) -> (&str, i64) {
        (&self.sort_key, self.position)
    }
}

/// A mark as a read finds it: its position, its `low`, its list and whether the list was cut.
pub(crate) struct FoundMark {
    pub(crate) position: i64,
    pub(crate) low: String,
    pub(crate) listed: Vec<i64>,
    pub(crate) cut: bool,
}

impl FoundMark {
    /// Before the first mark: every line is "after" it.
    pub(crate) fn none() -> Self {
        Self {
            position: 0,
            low: String::new(),
            listed: Vec::new(),
            cut: false,
        }
    }

    /// The mark a read found as its row `(position, low, stories, cut)`, or none before the
    /// first mark.
    pub(crate) fn of_row(
        row: Option<(i64, String, String, bool)>,
    ) -> Result<Self, serde_json::Error> {
        let Some((position, low, stories, cut)) = row else {
            return Ok(Self::none());
        };
        Ok(Self {
            position,
            low,
            listed: serde_json::from_str(&stories)?,
            cut,
        })
    }

    /// How many of the list's first stories a read of `limit` needs, when `touched` stories
    /// have newer lines after the mark (each takes at most one place from the list).
    pub(crate) fn needed(&self, limit: usize, touched: usize) -> &[i64] {
        &self.listed[..self.listed.len().min(limit + touched)]
    }
}

/// The newest line of each story among `after` (the lines after a mark recorded by the asked
/// time).
pub(crate) fn newest_per_story(after: Vec<Placed>) -> Vec<Placed> {
    let mut newest: HashMap<String, Placed> = HashMap::new();
    for line in after {
        match newest.get(&line.story_id) {
            Some(seen) if seen.position >= line.position => {}
            _ => {
                newest.insert(line.story_id.clone(), line);
            }
        }
    }
    newest.into_values().collect()
}

/// The positions of the lines on the front page at the asked time, first place first: the
/// mark's `listed` stories (the first of its list, as read) in their places, except those with a
/// newer line among `after` (newest per story), which take their new places. `None` when the
/// answer needs a story beyond the mark's cut.
pub(crate) fn front_page(
    mark: &FoundMark,
    listed: Vec<Placed>,
    mut after: Vec<Placed>,
    limit: usize,
) -> Option<Vec<i64>> {
    let touched: HashSet<&str> = after.iter().map(|p| p.story_id.as_str()).collect();
    let kept: Vec<&Placed> = listed
        .iter()
        .filter(|p| !touched.contains(p.story_id.as_str()))
        .collect();
    after.sort_by(|a, b| b.place().cmp(&a.place()));
    // Stories the list holds past what was read, or the front page held past the cut.
    let more_beyond = mark.cut || listed.len() < mark.listed.len();
    let (mut i, mut j) = (0, 0);
    let mut shown = Vec::with_capacity(limit);
    while shown.len() < limit {
        let next = match (kept.get(i), after.get(j)) {
            (Some(k), Some(a)) if k.place() > a.place() => {
                i += 1;
                k.position
            }
            (Some(k), None) => {
                i += 1;
                k.position
            }
            (_, Some(a)) => {
                // Below every listed story read: exact only if no story lies beyond them.
                if i == kept.len() && more_beyond {
                    return None;
                }
                j += 1;
                a.position
            }
            (None, None) => break,
        };
        shown.push(next);
    }
    if shown.len() < limit && more_beyond {
        // Ran out: stories beyond the list would come next.
        return None;
    }
    Some(shown)
}

/// A batch's lines: the earliest recording time among them and the position of the last.
fn batch_span(versions: &[StoryVersionRow]) -> Option<(&str, i64)> {
    let earliest = versions.iter().map(|v| v.recorded_at.as_str()).min()?;
    Some((earliest, versions.last()?.position))
}

// ----- SQLite (`views.db`) -------------------------------------------------------------------

/// After the projector wrote a batch's lines (`versions`, in position order): lowers the
/// `low` of earlier marks, and writes a mark if one is due.
pub(crate) fn follow_batch(
    tx: &Connection,
    versions: &[StoryVersionRow],
    spacing: MarkSpacing,
) -> Result<(), ViewError> {
    let Some((earliest, last)) = batch_span(versions) else {
        return Ok(());
    };
    tx.prepare_cached("UPDATE front_page_marks SET low = ?1 WHERE low > ?1")?
        .execute([earliest])?;
    let (previous, high): (i64, String) = tx
        .prepare_cached(
            "SELECT position, high FROM front_page_marks ORDER BY position DESC LIMIT 1",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or_default();
    if last < previous + spacing.every {
        return Ok(());
    }
    let since: Option<String> = tx
        .prepare_cached("SELECT max(recorded_at) FROM story_versions WHERE position > ?1")?
        .query_row([previous], |r| r.get(0))?;
    let high = since.map_or(high.clone(), |s| s.max(high));
    let listed = tx
        .prepare_cached(
            "SELECT position FROM stories ORDER BY sort_key DESC, position DESC LIMIT ?1",
        )?
        .query_map([spacing.length as i64 + 1], |r| r.get::<_, i64>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    write_marks(
        tx,
        &[MarkRow::new(last, high, &listed, spacing.length)],
        &[],
        "",
    )
}

/// Writes a rebuild's marks and their final `low`s (tables named with `suffix`).
pub(crate) fn write_marks(
    tx: &Connection,
    marks: &[MarkRow],
    lows: &[(i64, String)],
    suffix: &str,
) -> Result<(), ViewError> {
    let mut insert = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO front_page_marks{suffix} (position, high, low, stories, cut)
         VALUES (?1, ?2, ?3, ?4, ?5)"
    ))?;
    for m in marks {
        insert.execute(params![m.position, m.high, m.low, m.stories, m.cut])?;
    }
    let mut lower = tx.prepare_cached(&format!(
        "UPDATE front_page_marks{suffix} SET low = ?2 WHERE position = ?1"
    ))?;
    for (position, low) in lows {
        lower.execute(params![position, low])?;
    }
    Ok(())
}

/// A `(position, story_id, sort_key)` row of `story_versions`.
fn placed_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Placed> {
    Ok(Placed::from((r.get(0)?, r.get(1)?, r.get(2)?)))
}

/// The entries of the front page at `at` (as `recorded_time`), first place first, from the
/// newest mark before it; `None` when the mark cannot tell.
pub(crate) fn front_page_at(
    c: &Connection,
    at: &str,
    limit: usize,
) -> Result<Option<Vec<String>>, ViewError> {
    let tx = c.unchecked_transaction()?;
    let mark = tx
        .prepare_cached(
            "SELECT position, low, stories, cut FROM front_page_marks WHERE high <= ?1
             ORDER BY high DESC, position DESC LIMIT 1",
        )?
        .query_row([at], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get(3)?))
        })
        .optional()?;
    let mark = FoundMark::of_row(mark)?;
    let after = tx
        .prepare_cached(
            "SELECT position, story_id, sort_key FROM story_versions
             INDEXED BY story_versions_recorded
             WHERE recorded_at >= ?1 AND recorded_at <= ?2 AND position > ?3",
        )?
        .query_map(params![mark.low, at, mark.position], placed_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let after = newest_per_story(after);
    let mut line = tx.prepare_cached(
        "SELECT position, story_id, sort_key FROM story_versions WHERE position = ?1",
    )?;
    let mut listed = Vec::new();
    for position in mark.needed(limit, after.len()) {
        listed.extend(line.query_row([position], placed_row).optional()?);
    }
    let Some(shown) = front_page(&mark, listed, after, limit) else {
        return Ok(None);
    };
    let mut entry = tx.prepare_cached("SELECT entry FROM story_versions WHERE position = ?1")?;
    let mut entries = Vec::with_capacity(shown.len());
    for position in shown {
        entries.push(entry.query_row([position], |r| r.get(0))?);
    }
    Ok(Some(entries))
}

// ----- PostgreSQL -----------------------------------------------------------------------------

/// [`follow_batch`] on PostgreSQL.
pub(crate) async fn follow_batch_pg(
    conn: &mut PgConnection,
    versions: &[StoryVersionRow],
    spacing: MarkSpacing,
) -> Result<(), ViewError> {
    let Some((earliest, last)) = batch_span(versions) else {
        return Ok(());
    };
    sqlx::query("UPDATE view_front_page_marks SET low = $1 WHERE low > $1")
        .bind(earliest)
        .execute(&mut *conn)
        .await?;
    let (previous, high): (i64, String) = sqlx::query_as(
        "SELECT position, high FROM view_front_page_marks ORDER BY position DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?
    .unwrap_or_default();
    if last < previous + spacing.every {
        return Ok(());
    }
    let since: Option<String> =
        sqlx::query_scalar("SELECT max(recorded_at) FROM view_story_versions WHERE position > $1")
            .bind(previous)
            .fetch_one(&mut *conn)
            .await?;
    let high = since.map_or(high.clone(), |s| s.max(high));
    let listed: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM view_stories ORDER BY sort_key DESC, position DESC LIMIT $1",
    )
    .bind(spacing.length as i64 + 1)
    .fetch_all(&mut *conn)
    .await?;
    write_marks_pg(
        conn,
        &[MarkRow::new(last, high, &listed, spacing.length)],
        &[],
    )
    .await
}

/// [`write_marks`] on PostgreSQL.
pub(crate) async fn write_marks_pg(
    conn: &mut PgConnection,
    marks: &[MarkRow],
    lows: &[(i64, String)],
) -> Result<(), ViewError> {
    if !marks.is_empty() {
        sqlx::query(
            "INSERT INTO view_front_page_marks (position, high, low, stories, cut)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bool[])
             ON CONFLICT (position) DO NOTHING",
        )
        .bind(marks.iter().map(|m| m.position).collect::<Vec<_>>())
        .bind(marks.iter().map(|m| m.high.as_str()).collect::<Vec<_>>())
        .bind(marks.iter().map(|m| m.low.as_str()).collect::<Vec<_>>())
        .bind(marks.iter().map(|m| m.stories.as_str()).collect::<Vec<_>>())
        .bind(marks.iter().map(|m| m.cut).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    if !lows.is_empty() {
        sqlx::query(
            "UPDATE view_front_page_marks m SET low = l.low
               FROM UNNEST($1::bigint[], $2::text[]) AS l(position, low)
              WHERE m.position = l.position",
        )
        .bind(lows.iter().map(|(p, _)| *p).collect::<Vec<_>>())
        .bind(lows.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// [`front_page_at`] on PostgreSQL, in one read-only transaction.
pub(crate) async fn front_page_at_pg(
    pool: &PgPool,
    at: &str,
    limit: usize,
) -> Result<Option<Vec<String>>, ViewError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mark: Option<(i64, String, String, bool)> = sqlx::query_as(
        "SELECT position, low, stories, cut FROM view_front_page_marks WHERE high <= $1
         ORDER BY high DESC, position DESC LIMIT 1",
    )
    .bind(at)
    .fetch_optional(&mut *tx)
    .await?;
    let mark = FoundMark::of_row(mark)?;
    let after: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT position, story_id, sort_key FROM view_story_versions
         WHERE recorded_at >= $1 AND recorded_at <= $2 AND position > $3",
    )
    .bind(&mark.low)
    .bind(at)
    .bind(mark.position)
    .fetch_all(&mut *tx)
    .await?;
    let after = newest_per_story(after.into_iter().map(Placed::from).collect());
    let needed = mark.needed(limit, after.len()).to_vec();
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT v.position, v.story_id, v.sort_key
           FROM UNNEST($1::bigint[]) WITH ORDINALITY AS n(position, i)
           JOIN view_story_versions v ON v.position = n.position
          ORDER BY n.i",
    )
    .bind(&needed)
    .fetch_all(&mut *tx)
    .await?;
    let listed = rows.into_iter().map(Placed::from).collect();
    let Some(shown) = front_page(&mark, listed, after, limit) else {
        return Ok(None);
    };
    let entries: Vec<String> = sqlx::query_scalar(
        "SELECT v.entry
           FROM UNNEST($1::bigint[]) WITH ORDINALITY AS n(position, i)
           JOIN view_story_versions v ON v.position = n.position
          ORDER BY n.i",
    )
    .bind(&shown)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(entries))
}

impl From<(i64, String, String)> for Placed {
    fn from((position, story_id, sort_key): (i64, String, String)) -> Self {
        Self {
            position,
            story_id,
            sort_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(position: i64, story: &str, key: &str) -> Placed {
        Placed {
            position,
            story_id: story.into(),
            sort_key: key.into(),
        }
    }

    fn mark(listed: &[i64], cut: bool) -> FoundMark {
        FoundMark {
            position: 10,
            low: String::new(),
            listed: listed.to_vec(),
            cut,
        }
    }

    #[test]
    fn lines_after_the_mark_take_their_new_places() {
        let m = mark(&[5, 3, 1], false);
        let listed = vec![
            placed(5, "a", "05"),
            placed(3, "b", "03"),
            placed(1, "c", "01"),
        ];
        // b moves to the top; d is new, between a and c.
        let after = vec![placed(12, "b", "12"), placed(11, "d", "04")];
        assert_eq!(front_page(&m, listed, after, 10), Some(vec![12, 5, 11, 1]));
    }

    #[test]
    fn a_cut_list_answers_only_what_it_can_tell() {
        let listed = vec![placed(5, "a", "05"), placed(3, "b", "03")];
        // b fell below the cut: what follows a is unknown.
        let after = vec![placed(12, "b", "00")];
        let m = mark(&[5, 3], true);
        assert_eq!(
            front_page(&m, listed.clone(), after.clone(), 1),
            Some(vec![5])
        );
        assert_eq!(front_page(&m, listed.clone(), after.clone(), 2), None);
        // Uncut, the list held every story: b is last.
        let m = mark(&[5, 3], false);
        assert_eq!(front_page(&m, listed, after, 2), Some(vec![5, 12]));
    }

    #[test]
    fn a_marks_low_falls_to_the_earliest_line_after_it() {
        let line = |position, recorded: &str| StoryVersionRow {
            position,
            story_id: format!("s{position}"),
            recorded_at: recorded.into(),
            occurred_until: String::new(),
            sort_key: recorded.into(),
            entry: String::new(),
        };
        let mut marker = Marker::new(MarkSpacing {
            every: 2,
            length: 10,
        });
        assert_eq!(marker.follow(&line(1, "b")), None);
        let first = marker.follow(&line(2, "d")).expect("a mark at 2");
        assert_eq!((first.high.as_str(), first.cut), ("d", false));
        assert_eq!(first.stories, "[2,1]");
        // Recorded before the mark's latest line, appended after it.
        assert_eq!(marker.follow(&line(3, "c")), None);
        assert!(marker.follow(&line(4, "e")).is_some());
        assert_eq!(marker.follow(&line(5, "a")), None);
        assert_eq!(marker.lows(), vec![(2, "a".into()), (4, "a".into())]);
    }
}
