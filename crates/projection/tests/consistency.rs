//! The projector's promises, checked against the one thing that cannot be wrong: a fresh fold of
//! the whole log. For random valid command sequences, with the projector stepping at random
//! points, or killed mid-stream and restarted, the stored views equal a full rebuild.

use std::collections::BTreeMap;
use std::sync::Arc;

use newsroom_command::{CommandService, ServiceOptions};
use newsroom_domain::*;
use newsroom_log::{EventLog, SqliteOptions, SqliteStore, Synchronous};
use newsroom_projection::rebuild::{rebuild_within, replay, RebuildLimits};
use newsroom_projection::{rebuild, MarkSpacing, Projector, ViewName, ViewStore};
use newsroom_readmodel::{ActorEntry, StoryView};
use newsroom_web::Principal;
use proptest::prelude::*;
use serde_json::Value;
use uuid::Uuid;

struct World {
    _dir: tempfile::TempDir,
    log: EventLog,
    service: CommandService,
    views: ViewStore,
    rebuilt: ViewStore,
    /// Rebuilt holding next to nothing in memory: every development let go of after each small
    /// page, and read back whenever a later event changes it.
    squeezed: ViewStore,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let log: EventLog = SqliteStore::open(
        &dir.path().join("log.db"),
        SqliteOptions {
            synchronous: Synchronous::Normal,
            ..Default::default()
        },
    )
    .unwrap()
    .into();
    let service = CommandService::new(
        log.clone(),
        ServiceOptions {
            snapshot_every: 7,
            cache_capacity: 4,
        },
    );
    // Front-page marks close together, their lists short (the projector's and the squeezed
    // rebuild's cut below the longest front page read), or long enough for every story.
    let marks = |every, length| MarkSpacing { every, length };
    let views = ViewStore::open(&dir.path().join("views.db"))
        .unwrap()
        .with_marks(marks(2, 3));
    let rebuilt = ViewStore::open(&dir.path().join("rebuilt.db"))
        .unwrap()
        .with_marks(marks(3, 1_000));
    let squeezed = ViewStore::open(&dir.path().join("squeezed.db"))
        .unwrap()
        .with_marks(marks(1, 1));
    World {
        _dir: dir,
        log,
        service,
        views,
        rebuilt,
        squeezed,
    }
}

fn person(role: Role) -> Principal {
    Principal {
        token_id: format!("{role}-token"),
        name: format!("A {role}"),
        role,
    }
}

/// An abstract step of a newsroom's day; indexes pick among what exists so far.
#[derive(Debug, Clone)]
enum Op {
    Open {
        review: bool,
    },
    /// An editor relates one story to another (`relation`: an index into `Relation::ALL`).
    Link {
        story: usize,
        other: usize,
        relation: usize,
    },
    /// An editor removes the relation between two stories, from either side.
    Unlink {
        story: usize,
        other: usize,
    },
    Record {
        story: usize,
        kind: usize,
        actors: Vec<usize>,
        responds: Option<(usize, usize)>,
        editor: bool,
        back_days: i64,
        /// Filed under an embargo an hour ahead (lifted only by `Lift`).
        embargo: bool,
    },
    /// An editor lifts an embargo early.
    Lift {
        story: usize,
        dev: usize,
    },
    Approve {
        story: usize,
        dev: usize,
    },
    Reject {
        story: usize,
        dev: usize,
    },
    Correct {
        story: usize,
        dev: usize,
        actors: Vec<usize>,
        back_days: i64,
    },
    /// An edit of a filing (`EditFiling`) by the reporter: recorded only while it waits for
    /// review and was theirs.
    Edit {
        story: usize,
        dev: usize,
        back_days: i64,
    },
    Retract {
        story: usize,
        dev: usize,
    },
    Revise {
        story: usize,
        tag: usize,
    },
    Close {
        story: usize,
    },
    Reopen {
        story: usize,
    },
    Project,
    /// A new projector takes over (only in scripted tests).
    Restart,
}

const ACTORS: [&str; 5] = [
    "Campaign A",
    "Fancy Bear",
    "Ministry of Foreign Affairs",
    "GRU",
    "Vendor X",
];
const KINDS: [DevelopmentKind; 5] = [
    DevelopmentKind::HackReported,
    DevelopmentKind::AttributionClaimed,
    DevelopmentKind::DenialIssued,
    DevelopmentKind::StatementIssued,
    DevelopmentKind::ChargesFiled,
];

fn op() -> impl Strategy<Value = Op> {
    let idx = 0usize..8;
    prop_oneof![
        1 => any::<bool>().prop_map(|review| Op::Open { review }),
        6 => (idx.clone(), 0usize..KINDS.len(), prop::collection::vec(0usize..ACTORS.len(), 0..3),
              prop::option::of((0usize..8, 0usize..3)), any::<bool>(), 0i64..30, prop::bool::weighted(0.2))
            .prop_map(|(story, kind, actors, responds, editor, back_days, embargo)| Op::Record { story, kind, actors, responds, editor, back_days, embargo }),
        1 => (idx.clone(), 0usize..8).prop_map(|(story, dev)| Op::Lift { story, dev }),
        2 => (idx.clone(), 0usize..8).prop_map(|(story, dev)| Op::Approve { story, dev }),
        1 => (idx.clone(), 0usize..8).prop_map(|(story, dev)| Op::Reject { story, dev }),
        2 => (idx.clone(), 0usize..8, prop::collection::vec(0usize..ACTORS.len(), 0..3), 0i64..30)
            .prop_map(|(story, dev, actors, back_days)| Op::Correct { story, dev, actors, back_days }),
        2 => (idx.clone(), 0usize..8, 0i64..30)
            .prop_map(|(story, dev, back_days)| Op::Edit { story, dev, back_days }),
        1 => (idx.clone(), 0usize..8).prop_map(|(story, dev)| Op::Retract { story, dev }),
        1 => (idx.clone(), 0usize..3).prop_map(|(story, tag)| Op::Revise { story, tag }),
        1 => idx.clone().prop_map(|story| Op::Close { story }),
        1 => idx.clone().prop_map(|story| Op::Reopen { story }),
        1 => (idx.clone(), idx.clone(), 0usize..4)
            .prop_map(|(story, other, relation)| Op::Link { story, other, relation }),
        1 => (idx.clone(), idx).prop_map(|(story, other)| Op::Unlink { story, other }),
        2 => Just(Op::Project),
    ]
}

#[derive(Default)]
struct Known {
    stories: Vec<StoryId>,
    developments: BTreeMap<usize, Vec<DevelopmentId>>,
}

impl Known {
    fn story(&self, i: usize) -> Option<(usize, StoryId)> {
        if self.stories.is_empty() {
            return None;
        }
        let i = i % self.stories.len();
        Some((i, self.stories[i]))
    }
    fn dev(&self, story: usize, i: usize) -> Option<DevelopmentId> {
        let devs = self.developments.get(&story)?;
        (!devs.is_empty()).then(|| devs[i % devs.len()])
    }
}

fn actors(ids: &[usize]) -> Vec<Actor> {
    let names: Vec<String> = ids.iter().map(|i| ACTORS[*i].to_owned()).collect();
    Actor::parse_list("actors", &names).unwrap()
}

/// Runs one op; refusals by the domain are part of the game and ignored.
async fn run(w: &World, known: &mut Known, projector: &mut Projector, op: Op, n: usize) {
    let reporter = person(Role::Reporter);
    let editor = person(Role::Editor);
    let now = chrono::Utc::now();
    let (story, by, command) = match op {
        Op::Project | Op::Restart => {
            projector.step().await.unwrap();
            return;
        }
        Op::Open { review } => {
            let id = StoryId::new();
            let command = StoryCommand::OpenStory {
                id,
                slug: Slug::parse("slug", &format!("story-{n}-{}", Uuid::new_v4().simple()))
                    .unwrap(),
                headline: Headline::parse("headline", &format!("Story {n}")).unwrap(),
                summary: Summary::parse("summary", "").unwrap(),
                tags: vec![],
                review_required: review,
            };
            if w.service.execute(id, &reporter, command).await.is_ok() {
                known.stories.push(id);
            }
            return;
        }
        Op::Record {
            story,
            kind,
            actors: a,
            responds,
            editor: as_editor,
            back_days,
            embargo,
        } => {
            let Some((si, id)) = known.story(story) else {
                return;
            };
            let kind = KINDS[kind];
            let responds_to = responds.and_then(|(d, stance)| {
                known.dev(si, d).map(|development| RespondsTo {
                    development,
                    stance: [Stance::Supports, Stance::Disputes, Stance::Denies][stance],
                })
            });
            let dev = DevelopmentId::from(Uuid::new_v4());
            let new = NewDevelopment {
                embargo_until: embargo.then(|| now + chrono::Duration::hours(1)),
                accused: vec![],
                id: dev,
                kind,
                headline: Headline::parse("headline", &format!("Development {n}")).unwrap(),
                body: Body::parse("body", "Text").unwrap(),
                occurred_at: Some(now - chrono::Duration::days(back_days)),
                actors: actors(&a),
                source: Some(Source {
                    name: SourceName::parse("source.name", "A source").unwrap(),
                    kind: SourceKind::Report,
                    url: None,
                }),
                evidence: Evidence::Circumstantial,
                urgency: Urgency::Routine,
                responds_to,
                hold: None,
            };
            let by = if as_editor {
                editor.clone()
            } else {
                reporter.clone()
            };
            if w.service
                .execute(id, &by, StoryCommand::RecordDevelopment(new))
                .await
                .is_ok()
            {
                known.developments.entry(si).or_default().push(dev);
            }
            return;
        }
        Op::Approve { story, dev }
        | Op::Lift { story, dev }
        | Op::Reject { story, dev }
        | Op::Retract { story, dev }
        | Op::Correct { story, dev, .. }
        | Op::Edit { story, dev, .. }
            if known
                .story(story)
                .and_then(|(si, _)| known.dev(si, dev))
                .is_none() =>
        {
            return
        }
        Op::Approve { story, dev } => {
            let (si, id) = known.story(story).unwrap();
            (
                id,
                editor,
                StoryCommand::ApproveDevelopment {
                    development: known.dev(si, dev).unwrap(),
                    hold: None,
                },
            )
        }
        Op::Lift { story, dev } => {
            let (si, id) = known.story(story).unwrap();
            (
                id,
                editor,
                StoryCommand::LiftEmbargo {
                    development: known.dev(si, dev).unwrap(),
                    due: None,
                },
            )
        }
        Op::Reject { story, dev } => {
            let (si, id) = known.story(story).unwrap();
            (
                id,
                editor,
                StoryCommand::RejectDevelopment {
                    development: known.dev(si, dev).unwrap(),
                    reason: Note::parse("reason", "Unsourced").unwrap(),
                },
            )
        }
        Op::Retract { story, dev } => {
            let (si, id) = known.story(story).unwrap();
            (
                id,
                editor,
                StoryCommand::RetractDevelopment {
                    development: known.dev(si, dev).unwrap(),
                    reason: Note::parse("reason", "Withdrawn").unwrap(),
                },
            )
        }
        Op::Correct {
            story,
            dev,
            actors: a,
            back_days,
        } => {
            let (si, id) = known.story(story).unwrap();
            (
                id,
                editor,
                StoryCommand::CorrectDevelopment {
                    development: known.dev(si, dev).unwrap(),
                    note: Note::parse("note", "Corrected").unwrap(),
                    changes: DevelopmentChanges {
                        actors: Some(actors(&a)),
                        occurred_at: Some(now - chrono::Duration::days(back_days)),
                        ..Default::default()
                    },
                },
            )
        }
        Op::Edit {
            story,
            dev,
            back_days,
        } => {
            let (si, id) = known.story(story).unwrap();
            (
                id,
                reporter,
                StoryCommand::EditFiling {
                    development: known.dev(si, dev).unwrap(),
                    changes: DevelopmentChanges {
                        headline: Some(
                            Headline::parse("headline", &format!("Edited {n}")).unwrap(),
                        ),
                        occurred_at: Some(now - chrono::Duration::days(back_days)),
                        ..Default::default()
                    },
                    note: None,
                },
            )
        }
        Op::Revise { story, tag } => {
            let Some((_, id)) = known.story(story) else {
                return;
            };
            let tags = Tag::parse_list("tags", &[["cyber", "elections", "courts"][tag].to_owned()])
                .unwrap();
            (
                id,
                editor,
                StoryCommand::ReviseStory {
                    headline: None,
                    tags: Some(tags),
                },
            )
        }
        Op::Close { story } => {
            let Some((_, id)) = known.story(story) else {
                return;
            };
            (id, editor, StoryCommand::CloseStory)
        }
        Op::Reopen { story } => {
            let Some((_, id)) = known.story(story) else {
                return;
            };
            (id, editor, StoryCommand::ReopenStory)
        }
        Op::Link {
            story,
            other,
            relation,
        } => {
            let (Some((_, id)), Some((_, other))) = (known.story(story), known.story(other)) else {
                return;
            };
            let relation = Relation::ALL[relation % Relation::ALL.len()];
            (
                id,
                editor,
                StoryCommand::LinkStory {
                    story: other,
                    relation,
                },
            )
        }
        Op::Unlink { story, other } => {
            let (Some((_, id)), Some((_, other))) = (known.story(story), known.story(other)) else {
                return;
            };
            let _ = w.service.unlink(id, other, &editor).await;
            return;
        }
    };
    let _ = w.service.execute(story, &by, command).await;
}

/// Every actor row of a views database: (development position, actor key, occurred_at, name).
type ActorRows = Vec<(i64, String, String, String)>;

/// Every story's stored view, every actor row, and every actor's entries as the read API
/// answers them, from a views database.
async fn snapshot(
    views: &ViewStore,
) -> (
    BTreeMap<Uuid, StoryView>,
    ActorRows,
    BTreeMap<String, Vec<ActorEntry>>,
) {
    let (ids, rows) = views
        .read(|c| {
            let ids: Vec<String> = c
                .prepare("SELECT id FROM stories")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let rows: ActorRows = c
                .prepare(
                    "SELECT position, actor_key, occurred_at, name FROM actor_entries
                     ORDER BY 1, 2",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            Ok((ids, rows))
        })
        .await
        .unwrap();
    let mut stories = BTreeMap::new();
    for id in ids {
        let id = Uuid::parse_str(&id).unwrap();
        let view = views
            .story(id)
            .await
            .unwrap()
            .expect("a listed story loads");
        stories.insert(id, view);
    }
    let mut actors = BTreeMap::new();
    for (_, key, _, _) in &rows {
        if !actors.contains_key(key) {
            let entries = views.actor(key.clone(), 100_000).await.unwrap();
            actors.insert(key.clone(), entries);
        }
    }
    (stories, rows, actors)
}

/// Every row of the views' tables in a views file, table by table, in key order.
fn rows_of(path: &std::path::Path) -> BTreeMap<&'static str, Vec<Vec<String>>> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut all = BTreeMap::new();
    for table in [
        "stories",
        "developments",
        "story_versions",
        "development_versions",
        "actor_entries",
        "relations",
        "search_keys",
        // The full-text index (contentless): every term of every document, where it stands.
        "search",
    ] {
        let sql = if table == "search" {
            c.execute_batch(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_terms
                   USING fts5vocab('main', 'search', 'instance')",
            )
            .unwrap();
            "SELECT doc, col, offset, term FROM temp.search_terms ORDER BY 1, 2, 3, 4".to_owned()
        } else {
            format!("SELECT * FROM {table} ORDER BY 1, 2")
        };
        let mut stmt = c.prepare(&sql).unwrap();
        let width = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..width)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        all.insert(table, rows);
    }
    all
}

/// The front page as it stood, read from the marks, equals one line per story read at every
/// recording time (and just before it), for short and long pages, from the projector's views
/// and both rebuilds. The rebuild whose marks list every story never reads one line per story.
async fn assert_front_pages_as_they_stood(w: &World) {
    let c = rusqlite::Connection::open(w._dir.path().join("views.db")).unwrap();
    let times: Vec<chrono::DateTime<chrono::Utc>> = c
        .prepare("SELECT DISTINCT recorded_at FROM story_versions ORDER BY 1")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(&t.unwrap())
                .unwrap()
                .with_timezone(&chrono::Utc)
        })
        .collect();
    let fallbacks = w.rebuilt.front_page_fallbacks();
    let stores = [
        ("projector", &w.views),
        ("rebuilt", &w.rebuilt),
        ("squeezed", &w.squeezed),
    ];
    assert_marks_answer_as_one_line_per_story(&stores, &times).await;
    assert_eq!(
        w.rebuilt.front_page_fallbacks(),
        fallbacks,
        "marks that list every story answer every read"
    );
}

/// At each of `times` and just before it, for short and long pages, each store's front page as
/// it stood read from its marks equals the one read a line per story.
async fn assert_marks_answer_as_one_line_per_story(
    stores: &[(&str, &ViewStore)],
    times: &[chrono::DateTime<chrono::Utc>],
) {
    let just_before =
        |t: &chrono::DateTime<chrono::Utc>| [*t, *t - chrono::Duration::microseconds(1)];
    for at in times.iter().flat_map(just_before) {
        for limit in [1, 2, 100] {
            for (name, views) in stores {
                let marked = views.front_page_as_of(at, limit).await.unwrap();
                let by_story = views.front_page_as_of_by_story(at, limit).await.unwrap();
                assert_eq!(
                    serde_json::to_value(&marked).unwrap(),
                    serde_json::to_value(&by_story).unwrap(),
                    "{name}: the front page at {at}, {limit} stories"
                );
            }
        }
    }
}

async fn assert_views_equal_a_rebuild(w: &World) {
    let (incremental, incremental_actors, incremental_entries) = snapshot(&w.views).await;
    rebuild(&w.log, &w.rebuilt, &[], None).await.unwrap();
    let squeeze = RebuildLimits {
        page_events: 3,
        held_bytes: 0,
        rows_per_write: 2,
    };
    rebuild_within(&w.log, &w.squeezed, &[], None, squeeze)
        .await
        .unwrap();
    let dir = w._dir.path();
    let rebuilt_rows = rows_of(&dir.join("rebuilt.db"));
    assert_eq!(
        rows_of(&dir.join("squeezed.db")),
        rebuilt_rows,
        "a rebuild that lets go of every development writes the same rows"
    );
    assert_eq!(
        rows_of(&dir.join("views.db")),
        rebuilt_rows,
        "the projector's rows, history included, equal a rebuild's"
    );
    // The actors view alone, squeezed (its developments go to a scratch table).
    rebuild_within(&w.log, &w.squeezed, &[ViewName::Actors], None, squeeze)
        .await
        .unwrap();
    assert_eq!(
        rows_of(&dir.join("squeezed.db")),
        rebuilt_rows,
        "the actors view rebuilt alone equals a whole rebuild's"
    );
    assert_front_pages_as_they_stood(w).await;
    let (rebuilt, rebuilt_actors, rebuilt_entries) = snapshot(&w.rebuilt).await;
    let (folded, _, _) = replay(&w.log, None).await.unwrap();
    assert_eq!(incremental.len(), folded.len());
    for (id, view) in &folded {
        assert_eq!(
            incremental.get(id),
            Some(view),
            "story {id}: incremental view equals the fold"
        );
    }
    assert_eq!(incremental, rebuilt, "incremental views equal a rebuild");
    for view in folded.values() {
        // A view read back without its kept summary counts its developments one by one.
        let counted: StoryView =
            serde_json::from_value(serde_json::to_value(view).unwrap()).unwrap();
        assert_eq!(
            view.front_page_entry(),
            counted.front_page_entry(),
            "the front-page line kept as events come equals a count"
        );
    }
    assert_eq!(
        incremental_actors, rebuilt_actors,
        "actor rows equal a rebuild"
    );
    assert_eq!(
        incremental_entries, rebuilt_entries,
        "actor entries as read equal a rebuild"
    );
    for (key, entries) in &rebuilt_entries {
        let mut expected: Vec<ActorEntry> = folded
            .values()
            .flat_map(|v| v.actor_entries())
            .filter(|e| e.actor.key() == key)
            .collect();
        // Newest first, as stored (to the microsecond), one entry per development.
        let newest = |e: &ActorEntry| {
            (
                e.development.occurred_at.timestamp_micros(),
                e.development.position,
            )
        };
        expected.sort_by_key(|e| std::cmp::Reverse(newest(e)));
        expected.dedup_by_key(|e| e.development.id);
        let got: Vec<(Uuid, Uuid, &str)> = entries
            .iter()
            .map(|e| (e.story_id, e.development.id, e.actor.name()))
            .collect();
        let want: Vec<(Uuid, Uuid, &str)> = expected
            .iter()
            .map(|e| (e.story_id, e.development.id, e.actor.name()))
            .collect();
        assert_eq!(got, want, "actor {key}: entries equal the fold's");
    }
    assert_eq!(
        w.views.position().await.unwrap(),
        w.log.head(),
        "the checkpoint reached the head of the log"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn incremental_projection_equals_a_full_rebuild(ops in prop::collection::vec(op(), 1..120)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let w = world();
            // One story kept between batches, windows of newest times as short as can be: the
            // projector reads stories back from the rows at almost every batch.
            let mut projector = Projector::new(w.log.clone(), w.views.clone())
                .with_memory(std::num::NonZeroUsize::MIN, 1);
            let mut known = Known::default();
            for (n, op) in ops.into_iter().enumerate() {
                run(&w, &mut known, &mut projector, op, n).await;
            }
            projector.catch_up().await.unwrap();
            assert_views_equal_a_rebuild(&w).await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_stream_converges_after_restart_with_nothing_missing_or_doubled() {
    let w = Arc::new(world());
    let reporter = person(Role::Reporter);
    let mut stories = Vec::new();
    for i in 0..5 {
        let id = StoryId::new();
        w.service
            .execute(
                id,
                &reporter,
                StoryCommand::OpenStory {
                    id,
                    slug: Slug::parse("slug", &format!("kill-{i}")).unwrap(),
                    headline: Headline::parse("headline", "Story").unwrap(),
                    summary: Summary::parse("summary", "").unwrap(),
                    tags: vec![],
                    review_required: false,
                },
            )
            .await
            .unwrap();
        stories.push(id);
    }
    // A projector follows the feed while reporters write.
    let projector = Projector::new(w.log.clone(), w.views.clone());
    let mut positions = projector.positions();
    let running = tokio::spawn(projector.run_until_stopped(std::future::pending()));
    let writer = {
        let w = w.clone();
        let stories = stories.clone();
        tokio::spawn(async move {
            for n in 0..3_000 {
                let new = NewDevelopment {
                    embargo_until: None,
                    accused: vec![],
                    id: Uuid::new_v4().into(),
                    kind: DevelopmentKind::Update,
                    headline: Headline::parse("headline", &format!("Update {n}")).unwrap(),
                    body: Body::parse("body", "").unwrap(),
                    occurred_at: None,
                    actors: actors(&[n % ACTORS.len()]),
                    source: None,
                    evidence: Evidence::NoneProvided,
                    urgency: Urgency::Routine,
                    responds_to: None,
                    hold: None,
                };
                w.service
                    .execute(
                        stories[n % stories.len()],
                        &person(Role::Reporter),
                        StoryCommand::RecordDevelopment(new),
                    )
                    .await
                    .unwrap();
            }
        })
    };
    // Kill it once it has applied something, while the writer is still going.
    positions.wait_for(|p| *p > 100).await.unwrap();
    running.abort();
    let _ = running.await;
    let killed_at = w.views.position().await.unwrap();
    writer.await.unwrap();
    assert!(
        killed_at < w.log.head(),
        "the projector was killed before the end of the log"
    );

    // A fresh projector resumes from the checkpoint.
    let mut restarted = Projector::new(w.log.clone(), w.views.clone());
    restarted.catch_up().await.unwrap();
    assert_views_equal_a_rebuild(&w).await;
    let (views, _, _) = snapshot(&w.views).await;
    let developments: usize = views.values().map(|v| v.developments.len()).sum();
    assert_eq!(developments, 3_000, "every development once");
}

#[tokio::test]
async fn a_view_whose_schema_changed_rebuilds_itself_from_the_log() {
    let w = world();
    let mut projector = Projector::new(w.log.clone(), w.views.clone());
    let mut known = Known::default();
    let ops = [
        Op::Open { review: false },
        Op::Record {
            story: 0,
            kind: 1,
            actors: vec![1, 2],
            responds: None,
            editor: false,
            back_days: 3,
            embargo: false,
        },
        Op::Record {
            story: 0,
            kind: 2,
            actors: vec![2],
            responds: Some((0, 2)),
            editor: false,
            back_days: 1,
            embargo: false,
        },
    ];
    for (n, op) in ops.into_iter().enumerate() {
        run(&w, &mut known, &mut projector, op, n).await;
    }
    projector.catch_up().await.unwrap();
    // As if the actors view had been written by an older version of the code, and lost rows.
    w.views
        .write(|tx| {
            tx.execute_batch(
                "UPDATE checkpoints SET schema_version = 0 WHERE view = 'actors';
                 DELETE FROM actor_entries;",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let report = newsroom_projection::rebuild_outdated(&w.log, &w.views)
        .await
        .unwrap()
        .expect("the outdated view is rebuilt");
    assert_eq!(report.views, [newsroom_projection::ViewName::Actors]);
    assert!(newsroom_projection::rebuild_outdated(&w.log, &w.views)
        .await
        .unwrap()
        .is_none());
    assert_views_equal_a_rebuild(&w).await;
}

/// A rebuild into the projector's own views (the same writer) swaps in a full-text index loaded
/// in bulk and merged once; the projector then keeps indexing into it (new documents,
/// corrections, retractions), and the index stays sound and equal to a fresh rebuild's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_keeps_indexing_into_a_rebuilt_full_text_index() {
    let w = world();
    let mut projector = Projector::new(w.log.clone(), w.views.clone());
    let mut known = Known::default();
    let record = |story, kind, actors: Vec<usize>| Op::Record {
        story,
        kind,
        actors,
        responds: None,
        editor: false,
        back_days: 2,
        embargo: false,
    };
    let before = [
        Op::Open { review: false },
        Op::Open { review: false },
        record(0, 1, vec![1, 2]),
        record(1, 2, vec![3]),
        record(0, 3, vec![0]),
    ];
    let mut n = 0;
    for op in before {
        run(&w, &mut known, &mut projector, op, n).await;
        n += 1;
    }
    projector.catch_up().await.unwrap();
    rebuild(&w.log, &w.views, &[], None).await.unwrap();
    let after = [
        record(1, 4, vec![4]),
        Op::Correct {
            story: 0,
            dev: 0,
            actors: vec![3],
            back_days: 1,
        },
        Op::Retract { story: 0, dev: 1 },
        record(0, 0, vec![2]),
    ];
    for op in after {
        run(&w, &mut known, &mut projector, op, n).await;
        n += 1;
    }
    projector.catch_up().await.unwrap();
    let c = rusqlite::Connection::open(w._dir.path().join("views.db")).unwrap();
    c.execute("INSERT INTO search (search) VALUES ('integrity-check')", [])
        .expect("the full-text index is sound");
    drop(c);
    assert_views_equal_a_rebuild(&w).await;
}

/// The projector keeps a story between batches with only a few of its newest times: retracting
/// the newest published developments one batch after another, and correcting the newest back
/// in time, runs each window out, and the projector must read it again (longer) from the rows
/// before it does. Its views, history included, still equal a rebuild's at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_times_stay_exact_when_the_newest_developments_are_retracted_one_by_one() {
    newest_times_stay_exact(true).await;
}

/// The same story kept by the projector that opened it: it held all 30 times when it folded
/// them, and keeps only a few between batches (what it holds of a story does not grow with the
/// story), so the retractions run its windows out just the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_times_stay_exact_in_a_story_the_projector_opened_and_cut_down() {
    newest_times_stay_exact(false).await;
}

async fn newest_times_stay_exact(restart: bool) {
    let w = world();
    let mut projector = Projector::new(w.log.clone(), w.views.clone())
        .with_memory(std::num::NonZeroUsize::new(4).unwrap(), 1);
    let mut known = Known::default();
    let mut n = 0;
    let mut go = |op| {
        n += 1;
        (op, n)
    };
    let mut ops = vec![go(Op::Open { review: false })];
    // Development i happened i days ago: development 0 is the newest.
    for back_days in 0..30 {
        ops.push(go(Op::Record {
            story: 0,
            kind: 0,
            actors: vec![0],
            responds: None,
            editor: false,
            back_days,
            embargo: false,
        }));
    }
    ops.push(go(Op::Project));
    // A projector started now reads the story from its rows, with windows of a few times.
    if restart {
        ops.push(go(Op::Restart));
    }
    for dev in 0..8 {
        ops.push(go(Op::Retract { story: 0, dev }));
        ops.push(go(Op::Project));
    }
    for dev in 8..14 {
        ops.push(go(Op::Correct {
            story: 0,
            dev,
            actors: vec![1],
            back_days: 40,
        }));
        ops.push(go(Op::Project));
    }
    for (op, n) in ops {
        if let Op::Restart = op {
            projector = Projector::new(w.log.clone(), w.views.clone())
                .with_memory(std::num::NonZeroUsize::new(4).unwrap(), 1);
            continue;
        }
        run(&w, &mut known, &mut projector, op, n).await;
    }
    projector.catch_up().await.unwrap();
    let story = w
        .views
        .story(known.stories[0].as_uuid())
        .await
        .unwrap()
        .unwrap();
    let newest = chrono::Utc::now() - chrono::Duration::days(14);
    let entry = story.front_page_entry();
    assert_eq!(entry.development_count, 22, "30 recorded, 8 retracted");
    assert!(
        entry.last_occurred_at.unwrap() <= newest
            && entry.last_occurred_at.unwrap() > newest - chrono::Duration::days(1),
        "the newest left is development 14: {entry:?}"
    );
    assert_views_equal_a_rebuild(&w).await;
}

/// Each command takes its time before its append, so a log's events are not recorded in
/// position order across stories. The front page as it stood, read from marks, must not care:
/// the log of a random day is copied with the recording times of neighbouring events of two
/// stories swapped (each story's own times still in order), projected a few events at a time
/// (a mark after nearly every batch) and rebuilt, and read at every moment.
async fn front_pages_hold_when_recorded_out_of_position_order(ops: Vec<Op>) {
    let w = world();
    let mut projector = Projector::new(w.log.clone(), w.views.clone());
    let mut known = Known::default();
    for (n, op) in ops.into_iter().enumerate() {
        run(&w, &mut known, &mut projector, op, n).await;
    }
    let feed = w.log.read_feed(0, 100_000).await.unwrap();
    let mut times: Vec<Value> = feed
        .iter()
        .map(|e| e.metadata["recorded_at"].clone())
        .collect();
    let mut i = 0;
    while i + 1 < feed.len() {
        if feed[i].story_id == feed[i + 1].story_id {
            i += 1;
        } else {
            times.swap(i, i + 1);
            i += 2;
        }
    }
    let dir = w._dir.path();
    let shuffled: EventLog = SqliteStore::open(&dir.join("shuffled.db"), SqliteOptions::default())
        .unwrap()
        .into();
    let marks = |every, length| MarkSpacing { every, length };
    let followed = ViewStore::open(&dir.join("shuffled-views.db"))
        .unwrap()
        .with_marks(marks(2, 1_000));
    let rebuilt = ViewStore::open(&dir.join("shuffled-rebuilt.db"))
        .unwrap()
        .with_marks(marks(1, 2));
    let mut follower = Projector::new(shuffled.clone(), followed.clone());
    for (n, (e, time)) in feed.iter().zip(times).enumerate() {
        let mut metadata = e.metadata.clone();
        metadata["recorded_at"] = time;
        let event = cqrs_es::persist::SerializedEvent::new(
            e.story_id.clone(),
            e.sequence as usize,
            e.aggregate_type.clone(),
            e.event_type.clone(),
            e.event_version.clone(),
            e.payload.clone(),
            metadata,
        );
        shuffled.append(vec![event], None).await.unwrap();
        if n % 3 == 2 {
            follower.step().await.unwrap();
        }
    }
    follower.catch_up().await.unwrap();
    rebuild(&shuffled, &rebuilt, &[], None).await.unwrap();
    let copied = shuffled.read_feed(0, 100_000).await.unwrap();
    let mut moments: Vec<_> = copied.iter().map(|e| e.recorded_at).collect();
    moments.sort();
    moments.dedup();
    assert_marks_answer_as_one_line_per_story(
        &[("followed", &followed), ("rebuilt", &rebuilt)],
        &moments,
    )
    .await;
    assert_eq!(
        followed.front_page_fallbacks(),
        0,
        "marks listing every story answer every read"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, .. ProptestConfig::default() })]

    #[test]
    fn front_pages_as_they_stood_hold_when_recorded_out_of_position_order(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(front_pages_hold_when_recorded_out_of_position_order(ops));
    }
}

/// Edits of filings waiting for review (`FilingEdited`), by their reporter and through an
/// editor's correction of a pending development, fold alike incrementally and in a rebuild; the
/// desk sees them as edits, readers as nothing but the development as edited.
#[tokio::test]
async fn edits_of_filings_fold_alike_incrementally_and_in_a_rebuild() {
    let w = world();
    let mut projector = Projector::new(w.log.clone(), w.views.clone());
    let mut known = Known::default();
    let record = |back_days| Op::Record {
        story: 0,
        kind: 0,
        actors: vec![0],
        responds: None,
        editor: false,
        back_days,
        embargo: false,
    };
    let ops = [
        Op::Open { review: true },
        record(3),
        record(2),
        Op::Project,
        Op::Edit {
            story: 0,
            dev: 0,
            back_days: 10,
        },
        Op::Project,
        // An editor's correction of a pending development is an edit of the filing too.
        Op::Correct {
            story: 0,
            dev: 1,
            actors: vec![2],
            back_days: 5,
        },
        Op::Approve { story: 0, dev: 1 },
        // Published: the reporter's edit is refused, an editor's correction is a correction.
        Op::Edit {
            story: 0,
            dev: 1,
            back_days: 1,
        },
        Op::Correct {
            story: 0,
            dev: 1,
            actors: vec![1],
            back_days: 4,
        },
    ];
    for (n, op) in ops.into_iter().enumerate() {
        run(&w, &mut known, &mut projector, op, n).await;
    }
    projector.catch_up().await.unwrap();
    let types: Vec<String> = w
        .log
        .read_feed(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types.iter().filter(|t| *t == "FilingEdited").count(),
        2,
        "{types:?}"
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "DevelopmentCorrected")
            .count(),
        1,
        "{types:?}"
    );
    let (views, _, _) = snapshot(&w.views).await;
    let story = views.values().next().unwrap();
    let first = story
        .development(known.dev(0, 0).unwrap().as_uuid())
        .unwrap();
    assert_eq!(first.headline, "Edited 4");
    assert_eq!(first.edits.len(), 1);
    assert!(first.corrections.is_empty());
    let second = story
        .development(known.dev(0, 1).unwrap().as_uuid())
        .unwrap();
    assert_eq!(second.edits.len(), 1);
    assert_eq!(second.corrections.len(), 1);
    assert_eq!(
        second.reader_corrections().count(),
        1,
        "readers are told of the correction after publication only"
    );
    assert_views_equal_a_rebuild(&w).await;
}
