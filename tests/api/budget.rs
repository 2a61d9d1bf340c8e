//! A CPU budget for anonymous requests: whatever the size of the log, no public GET costs more
//! than a bounded amount of work. Work is counted, not timed: SQLite counts the virtual-machine
//! instructions every reader connection of the views and of the log runs
//! (`newsroom_log::db::ReadWork`), a deterministic measure of rows and index pages visited.
//! Each route is asked once of a newsroom whose log holds a long story and many stories, and
//! once of one twice that size (past every page size and cap); the work must not grow with it.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use newsroom_domain::*;
use newsroom_testkit::commands::*;
use newsroom_testkit::prelude::*;
use newsroom_web::Principal;
use reqwest::Method;
use uuid::Uuid;

/// The log's shape: developments in the one long story, and other stories (two developments
/// each, and a relation to the long story). All developments name the same actor.
#[derive(Debug, Clone, Copy)]
struct Size {
    long: usize,
    stories: usize,
}

struct Filled {
    app: TestApp,
    story: StoryId,
    slug: String,
    /// A position inside the long story, and a moment halfway through filling it.
    middle: i64,
    halfway: DateTime<Utc>,
    /// A story as long whose developments all happened at one moment (a timeline's order is
    /// the moment, then the position), with a position and a time halfway through it, and
    /// the position of a development before that.
    one_moment: (StoryId, i64, DateTime<Utc>, i64),
    /// A moment after the last write.
    filled: DateTime<Utc>,
}

fn principal(role: Role) -> Principal {
    principal_named("Budget", role)
}

fn filing(n: usize) -> StoryCommand {
    filing_at(n, None)
}

fn filing_at(n: usize, occurred_at: Option<DateTime<Utc>>) -> StoryCommand {
    let attribution = n % 10 == 0;
    StoryCommand::RecordDevelopment(NewDevelopment {
        embargo_until: None,
        accused: vec![],
        id: Uuid::new_v4().into(),
        kind: if attribution {
            DevelopmentKind::AttributionClaimed
        } else {
            DevelopmentKind::Update
        },
        headline: Headline::parse("headline", &format!("Development {n}")).unwrap(),
        body: Body::parse("body", "What happened, in a few words.").unwrap(),
        occurred_at,
        actors: Actor::parse_list("actors", &["APT28".into(), "Campaign A".into()]).unwrap(),
        source: attribution.then(|| Source {
            name: SourceName::parse("source.name", "Ministry").unwrap(),
            kind: SourceKind::OfficialStatement,
            url: None,
        }),
        evidence: Evidence::NoneProvided,
        urgency: Urgency::Routine,
        responds_to: None,
        hold: None,
    })
}

fn open(id: StoryId, slug: &str) -> StoryCommand {
    open_story(
        id,
        slug,
        Tag::parse_list("tags", &["cyber".into()]).unwrap(),
        false,
    )
}

async fn fill(size: Size) -> Filled {
    // Front-page marks every 32 positions (a thousand in production): the logs here are a
    // few of those long, as production logs are a few thousand.
    let app = spawn_app_with(|s| {
        s.front_page_marks = newsroom_projection::MarkSpacing {
            every: 32,
            length: newsroom_projection::marks::FRONT_PAGE_MAX + 32 + 1_000,
        }
    })
    .await;
    let service = app.app_state.service.clone();
    let editor = principal(Role::Editor);
    let story = StoryId::new();
    let slug = "the-long-story".to_owned();
    service
        .execute(story, &editor, open(story, &slug))
        .await
        .unwrap();
    let (mut middle, mut halfway) = (0, Utc::now());
    for n in 0..size.long {
        let outcome = service.execute(story, &editor, filing(n)).await.unwrap();
        if n == size.long / 2 {
            middle = outcome.position;
            tokio::time::sleep(Duration::from_millis(5)).await;
            halfway = Utc::now();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // As long a story, every development of it at one moment.
    let moment_story = StoryId::new();
    service
        .execute(moment_story, &editor, open(moment_story, "one-moment"))
        .await
        .unwrap();
    let moment = "2026-01-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
    let mut one_moment = (moment_story, 0, Utc::now(), 0);
    for n in 0..size.long {
        let filed = filing_at(n, Some(moment));
        let outcome = service.execute(moment_story, &editor, filed).await.unwrap();
        if n == size.long / 2 - 20 {
            one_moment.3 = outcome.position;
        }
        if n == size.long / 2 {
            one_moment.1 = outcome.position;
            tokio::time::sleep(Duration::from_millis(5)).await;
            one_moment.2 = Utc::now();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // The other stories, a few at a time.
    for chunk in (0..size.stories).collect::<Vec<_>>().chunks(16) {
        let writes = chunk.iter().map(|i| {
            let (service, editor) = (service.clone(), editor.clone());
            async move {
                let id = StoryId::new();
                service
                    .execute(id, &editor, open(id, &format!("story-{i}")))
                    .await
                    .unwrap();
                for n in 0..2 {
                    service.execute(id, &editor, filing(n)).await.unwrap();
                }
                // Every other story relates itself to the long one: more relations point at
                // it than it shows (20), twice as many in the larger log.
                let related = StoryCommand::LinkStory {
                    story,
                    relation: Relation::Related,
                };
                service.execute(id, &editor, related).await.unwrap();
            }
        });
        futures_util::future::join_all(writes).await;
    }
    // Wait for the views to hold everything, and for the notifier to be idle.
    app.views_at_head().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Filled {
        app,
        story,
        slug,
        middle,
        halfway,
        one_moment,
        filled: Utc::now(),
    }
}

impl Filled {
    fn work(&self) -> u64 {
        self.app.views.read_work().expect("SQLite views")
            + self.app.app_state.store.read_work().expect("a SQLite log")
    }

    /// The public routes, asked as an anonymous reader would.
    fn routes(&self) -> Vec<String> {
        let (story, slug) = (self.story, &self.slug);
        let time = |t: DateTime<Utc>| {
            t.to_rfc3339_opts(SecondsFormat::Micros, true)
                .replace('+', "%2B")
        };
        let (as_of, filled) = (time(self.halfway), time(self.filled));
        let middle = self.middle;
        let (moment_story, moment_middle, moment_halfway, moment_early) = self.one_moment;
        let moment_halfway = time(moment_halfway);
        vec![
            "/healthz".into(),
            "/v1/stories".into(),
            format!("/v1/stories/{story}"),
            format!("/v1/stories/{slug}"),
            format!("/v1/stories/{story}?before={middle}"),
            format!("/v1/stories/{story}?as_of={as_of}"),
            // The front page halfway through the long story, and with every story on it.
            format!("/v1/stories?as_of={as_of}"),
            format!("/v1/stories?as_of={filled}"),
            // Past the cap of events an answer holds (500), in both logs.
            format!("/v1/stories/{story}?since=1"),
            // The claims ledger (a claim every ten developments): a page of it, now and then.
            format!("/v1/stories/{story}/claims"),
            format!("/v1/stories/{story}/claims?as_of={as_of}"),
            format!("/v1/stories/{story}/feed.atom"),
            format!("/v1/stories/{story}/feed.json"),
            format!("/v1/stories/{story}/ninjs"),
            "/v1/feed.atom".into(),
            "/v1/feed.json".into(),
            // A page before a development in the middle of a story whose developments share
            // one moment, and the story as it stood then.
            format!("/v1/stories/{moment_story}?before={moment_middle}"),
            format!("/v1/stories/{moment_story}?as_of={moment_halfway}"),
            format!("/v1/stories/{moment_story}?as_of={moment_halfway}&before={moment_early}"),
            format!("/stories/one-moment?before={moment_middle}"),
            "/v1/actors/APT28".into(),
            "/v1/actors/APT28/feed.atom".into(),
            "/v1/actors/APT28/feed.json".into(),
            "/".into(),
            format!("/stories/{slug}"),
            format!("/stories/{slug}?before={middle}"),
            format!("/stories/{slug}/fragment"),
            "/actors/APT28".into(),
            // Search: a word every development has, a phrase, a prefix, a story's word, a
            // filter, and the reader's page.
            "/v1/search?q=happened".into(),
            "/v1/search?q=%22a+few+words%22".into(),
            "/v1/search?q=happ*+words".into(),
            "/v1/search?q=story".into(),
            format!("/v1/search?q=happened&story={story}&kind=update&cursor=40"),
            "/v1/search?q=happened&actor=APT28&from=2000-01-01".into(),
            "/search?q=happened".into(),
        ]
    }

    /// The work one request costs, asked the first time (nothing cached).
    async fn cost(&self, path: &str) -> u64 {
        let before = self.work();
        let answer = self.app.call(Method::GET, path, None, None).await;
        assert_eq!(answer.status.as_u16(), 200, "{path}: {:?}", answer.body);
        self.work() - before
    }
}

#[tokio::test]
async fn every_public_read_costs_a_bounded_amount_of_work_whatever_the_size_of_the_log() {
    let small = fill(Size {
        long: 600,
        stories: 120,
    })
    .await;
    let large = fill(Size {
        long: 1_200,
        stories: 240,
    })
    .await;
    let mut report = Vec::new();
    let mut over = Vec::new();
    for (path, large_path) in small.routes().into_iter().zip(large.routes()) {
        let a = small.cost(&path).await;
        let b = large.cost(&large_path).await;
        report.push(format!("{path}: {a} -> {b}"));
        // Twice the log may cost a little more (a deeper index), never twice the work.
        if b > a + a / 4 + 16 {
            over.push(format!("{path}: {a} -> {b}"));
        }
    }
    assert!(
        over.is_empty(),
        "work grew with the log (units of {} SQLite instructions):\n{}\n\nall:\n{}",
        newsroom_log::db::WORK_UNIT,
        over.join("\n"),
        report.join("\n")
    );
    eprintln!(
        "work per read, small log -> large log:\n{}",
        report.join("\n")
    );
    // The counter counts: the long story's first page is real work.
    assert!(
        report.iter().any(|r| !r.ends_with(": 0 -> 0")),
        "{report:#?}"
    );
}
