//! Section 4: one flash development to many webhook endpoints, notifier copies under CPU quotas,
//! and its report.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use newsroom_testkit::pg::Database;
use newsroom_testkit::procfs::TICKS_PER_SECOND;
use newsroom_testkit::report::{load_average, secs, thousands};
use newsroom_testkit::BoxError;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::*;

use crate::cgroup::CpuGroup;
use crate::cpu::{cpu_snapshot, cpu_use, CpuUse};
use crate::flash_receiver::{epoch_micros, FLASH_TAG, RECEIVER_ENV};
use crate::processes::{fresh_deployment, http_client, ident, load_note, open_story};
use crate::reads::get_when_ready;
use crate::Config;

#[derive(Debug)]
pub(crate) struct FlashPhase {
    pub(crate) copies: usize,
    /// The API sign-up and the SQL insert of the rest.
    sign_up: Duration,
    /// A routine development first, until every partition's matcher has passed it (each copy
    /// loads its subscription index then).
    warm_up: Duration,
    /// The flash development itself.
    pub(crate) clock: Clocked,
    copy_names: Vec<String>,
}

impl FlashPhase {
    pub(crate) fn rate(&self) -> Option<f64> {
        self.clock
            .t100
            .map(|t| self.clock.arrived as f64 / t.as_secs_f64().max(1e-6))
    }

    fn missing(&self) -> usize {
        self.clock.endpoints.saturating_sub(self.clock.arrived)
    }

    fn cpu_of(&self, name: &str) -> f64 {
        self.clock
            .cpu
            .groups
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, s)| *s)
    }
}

#[derive(Debug)]
pub(crate) struct FlashRun {
    endpoints: usize,
    pub(crate) copy_cores: f64,
    pub(crate) phases: Vec<FlashPhase>,
    pub(crate) load: (String, String),
}

async fn receiver_get(client: &reqwest::Client, receiver: &str, what: &str) -> Res<Value> {
    Ok(client
        .get(format!("{receiver}/tally/{what}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// How many processes hold partitions of the notifier's work, and how many partitions are held
/// (the advisory locks of `crates/notifier/src/partitions.rs`).
async fn partition_owners(pool: &sqlx::PgPool) -> Res<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT count(DISTINCT l.pid), count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
         WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.granted
           AND l.classid::int8 = $1 AND l.objsubid = 2",
    )
    .bind(i64::from(newsroom_notifier::partitions::PARTITION_SPACE))
    .fetch_one(pool)
    .await?)
}

/// The lowest checkpoint over the matcher's partitions.
async fn matched_through(pool: &sqlx::PgPool) -> Res<i64> {
    let (at,): (Option<i64>,) =
        sqlx::query_as("SELECT MIN(position) FROM checkpoints WHERE name LIKE 'matcher/%'")
            .fetch_one(pool)
            .await?;
    Ok(at.unwrap_or(0))
}

/// Copies the one subscriber signed up through the API (its subscriber, endpoint and
/// subscription rows) `more` times, in one transaction: fresh ids, tokens and hook URLs
/// (`{hooks}{n}`), the same webhook secret; every even one follows the story, every odd one the
/// tag; each subscription recorded in `subscription_changes` as the API records it.
async fn insert_subscribers(pool: &sqlx::PgPool, more: usize, hooks: &str) -> Res<()> {
    let mut tx = pool.begin().await?;
    let n = more as i64;
    sqlx::query(
        "INSERT INTO subscribers (id, name, email, token_hash, unsubscribe_token, status, created_at)
         SELECT md5('flash-subscriber-' || g)::uuid::text, t.name || ' ' || g, t.email,
                sha256(convert_to('flash-token-' || g, 'UTF8')), t.unsubscribe_token || '-' || g,
                t.status, t.created_at
         FROM subscribers t, generate_series(1, $1::bigint) g",
    )
    .bind(n)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO endpoints (id, subscriber_id, kind, target, secret, status, created_at)
         SELECT md5('flash-endpoint-' || g)::uuid::text, md5('flash-subscriber-' || g)::uuid::text,
                t.kind, $2::text || g, t.secret, t.status, t.created_at
         FROM endpoints t, generate_series(1, $1::bigint) g",
    )
    .bind(n)
    .bind(hooks)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO subscriptions (id, subscriber_id, story_id, actor_key, kind, tag, min_urgency,
                                    delivery, digest_minutes, include_related, created_at)
         SELECT md5('flash-subscription-' || g)::uuid::text, md5('flash-subscriber-' || g)::uuid::text,
                CASE WHEN g % 2 = 0 THEN t.story_id END, t.actor_key, t.kind,
                CASE WHEN g % 2 = 1 THEN $2::text END, t.min_urgency, t.delivery, t.digest_minutes,
                t.include_related, t.created_at
         FROM subscriptions t, generate_series(1, $1::bigint) g",
    )
    .bind(n)
    .bind(FLASH_TAG)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO subscription_changes (subscription_id, subscriber_id)
         SELECT md5('flash-subscription-' || g)::uuid::text, md5('flash-subscriber-' || g)::uuid::text
         FROM generate_series(1, $1::bigint) g ORDER BY g",
    )
    .bind(n)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let (endpoints,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM endpoints")
        .fetch_one(pool)
        .await?;
    if endpoints != n + 1 {
        return Err(format!("{endpoints} endpoints after the insert, not {}", n + 1).into());
    }
    Ok(())
}

async fn flash_phase(
    cfg: &Config,
    copies: usize,
    receiver: &str,
    receiver_pid: Option<u32>,
    client: &reqwest::Client,
) -> Res<FlashPhase> {
    let dir = tempfile::tempdir()?;
    let (db, stream, env) = fresh_deployment(cfg).await?;
    // A reporter's `flash` waits for an editor's approval: an editor files it.
    let editor = env.editor_token(&dir.path().join("command"))?;
    // Declared before the processes, so that on an early return the processes (dropped first,
    // killed) have left their groups when these are removed.
    let mut groups = Vec::new();
    let mut procs = vec![
        env.spawn("command", dir.path(), "command")?,
        env.spawn("projector", dir.path(), "projector")?,
    ];
    for i in 1..=copies {
        let p = env.spawn("notifier", dir.path(), &format!("notifier-{i}"))?;
        groups.push(CpuGroup::limit(p.pid(), cfg.copy_cores)?);
        procs.push(p);
    }
    let outcome = flash_measure(
        cfg,
        (copies, receiver, receiver_pid),
        client,
        &db,
        &mut procs,
        &editor,
    )
    .await;
    if outcome.is_err() {
        eprintln!(
            "{}",
            procs
                .iter()
                .map(|p| format!("--- {} ---\n{}", p.name, p.log_tail()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    for p in procs {
        p.stop().await;
    }
    drop(groups);
    drop(stream);
    drop(db);
    outcome
}

async fn flash_measure(
    cfg: &Config,
    (copies, receiver, receiver_pid): (usize, &str, Option<u32>),
    client: &reqwest::Client,
    db: &Database,
    procs: &mut [Proc],
    editor: &str,
) -> Res<FlashPhase> {
    for p in procs.iter_mut() {
        p.healthy(client).await?;
    }
    let base = |name: &str| base_of(procs, name);
    let (command, reads, notifier) = (base("command"), base("projector"), base("notifier-1"));
    // One subscriber through the API, the rest copied from its rows.
    let (story, signing_up) =
        flash_story(client, (&command, &reads, &notifier), editor, receiver).await?;
    let pool = sqlx::PgPool::connect(&db.url).await?;
    insert_subscribers(
        &pool,
        cfg.flash_endpoints - 1,
        &format!("{receiver}/hooks/"),
    )
    .await?;
    let sign_up = signing_up.elapsed();

    // Let the copies share the partitions out (a copy takes its share within two looks of
    // 500 ms), then a routine development that no subscription asks for: every copy loads its
    // subscription index on the batch that carries it (a copy that owned nothing then would
    // load it on the flash's).
    let sharing = Instant::now();
    while partition_owners(&pool).await? != (copies as i64, 64) {
        if sharing.elapsed() > Duration::from_secs(60) {
            return Err("the copies did not share the 64 partitions out within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let warm_up = warm_up(
        client,
        (&command, editor, &story),
        receiver,
        Matched::Postgres(&pool),
    )
    .await?;
    eprintln!(
        "  {copies} notifier cop{}: {} endpoints signed up in {}, indexes loaded in {}; sending the flash",
        if copies == 1 { "y" } else { "ies" },
        thousands(cfg.flash_endpoints as f64),
        secs(sign_up),
        secs(warm_up)
    );

    settle(Some(&pool)).await?;
    let mut pids: Vec<(u32, String)> = procs.iter().map(ident).collect();
    pids.extend(receiver_pid.map(|p| (p, "receiver process".to_owned())));
    let clocked = flash_clock(
        client,
        receiver,
        (&command, editor, &story),
        cfg.flash_endpoints,
        &pids,
    )
    .await?;
    pool.close().await;
    Ok(clocked.phase(
        copies,
        (sign_up, warm_up),
        (1..=copies)
            .map(|i| format!("newsroom notifier-{i}"))
            .collect(),
    ))
}

/// Before a flash is clocked, lets what earlier steps set going end outside the clock:
/// PostgreSQL's vacuum and statistics of the 100,000 rows just inserted and its checkpoint
/// (run now, rather than by autovacuum and the checkpointer during the flash), and whatever
/// else is busy (an earlier phase's database being dropped): it waits until the machine is
/// under a tenth of a core busy for a second, 60 s at most.
async fn settle(pool: Option<&sqlx::PgPool>) -> Res<()> {
    if let Some(pool) = pool {
        sqlx::query("VACUUM ANALYZE").execute(pool).await?;
        sqlx::query("CHECKPOINT").execute(pool).await?;
    }
    let started = Instant::now();
    loop {
        let before = cpu_snapshot();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = cpu_snapshot();
        let busy = after.busy.saturating_sub(before.busy) as f64 / TICKS_PER_SECOND;
        if busy < 0.1 || started.elapsed() > Duration::from_secs(60) {
            eprintln!(
                "  settled in {} ({busy:.2} core busy)",
                secs(started.elapsed())
            );
            return Ok(());
        }
    }
}

/// What the clock saw of one flash: POST → first, 90% and last first arrival.
#[derive(Debug)]
pub(crate) struct Clocked {
    endpoints: usize,
    /// POST of the flash development → the first, the 90% and the last first arrival.
    pub(crate) first: Option<Duration>,
    t90: Option<Duration>,
    t100: Option<Duration>,
    pub(crate) arrived: usize,
    pub(crate) duplicates: usize,
    pub(crate) cpu: CpuUse,
}

impl Clocked {
    fn phase(
        self,
        copies: usize,
        (sign_up, warm_up): (Duration, Duration),
        copy_names: Vec<String>,
    ) -> FlashPhase {
        FlashPhase {
            copies,
            sign_up,
            warm_up,
            clock: self,
            copy_names,
        }
    }
}

/// POSTs the flash development to `story` and waits until the receiver has seen `goal` distinct
/// alerts (or nothing more arrives for a while), counting the CPU of `pids` meanwhile.
async fn flash_clock(
    client: &reqwest::Client,
    receiver: &str,
    (command, editor, story): (&str, &str, &str),
    goal: usize,
    pids: &[(u32, String)],
) -> Res<Clocked> {
    let cpu_before = cpu_snapshot();
    let sent = epoch_micros();
    post_of_urgency(client, (command, editor, story), "flash").await?;
    let (mut last, mut last_change) = (0usize, Instant::now());
    loop {
        let unique = receiver_get(client, receiver, "count").await?["unique"]
            .as_u64()
            .unwrap_or(0) as usize;
        if unique >= goal {
            break;
        }
        if unique != last {
            (last, last_change) = (unique, Instant::now());
        }
        // Before the first alert the matcher may still be writing every alert of the fan-out.
        let patience = if unique == 0 { 600 } else { 60 };
        if last_change.elapsed() > Duration::from_secs(patience) {
            eprintln!("  only {unique} of {goal} alerts arrived; nothing more for {patience} s");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = cpu_use(&cpu_before, &cpu_snapshot(), pids);
    // Longer than the copies take to send anything twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tally = receiver_get(client, receiver, "times").await?;
    let mut times: Vec<u64> = tally["times"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    times.sort_unstable();
    let after = |nth: usize| {
        (nth >= 1 && nth <= times.len())
            .then(|| Duration::from_micros(times[nth - 1].saturating_sub(sent)))
    };
    Ok(Clocked {
        endpoints: goal,
        first: after(1),
        t90: after((goal as f64 * 0.9).ceil() as usize),
        t100: if times.len() >= goal {
            after(goal)
        } else {
            None
        },
        arrived: times.len(),
        duplicates: tally["duplicates"].as_u64().unwrap_or(0) as usize,
        cpu,
    })
}

/// The same endpoints copied in SQL into an embedded process's `notifier.db` (SQLite), as
/// [`insert_subscribers`] does in PostgreSQL.
fn insert_subscribers_sqlite(path: &std::path::Path, more: usize, hooks: &str) -> Res<()> {
    let mut db = rusqlite::Connection::open(path)?;
    db.busy_timeout(Duration::from_secs(30))?;
    let tx = db.transaction()?;
    let numbers = "WITH RECURSIVE g(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM g WHERE g < ?1)";
    let id = |what: &str| format!("printf('00000000-0000-4000-8{what}-%012d', g.g)");
    tx.execute(
        &format!(
            "{numbers} INSERT INTO subscribers (id, name, email, token_hash, unsubscribe_token, status, created_at)
             SELECT {}, t.name || ' ' || g.g, t.email, randomblob(32), t.unsubscribe_token || '-' || g.g,
                    t.status, t.created_at
             FROM subscribers t, g",
            id("001")
        ),
        [more as i64],
    )?;
    tx.execute(
        &format!(
            "{numbers} INSERT INTO endpoints (id, subscriber_id, kind, target, secret, status, created_at)
             SELECT {}, {}, t.kind, ?2 || g.g, t.secret, t.status, t.created_at
             FROM endpoints t, g",
            id("002"),
            id("001")
        ),
        rusqlite::params![more as i64, hooks],
    )?;
    tx.execute(
        &format!(
            "{numbers} INSERT INTO subscriptions (id, subscriber_id, story_id, actor_key, kind, tag,
                    min_urgency, delivery, digest_minutes, include_related, created_at)
             SELECT {}, {}, CASE WHEN g.g % 2 = 0 THEN t.story_id END, t.actor_key, t.kind,
                    CASE WHEN g.g % 2 = 1 THEN ?2 END, t.min_urgency, t.delivery, t.digest_minutes,
                    t.include_related, t.created_at
             FROM subscriptions t, g",
            id("003"),
            id("001")
        ),
        rusqlite::params![more as i64, FLASH_TAG],
    )?;
    tx.execute(
        &format!(
            "{numbers} INSERT INTO subscription_changes (subscription_id, subscriber_id)
             SELECT {}, {} FROM g ORDER BY g.g",
            id("003"),
            id("001")
        ),
        [more as i64],
    )?;
    tx.commit()?;
    let endpoints: i64 = db.query_row("SELECT COUNT(*) FROM endpoints", [], |r| r.get(0))?;
    if endpoints != more as i64 + 1 {
        return Err(format!("{endpoints} endpoints after the insert, not {}", more + 1).into());
    }
    Ok(())
}

/// Opens the flash's story (through `command`, until `reads` serves it) and signs its first
/// subscriber up through `notifier`'s API: a webhook to the receiver's `/hooks/0`, following the
/// story at `min_urgency: flash`. Returns the story and when the sign-up began.
async fn flash_story(
    client: &reqwest::Client,
    (command, reads, notifier): (&str, &str, &str),
    editor: &str,
    receiver: &str,
) -> Res<(String, Instant)> {
    let story = open_story(client, command, editor).await?;
    get_when_ready(
        client,
        &format!("{reads}/v1/stories/{story}"),
        Duration::from_secs(60),
    )
    .await?;
    let signing_up = Instant::now();
    newsroom_testkit::api::webhook_subscriber(
        client,
        notifier,
        "Flash desk",
        &format!("{receiver}/hooks/0"),
        &json!({"story": story, "min_urgency": "flash"}),
    )
    .await?;
    Ok((story, signing_up))
}

/// Where the matchers stand: every partition's checkpoint in PostgreSQL, or the embedded
/// matcher's in its `notifier.db`.
enum Matched<'a> {
    Postgres(&'a sqlx::PgPool),
    Sqlite(&'a std::path::Path),
}

impl Matched<'_> {
    pub(crate) async fn position(&self) -> Res<i64> {
        match self {
            Self::Postgres(pool) => matched_through(pool).await,
            Self::Sqlite(path) => Ok(rusqlite::Connection::open(path)?.query_row(
                "SELECT COALESCE(MAX(position), 0) FROM checkpoints WHERE name = 'matcher'",
                [],
                |r| r.get(0),
            )?),
        }
    }
}

/// Records a new development of `urgency` on the story; returns its position in the log.
async fn post_of_urgency(
    client: &reqwest::Client,
    (command, editor, story): (&str, &str, &str),
    urgency: &str,
) -> Res<i64> {
    Ok(newsroom_testkit::api::post_development(
        client,
        command,
        editor,
        story,
        &newsroom_testkit::api::development_with_urgency(Uuid::new_v4(), urgency),
    )
    .await?)
}

/// A routine development no subscription asks for, until the matchers have passed it (each loads
/// its subscription index on the batch that carries it); then the receiver's tally is reset.
/// Returns how long the matchers took.
async fn warm_up(
    client: &reqwest::Client,
    (command, editor, story): (&str, &str, &str),
    receiver: &str,
    matched: Matched<'_>,
) -> Res<Duration> {
    let warming = Instant::now();
    let warm = post_of_urgency(client, (command, editor, story), "routine").await?;
    while matched.position().await? < warm {
        if warming.elapsed() > Duration::from_secs(300) {
            return Err("the matchers did not pass the warm-up development within 300 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let warm_up = warming.elapsed();
    let reset = client
        .post(format!("{receiver}/tally/reset"))
        .send()
        .await?;
    if !reset.status().is_success() {
        return Err(format!("receiver reset: {}", reset.status()).into());
    }
    Ok(warm_up)
}

/// The baseline of the embedded target: the same flash on one embedded process
/// (`--role all`, SQLite), unthrottled.
async fn flash_embedded(
    cfg: &Config,
    receiver: &str,
    receiver_pid: Option<u32>,
    client: &reqwest::Client,
) -> Res<FlashPhase> {
    let dir = tempfile::tempdir()?;
    let env = Env::embedded();
    let editor = env.editor_token(&dir.path().join("all"))?;
    let mut all = env.spawn("all", dir.path(), "all")?;
    let result = async {
        all.healthy(client).await?;
        let base = all.base.clone();
        let (story, signing_up) =
            flash_story(client, (&base, &base, &base), &editor, receiver).await?;
        insert_subscribers_sqlite(
            &dir.path().join("all").join("notifier.db"),
            cfg.flash_endpoints - 1,
            &format!("{receiver}/hooks/"),
        )?;
        let sign_up = signing_up.elapsed();
        // A routine development first: the matcher loads the index on its batch.
        let notifier = dir.path().join("all").join("notifier.db");
        let warm_up = warm_up(
            client,
            (&base, &editor, &story),
            receiver,
            Matched::Sqlite(&notifier),
        )
        .await?;
        eprintln!(
            "  embedded: {} endpoints signed up in {}, index loaded in {}; sending the flash",
            thousands(cfg.flash_endpoints as f64),
            secs(sign_up),
            secs(warm_up)
        );
        settle(None).await?;
        let mut pids = vec![ident(&all)];
        pids.extend(receiver_pid.map(|p| (p, "receiver process".to_owned())));
        let clocked = flash_clock(
            client,
            receiver,
            (&base, &editor, &story),
            cfg.flash_endpoints,
            &pids,
        )
        .await?;
        Ok::<_, BoxError>(clocked.phase(0, (sign_up, warm_up), vec!["newsroom all".to_owned()]))
    }
    .await;
    if result.is_err() {
        eprintln!("--- all ---\n{}", all.log_tail());
    }
    all.stop().await;
    result
}

pub(crate) async fn flash_case(cfg: &Config) -> Res<FlashRun> {
    let load_start = load_average();
    let client = http_client()?;
    let (child, port) = newsroom_testkit::process::spawn_self(&[(RECEIVER_ENV, "1")]).await?;
    let receiver = format!("http://127.0.0.1:{port}");
    let mut phases = Vec::new();
    for copies in [1, 2, 4] {
        phases.push(flash_phase(cfg, copies, &receiver, child.id(), &client).await?);
    }
    eprintln!("  the same flash on one embedded process, unthrottled");
    phases.push(flash_embedded(cfg, &receiver, child.id(), &client).await?);
    Ok(FlashRun {
        endpoints: cfg.flash_endpoints,
        copy_cores: cfg.copy_cores,
        phases,
        load: (load_start, load_average()),
    })
}

pub(crate) fn report_flash(out: &mut String, f: &FlashRun) -> std::fmt::Result {
    writeln!(
        out,
        "### 4. One flash development to {} webhook endpoints, notifier copies at {} core each\n",
        thousands(f.endpoints as f64),
        f.copy_cores
    )?;
    writeln!(
        out,
        "Per copy count: a fresh PostgreSQL database and stream; `--role command`, `--role projector` (unthrottled) and the notifier copies (`--role notifier`), each copy in a cgroup v1 `cpu` group of its own (`cpu.cfs_quota_us` {} of a `cpu.cfs_period_us` of 100,000; PostgreSQL and NATS unthrottled). One subscriber signed up through the API (webhook endpoint, subscription to the story at `min_urgency: flash`), {} more copied from its rows in SQL (one subscriber and one endpoint each, every other one subscribed to the story's tag `{FLASH_TAG}` instead). A routine development first, until every matcher partition has passed it (the copies load their subscription indexes then; not measured). PostgreSQL's vacuum, statistics and checkpoint of what the set-up wrote are run then, and the machine left until it is idle, so that no phase pays for an earlier one's background work. Then one `flash` development is POSTed; the clock runs from just before the POST until the receivers (the bench's own executable run as a helper process, every endpoint a path of its one port) have seen the 90% and the last alert, each counted once by `webhook-id`.\n",
        thousands((f.copy_cores * 100_000.0).round()),
        thousands((f.endpoints - 1) as f64),
    )?;
    writeln!(
        out,
        "| copies | alerts received | POST → first | POST → 90% | POST → 100% | alerts/s | ÷ 1 copy | target | same `webhook-id` twice | missing | CPU-s of each copy | CPU-s PostgreSQL |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    let one = f
        .phases
        .iter()
        .find(|p| p.copies == 1)
        .and_then(FlashPhase::rate);
    for p in &f.phases {
        let ratio = match (p.rate(), one) {
            (Some(r), Some(o)) if o > 0.0 => Some(r / o),
            _ => None,
        };
        let target = match p.copies {
            2 => Some(1.7),
            4 => Some(3.0),
            _ => None,
        };
        let copies = if p.copies == 0 {
            "embedded, unthrottled (90% ≤ 10 s: ".to_owned()
                + match p.clock.t90 {
                    Some(t) if t <= Duration::from_secs(10) => "met)",
                    _ => "**missed**)",
                }
        } else {
            p.copies.to_string()
        };
        let copies_cpu: Vec<String> = p
            .copy_names
            .iter()
            .map(|n| format!("{:.1}", p.cpu_of(n)))
            .collect();
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            copies,
            thousands(p.clock.arrived as f64),
            p.clock.first.map_or_else(|| "–".into(), secs),
            p.clock.t90.map_or_else(|| "–".into(), secs),
            p.clock.t100.map_or_else(|| "–".into(), secs),
            p.rate().map_or_else(|| "–".into(), thousands),
            ratio.map_or_else(|| "–".into(), |r| format!("{r:.2}")),
            match (target, ratio) {
                (Some(t), Some(r)) =>
                    format!("≥ {t}: {}", if r >= t { "met" } else { "**missed**" }),
                (Some(t), None) => format!("≥ {t}: **missed**"),
                _ => String::new(),
            },
            p.clock.duplicates,
            p.missing(),
            copies_cpu.join(" / "),
            p.cpu_of("PostgreSQL"),
        )?;
    }
    writeln!(out)?;
    writeln!(out, "- alerts/s = alerts received ÷ (POST → 100%); the ratio is that rate against 1 copy's in the same run.")?;
    // What an alert costs the whole machine, and so the most alerts/s its cores could carry
    // at that cost whatever the number of copies.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    for p in f.phases.iter().filter(|p| p.clock.arrived > 0) {
        let per = |cpu: f64| cpu / p.clock.arrived as f64 * 1e6;
        let copies: f64 = p.copy_names.iter().map(|n| p.cpu_of(n)).sum();
        // The system under test: every group but processes not its own (builds, say).
        let system: f64 = p
            .clock
            .cpu
            .groups
            .iter()
            .filter(|(n, _)| n != "other processes")
            .map(|(_, s)| s)
            .sum();
        let ceiling = cores / (system / p.clock.arrived as f64).max(1e-9);
        writeln!(
            out,
            "- {}: CPU per alert: notifier {:.0} µs, PostgreSQL {:.0} µs, receivers {:.0} µs; the whole system (every process but others') {:.0} µs, so {} cores carry at most {} alerts/s at that cost ({}).",
            match p.copies {
                0 => "embedded".to_owned(),
                1 => "1 copy".to_owned(),
                n => format!("{n} copies"),
            },
            per(copies),
            per(p.cpu_of("PostgreSQL")),
            per(p.cpu_of("receiver process")),
            per(system),
            cores,
            thousands(ceiling),
            match one {
                Some(o) if o > 0.0 && p.copies > 0 => format!("{:.2} × 1 copy's rate", ceiling / o),
                _ => "–".to_owned(),
            }
        )?;
    }
    for p in &f.phases {
        writeln!(
            out,
            "- {}: sign-up {}, index warm-up {}; CPU-seconds from the POST to the last alert: {}.",
            match p.copies {
                0 => "embedded".to_owned(),
                1 => "1 copy".to_owned(),
                n => format!("{n} copies"),
            },
            secs(p.sign_up),
            secs(p.warm_up),
            p.clock.cpu.describe()
        )?;
    }
    load_note(out, &f.load)
}
