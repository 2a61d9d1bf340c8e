//! Section 1, matching cost: `SubscriptionIndex::matching` against a linear scan of the same
//! subscriptions, and its report.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use newsroom_domain::{DevelopmentKind, Urgency};
use newsroom_notifier::index::{Delivery, Subscription, SubscriptionIndex, Target};
use newsroom_testkit::report::{histogram_ns, load_averages, ms, thousands};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::{ns_as_us, Config, ACTORS, EVERYTHING_CAP, STORIES, TAGS};

#[derive(Debug, Default)]
struct Mix {
    story: usize,
    story_and_kind: usize,
    actor: usize,
    actor_and_kind: usize,
    kind: usize,
    tag: usize,
    everything: usize,
}

#[derive(Debug)]
pub(crate) struct MatchRun {
    mix: Mix,
    pub(crate) subscribers: usize,
    pub(crate) targets: usize,
    pub(crate) full: Pair,
    selective: Pair,
    pub(crate) load: (String, String),
}

/// What a random development offers to match, owned (a `Target` borrows from it).
struct TargetData {
    story: Uuid,
    tags: Vec<String>,
    kind: DevelopmentKind,
    actors: Vec<String>,
    urgency: Urgency,
}

fn min_urgency(rng: &mut StdRng) -> Urgency {
    match rng.gen_range(0..10) {
        0..=6 => Urgency::Routine,
        7 | 8 => Urgency::Priority,
        _ => Urgency::Flash,
    }
}

pub(crate) fn matching_cost(cfg: &Config) -> MatchRun {
    let load_start = load_averages();
    let mut rng = StdRng::seed_from_u64(0x6e65_7773_726f_6f6d);
    let stories: Vec<Uuid> = (0..STORIES).map(|_| Uuid::from_u128(rng.gen())).collect();
    let actors: Vec<String> = (0..ACTORS).map(|i| format!("actor {i}")).collect();
    let tags: Vec<String> = (0..TAGS).map(|i| format!("tag-{i}")).collect();
    let kinds = DevelopmentKind::ALL;

    let n = cfg.subscriptions;
    let everything = (n / 20).min(EVERYTHING_CAP);
    let actor_n = n * 30 / 100;
    let kind_n = n * 15 / 100;
    let tag_n = n / 10;
    // The share "everything" gives up beyond its cap goes to story subscriptions.
    let story_n = n - everything - actor_n - kind_n - tag_n;
    let subscriber_count = (n / 3).max(1);
    let mut mix = Mix::default();
    let mut subs = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = Subscription {
            id: format!("sub-{i}"),
            subscriber_id: format!("subscriber-{}", rng.gen_range(0..subscriber_count)),
            story: None,
            actor_key: None,
            kind: None,
            tag: None,
            min_urgency: min_urgency(&mut rng),
            delivery: Delivery::Immediate,
            include_related: false,
        };
        if i < story_n {
            s.story = Some(*stories.choose(&mut rng).expect("stories"));
            // A quarter follow only one kind of development on their story.
            if rng.gen_range(0..4) == 0 {
                s.kind = Some(*kinds.choose(&mut rng).expect("kinds"));
                mix.story_and_kind += 1;
            } else {
                mix.story += 1;
            }
        } else if i < story_n + actor_n {
            s.actor_key = Some(actors.choose(&mut rng).expect("actors").clone());
            if rng.gen_range(0..5) == 0 {
                s.kind = Some(*kinds.choose(&mut rng).expect("kinds"));
                mix.actor_and_kind += 1;
            } else {
                mix.actor += 1;
            }
        } else if i < story_n + actor_n + kind_n {
            s.kind = Some(*kinds.choose(&mut rng).expect("kinds"));
            mix.kind += 1;
        } else if i < story_n + actor_n + kind_n + tag_n {
            s.tag = Some(tags.choose(&mut rng).expect("tags").clone());
            mix.tag += 1;
        } else {
            mix.everything += 1;
        }
        subs.push(s);
    }

    let data: Vec<TargetData> = (0..cfg.targets)
        .map(|_| {
            let (n_tags, n_actors) = (rng.gen_range(1..=3), rng.gen_range(1..=3));
            TargetData {
                story: *stories.choose(&mut rng).expect("stories"),
                tags: tags.choose_multiple(&mut rng, n_tags).cloned().collect(),
                kind: *kinds.choose(&mut rng).expect("kinds"),
                actors: actors
                    .choose_multiple(&mut rng, n_actors)
                    .cloned()
                    .collect(),
                urgency: match rng.gen_range(0..10) {
                    0..=5 => Urgency::Routine,
                    6..=8 => Urgency::Priority,
                    _ => Urgency::Flash,
                },
            }
        })
        .collect();
    let targets: Vec<Target<'_>> = data
        .iter()
        .map(|d| Target {
            story: d.story,
            tags: &d.tags,
            kind: d.kind,
            actor_keys: d.actors.iter().map(String::as_str).collect(),
            urgency: d.urgency,
        })
        .collect();

    let full = index_vs_scan(&subs, &targets);
    // The same without the broad subscriptions (kind only, everything): what the index costs
    // when what it looks up is selective.
    let selective: Vec<Subscription> = subs
        .into_iter()
        .filter(|s| s.story.is_some() || s.actor_key.is_some() || s.tag.is_some())
        .collect();
    let selective = index_vs_scan(&selective, &targets);
    MatchRun {
        mix,
        subscribers: subscriber_count,
        targets: targets.len(),
        full,
        selective,
        load: (load_start, load_averages()),
    }
}

/// Index and linear scan over the same subscriptions, for the same developments.
#[derive(Debug)]
pub(crate) struct Pair {
    pub(crate) subscriptions: usize,
    pub(crate) build: Duration,
    indexed: Histogram<u64>,
    indexed_total: Duration,
    linear: Histogram<u64>,
    linear_total: Duration,
    /// Subscriptions in the buckets a development looks up (what `matching` checks).
    candidates: u64,
    matches: u64,
    max_matches: usize,
    distinct_subscribers: u64,
    mismatches: usize,
}

impl Pair {
    pub(crate) fn mean_indexed_ns(&self) -> f64 {
        self.indexed_total.as_nanos() as f64 / self.indexed.len().max(1) as f64
    }
    pub(crate) fn mean_linear_ns(&self) -> f64 {
        self.linear_total.as_nanos() as f64 / self.linear.len().max(1) as f64
    }
}

/// Each development is matched by the index and by the scan, in alternating blocks of 100
/// developments, so that both see the same machine load while each keeps its caches warm
/// within a block. Every result of the index is checked against the scan's.
fn index_vs_scan(subs: &[Subscription], targets: &[Target<'_>]) -> Pair {
    let started = Instant::now();
    let mut index = SubscriptionIndex::default();
    for s in subs {
        index.insert(s.clone());
    }
    let build = started.elapsed();
    assert_eq!(index.len(), subs.len());

    // Bucket sizes, filed as `index.rs` files them (most selective filter first).
    let mut by_story: HashMap<Uuid, u64> = HashMap::new();
    let mut by_actor: HashMap<&str, u64> = HashMap::new();
    let mut by_kind: HashMap<DevelopmentKind, u64> = HashMap::new();
    let mut by_tag: HashMap<&str, u64> = HashMap::new();
    let mut everything = 0u64;
    for s in subs {
        if let Some(story) = s.story {
            *by_story.entry(story).or_default() += 1;
        } else if let Some(actor) = &s.actor_key {
            *by_actor.entry(actor).or_default() += 1;
        } else if let Some(kind) = s.kind {
            *by_kind.entry(kind).or_default() += 1;
        } else if let Some(tag) = &s.tag {
            *by_tag.entry(tag).or_default() += 1;
        } else {
            everything += 1;
        }
    }

    // Warm-up (caches, allocator), unrecorded.
    for t in targets.iter().take(1_000) {
        black_box(index.matching(black_box(t)));
        black_box(subs.iter().filter(|s| s.matches(t)).count());
    }

    let mut run = Pair {
        subscriptions: subs.len(),
        build,
        indexed: histogram_ns(),
        indexed_total: Duration::ZERO,
        linear: histogram_ns(),
        linear_total: Duration::ZERO,
        candidates: 0,
        matches: 0,
        max_matches: 0,
        distinct_subscribers: 0,
        mismatches: 0,
    };
    for block in targets.chunks(100) {
        let mut found_sets = Vec::with_capacity(block.len());
        for t in block {
            let started = Instant::now();
            let found = index.matching(black_box(t));
            let elapsed = started.elapsed();
            run.indexed_total += elapsed;
            run.indexed
                .saturating_record((elapsed.as_nanos() as u64).max(1));
            run.matches += found.len() as u64;
            run.max_matches = run.max_matches.max(found.len());
            run.distinct_subscribers += found
                .iter()
                .map(|s| s.subscriber_id.as_str())
                .collect::<HashSet<_>>()
                .len() as u64;
            let mut ids: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
            ids.sort_unstable();
            found_sets.push(ids);
            run.candidates += by_story.get(&t.story).copied().unwrap_or(0)
                + by_kind.get(&t.kind).copied().unwrap_or(0)
                + everything
                + t.actor_keys
                    .iter()
                    .map(|a| by_actor.get(a).copied().unwrap_or(0))
                    .sum::<u64>()
                + t.tags
                    .iter()
                    .map(|g| by_tag.get(g.as_str()).copied().unwrap_or(0))
                    .sum::<u64>();
        }
        for (t, expected) in block.iter().zip(&found_sets) {
            let started = Instant::now();
            let found: Vec<&Subscription> =
                subs.iter().filter(|s| s.matches(black_box(t))).collect();
            let elapsed = started.elapsed();
            run.linear_total += elapsed;
            run.linear
                .saturating_record((elapsed.as_nanos() as u64).max(1));
            let mut ids: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
            ids.sort_unstable();
            if &ids != expected {
                run.mismatches += 1;
            }
        }
    }
    run
}

pub(crate) fn report_matching(out: &mut String, r: &MatchRun) -> std::fmt::Result {
    let total = r.full.subscriptions;
    let pct = |n: usize| 100.0 * n as f64 / total as f64;
    let m = &r.mix;
    writeln!(
        out,
        "## 1. Matching cost: one development against {} subscriptions\n",
        thousands(total as f64)
    )?;
    writeln!(
        out,
        "Mix (each subscription is filed under its most selective filter): story {} ({:.1} %, of which {} also filter by kind) over {} stories; actor {} ({:.1} %, {} also by kind) over {} actors; kind only {} ({:.1} %) over {} kinds; tag {} ({:.1} %) over {} tags; everything {} ({:.1} %, capped at {EVERYTHING_CAP}; the rest of its 5 % went to story). `min_urgency` 70 % routine, 20 % priority, 10 % flash; {} subscribers. Index built (100,000 `insert`s) in {}.\n",
        thousands((m.story + m.story_and_kind) as f64), pct(m.story + m.story_and_kind), thousands(m.story_and_kind as f64), thousands(STORIES as f64),
        thousands((m.actor + m.actor_and_kind) as f64), pct(m.actor + m.actor_and_kind), thousands(m.actor_and_kind as f64), thousands(ACTORS as f64),
        thousands(m.kind as f64), pct(m.kind), DevelopmentKind::ALL.len(),
        thousands(m.tag as f64), pct(m.tag), TAGS,
        thousands(m.everything as f64), pct(m.everything),
        thousands(r.subscribers as f64),
        ms(r.full.build),
    )?;
    writeln!(
        out,
        "{} random developments (a story of the {} uniformly, 1–3 actors, 1–3 tags, a kind; urgency 60 % routine, 30 % priority, 10 % flash), each call timed alone, index and scan alternating in blocks of 100 developments, after 1,000 unrecorded warm-up calls of each; every index result checked against the scan's. Load average {} at start, {} at end.\n",
        thousands(r.targets as f64),
        thousands(STORIES as f64),
        r.load.0,
        r.load.1
    )?;
    writeln!(
        out,
        "| case | mean | p50 | p99 | max | mean matches (distinct subscribers) | candidates checked | ratio (mean) |\n|---|---|---|---|---|---|---|---|"
    )?;
    for (label, p) in [
        ("all 100,000", &r.full),
        ("without kind-only and everything", &r.selective),
    ] {
        let (mi, ml) = (p.mean_indexed_ns(), p.mean_linear_ns());
        let n = p.indexed.len().max(1) as f64;
        // mean | p50 | p99 | max
        let spread = |mean: f64, h: &Histogram<u64>| {
            format!(
                "{} | {} | {} | {}",
                ns_as_us(mean),
                ns_as_us(h.value_at_quantile(0.5) as f64),
                ns_as_us(h.value_at_quantile(0.99) as f64),
                ns_as_us(h.max() as f64),
            )
        };
        writeln!(
            out,
            "| `SubscriptionIndex::matching`, {label} ({} subscriptions) | {} | {:.1} ({:.1}), max {} | {:.1} | {:.3} × scan |",
            thousands(p.subscriptions as f64),
            spread(mi, &p.indexed),
            p.matches as f64 / n,
            p.distinct_subscribers as f64 / n,
            p.max_matches,
            p.candidates as f64 / n,
            mi / ml,
        )?;
        writeln!(
            out,
            "| Baseline: linear scan with `Subscription::matches` over the same {} in a `Vec` | {} | same | {} | 1.00 (reference) |",
            thousands(p.subscriptions as f64),
            spread(ml, &p.linear),
            thousands(p.subscriptions as f64),
        )?;
    }
    writeln!(out)?;
    for (label, p) in [
        ("All", &r.full),
        ("Without kind-only and everything", &r.selective),
    ] {
        let n = p.indexed.len().max(1) as f64;
        writeln!(
            out,
            "- {label}: the index costs {:.0} ns per candidate it checks, {:.0} ns per match; the scan {:.1} ns per subscription. Index and scan found the same subscriptions for {} of {} developments.",
            p.mean_indexed_ns() / (p.candidates as f64 / n).max(1.0),
            p.mean_indexed_ns() / (p.matches as f64 / n).max(1.0),
            p.mean_linear_ns() / p.subscriptions as f64,
            thousands((p.indexed.len() as usize - p.mismatches) as f64),
            thousands(n),
        )?;
    }
    writeln!(out)?;
    Ok(())
}
