//! Full-text search benchmark: how long `GET /v1/search` takes on a large index, and what the
//! index adds to a rebuild.
//!
//! A custom-harness binary (`cargo bench -p newsroom-projection --bench search`) that prints a
//! Markdown report on stdout (progress goes to stderr). Every figure is set against a baseline
//! measured in the same run.
//!
//! The logs: `BENCH_DEVELOPMENTS` developments (default 1,000,000) over `BENCH_STORIES` stories
//! (1,000), and a baseline log of `BENCH_BASELINE_DEVELOPMENTS` (10,000) made the same way. The
//! text is drawn word by word from a vocabulary with a Zipf distribution (s = 1): 145 real words
//! of news English first (`the` is the commonest), then 30,000 made-up words of four syllables;
//! one word in 30 or so starts a fixed two-word collocation (`justice department`). Headlines
//! of 6–11 words, bodies of 35–60 (some 300 bytes), one or two of 300 actors, one of 50
//! sources; one story in 20 is under desk review (its developments wait, for staff only); a
//! correction (a new body, re-indexed) every 100th event of a story; `occurred_at` one minute
//! apart over the whole log (1,000,000 minutes is 23 months).
//!
//! - `r` (rebuild): the large log rebuilt into fresh views without the full-text index
//!   (`rebuild_without_search_index`), then with it (`rebuild`, what `projection rebuild`
//!   runs); the index's share is the difference. `BENCH_REBUILD_RUNS` pairs (default 1).
//! - `q` (queries): the read API's router (`projection::api::router`, the handlers the app
//!   mounts, without the app's middleware) served by axum on 127.0.0.1 over each log's views;
//!   one reqwest client sends `GET /v1/search?q=…` one at a time (`BENCH_QUERIES` timed
//!   requests per case after 10 untimed ones; the two-word case 3 ×), each timed from send
//!   until its whole answer has been read, 200 expected. Baseline: the same requests on the
//!   baseline log's views.
//! - `p` (PostgreSQL): the scale-out views. Both logs (the same generated events) appended to a
//!   PostgreSQL log (`PgStore`, 64 appends in flight, group-committed) in a database of the
//!   bench's own on `BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//!   each rebuilt into the views in that database (`view_search`: `tsvector` + GIN), timed, as
//!   `newsroom projection rebuild` does in scale-out; then the same query cases as `q`, the
//!   same way, on the read API's router over those views.
//!
//! `BENCH_SEARCH_PARTS` (default `rq`) picks the parts. `BENCH_DIR=<dir>` keeps the logs and
//! views there and reuses them when run again (a log whose head is right is not filled again;
//! views at its head are not rebuilt for `q` alone): for trying queries on the same index. For
//! `p` it keeps the databases `bench_search_<developments>_<stories>` (never dropped; without
//! `BENCH_DIR` each run's database is fresh and dropped at its end), with a marker file in
//! `BENCH_DIR` saying the fill finished; views kept at the log's head are not rebuilt (the
//! rebuild is then not timed).
//! `BENCH_SEARCH_CASES=prefix,phrase` runs only the query cases whose names hold one of these.

/// The allocator of the `newsroom` binary, whose `projection rebuild` this measures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::persist::SerializedEvent;
use cqrs_es::DomainEvent;
use futures_util::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use newsroom_domain::{
    Actor, Body, Development, DevelopmentChanges, DevelopmentId, DevelopmentKind, Evidence,
    Headline, Note, PublicationStatus, RespondsTo, Slug, Source, SourceKind, SourceName, Stance,
    StoryEvent, StoryId, Summary, Tag, Urgency, AGGREGATE_TYPE,
};
use newsroom_log::{EventLog, PgStore, SqliteOptions, SqliteStore, Synchronous};
use newsroom_projection::api::{self, ReadState};
use newsroom_projection::rebuild::rebuild_without_search_index;
use newsroom_projection::{rebuild, LiveHub, LiveLimits, ViewStore};
use newsroom_testkit::pg::{kept_database, Database};
use newsroom_testkit::report::{cores, histogram, load_average, record, thousands, Started};
use newsroom_testkit::runtime;
use newsroom_testkit::settings::env_num;
use newsroom_testkit::{BoxError, Res};
use serde_json::json;
use sqlx::PgPool;

#[derive(Debug, Clone)]
struct Config {
    developments: usize,
    baseline_developments: usize,
    stories: usize,
    queries: usize,
    rebuild_runs: usize,
    parts: String,
    dir: Option<PathBuf>,
    /// The PostgreSQL server of part `p`, where its databases are created.
    database_url: String,
    /// Only the query cases whose names hold one of these (`BENCH_SEARCH_CASES`, comma-separated).
    cases: Vec<String>,
}

impl Config {
    fn from_env() -> Self {
        Self {
            developments: (env_num("BENCH_DEVELOPMENTS", 1_000_000.0) as usize).max(1_000),
            baseline_developments: (env_num("BENCH_BASELINE_DEVELOPMENTS", 10_000.0) as usize)
                .max(1_000),
            stories: (env_num("BENCH_STORIES", 1_000.0) as usize).max(1),
            queries: (env_num("BENCH_QUERIES", 300.0) as usize).max(10),
            rebuild_runs: (env_num("BENCH_REBUILD_RUNS", 1.0) as usize).max(1),
            parts: std::env::var("BENCH_SEARCH_PARTS")
                .ok()
                .filter(|p| p.contains(['r', 'q', 'p']))
                .unwrap_or_else(|| "rq".to_owned()),
            dir: std::env::var_os("BENCH_DIR").map(PathBuf::from),
            database_url: std::env::var("BENCH_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
            cases: std::env::var("BENCH_SEARCH_CASES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// The baseline log's stories: as many as the large log's, but at least 10 developments each.
    fn baseline_stories(&self) -> usize {
        self.stories.min(self.baseline_developments / 10).max(1)
    }
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

// ---------------------------------------------------------------------------------------------
// The text

/// The commonest words, commonest first (Zipf ranks 1–145).
const COMMON: &[&str] = &[
    "the",
    "of",
    "to",
    "and",
    "a",
    "in",
    "said",
    "that",
    "on",
    "for",
    "was",
    "with",
    "by",
    "is",
    "at",
    "from",
    "it",
    "as",
    "officials",
    "has",
    "were",
    "be",
    "an",
    "had",
    "not",
    "have",
    "campaign",
    "after",
    "security",
    "are",
    "its",
    "government",
    "police",
    "which",
    "but",
    "this",
    "statement",
    "report",
    "their",
    "attack",
    "investigators",
    "server",
    "would",
    "been",
    "more",
    "data",
    "two",
    "prosecutor",
    "who",
    "they",
    "also",
    "new",
    "national",
    "when",
    "one",
    "breach",
    "hackers",
    "about",
    "over",
    "into",
    "network",
    "minister",
    "there",
    "email",
    "group",
    "agency",
    "intelligence",
    "last",
    "than",
    "week",
    "vote",
    "could",
    "against",
    "public",
    "according",
    "cyber",
    "other",
    "some",
    "court",
    "military",
    "evidence",
    "leaders",
    "officers",
    "electoral",
    "election",
    "elections",
    "elected",
    "inquiry",
    "mail",
    "accounts",
    "party",
    "told",
    "voters",
    "systems",
    "threat",
    "sanctions",
    "charges",
    "indictment",
    "embassy",
    "diplomats",
    "leak",
    "documents",
    "tuesday",
    "monday",
    "friday",
    "spokesperson",
    "confirmed",
    "denied",
    "claimed",
    "responsibility",
    "malware",
    "attribution",
    "forensic",
    "analysis",
    "firm",
    "vendor",
    "researchers",
    "infrastructure",
    "passwords",
    "stolen",
    "published",
    "leaked",
    "allies",
    "president",
    "parliament",
    "committee",
    "hearing",
    "testimony",
    "warrant",
    "arrested",
    "suspect",
    "suspects",
    "citizens",
    "border",
    "capital",
    "region",
    "officer",
    "unit",
    "operation",
    "ransom",
    "payment",
    "bank",
    "funds",
    "transfer",
    "sanctioned",
];

/// Two-word collocations, each as likely as a word of rank 30 to start at any place.
const COLLOCATIONS: &[(&str, &str)] = &[
    ("justice", "department"),
    ("foreign", "ministry"),
    ("un", "mission"),
    ("electoral", "commission"),
    ("fancy", "bear"),
    ("phishing", "campaign"),
    ("interior", "ministry"),
    ("cyber", "command"),
];

const SYLLABLES: [&str; 20] = [
    "ka", "to", "mi", "ra", "ne", "su", "lo", "pe", "di", "fa", "go", "hu", "ja", "ke", "li", "mo",
    "nu", "pi", "ro", "sa",
];

/// Made-up words after the common ones.
const MADE_UP: usize = 30_000;

/// splitmix64: deterministic, so every run writes the same text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Vocabulary {
    words: Vec<String>,
    /// The cumulative Zipf distribution over `words`.
    cdf: Vec<f64>,
}

impl Vocabulary {
    fn new() -> Self {
        let mut words: Vec<String> = COMMON.iter().map(|w| (*w).to_owned()).collect();
        // Four syllables from a number: distinct, and sharing prefixes as real words do.
        let stride = 7_919; // a prime, so neighbouring ranks do not share their prefixes
        for i in 0..MADE_UP {
            let mut n = (i * stride) % (20usize.pow(4));
            let mut w = String::new();
            for _ in 0..4 {
                w.push_str(SYLLABLES[n % 20]);
                n /= 20;
            }
            words.push(w);
        }
        let weights: Vec<f64> = (1..=words.len()).map(|r| 1.0 / r as f64).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        Self { words, cdf }
    }

    fn word(&self, rng: &mut Rng) -> &str {
        let u = rng.unit();
        let i = self
            .cdf
            .partition_point(|c| *c < u)
            .min(self.words.len() - 1);
        &self.words[i]
    }

    /// The word of Zipf rank `rank` (1 is the commonest).
    fn rank(&self, rank: usize) -> &str {
        &self.words[rank - 1]
    }

    /// `n` words of running text (collocations among them), sentences capitalised.
    fn text(&self, rng: &mut Rng, n: usize, sentences: bool) -> String {
        let mut out = String::new();
        let mut in_sentence = 0;
        let mut count = 0;
        while count < n {
            let collocation = rng.below(330) == 0;
            let words: Vec<&str> = if collocation {
                let (a, b) = COLLOCATIONS[rng.below(COLLOCATIONS.len())];
                vec![a, b]
            } else {
                vec![self.word(rng)]
            };
            for w in words {
                if !out.is_empty() {
                    out.push(' ');
                }
                if in_sentence == 0 {
                    let mut c = w.chars();
                    if let Some(first) = c.next() {
                        out.extend(first.to_uppercase());
                        out.push_str(c.as_str());
                    }
                } else {
                    out.push_str(w);
                }
                in_sentence += 1;
                count += 1;
                if sentences && in_sentence >= 8 + rng.below(10) {
                    out.push('.');
                    in_sentence = 0;
                }
            }
        }
        if sentences && !out.ends_with('.') {
            out.push('.');
        }
        out
    }
}

/// Everything parsed once.
struct Pools {
    vocabulary: Vocabulary,
    actors: Vec<Actor>,
    sources: Vec<Source>,
    note: Note,
}

impl Pools {
    fn new() -> Self {
        let vocabulary = Vocabulary::new();
        let mut rng = Rng(7);
        let title = |w: &str| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        };
        let actors = (0..300)
            .map(|i| {
                let name = format!(
                    "{} {} {i}",
                    title(vocabulary.rank(150 + rng.below(5_000))),
                    ["Group", "Ministry", "Agency", "Team", "Party", "Bureau"][i % 6]
                );
                Actor::parse("actors", &name).expect("valid actor")
            })
            .collect();
        let sources = (0..50)
            .map(|i| Source {
                name: SourceName::parse(
                    "source.name",
                    &format!(
                        "{} spokesperson {i}",
                        title(vocabulary.rank(150 + rng.below(2_000)))
                    ),
                )
                .expect("valid source"),
                kind: SourceKind::OfficialStatement,
                url: None,
            })
            .collect();
        Self {
            vocabulary,
            actors,
            sources,
            note: Note::parse(
                "note",
                "An earlier version misstated the date of the breach.",
            )
            .expect("valid note"),
        }
    }
}

const AUTHOR: (&str, &str, &str) = (
    "0190d1c4-7d2f-7c4e-9a65-3f1f2b9b1c11",
    "Rita Reporter",
    "reporter",
);

/// One story's events.
struct StoryGen {
    id: StoryId,
    index: usize,
    review_required: bool,
    seq: usize,
    developments: usize,
    devs: Vec<DevelopmentId>,
    claims: Vec<DevelopmentId>,
    rng: Rng,
}

impl StoryGen {
    fn new(index: usize) -> Self {
        Self {
            id: StoryId::from(uuid::Uuid::from_u128(
                0x0190_d1c4_7d2f_7c4e_9a65_0000_0000_0000 | index as u128,
            )),
            index,
            // One story in twenty is under desk review: its developments wait, seen by staff.
            review_required: index % 20 == 0,
            seq: 0,
            developments: 0,
            devs: Vec::new(),
            claims: Vec::new(),
            rng: Rng(index as u64 * 0x1_0000_0001 + 1),
        }
    }

    fn next(&mut self, pools: &Pools, at: DateTime<Utc>) -> StoryEvent {
        self.seq += 1;
        let k = self.seq;
        let v = &pools.vocabulary;
        if k == 1 {
            let headline = v.text(&mut self.rng, 5, false);
            return StoryEvent::StoryOpened {
                id: self.id,
                slug: Slug::parse("slug", &format!("story-{}", self.index)).expect("valid slug"),
                headline: Headline::parse("headline", &headline).expect("valid headline"),
                summary: Summary::parse("summary", &v.text(&mut self.rng, 20, true))
                    .expect("valid summary"),
                tags: vec![Tag::parse("tags", "cyber").expect("valid tag")],
                review_required: self.review_required,
            };
        }
        let n = self.devs.len();
        if k % 100 == 0 && n > 10 {
            let words = 35 + self.rng.below(26);
            return StoryEvent::DevelopmentCorrected {
                development: self.devs[n - 7],
                note: pools.note.clone(),
                changes: DevelopmentChanges {
                    body: Some(
                        Body::parse("body", &v.text(&mut self.rng, words, true))
                            .expect("valid body"),
                    ),
                    ..Default::default()
                },
            };
        }
        self.developments += 1;
        let id = DevelopmentId::from(uuid::Uuid::from_u128(
            (self.index as u128) << 64 | k as u128,
        ));
        let last_claim = self.claims.last().copied();
        let (kind, responds_to) = match (k % 40, last_claim) {
            (5, _) => (DevelopmentKind::AttributionClaimed, None),
            (6 | 26, Some(claim)) => (
                DevelopmentKind::DenialIssued,
                Some(RespondsTo {
                    development: claim,
                    stance: Stance::Denies,
                }),
            ),
            (r, _) if r % 3 == 0 => (DevelopmentKind::Update, None),
            (r, _) if r % 3 == 1 => (DevelopmentKind::StatementIssued, None),
            _ => (DevelopmentKind::ReportPublished, None),
        };
        if kind == DevelopmentKind::AttributionClaimed {
            self.claims.push(id);
        }
        self.devs.push(id);
        let status = if self.review_required {
            PublicationStatus::PendingReview
        } else {
            PublicationStatus::Published
        };
        let headline_words = 6 + self.rng.below(6);
        let body_words = 35 + self.rng.below(26);
        let mut actors = vec![pools.actors[self.rng.below(pools.actors.len())].clone()];
        if self.rng.below(2) == 0 {
            let other = pools.actors[self.rng.below(pools.actors.len())].clone();
            if other != actors[0] {
                actors.push(other);
            }
        }
        StoryEvent::DevelopmentRecorded {
            embargo_until: None,
            development: Development {
                accused: vec![],
                id,
                kind,
                headline: Headline::parse(
                    "headline",
                    &v.text(&mut self.rng, headline_words, false),
                )
                .expect("valid headline"),
                body: Body::parse("body", &v.text(&mut self.rng, body_words, true))
                    .expect("valid body"),
                occurred_at: at - chrono::Duration::seconds(self.rng.below(3_600) as i64),
                recorded_at: at,
                actors,
                source: Some(pools.sources[self.rng.below(pools.sources.len())].clone()),
                evidence: Evidence::Documentary,
                urgency: Urgency::Priority,
                responds_to,
            },
            status,
            fingerprint: format!("{:032x}", id.as_uuid().as_u128() ^ 0x5eed),
            hold: None,
        }
    }

    fn serialized(&mut self, pools: &Pools, at: DateTime<Utc>) -> Res<SerializedEvent> {
        let event = self.next(pools, at);
        let metadata = json!({
            "author_id": AUTHOR.0,
            "author_name": AUTHOR.1,
            "author_role": AUTHOR.2,
            "recorded_at": at.to_rfc3339_opts(SecondsFormat::Micros, true),
        });
        Ok(SerializedEvent::new(
            self.id.to_string(),
            self.seq,
            AGGREGATE_TYPE.to_owned(),
            event.event_type(),
            event.event_version(),
            serde_json::to_value(&event)?,
            metadata,
        ))
    }
}

/// The log's start: `occurred_at` runs one minute per development from here.
const BASE: &str = "2024-01-01T00:00:00Z";

/// Fills `log` (SQLite or PostgreSQL) with `developments` over `stories`, round-robin, 25
/// events of a story per append, 64 appends in flight (group-committed by either store).
/// Returns the number of events.
async fn fill(log: &EventLog, developments: usize, stories: usize) -> Res<u64> {
    let started = Instant::now();
    let pools = Pools::new();
    let mut gens: Vec<StoryGen> = (0..stories).map(StoryGen::new).collect();
    let per_story: Vec<usize> = (0..stories)
        .map(|s| developments / stories + usize::from(s < developments % stories))
        .collect();
    let base: DateTime<Utc> = BASE.parse()?;
    let mut generated = 0usize;
    let (mut s, mut idle) = (0usize, 0usize);
    // The next append's events: the next story with developments to go, round-robin.
    let batches = std::iter::from_fn(move || {
        while idle < stories {
            let story = s;
            s = (s + 1) % stories;
            let mut events = Vec::with_capacity(25);
            while events.len() < 25 && gens[story].developments < per_story[story] {
                let at = base + chrono::Duration::minutes(generated as i64);
                generated += 1;
                events.push(
                    gens[story]
                        .serialized(&pools, at)
                        .expect("an event serialises"),
                );
            }
            if events.is_empty() {
                idle += 1;
            } else {
                idle = 0;
                return Some(events);
            }
        }
        None
    });
    let appends = stream::iter(batches)
        .map(|events| {
            let log = log.clone();
            async move {
                let n = events.len();
                log.append(events, None).await.map(|_| n as u64)
            }
        })
        .buffered(64);
    tokio::pin!(appends);
    let (mut written, mut next_report) = (0u64, 200_000u64);
    while let Some(n) = appends.next().await {
        written += n?;
        if written >= next_report {
            eprintln!(
                "  filled {written} events ({:.0} events/s)",
                written as f64 / started.elapsed().as_secs_f64()
            );
            next_report += 200_000;
        }
    }
    Ok(written)
}

/// A log of `developments` in `dir/name`, filled unless it already holds them (kept from an
/// earlier run in `BENCH_DIR`).
async fn open_log(dir: &Path, name: &str, developments: usize, stories: usize) -> Res<EventLog> {
    let store = SqliteStore::open(
        &dir.join(name),
        SqliteOptions {
            synchronous: Synchronous::Normal,
            ..Default::default()
        },
    )?;
    let log = EventLog::from(store);
    let place = dir.join(name).display().to_string();
    let marker = dir.join(format!("{name}.filled"));
    filled(&log, &place, Some(&marker), developments, stories).await?;
    Ok(log)
}

/// Fills `log` unless the marker file says an earlier run filled it with the same developments
/// (the marker is written once the fill is complete; `None`: a fresh log, nothing to reuse).
/// `place` names the log in messages.
async fn filled(
    log: &EventLog,
    place: &str,
    marker: Option<&Path>,
    developments: usize,
    stories: usize,
) -> Res<Option<Duration>> {
    let want = format!("{developments} developments over {stories} stories");
    let kept = marker.and_then(|m| std::fs::read_to_string(m).ok());
    if log.head() > 0 && kept.as_deref() == Some(&want) {
        eprintln!("  {place}: reusing {} events ({want})", log.head());
        return Ok(None);
    }
    if log.head() > 0 {
        return Err(format!("{place} holds another log (or an unfinished fill); remove it").into());
    }
    eprintln!("  {place}: filling {want}");
    let t = Instant::now();
    let events = fill(log, developments, stories).await?;
    eprintln!(
        "  {place}: {events} events in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    if let Some(marker) = marker {
        std::fs::write(marker, &want)?;
    }
    Ok(Some(t.elapsed()))
}

/// A log of part `p`, in a PostgreSQL database of its own, and its views beside it.
struct PgLog {
    log: EventLog,
    pool: PgPool,
    /// How long filling it took; `None` if kept from an earlier run.
    fill: Option<Duration>,
    /// The database, dropped with this; `None` when kept in `BENCH_DIR`'s name.
    _db: Option<Database>,
}

/// A PostgreSQL log of `developments`, in `bench_search_<developments>_<stories>` (kept, filled
/// unless the marker in `dir` says it was) when `dir` is given, else in a fresh database dropped
/// at the end.
async fn open_pg_log(
    cfg: &Config,
    dir: Option<&Path>,
    developments: usize,
    stories: usize,
) -> Res<PgLog> {
    let (url, db, marker) = match dir {
        Some(dir) => {
            let name = format!("bench_search_{developments}_{stories}");
            let url = kept_database(&cfg.database_url, &name).await?;
            (url, None, Some(dir.join(format!("{name}.filled"))))
        }
        None => {
            let db = Database::create(&cfg.database_url, "bench_search").await?;
            (db.url.clone(), Some(db), None)
        }
    };
    let store = PgStore::connect(&url).await?;
    let pool = store.pool().clone();
    let log = EventLog::from(store);
    let place = format!("PostgreSQL {}", url::Url::parse(&url)?.path());
    let fill = filled(&log, &place, marker.as_deref(), developments, stories).await?;
    Ok(PgLog {
        log,
        pool,
        fill,
        _db: db,
    })
}

// ---------------------------------------------------------------------------------------------
// Rebuild

struct RebuildRun {
    without: Duration,
    with: Duration,
    load: (String, String),
}

fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// Rebuilds the log into fresh views without the index, then with it; leaves the latter in
/// `views_path`.
async fn rebuild_pair(log: &EventLog, dir: &Path, views_path: &Path) -> Res<RebuildRun> {
    let load_before = load_average();
    let bare = dir.join("bare-views.db");
    remove_sqlite(&bare);
    let views = ViewStore::open(&bare)?;
    let t = Instant::now();
    let report = rebuild_without_search_index(log, &views).await?;
    let without = t.elapsed();
    eprintln!(
        "  without the index: {} events in {:.2} s",
        report.events,
        without.as_secs_f64()
    );
    drop(views);
    remove_sqlite(&bare);
    remove_sqlite(views_path);
    let views = ViewStore::open(views_path)?;
    let t = Instant::now();
    let report = rebuild(log, &views, &[], None).await?;
    let with = t.elapsed();
    eprintln!(
        "  with the index: {} events in {:.2} s",
        report.events,
        with.as_secs_f64()
    );
    Ok(RebuildRun {
        without,
        with,
        load: (load_before, load_average()),
    })
}

/// Whether `views` (kept from an earlier run) are in their current shapes and at `log`'s head.
async fn at_head(views: &ViewStore, log: &EventLog) -> Res<bool> {
    let fresh = views
        .checkpoints()
        .await?
        .into_iter()
        .all(|(view, cp)| cp.schema_version == view.schema_version());
    Ok(fresh && views.position().await? == log.head())
}

/// Views of `log` at its head in `path`: kept from an earlier run, else rebuilt.
async fn views_at_head(log: &EventLog, path: &Path) -> Res<ViewStore> {
    if path.exists() {
        let views = ViewStore::open(path)?;
        if at_head(&views, log).await? {
            eprintln!("  reusing {}", path.display());
            return Ok(views);
        }
        drop(views);
        remove_sqlite(path);
    }
    let views = ViewStore::open(path)?;
    let t = Instant::now();
    rebuild(log, &views, &[], None).await?;
    eprintln!(
        "  rebuilt {} in {:.2} s",
        path.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(views)
}

/// The views of a PostgreSQL log, in its database: kept from an earlier run if at its head,
/// else rebuilt as `newsroom projection rebuild` does in scale-out (`ViewStore::beside` the
/// log, then `rebuild`). Returns how long the rebuild took, and the load average before and
/// after it.
async fn pg_views_at_head(pg: &PgLog) -> Res<(ViewStore, Option<RebuildTime>)> {
    let views = ViewStore::open_postgres(pg.pool.clone()).await?;
    if at_head(&views, &pg.log).await? {
        eprintln!("  reusing the views at position {}", pg.log.head());
        return Ok((views, None));
    }
    let load_before = load_average();
    let t = Instant::now();
    let report = rebuild(&pg.log, &views, &[], None).await?;
    let took = t.elapsed();
    eprintln!(
        "  rebuilt the views: {} events in {:.2} s",
        report.events,
        took.as_secs_f64()
    );
    Ok((
        views,
        Some(RebuildTime {
            events: report.events,
            took,
            load: (load_before, load_average()),
        }),
    ))
}

struct RebuildTime {
    events: u64,
    took: Duration,
    load: (String, String),
}

// ---------------------------------------------------------------------------------------------
// Queries

struct Served {
    base: String,
    client: reqwest::Client,
}

/// The read API's router over `views`, on a port of 127.0.0.1.
async fn serve(views: ViewStore, log: EventLog) -> Res<Served> {
    let live = LiveHub::new(views.clone(), log.clone(), LiveLimits::default()).await?;
    let router = api::router(ReadState {
        views,
        log,
        live,
        public_url: "http://newsroom.invalid".to_owned(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(Served {
        base,
        client: reqwest::Client::new(),
    })
}

/// A case: a name and the query strings its requests cycle through.
struct Case {
    name: String,
    queries: Vec<String>,
    /// Timed requests.
    requests: usize,
}

struct CaseRun {
    latency: Histogram<u64>,
    /// Results of the first page of the first query, and whether more follow.
    results: usize,
    more: bool,
}

fn encode(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

async fn run_case(served: &Served, case: &Case) -> Res<CaseRun> {
    let mut latency = histogram();
    let (mut results, mut more) = (0, false);
    for i in 0..case.requests + 10 {
        let q = &case.queries[i % case.queries.len()];
        let url = format!("{}/v1/search?{q}", served.base);
        let t = Instant::now();
        let response = served.client.get(&url).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        let took = t.elapsed();
        if !status.is_success() {
            return Err(format!("GET {url}: {status}: {}", String::from_utf8_lossy(&body)).into());
        }
        if i == 0 {
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            results = v["results"].as_array().map_or(0, Vec::len);
            more = v.get("next").is_some();
        }
        if i >= 10 {
            record(&mut latency, took);
        }
    }
    Ok(CaseRun {
        latency,
        results,
        more,
    })
}

/// The large views' full-text index, for the report: FTS5's in `views.db`, or `view_search`
/// in PostgreSQL.
enum Index {
    Sqlite(PathBuf),
    Postgres(PgPool),
}

/// The views' SQLite file, opened for the index's figures.
fn open_views(views: &Path, flags: rusqlite::OpenFlags) -> rusqlite::Result<rusqlite::Connection> {
    rusqlite::Connection::open_with_flags(views, flags)
}

impl Index {
    /// How many documents of the index hold `term` (folded): from FTS5's own vocabulary, or
    /// counted through the GIN index.
    async fn doc_count(&self, term: &str) -> Res<i64> {
        match self {
            Index::Sqlite(views) => {
                // Read-write: the vocabulary is a table of the connection's own.
                let c = open_views(views, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
                c.execute_batch(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, search, row)",
                )?;
                Ok(
                    c.query_row("SELECT doc FROM temp.vocab WHERE term = ?1", [term], |r| {
                        r.get(0)
                    })
                    .unwrap_or(0),
                )
            }
            // The bench's words are lower-case letters and digits: nothing to quote.
            Index::Postgres(pool) => Ok(sqlx::query_scalar(
                "SELECT count(*) FROM view_search WHERE words @@ $1::tsquery",
            )
            .bind(format!("'{term}'"))
            .fetch_one(pool)
            .await?),
        }
    }

    /// The index's size: FTS5's tables and segments, or `view_search` and its GIN indexes.
    async fn size(&self) -> Res<String> {
        match self {
            Index::Sqlite(views) => {
                let c = open_views(views, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                let bytes: i64 = c.query_row(
                    "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE 'search%'",
                    [],
                    |r| r.get(0),
                )?;
                let segments: i64 =
                    c.query_row("SELECT COUNT(DISTINCT segid) FROM search_idx", [], |r| {
                        r.get(0)
                    })?;
                Ok(format!(
                    "{:.0} MB in `search*` tables, {segments} segments",
                    bytes as f64 / 1e6
                ))
            }
            Index::Postgres(pool) => {
                let (total, words, filters): (i64, i64, i64) = sqlx::query_as(
                    "SELECT pg_total_relation_size('view_search'),
                            pg_relation_size('view_search_words'),
                            pg_relation_size('view_search_filters')",
                )
                .fetch_one(pool)
                .await?;
                Ok(format!(
                    "{:.0} MB in `view_search` with its indexes (GIN `words` {:.0} MB, `filters` {:.0} MB)",
                    total as f64 / 1e6,
                    words as f64 / 1e6,
                    filters as f64 / 1e6
                ))
            }
        }
    }
}

/// Runs every query case (those `BENCH_SEARCH_CASES` picks) on the baseline's views (`small`)
/// and the large log's (`big`, whose full-text index is `index`), and writes their latency table
/// to `out` under `title`, each row also to stderr as soon as it is measured.
async fn latency_table(
    out: &mut String,
    cfg: &Config,
    title: &str,
    small: &Served,
    big: &Served,
    index: &Index,
) -> Res<()> {
    let pools = Pools::new();
    let story = StoryGen::new(1).id.to_string();
    let load_before = load_average();
    writeln!(
        out,
        "### {title}

One request at a time; {} timed requests per case (the two-word case {}). Baseline: the same requests on {} developments. Index of the large views: {}.
",
        cfg.queries,
        cfg.queries * 3,
        thousands(cfg.baseline_developments as f64),
        index.size().await?
    )?;
    writeln!(
        out,
        "| case | documents holding its words | results (more) | p50 | p99 | max | baseline p50 | baseline p99 | p99 ratio | target |
|---|---|---|---|---|---|---|---|---|---|"
    )?;
    for (case, terms) in cases(&pools.vocabulary, &story, cfg.queries) {
        if !cfg.cases.is_empty() && !cfg.cases.iter().any(|c| case.name.contains(c.as_str())) {
            continue;
        }
        eprintln!("[{title}] {}", case.name);
        let b = run_case(small, &case).await?;
        let r = run_case(big, &case).await?;
        let mut docs = Vec::new();
        for t in &terms {
            docs.push(match index.doc_count(t).await {
                Ok(n) => format!("{t} {}", thousands(n as f64)),
                Err(e) => format!("{t} ({e})"),
            });
        }
        let p99 = r.latency.value_at_quantile(0.99);
        let target = if case.name.starts_with("two words (") {
            if p99 <= 50_000 {
                "≤ 50 ms: met"
            } else {
                "≤ 50 ms: **missed**"
            }
        } else {
            ""
        };
        let row = format!(
            "| {} | {} | {}{} | {} | {} | {} | {} | {} | {:.1} × | {target} |",
            case.name,
            docs.join(", "),
            r.results,
            if r.more { " (more)" } else { "" },
            ms(r.latency.value_at_quantile(0.5)),
            ms(p99),
            ms(r.latency.max()),
            ms(b.latency.value_at_quantile(0.5)),
            ms(b.latency.value_at_quantile(0.99)),
            p99 as f64 / b.latency.value_at_quantile(0.99).max(1) as f64,
        );
        // Each row as soon as it is measured: a long run stopped midway keeps them.
        eprintln!("{row}");
        writeln!(out, "{row}")?;
    }
    writeln!(
        out,
        "
1-minute load average {load_before} before the queries, {} after.
",
        load_average()
    )?;
    Ok(())
}

fn cases(v: &Vocabulary, story: &str, queries: usize) -> Vec<(Case, Vec<String>)> {
    // Two-word queries: pairs of words of Zipf ranks 20–1,000, drawn once.
    let mut rng = Rng(42);
    let pairs: Vec<(String, String)> = (0..20)
        .map(|_| {
            (
                v.rank(20 + rng.below(200)).to_owned(),
                v.rank(100 + rng.below(900)).to_owned(),
            )
        })
        .collect();
    let two_word: Vec<String> = pairs
        .iter()
        .map(|(a, b)| encode(&[("q", &format!("{a} {b}"))]))
        .collect();
    let (a, b) = &pairs[0];
    let first = format!("{a} {b}");
    let rare = v.rank(v.words.len()).to_owned();
    let mk = |name: &str, queries_: Vec<String>, requests: usize, terms: Vec<String>| {
        (
            Case {
                name: name.to_owned(),
                queries: queries_,
                requests,
            },
            terms,
        )
    };
    vec![
        mk(
            "two words (20 pairs, ranks 20–220 × 100–1,000, cycled)",
            two_word,
            queries * 3,
            vec![a.clone(), b.clone()],
        ),
        mk(
            r#"phrase `"justice department"`"#,
            vec![encode(&[("q", r#""justice department""#)])],
            queries,
            vec!["justice".into(), "department".into()],
        ),
        mk(
            "prefix `elect*`",
            vec![encode(&[("q", "elect*")])],
            queries,
            vec!["electoral".into(), "election".into()],
        ),
        mk(
            "short prefix `mi*`",
            vec![encode(&[("q", "mi*")])],
            queries,
            vec![],
        ),
        mk(
            &format!("two words `{first}` + `story=`"),
            vec![encode(&[("q", &first), ("story", story)])],
            queries,
            vec![],
        ),
        mk(
            &format!("two words `{first}` + `kind=statement_issued`"),
            vec![encode(&[("q", &first), ("kind", "statement_issued")])],
            queries,
            vec![],
        ),
        mk(
            &format!("two words `{first}` + `from=2024-01-01&to=2024-01-31`"),
            vec![encode(&[
                ("q", &first),
                ("from", "2024-01-01"),
                ("to", "2024-01-31"),
            ])],
            queries,
            vec![],
        ),
        mk(
            "very many matches `the` + `from=2024-01-03&to=2024-01-04`",
            vec![encode(&[
                ("q", "the"),
                ("from", "2024-01-03"),
                ("to", "2024-01-04"),
            ])],
            queries,
            vec![],
        ),
        mk(
            "very many matches `the`",
            vec![encode(&[("q", "the")])],
            queries,
            vec!["the".into()],
        ),
        mk(
            "very many matches, two words `the said`",
            vec![encode(&[("q", "the said")])],
            queries,
            vec!["said".into()],
        ),
        mk(
            &format!("one rare word `{rare}`"),
            vec![encode(&[("q", &rare)])],
            queries,
            vec![rare.clone()],
        ),
    ]
}

// ---------------------------------------------------------------------------------------------

fn main() -> Res<()> {
    newsroom::disable_transparent_huge_pages();
    let cfg = Config::from_env();
    let rt = runtime()?;
    let started = Started::now();
    let temp = tempfile::tempdir()?;
    let dir = match &cfg.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => temp.path().to_owned(),
    };
    let mut out = String::new();
    writeln!(
        out,
        "## Search (projection)
"
    )?;
    writeln!(
        out,
        "Rerun: `BENCH_DEVELOPMENTS={} BENCH_BASELINE_DEVELOPMENTS={} BENCH_STORIES={} BENCH_QUERIES={} BENCH_SEARCH_PARTS={} cargo bench -p newsroom-projection --bench search`
",
        cfg.developments, cfg.baseline_developments, cfg.stories, cfg.queries, cfg.parts
    )?;
    rt.block_on(async {
        if cfg.parts.contains(['r', 'q']) {
            sqlite_parts(&mut out, &cfg, &dir).await?;
        }
        if cfg.parts.contains('p') {
            postgres_part(&mut out, &cfg).await?;
        }
        Ok::<_, BoxError>(())
    })?;
    writeln!(
        out,
        "{} CPUs visible; SQLite {}; {}.",
        cores(),
        rusqlite::version(),
        started.summary()
    )?;
    print!("{out}");
    Ok(())
}

/// Parts `r` and `q`: the embedded views (SQLite, FTS5), the logs in `dir`.
async fn sqlite_parts(out: &mut String, cfg: &Config, dir: &Path) -> Res<()> {
    let big_path = format!("log-{}.db", cfg.developments);
    let log = open_log(dir, &big_path, cfg.developments, cfg.stories).await?;
    let views_path = dir.join(format!("views-{}.db", cfg.developments));
    if cfg.parts.contains('r') {
        writeln!(
            out,
            "### Rebuild with and without the full-text index
"
        )?;
        writeln!(
                out,
                "{} events ({} developments).\n\n| run | without the index | with it | index's share | load (1 min) before → after |
|---|---|---|---|---|",
                thousands(log.head() as f64),
                thousands(cfg.developments as f64)
            )?;
        for run in 1..=cfg.rebuild_runs {
            eprintln!("[r] rebuild pair {run}");
            let r = rebuild_pair(&log, dir, &views_path).await?;
            writeln!(
                out,
                "| {run} | {:.2} s | {:.2} s | **+{:.0} %** | {} → {} |",
                r.without.as_secs_f64(),
                r.with.as_secs_f64(),
                (r.with.as_secs_f64() / r.without.as_secs_f64() - 1.0) * 100.0,
                r.load.0,
                r.load.1
            )?;
        }
        writeln!(
            out,
            "
Index: {}
",
            Index::Sqlite(views_path.clone()).size().await?
        )?;
    }
    if cfg.parts.contains('q') {
        eprintln!("[q] views");
        let small_log = open_log(
            dir,
            &format!("log-{}.db", cfg.baseline_developments),
            cfg.baseline_developments,
            cfg.baseline_stories(),
        )
        .await?;
        let small_path = dir.join(format!("views-{}.db", cfg.baseline_developments));
        let small_views = views_at_head(&small_log, &small_path).await?;
        let big_views = views_at_head(&log, &views_path).await?;
        let small = serve(small_views, small_log).await?;
        let big = serve(big_views, log.clone()).await?;
        latency_table(
            out,
            cfg,
            "`GET /v1/search` latency",
            &small,
            &big,
            &Index::Sqlite(views_path.clone()),
        )
        .await?;
    }
    Ok(())
}

/// Part `p`: both logs in PostgreSQL, each rebuilt into the views beside it, and the query
/// cases of `q` on those views.
async fn postgres_part(out: &mut String, cfg: &Config) -> Res<()> {
    eprintln!("[p] logs");
    let dir = cfg.dir.as_deref();
    let small = open_pg_log(cfg, dir, cfg.baseline_developments, cfg.baseline_stories()).await?;
    let big = open_pg_log(cfg, dir, cfg.developments, cfg.stories).await?;
    eprintln!("[p] views");
    let (small_views, small_rebuild) = pg_views_at_head(&small).await?;
    let (big_views, big_rebuild) = pg_views_at_head(&big).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&big.pool)
        .await?;
    writeln!(
        out,
        "### PostgreSQL (scale-out views): fill and rebuild

PostgreSQL {version} on this machine. Each log in a database of its own, filled through `PgStore::append` (25 events of a story per append, 64 appends in flight, group-committed; not what is measured), then rebuilt into the views beside it (`ViewStore::open_postgres` on the log's pool, then `rebuild`: what `newsroom projection rebuild` runs in scale-out, one transaction).

| log | events | fill | rebuild | events/s rebuilt | load (1 min) before → after the rebuild |
|---|---|---|---|---|---|"
    )?;
    for (name, pg, rebuilt) in [
        ("baseline", &small, &small_rebuild),
        ("large", &big, &big_rebuild),
    ] {
        let fill = pg
            .fill
            .map_or("kept".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
        match rebuilt {
            Some(r) => writeln!(
                out,
                "| {name} | {} | {fill} | **{:.2} s** | {} | {} → {} |",
                thousands(r.events as f64),
                r.took.as_secs_f64(),
                thousands(r.events as f64 / r.took.as_secs_f64()),
                r.load.0,
                r.load.1
            )?,
            None => writeln!(
                out,
                "| {name} | {} | {fill} | kept from an earlier run (`BENCH_DIR`) | | |",
                thousands(pg.log.head() as f64)
            )?,
        }
    }
    let analysed = || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT COALESCE(bool_or(last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL), false)
               FROM pg_stat_user_tables WHERE relname = 'view_search'",
        )
        .fetch_one(&big.pool)
        .await
    };
    let analysed_before = analysed().await?;
    writeln!(out)?;
    let index = Index::Postgres(big.pool.clone());
    let small_served = serve(small_views, small.log.clone()).await?;
    let big_served = serve(big_views, big.log.clone()).await?;
    latency_table(
        out,
        cfg,
        "`GET /v1/search` latency on PostgreSQL",
        &small_served,
        &big_served,
        &index,
    )
    .await?;
    let yes = |b: bool| if b { "yes" } else { "not yet" };
    writeln!(
        out,
        "Planner statistics of the large `view_search` (the rebuild gathers them; kept views from before it did may lack them) when the queries began: {}; when they ended: {}.
",
        yes(analysed_before),
        yes(analysed().await?)
    )?;
    Ok(())
}
