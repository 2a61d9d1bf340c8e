//! A long story costs a command what the command's own work costs: its snapshot stays small, a
//! cold load reads a bounded tail of events, and what is known of each development comes from the
//! log's index (`story_developments`), on SQLite and PostgreSQL, after a restart and after the
//! index was first filled from a log written before it existed.

use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
use cqrs_es::EventStore;
use newsroom_command::{CommandError, CommandService, ServiceOptions};
use newsroom_domain::*;
use newsroom_log::{EventLog, PgStore, SqliteOptions, SqliteStore, Synchronous};
use newsroom_testkit::commands::*;
use newsroom_testkit::prelude::*;

const SNAPSHOT_EVERY: usize = 100;

fn open(id: StoryId, review_required: bool) -> StoryCommand {
    open_new_story(id, review_required)
}

fn service(log: impl Into<EventLog>) -> CommandService {
    CommandService::new(
        log,
        ServiceOptions {
            snapshot_every: SNAPSHOT_EVERY,
            cache_capacity: 10,
        },
    )
}

fn sqlite_value<T: rusqlite::types::FromSql>(path: &std::path::Path, sql: &str) -> T {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// What a fresh service (nothing cached) answers to the first filing sent again, the same filing
/// with other content, and editors' commands on filings the index knows, checked against a
/// story whose first development `first` was recorded at sequence 2 and `pending` waits.
async fn a_cold_service_knows_the_filings(
    log: EventLog,
    story: StoryId,
    first: &NewDevelopment,
    pending: &NewDevelopment,
) {
    let cold = service(log.clone());
    let reporter = principal(Role::Reporter);
    let retry = cold
        .execute(
            story,
            &reporter,
            StoryCommand::RecordDevelopment(first.clone()),
        )
        .await
        .unwrap();
    assert!(retry.events.is_empty(), "the retry records nothing");
    assert_eq!(retry.sequence, 2, "answered with the original sequence");
    assert_eq!(
        retry.replay_of,
        Some((first.id, PublicationStatus::PendingReview))
    );

    let cold = service(log.clone());
    let mut changed = first.clone();
    changed.headline = Headline::parse("headline", "Something else").unwrap();
    let reused = cold
        .execute(story, &reporter, StoryCommand::RecordDevelopment(changed))
        .await;
    assert!(
        matches!(reused, Err(CommandError::Refused(StoryError::DevelopmentIdReused(id))) if id == first.id),
        "{reused:?}"
    );

    let editor = principal(Role::Editor);
    let cold = service(log.clone());
    let twice = cold
        .execute(
            story,
            &editor,
            StoryCommand::ApproveDevelopment {
                development: first.id,
                hold: None,
            },
        )
        .await;
    assert!(
        matches!(
            twice,
            Err(CommandError::Refused(StoryError::DevelopmentState {
                status: "published",
                ..
            }))
        ),
        "the index knows it was approved already: {twice:?}"
    );
    let cold = service(log);
    let approved = cold
        .execute(
            story,
            &editor,
            StoryCommand::ApproveDevelopment {
                development: pending.id,
                hold: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(approved.events.len(), 1);
}

/// Opens a story under review, files `first` (approved) and `pending` as a reporter, then `n`
/// more filings by an editor; returns the story.
async fn long_story(
    service: &CommandService,
    first: &NewDevelopment,
    pending: &NewDevelopment,
    n: usize,
) -> StoryId {
    let (reporter, editor) = (principal(Role::Reporter), principal(Role::Editor));
    let id = StoryId::new();
    service
        .execute(id, &reporter, open(id, true))
        .await
        .unwrap();
    for filing in [first, pending] {
        service
            .execute(
                id,
                &reporter,
                StoryCommand::RecordDevelopment(filing.clone()),
            )
            .await
            .unwrap();
    }
    service
        .execute(
            id,
            &editor,
            StoryCommand::ApproveDevelopment {
                development: first.id,
                hold: None,
            },
        )
        .await
        .unwrap();
    for _ in 0..n {
        service
            .execute(
                id,
                &editor,
                StoryCommand::RecordDevelopment(new_development()),
            )
            .await
            .unwrap();
    }
    id
}

#[tokio::test]
async fn a_two_thousand_development_story_has_a_small_snapshot_and_a_bounded_cold_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    let options = || SqliteOptions {
        synchronous: Synchronous::Normal,
        ..Default::default()
    };
    let store = SqliteStore::open(&path, options()).unwrap();
    let (first, pending) = (new_development(), new_development());
    let story = long_story(&service(store.clone()), &first, &pending, 2_000).await;
    let log: EventLog = store.clone().into();
    let head = log.story_events(story.to_string()).await.unwrap().len();
    assert_eq!(head, 2_004);

    let bytes: i64 = sqlite_value(&path, "SELECT length(payload) FROM snapshots");
    assert!(
        bytes < 4_096,
        "the snapshot of 2,002 developments is {bytes} bytes"
    );
    let indexed: i64 = sqlite_value(&path, "SELECT COUNT(*) FROM story_developments");
    assert_eq!(indexed, 2_002, "every development is in the index");

    // A cold load: the snapshot plus fewer events than a snapshot interval.
    let snapshot = log
        .get_snapshot::<Story>(&story.to_string())
        .await
        .unwrap()
        .expect("the story has a snapshot");
    let tail = log
        .get_last_events::<Story>(&story.to_string(), snapshot.current_sequence)
        .await
        .unwrap();
    assert!(
        tail.len() < SNAPSHOT_EVERY,
        "{} events after it",
        tail.len()
    );
    let loaded =
        PersistedEventStore::<EventLog, Story>::new_snapshot_store(log.clone(), SNAPSHOT_EVERY)
            .load_aggregate(&story.to_string())
            .await
            .unwrap();
    assert_eq!(loaded.current_sequence, head);
    assert_eq!(loaded.current_snapshot, Some(head / SNAPSHOT_EVERY));

    // After a restart (a new store on the same file, nothing cached) retries and editors'
    // commands are decided from the index.
    drop((log, store));
    let store = SqliteStore::open(&path, options()).unwrap();
    a_cold_service_knows_the_filings(store.into(), story, &first, &pending).await;
}

#[tokio::test]
async fn a_log_written_before_the_index_is_indexed_when_opened_and_its_old_snapshot_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    let (first, pending) = (new_development(), new_development());
    let story = {
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        long_story(&service(store), &first, &pending, 120).await
    };
    // Make the file what the code before the index left: no index table (nor the tables of
    // the migrations after it), schema version 1, and a snapshot in the first shape (the
    // aggregate's fields, with a map of developments).
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE story_developments;
         DROP TABLE desk_drafts;
         DROP TABLE desk_sessions;
         DROP TABLE staff_passwords;
         PRAGMA user_version = 1;
         UPDATE snapshots SET payload = json_set(json_extract(payload, '$.story'),
             '$.developments', json('{}'));",
    )
    .unwrap();
    let old_shape: String = sqlite_value(&path, "SELECT payload FROM snapshots");
    assert!(old_shape.contains("\"developments\""), "{old_shape}");
    drop(conn);

    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let indexed: i64 = sqlite_value(&path, "SELECT COUNT(*) FROM story_developments");
    assert_eq!(
        indexed, 122,
        "the migration indexed every logged development"
    );
    let status: String = sqlite_value(
        &path,
        &format!(
            "SELECT status FROM story_developments WHERE development_id = '{}'",
            first.id
        ),
    );
    assert_eq!(status, "published", "as the approval left it");
    a_cold_service_knows_the_filings(store.into(), story, &first, &pending).await;
}

#[tokio::test]
async fn retries_and_edits_are_decided_from_the_index_on_postgres_after_a_restart() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (first, pending) = (new_development(), new_development());
    let story = {
        let log: EventLog = PgStore::connect(&db.url).await.unwrap().into();
        long_story(&service(log), &first, &pending, 150).await
    };
    // Another process, nothing cached.
    let log: EventLog = PgStore::connect(&db.url).await.unwrap().into();
    a_cold_service_knows_the_filings(log.clone(), story, &first, &pending).await;

    // The same database as the code before the index left it: the index, the heads and the
    // migrations that made them (the columns of embargoes and undo windows too) are gone; the next
    // process to connect fills them again.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    sqlx::raw_sql(
        "DROP TABLE story_developments; DROP TABLE story_heads; DROP TABLE pending_fills;
         DELETE FROM _sqlx_migrations WHERE version IN (2, 3, 4, 6);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let log: EventLog = PgStore::connect(&db.url).await.unwrap().into();
    let (indexed, head): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM story_developments),
                (SELECT sequence FROM story_heads WHERE aggregate_id = $1)",
    )
    .bind(story.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(indexed, 152);
    // Opened, two filings, an approval, 150 filings, then the approval of `pending` above.
    assert_eq!(head, 155);
    let next = service(log.clone())
        .execute(
            story,
            &principal(Role::Editor),
            StoryCommand::RecordDevelopment(new_development()),
        )
        .await
        .unwrap();
    assert_eq!(next.sequence, 156, "the head continues the story");
    let retry = service(log)
        .execute(
            story,
            &principal(Role::Reporter),
            StoryCommand::RecordDevelopment(first.clone()),
        )
        .await
        .unwrap();
    assert_eq!((retry.events.len(), retry.sequence), (0, 2));
}
