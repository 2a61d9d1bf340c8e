//! Part `q`'s query cases: the read API's router served over a log's views, `GET /v1/search`
//! timed case by case against the baseline log's.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hdrhistogram::Histogram;
use newsroom_log::EventLog;
use newsroom_projection::api::{self, ReadState};
use newsroom_projection::{LiveHub, LiveLimits, ViewStore};
use newsroom_testkit::report::{histogram, load_average, record, thousands};
use newsroom_testkit::Res;
use sqlx::PgPool;

use crate::story_gen::{Pools, StoryGen};
use crate::text::{Rng, Vocabulary};
use crate::{ms, Config};

pub(crate) struct Served {
    base: String,
    client: reqwest::Client,
}

/// The read API's router over `views`, on a port of 127.0.0.1.
pub(crate) async fn serve(views: ViewStore, log: EventLog) -> Res<Served> {
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
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) queries: Vec<String>,
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
pub(crate) enum Index {
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
    pub(crate) async fn size(&self) -> Res<String> {
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
pub(crate) async fn latency_table(
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
