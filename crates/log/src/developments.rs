//! The log's index of developments: per story and development what decisions need to know
//! (`newsroom_domain::DevelopmentState`: fingerprint, the sequence that recorded it, the status it
//! was recorded with, its current status), in the table `story_developments` of the log's
//! database.
//!
//! It is derived from the events and changed in the same transaction (savepoint) as the events
//! that change it, by the stores' appends, the import and the migration that creates it, all
//! through [`change_of`]: the stored event, upcast and decoded (`newsroom_domain::upcast::decode`),
//! and `StoryEvent::development_change`. So the aggregate does not carry every development in its
//! snapshot, and a command reads one row per development it names ([`lookup_sqlite`],
//! [`lookup_pg`]) whatever the story's length.
//!
//! The migration that creates the table fills it from the events already logged: on SQLite in the
//! migration's hook, on PostgreSQL by the first process to connect, under the append lock, as the
//! `pending_fills` table asks. The embargo scheduler reads the soonest embargoes from it
//! (`embargo_until` as RFC 3339 text at nanoseconds, so text order is time order and the moment
//! reads back exactly; a partial index).

use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::persist::SerializedEvent;
use newsroom_domain::{
    DevelopmentChange, DevelopmentId, DevelopmentState, DevelopmentStatus, Facts,
    PublicationStatus, AGGREGATE_TYPE,
};
use rusqlite::{params, Connection, OptionalExtension};
use sqlx::{PgConnection, Row};

use crate::feed::StoreError;

/// The event types that change the index; every other event is not even decoded.
const CHANGING: [&str; 8] = [
    "DevelopmentRecorded",
    "DevelopmentApproved",
    "DevelopmentRejected",
    "DevelopmentRetracted",
    "DevelopmentApprovedUnderEmbargo",
    "EmbargoLifted",
    "EmbargoMoved",
    "ApprovalUndone",
];

/// How a stored event changes the index, if it does.
pub fn change_of(event: &SerializedEvent) -> Result<Option<DevelopmentChange>, StoreError> {
    if event.aggregate_type != AGGREGATE_TYPE || !CHANGING.contains(&event.event_type.as_str()) {
        return Ok(None);
    }
    let stored = newsroom_domain::upcast::stored(
        &event.event_type,
        &event.event_version,
        event.payload.clone(),
    );
    let decoded = newsroom_domain::upcast::decode(stored)
        .map_err(|e| StoreError::Unreadable(e.to_string()))?;
    Ok(decoded.development_change(event.sequence))
}

/// The changes an append's events make, in order.
pub fn changes_of(events: &[SerializedEvent]) -> Result<Vec<DevelopmentChange>, StoreError> {
    events
        .iter()
        .filter_map(|e| change_of(e).transpose())
        .collect()
}

fn status_name(status: DevelopmentStatus) -> &'static str {
    match status {
        DevelopmentStatus::PendingReview => "pending_review",
        DevelopmentStatus::Published => "published",
        DevelopmentStatus::Rejected => "rejected",
        DevelopmentStatus::Retracted => "retracted",
        DevelopmentStatus::Embargoed => "embargoed",
    }
}

fn status_of(name: &str) -> Result<DevelopmentStatus, StoreError> {
    Ok(match name {
        "pending_review" => DevelopmentStatus::PendingReview,
        "published" => DevelopmentStatus::Published,
        "rejected" => DevelopmentStatus::Rejected,
        "retracted" => DevelopmentStatus::Retracted,
        "embargoed" => DevelopmentStatus::Embargoed,
        other => {
            return Err(StoreError::Unreadable(format!(
                "unknown development status `{other}`"
            )))
        }
    })
}

fn recorded_as_of(name: &str) -> Result<PublicationStatus, StoreError> {
    Ok(match name {
        "pending_review" => PublicationStatus::PendingReview,
        "published" => PublicationStatus::Published,
        "embargoed" => PublicationStatus::Embargoed,
        other => {
            return Err(StoreError::Unreadable(format!(
                "unknown publication status `{other}`"
            )))
        }
    })
}

fn state_of(
    fingerprint: String,
    recorded_in: i64,
    recorded_as: &str,
    status: &str,
    embargo_until: Option<&str>,
    undo_window: bool,
) -> Result<DevelopmentState, StoreError> {
    Ok(DevelopmentState {
        fingerprint,
        recorded_in: recorded_in as usize,
        recorded_as: recorded_as_of(recorded_as)?,
        status: status_of(status)?,
        embargo_until: embargo_until.map(moment_of).transpose()?,
        undo_window,
    })
}

/// An embargo's moment as the index stores it: RFC 3339 in UTC with nanoseconds, a fixed width,
/// so that text order is time order and the moment reads back exactly (the scheduler's lift
/// names the moment it found).
pub fn moment_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn moment_of(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| StoreError::Unreadable(format!("embargo moment `{text}`: {e}")))
}

/// An embargo the scheduler may lift: its story, development and moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embargo {
    pub story_id: String,
    pub development: DevelopmentId,
    pub until: DateTime<Utc>,
}

/// The embargoes that hold something back (embargoed, or waiting for review under one), the
/// soonest first, at most `limit`: one read of the partial index `story_developments_embargoes`,
/// whose predicate this one repeats, so that it holds live embargoes only (not those of filings
/// rejected, or approved after their moment).
const EMBARGOES: &str = "SELECT story_id, development_id, embargo_until FROM story_developments
    WHERE embargo_until IS NOT NULL AND status IN ('embargoed', 'pending_review')
    ORDER BY embargo_until LIMIT ";

/// The soonest embargoes (SQLite).
pub fn embargoes_sqlite(conn: &Connection, limit: u32) -> Result<Vec<Embargo>, StoreError> {
    let mut select = conn.prepare_cached(&format!("{EMBARGOES}?1"))?;
    let rows = select.query_map(params![limit], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    rows.map(|row| {
        let (story_id, development, until) = row?;
        embargo_of(story_id, &development, &until)
    })
    .collect()
}

/// The soonest embargoes (PostgreSQL).
pub async fn embargoes_pg(conn: &mut PgConnection, limit: u32) -> Result<Vec<Embargo>, StoreError> {
    let rows = sqlx::query(&format!("{EMBARGOES}$1"))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            let story_id: String = row.try_get(0)?;
            let development: String = row.try_get(1)?;
            let until: String = row.try_get(2)?;
            embargo_of(story_id, &development, &until)
        })
        .collect()
}

fn embargo_of(story_id: String, development: &str, until: &str) -> Result<Embargo, StoreError> {
    Ok(Embargo {
        story_id,
        development: uuid::Uuid::parse_str(development)
            .map_err(|_| StoreError::Unreadable(format!("development id `{development}`")))?
            .into(),
        until: moment_of(until)?,
    })
}

// Each statement in PostgreSQL's spelling and in SQLite's (`?N`).
// A recording replaces a row of the same id, as the aggregate's map did: the aggregate never
// records an id twice, and history must always load.
const UPSERT: &str = "INSERT INTO story_developments
        (story_id, development_id, fingerprint, recorded_in, recorded_as, status, embargo_until,
         undo_window)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (story_id, development_id) DO UPDATE SET
        fingerprint = excluded.fingerprint, recorded_in = excluded.recorded_in,
        recorded_as = excluded.recorded_as, status = excluded.status,
        embargo_until = excluded.embargo_until, undo_window = excluded.undo_window";
const UPSERT_SQLITE: &str = "INSERT INTO story_developments
        (story_id, development_id, fingerprint, recorded_in, recorded_as, status, embargo_until,
         undo_window)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT (story_id, development_id) DO UPDATE SET
        fingerprint = excluded.fingerprint, recorded_in = excluded.recorded_in,
        recorded_as = excluded.recorded_as, status = excluded.status,
        embargo_until = excluded.embargo_until, undo_window = excluded.undo_window";

/// A recording without an embargo, naming only the columns the table was created with: the
/// migration that creates the table fills it in its hook, before a later migration adds
/// `embargo_until` (a log written before the index holds no embargo). A recording under an
/// embargo replacing a row — never made by the aggregate — would keep that row's embargo.
/// (An undo window is an embargo: a recording without one has none, the column's default.)
const UPSERT_PLAIN_SQLITE: &str = "INSERT INTO story_developments
        (story_id, development_id, fingerprint, recorded_in, recorded_as, status)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)
    ON CONFLICT (story_id, development_id) DO UPDATE SET
        fingerprint = excluded.fingerprint, recorded_in = excluded.recorded_in,
        recorded_as = excluded.recorded_as, status = excluded.status";

const SET_EMBARGO: &str = "UPDATE story_developments SET embargo_until = $3,
    status = COALESCE($4, status), undo_window = $5 WHERE story_id = $1 AND development_id = $2";
const SET_EMBARGO_SQLITE: &str = "UPDATE story_developments SET embargo_until = ?3,
    status = COALESCE(?4, status), undo_window = ?5 WHERE story_id = ?1 AND development_id = ?2";

const SET_STATUS: &str =
    "UPDATE story_developments SET status = $3 WHERE story_id = $1 AND development_id = $2";
const SET_STATUS_SQLITE: &str =
    "UPDATE story_developments SET status = ?3 WHERE story_id = ?1 AND development_id = ?2";

const SELECT_SQLITE: &str = "SELECT fingerprint, recorded_in, recorded_as, status, embargo_until,
    undo_window FROM story_developments WHERE story_id = ?1 AND development_id = ?2";

/// Applies one change in the caller's transaction (SQLite).
pub fn apply_sqlite(
    conn: &Connection,
    story_id: &str,
    change: &DevelopmentChange,
) -> rusqlite::Result<()> {
    match change {
        DevelopmentChange::Recorded { development, state } => match state.embargo_until {
            None => {
                conn.prepare_cached(UPSERT_PLAIN_SQLITE)?.execute(params![
                    story_id,
                    development.to_string(),
                    state.fingerprint,
                    state.recorded_in as i64,
                    state.recorded_as.as_str(),
                    status_name(state.status),
                ])?;
            }
            Some(until) => {
                conn.prepare_cached(UPSERT_SQLITE)?.execute(params![
                    story_id,
                    development.to_string(),
                    state.fingerprint,
                    state.recorded_in as i64,
                    state.recorded_as.as_str(),
                    status_name(state.status),
                    moment_text(until),
                    state.undo_window,
                ])?;
            }
        },
        DevelopmentChange::StatusChanged {
            development,
            status,
        } => {
            conn.prepare_cached(SET_STATUS_SQLITE)?.execute(params![
                story_id,
                development.to_string(),
                status_name(*status)
            ])?;
        }
        DevelopmentChange::EmbargoChanged {
            development,
            until,
            status,
            undo_window,
        } => {
            conn.prepare_cached(SET_EMBARGO_SQLITE)?.execute(params![
                story_id,
                development.to_string(),
                until.map(moment_text),
                status.map(status_name),
                undo_window,
            ])?;
        }
    }
    Ok(())
}

/// What the index holds of `developments` of one story (SQLite).
pub fn lookup_sqlite(
    conn: &Connection,
    story_id: &str,
    developments: &[DevelopmentId],
) -> Result<Facts, StoreError> {
    let mut select = conn.prepare_cached(SELECT_SQLITE)?;
    let mut known = Vec::with_capacity(developments.len());
    for id in developments {
        let row = select
            .query_row(params![story_id, id.to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, bool>(5)?,
                ))
            })
            .optional()?;
        if let Some((fingerprint, recorded_in, recorded_as, status, until, undo_window)) = row {
            known.push((
                *id,
                state_of(
                    fingerprint,
                    recorded_in,
                    &recorded_as,
                    &status,
                    until.as_deref(),
                    undo_window,
                )?,
            ));
        }
    }
    Ok(Facts::new(known))
}

/// Fills the index from every event of the log, in position order (SQLite; the migration that
/// creates the table runs it in its transaction).
pub fn fill_sqlite(conn: &Connection) -> Result<usize, StoreError> {
    let mut select = conn.prepare(
        "SELECT aggregate_id, sequence, event_type, event_version, payload FROM events
         WHERE aggregate_type = ?1 AND event_type IN (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ORDER BY position",
    )?;
    let mut rows = select.query(params![
        AGGREGATE_TYPE,
        CHANGING[0],
        CHANGING[1],
        CHANGING[2],
        CHANGING[3],
        CHANGING[4],
        CHANGING[5],
        CHANGING[6],
        CHANGING[7]
    ])?;
    let mut changed = 0;
    while let Some(row) = rows.next()? {
        let story_id: String = row.get(0)?;
        let event = SerializedEvent::new(
            story_id.clone(),
            row.get::<_, i64>(1)? as usize,
            AGGREGATE_TYPE.to_owned(),
            row.get(2)?,
            row.get(3)?,
            serde_json::from_str(&row.get::<_, String>(4)?)?,
            serde_json::Value::Null,
        );
        if let Some(change) = change_of(&event)? {
            apply_sqlite(conn, &story_id, &change)?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Applies one change in the caller's transaction (PostgreSQL).
pub async fn apply_pg(
    conn: &mut PgConnection,
    story_id: &str,
    change: &DevelopmentChange,
) -> Result<(), sqlx::Error> {
    match change {
        DevelopmentChange::Recorded { development, state } => {
            sqlx::query(UPSERT)
                .bind(story_id)
                .bind(development.to_string())
                .bind(&state.fingerprint)
                .bind(state.recorded_in as i64)
                .bind(state.recorded_as.as_str())
                .bind(status_name(state.status))
                .bind(state.embargo_until.map(moment_text))
                .bind(state.undo_window)
                .execute(conn)
                .await?;
        }
        DevelopmentChange::EmbargoChanged {
            development,
            until,
            status,
            undo_window,
        } => {
            sqlx::query(SET_EMBARGO)
                .bind(story_id)
                .bind(development.to_string())
                .bind(until.map(moment_text))
                .bind(status.map(status_name))
                .bind(*undo_window)
                .execute(conn)
                .await?;
        }
        DevelopmentChange::StatusChanged {
            development,
            status,
        } => {
            sqlx::query(SET_STATUS)
                .bind(story_id)
                .bind(development.to_string())
                .bind(status_name(*status))
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

/// Applies the changes of several appends (each with its story) in order, in as few statements
/// as it can: recordings of distinct developments with nothing else among the changes go in one
/// statement (the common batch: developments filed on many stories); anything else, one by one.
pub async fn apply_all_pg(
    conn: &mut PgConnection,
    changes: &[(&str, &DevelopmentChange)],
) -> Result<(), sqlx::Error> {
    let mut seen = std::collections::HashSet::with_capacity(changes.len());
    let all_distinct_recordings = changes.iter().all(|(story, change)| match change {
        DevelopmentChange::Recorded { development, .. } => seen.insert((*story, *development)),
        _ => false,
    });
    if !all_distinct_recordings || changes.len() < 2 {
        for (story, change) in changes {
            apply_pg(&mut *conn, story, change).await?;
        }
        return Ok(());
    }
    let n = changes.len();
    let (mut stories, mut ids, mut prints) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut ins, mut ases, mut statuses) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut embargoes, mut windows) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (story, change) in changes {
        if let DevelopmentChange::Recorded { development, state } = change {
            stories.push(story.to_string());
            ids.push(development.to_string());
            prints.push(state.fingerprint.clone());
            ins.push(state.recorded_in as i64);
            ases.push(state.recorded_as.as_str());
            statuses.push(status_name(state.status));
            embargoes.push(state.embargo_until.map(moment_text));
            windows.push(state.undo_window);
        }
    }
    sqlx::query(UPSERT_ALL)
        .bind(stories)
        .bind(ids)
        .bind(prints)
        .bind(ins)
        .bind(ases)
        .bind(statuses)
        .bind(embargoes)
        .bind(windows)
        .execute(conn)
        .await?;
    Ok(())
}

/// [`UPSERT`] of many rows, as arrays.
const UPSERT_ALL: &str = "INSERT INTO story_developments
        (story_id, development_id, fingerprint, recorded_in, recorded_as, status, embargo_until,
         undo_window)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
        $6::text[], $7::text[], $8::boolean[])
    ON CONFLICT (story_id, development_id) DO UPDATE SET
        fingerprint = excluded.fingerprint, recorded_in = excluded.recorded_in,
        recorded_as = excluded.recorded_as, status = excluded.status,
        embargo_until = excluded.embargo_until, undo_window = excluded.undo_window";

/// What the index holds of `developments` of one story (PostgreSQL), in one query.
pub async fn lookup_pg(
    conn: &mut PgConnection,
    story_id: &str,
    developments: &[DevelopmentId],
) -> Result<Facts, StoreError> {
    let ids: Vec<String> = developments.iter().map(ToString::to_string).collect();
    let rows = sqlx::query(
        "SELECT development_id, fingerprint, recorded_in, recorded_as, status, embargo_until,
            undo_window
         FROM story_developments WHERE story_id = $1 AND development_id = ANY($2)",
    )
    .bind(story_id)
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    let mut known = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get(0)?;
        let Some(development) = developments.iter().find(|d| d.to_string() == id) else {
            continue;
        };
        let recorded_as: String = row.try_get(3)?;
        let status: String = row.try_get(4)?;
        let until: Option<String> = row.try_get(5)?;
        known.push((
            *development,
            state_of(
                row.try_get(1)?,
                row.try_get(2)?,
                &recorded_as,
                &status,
                until.as_deref(),
                row.try_get(6)?,
            )?,
        ));
    }
    Ok(Facts::new(known))
}

/// Fills the index from every event of the log, in position order, a page at a time
/// (PostgreSQL; the caller's transaction holds the append lock).
pub async fn fill_pg(conn: &mut PgConnection) -> Result<usize, StoreError> {
    const PAGE: i64 = 10_000;
    let mut after = 0_i64;
    let mut changed = 0;
    loop {
        let rows = sqlx::query(
            "SELECT position, aggregate_id, sequence, event_type, event_version, payload
             FROM events WHERE position > $1 AND aggregate_type = $2
                AND event_type = ANY($3)
             ORDER BY position LIMIT $4",
        )
        .bind(after)
        .bind(AGGREGATE_TYPE)
        .bind(CHANGING.map(str::to_owned).to_vec())
        .bind(PAGE)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get(0)?;
        for row in &rows {
            let story_id: String = row.try_get(1)?;
            let event = SerializedEvent::new(
                story_id.clone(),
                row.try_get::<i64, _>(2)? as usize,
                AGGREGATE_TYPE.to_owned(),
                row.try_get(3)?,
                row.try_get(4)?,
                row.try_get(5)?,
                serde_json::Value::Null,
            );
            if let Some(change) = change_of(&event)? {
                apply_pg(&mut *conn, &story_id, &change).await?;
                changed += 1;
            }
        }
    }
    Ok(changed)
}
