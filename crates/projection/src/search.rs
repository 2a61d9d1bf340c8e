//! Full-text search over the `stories` view: what is indexed, how a reader's query is parsed,
//! and how it is rendered for SQLite FTS5 and PostgreSQL full-text search.
//!
//! One search document per development (keyed by the position that recorded it: its headline,
//! body, and the names of its actors, accused and source) and one per story (keyed by a
//! negative number derived from its id: its headline and summary). Text is folded here, in
//! Rust, the same way for both databases — NFKD, marks dropped, lower case, split into runs of
//! letters and digits — so that `Café` finds `cafe` on either, and both index the same words.
//! Filters (story, actor, kind, who may see it) are words of a column of their own
//! (`filters`), so that a filtered search is answered by the index too.
//!
//! A reader's query never reaches FTS5's `MATCH` or PostgreSQL's `tsquery` as typed: it is
//! parsed into [`Query`] (words, quoted phrases, a trailing `*` for a prefix) and each term is
//! rendered from its folded words, which hold only letters and digits. What cannot be parsed is
//! a [`QueryError`], answered 400 naming `q`.
//!
//! Documents are written by the projector in the batch's transaction with the rows they index
//! (`BatchRows::search`, from every development row written — a correction, retraction or rejection
//! re-indexes it — and every story row) and by the rebuild. SQLite's `search` table is FTS5
//! (`unicode61 remove_diacritics 2`, no prefix indexes: they nearly tripled what a rebuild writes),
//! contentless (`content = ''`, `contentless_delete = 1`: a document is deleted by its rowid), with
//! each document's story and time in `search_keys` under the same rowid; PostgreSQL's `view_search`
//! is a `tsvector` with GIN, written as `tsvector` literals of the words folded here, so both index
//! the same words with no text-search configuration or extension. The filter words also cover the
//! kind, state, actors, the year and month it happened, and who may see it ([`PUBLIC`] `vp`
//! readers, [`PENDING`] `vs` staff): `from`/`to` are the years and months covering the range, the
//! exact bounds checked inside the window of newest matches against `search_keys`.
//!
//! A search reads the newest [`WINDOW`] (500) matching developments and [`STORY_WINDOW`] (50)
//! stories through the index, then ranks those (SQLite: from each hit's own text, `Hit::score` —
//! the query's words per field, BM25's saturation and length, headline 10, names 4, body 1, no
//! inverse document frequency, which FTS5's `bm25` counts by reading each word's whole doclist;
//! PostgreSQL `ts_rank`), a document holding the whole query as one phrase first; snippets are
//! escaped first, then marked (`<mark>`), built in Rust from the stored document.
//!
//! **Architecture invariant:** nothing a SQLite search runs reads a whole doclist, so its work is
//! bounded by the windows, whatever the index holds. Hence readers' visibility is `NOT vs` (the few
//! documents waiting for review), not `AND vp`; and a prefix (`elect*`) is never FTS5's prefix
//! query (which merges the doclist of every word it begins) but the index's own words that begin
//! with it, [`PREFIX_WORDS`] (50) at most, each found by one seek of FTS5's vocabulary (`fts5vocab`
//! `instance`, `known_words`; filter words passed over, [`PREFIX_STEPS`] (200) looked at in all),
//! searched for as `("election" OR "electoral" …)` — the prefix query's results while a prefix
//! begins at most 50 words, like Elasticsearch's `max_expansions` beyond. PostgreSQL's `'elect':*`
//! is left to GIN. `parse_search` (`api.rs`) is shared with the desk's search (`Audience::Staff`,
//! which also finds pending work).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::Datelike;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use newsroom_readmodel::model::{DevelopmentStanding, DevelopmentView, StoryView};

use crate::rows::{SearchRow, SearchText};

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Most terms (words, phrases, prefixes) in a query.
pub const MAX_TERMS: usize = 8;
/// Most words in a query, phrases' included.
pub const MAX_WORDS: usize = 16;
/// The shortest prefix (`ab*`): shorter ones would stand for too many words.
pub const MIN_PREFIX_CHARS: usize = 2;
/// How many of the index's words a prefix stands for at most (`elect*`: `elect`, `elected`,
/// `election`, …, in the index's order): a prefix is searched for as these words, so its cost
/// is bounded whatever the index holds. A prefix that begins more words than this finds only
/// the first of them (as Elasticsearch's `max_expansions`, 50 by default, does): more letters
/// narrow it.
pub const PREFIX_WORDS: usize = 50;
/// How many of the index's words are looked at to find them, filter words (`filters`, which
/// readers never search) passed over included.
pub const PREFIX_STEPS: usize = 200;
/// How many of the newest matching developments a search ranks (and as many stories): what a
/// search costs is bounded by this, whatever the size of the index.
pub const WINDOW: usize = 500;
/// How many stories a search ranks at most.
pub const STORY_WINDOW: usize = 50;
/// Results per page: default and most.
pub const LIMIT_DEFAULT: usize = 20;
pub const LIMIT_MAX: usize = 50;

// ----- folding ------------------------------------------------------------------------------

/// A word of a text: its byte range in the text and its folded form.
pub type Word = (usize, usize, String);

/// The words of `text`, each with its byte range in `text` and its folded form (NFKD, marks
/// dropped, lower case). A run of letters, digits and marks is one word, unless folding it
/// leaves something other than letters and digits inside (`½` → `1⁄2`), which splits it.
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let flush = |out: &mut Vec<Word>, from: usize, to: usize| {
        let run = &text[from..to];
        if run.is_ascii() {
            // Nothing to decompose and no marks: the run is one word, in lower case.
            out.push((from, to, run.to_ascii_lowercase()));
            return;
        }
        let mut word = String::new();
        for c in text[from..to].nfkd() {
            if is_combining_mark(c) {
                continue;
            }
            if c.is_alphanumeric() {
                word.extend(c.to_lowercase());
            } else if !word.is_empty() {
                out.push((from, to, std::mem::take(&mut word)));
            }
        }
        if !word.is_empty() {
            out.push((from, to, word));
        }
    };
    for (i, c) in text.char_indices() {
        let inside = if c.is_ascii() {
            c.is_ascii_alphanumeric()
        } else {
            c.is_alphanumeric() || is_combining_mark(c)
        };
        match (inside, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                flush(&mut out, s, i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        flush(&mut out, s, text.len());
    }
    out
}

/// `text` folded: its words, separated by single spaces (what both indexes are given).
pub fn fold(text: &str) -> String {
    if text.is_ascii() {
        // NFKD leaves ASCII as it is and it has no marks: its words are its runs of letters
        // and digits, lower-cased (most text; a rebuild folds every development's).
        let mut out = String::with_capacity(text.len());
        for word in text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            if !out.is_empty() {
                out.push(' ');
            }
            out.extend(word.chars().map(|c| c.to_ascii_lowercase()));
        }
        return out;
    }
    let words: Vec<String> = words(text).into_iter().map(|(_, _, w)| w).collect();
    words.join(" ")
}

/// A filter word: a letter saying what it filters by and the FNV-1a hash of the value, in hex
/// (only letters and digits, whatever the value).
pub fn filter_word(tag: char, value: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in value.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{tag}{hash:016x}")
}

/// The filter word of the year a development happened in.
fn year_word(year: i32) -> String {
    filter_word('y', &year.to_string())
}

/// The filter word of the month a development happened in.
fn month_word(year: i32, month: u32) -> String {
    filter_word('m', &format!("{year}-{month:02}"))
}

/// The filter words of the years and months that together cover `from`..=`to` (whole years
/// where they fit, months at the edges): a time filter is answered by the index too, and the
/// exact bounds are checked on the few rows it hands out. `None` when no bound is given.
pub(crate) fn time_words(from: Option<&str>, to: Option<&str>) -> Option<Vec<String>> {
    if from.is_none() && to.is_none() {
        return None;
    }
    let month_of = |raw: Option<&str>, default: (i32, u32)| {
        raw.and_then(|r| chrono::DateTime::parse_from_rfc3339(r).ok())
            .map_or(default, |t| (t.year(), t.month()))
    };
    // `occurred_at` lies from 1900 to a few minutes from now (`moment`).
    let now = chrono::Utc::now();
    let (mut at, end) = (
        month_of(from, (1900, 1)),
        month_of(to, (now.year() + 1, 12)),
    );
    let mut words = Vec::new();
    while at <= end {
        let (year, month) = at;
        if month == 1 && (year < end.0 || end.1 == 12) {
            words.push(year_word(year));
            at = (year + 1, 1);
        } else {
            words.push(month_word(year, month));
            at = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
        }
    }
    Some(words)
}

/// A development's state as the filters name it.
pub fn state_name(state: DevelopmentStanding) -> &'static str {
    match state {
        DevelopmentStanding::PendingReview => "pending_review",
        DevelopmentStanding::Published => "published",
        DevelopmentStanding::Rejected => "rejected",
        DevelopmentStanding::Retracted => "retracted",
        DevelopmentStanding::Embargoed => "embargoed",
    }
}

/// The search key of a story's own document: negative, so never a development's position.
pub fn story_key(id: Uuid) -> i64 {
    let (hi, lo) = id.as_u64_pair();
    -(((hi ^ lo) >> 1) as i64) - 1
}

/// The full-text document a rebuild writes for a row of `developments` (its story and `doc`):
/// `(rowid, [headline, body, names, filters])` with the `occurred_at` of `search_keys`, or
/// `None` for a development no one can search (rejected). For the `read_path` benchmark, which
/// writes a rebuild's rows again without the fold; the contentless index cannot give them back.
#[doc(hidden)]
pub fn development_document(
    story: Uuid,
    doc: &str,
) -> Result<Option<(i64, [String; 4], String)>, serde_json::Error> {
    let d: DevelopmentView = serde_json::from_str(doc)?;
    let row = SearchRow::development_of(story, &d);
    Ok(row.text.map(|t| {
        (
            row.key,
            [t.headline, t.body, t.names, t.filters],
            t.occurred_at,
        )
    }))
}

impl SearchText {
    /// The document as a PostgreSQL `tsvector` literal: each folded word at its place, the
    /// headline weighted A, names B, the body D; the fields apart, so no phrase spans two.
    pub(crate) fn tsvector(&self) -> String {
        let mut lexemes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut at = 1usize;
        for (field, weight) in [(&self.headline, 'A'), (&self.names, 'B'), (&self.body, 'D')] {
            for word in field.split(' ').filter(|w| !w.is_empty()) {
                // PostgreSQL keeps positions up to 16383 (and at most 256 per word).
                lexemes
                    .entry(word)
                    .or_default()
                    .push(format!("{}{weight}", at.min(16_383)));
                at += 1;
            }
            at += 2;
        }
        let mut out = String::new();
        for (word, places) in lexemes {
            let places: Vec<String> = places.into_iter().take(256).collect();
            // Words hold only letters and digits: nothing to escape inside the quotes.
            let _ = write!(out, "'{word}':{} ", places.join(","));
        }
        out
    }

    /// The filters as a PostgreSQL `tsvector` literal.
    pub(crate) fn filters_tsvector(&self) -> String {
        self.filters
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

// ----- queries ------------------------------------------------------------------------------

/// Why a query cannot be searched for (a 400 naming `q`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("`q` is required: the words to search for")]
    Missing,
    #[error("`q` may be at most {MAX_QUERY_CHARS} characters")]
    TooLong,
    #[error("`q` has a `\"` that opens a phrase and none that closes it")]
    UnclosedQuote,
    #[error("`q` has no words to search for (letters or digits)")]
    NoWords,
    #[error("`q` may hold at most {MAX_TERMS} words or phrases, {MAX_WORDS} words in all")]
    TooManyTerms,
    #[error("a prefix in `q` needs at least {MIN_PREFIX_CHARS} letters or digits before `*`")]
    ShortPrefix,
}

/// One term of a query: a word, or a phrase of words in that order; `prefix` if its last word
/// stands for any word beginning with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub words: Vec<String>,
    pub prefix: bool,
}

/// A parsed query: every term must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub terms: Vec<Term>,
}

impl Query {
    /// Parses a reader's query: words separated by spaces, `"quoted phrases"`, and `word*` or
    /// `"a phrase"*` for prefixes. Anything else (`AND`, `NEAR(`, `-`, `:`) is just text: its
    /// letters and digits are words, the rest separates them.
    pub fn parse(raw: &str) -> Result<Self, QueryError> {
        if raw.trim().is_empty() {
            return Err(QueryError::Missing);
        }
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong);
        }
        let mut terms: Vec<Term> = Vec::new();
        let mut rest = raw;
        while !rest.is_empty() {
            let (chunk, phrase, after) = if let Some(inner) = rest.strip_prefix('"') {
                let end = inner.find('"').ok_or(QueryError::UnclosedQuote)?;
                (&inner[..end], true, &inner[end + 1..])
            } else {
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '"')
                    .unwrap_or(rest.len());
                (&rest[..end], false, &rest[end..])
            };
            // A `*` right after the chunk (or ending it) makes it a prefix.
            let (prefix, after) = match (phrase, after.strip_prefix('*')) {
                (true, Some(a)) => (true, a),
                (true, None) => (false, after),
                (false, _) => (chunk.trim_end().ends_with('*'), after),
            };
            let words: Vec<String> = words(chunk).into_iter().map(|(_, _, w)| w).collect();
            if !words.is_empty() {
                if prefix
                    && words
                        .last()
                        .is_some_and(|w| w.chars().count() < MIN_PREFIX_CHARS)
                {
                    return Err(QueryError::ShortPrefix);
                }
                let term = Term { words, prefix };
                if !terms.contains(&term) {
                    terms.push(term);
                }
            }
            rest = after.trim_start();
        }
        if terms.is_empty() {
            return Err(QueryError::NoWords);
        }
        let count: usize = terms.iter().map(|t| t.words.len()).sum();
        if terms.len() > MAX_TERMS || count > MAX_WORDS {
            return Err(QueryError::TooManyTerms);
        }
        Ok(Self { terms })
    }

    /// All the query's words as one phrase (the last a prefix if the last term is), when the
    /// query has more than one word: a document holding it exactly ranks first.
    pub fn as_phrase(&self) -> Option<Term> {
        let words: Vec<String> = self
            .terms
            .iter()
            .flat_map(|t| t.words.iter().cloned())
            .collect();
        // A prefix anywhere but at the end cannot be part of one phrase.
        let inner_prefix = self.terms.iter().rev().skip(1).any(|t| t.prefix);
        (words.len() > 1 && !inner_prefix).then(|| Term {
            words,
            prefix: self.terms.last().is_some_and(|t| t.prefix),
        })
    }

    /// The query as an FTS5 expression over the text columns. Every word is quoted, and holds
    /// only letters and digits.
    pub fn fts5(&self) -> String {
        self.terms
            .iter()
            .map(fts5_term)
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// The query as a PostgreSQL `tsquery` literal.
    pub fn tsquery(&self) -> String {
        self.terms
            .iter()
            .map(tsquery_term)
            .collect::<Vec<_>>()
            .join(" & ")
    }
}

/// The words each prefix of a query stands for (the index's own words that begin with it,
/// [`PREFIX_WORDS`] at most), by prefix.
pub(crate) type Expansions = BTreeMap<String, Vec<String>>;

impl Query {
    /// The prefixes of the query: the last word of each prefix term.
    pub(crate) fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.terms
            .iter()
            .filter(|t| t.prefix)
            .filter_map(|t| t.words.last().map(String::as_str))
    }

    /// The query as an FTS5 expression over the text columns, each prefix written out as the
    /// words it stands for (`known`). `None` if a prefix stands for no word: nothing matches.
    pub(crate) fn fts5_expanded(&self, known: &Expansions) -> Option<String> {
        let terms = self
            .terms
            .iter()
            .map(|t| fts5_term_expanded(t, known))
            .collect::<Option<Vec<_>>>()?;
        Some(terms.join(" AND "))
    }
}

/// A term as an FTS5 expression; a prefix term as the phrases its known words make
/// (`"un miss*"` → `("un mission" OR "un missile")`), never FTS5's own prefix query, which
/// merges the whole doclist of every word that begins with the prefix before it yields a
/// row. `None` if the prefix stands for no word.
pub(crate) fn fts5_term_expanded(term: &Term, known: &Expansions) -> Option<String> {
    let Some((last, rest)) = term.words.split_last().filter(|_| term.prefix) else {
        return Some(fts5_term(term));
    };
    let words = known.get(last).filter(|w| !w.is_empty())?;
    let phrases: Vec<String> = words
        .iter()
        .map(|w| {
            let mut phrase = rest.join(" ");
            if !phrase.is_empty() {
                phrase.push(' ');
            }
            phrase.push_str(w);
            // Words hold only letters and digits: nothing to escape inside the quotes.
            format!("\"{phrase}\"")
        })
        .collect();
    Some(format!(
        "{{headline body names}} : ({})",
        phrases.join(" OR ")
    ))
}

pub(crate) fn fts5_term(term: &Term) -> String {
    format!(
        "{{headline body names}} : \"{}\"{}",
        term.words.join(" "),
        if term.prefix { " *" } else { "" }
    )
}

pub(crate) fn tsquery_term(term: &Term) -> String {
    let n = term.words.len();
    let words: Vec<String> = term
        .words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if term.prefix && i + 1 == n {
                format!("'{w}':*")
            } else {
                format!("'{w}'")
            }
        })
        .collect();
    format!("( {} )", words.join(" <-> "))
}

/// Who is searching: readers see what is published or retracted; staff also what waits for
/// review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Public,
    Staff,
}

/// What a search asks for: the query, its filters and the page.
#[derive(Debug, Clone)]
pub struct Search {
    pub query: Query,
    pub story: Option<Uuid>,
    /// An actor's matching key (`Actor::normalise`).
    pub actor: Option<String>,
    pub kind: Option<newsroom_domain::DevelopmentKind>,
    /// Only developments in this state (the desk's filter: readers see only what is published
    /// or retracted anyway).
    pub status: Option<DevelopmentStanding>,
    /// `occurred_at` bounds, inclusive, as the views sort times.
    pub from: Option<String>,
    pub to: Option<String>,
    pub audience: Audience,
    pub offset: usize,
    pub limit: usize,
}

impl Search {
    /// The filter words every match must have, as FTS5 and as `tsquery`.
    fn filter_words(&self) -> Vec<String> {
        let mut words = Vec::new();
        if let Some(story) = self.story {
            words.push(filter_word('s', &story.to_string()));
        }
        if let Some(actor) = &self.actor {
            words.push(filter_word('a', actor));
        }
        if let Some(kind) = self.kind {
            words.push(filter_word('k', kind.as_str()));
        }
        if let Some(status) = self.status {
            words.push(filter_word('x', state_name(status)));
        }
        words
    }

    /// The whole FTS5 expression: the query over the text, the filters over `filters`.
    pub(crate) fn fts5(&self, query: &str) -> String {
        let mut parts = vec![query.to_owned()];
        for w in self.filter_words() {
            parts.push(format!("{{filters}} : \"{w}\""));
        }
        if let Some(times) = time_words(self.from.as_deref(), self.to.as_deref()) {
            let any: Vec<String> = times
                .iter()
                .map(|w| format!("{{filters}} : \"{w}\""))
                .collect();
            // An empty range (`to` before `from`) matches nothing: no document has `n`.
            parts.push(if any.is_empty() {
                "{filters} : \"n\"".to_owned()
            } else {
                format!("({})", any.join(" OR "))
            });
        }
        // Every document is either the readers' (`vp`) or the staff's (`vs`): staff see all,
        // readers all but the staff's. Said as `NOT vs`, not `AND vp`: FTS5 steps through
        // the doclist of each word of an `AND` over the whole stretch of the index that the
        // window's matches span, newest first, and `vp` is in nearly every document; `vs`,
        // the few waiting for review, is stepped through instead.
        let all = format!("({})", parts.join(" AND "));
        match self.audience {
            Audience::Public => format!("{all} NOT {{filters}} : \"{PENDING}\""),
            Audience::Staff => all,
        }
    }

    /// The filters as a `tsquery` literal over the `filters` column.
    pub(crate) fn filters_tsquery(&self) -> String {
        let mut parts: Vec<String> = self
            .filter_words()
            .into_iter()
            .map(|w| format!("'{w}'"))
            .collect();
        if let Some(times) = time_words(self.from.as_deref(), self.to.as_deref()) {
            let any: Vec<String> = times.iter().map(|w| format!("'{w}'")).collect();
            parts.push(if any.is_empty() {
                "'n'".to_owned()
            } else {
                format!("( {} )", any.join(" | "))
            });
        }
        parts.push(match self.audience {
            Audience::Public => format!("'{PUBLIC}'"),
            Audience::Staff => format!("( '{PUBLIC}' | '{PENDING}' )"),
        });
        parts.join(" & ")
    }

    /// Whether stories' own documents can match (they have no kind, actors or time).
    pub(crate) fn stories_too(&self) -> bool {
        self.actor.is_none()
            && self.kind.is_none()
            && self.status.is_none()
            && self.from.is_none()
            && self.to.is_none()
    }
}

/// A candidate found by the index, before it is shown.
#[derive(Debug)]
pub(crate) struct Hit {
    pub(crate) slug: String,
    pub(crate) story_headline: String,
    /// The story's stored head (for its summary) when the hit is the story itself.
    pub(crate) head: Option<String>,
    /// The development's document when the hit is one.
    pub(crate) doc: Option<String>,
    pub(crate) story_id: String,
}

/// What a page of a search found: the hits in rank order, and whether more follow.
#[derive(Debug)]
pub struct Found {
    pub hits: Vec<SearchHit>,
    pub more: bool,
}

/// One result: the story, the development (unless the story's own fields matched), and a
/// snippet of the text that matched, escaped, with `<mark>` around the words found.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    pub story: StoryRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub development: Option<DevelopmentRef>,
    /// HTML: the text escaped, then the matching words wrapped in `<mark>`.
    pub snippet: String,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StoryRef {
    pub id: Uuid,
    pub slug: String,
    pub headline: String,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DevelopmentRef {
    pub id: Uuid,
    pub kind: String,
    pub headline: String,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// `published`, `retracted` (found, and shown struck) or, for staff, `pending_review`.
    pub state: String,
    pub retracted: bool,
    /// The position that recorded it (the story page's anchor).
    pub position: i64,
}

/// The weight of a match in each field a hit is ranked by: headline, names, body (FTS5's
/// `bm25` weights were 10, 4 and 1 too).
const FIELD_WEIGHTS: [f64; 3] = [10.0, 4.0, 1.0];
/// A field's usual length in words, against which a field's own length is set (BM25's
/// average length, fixed rather than counted over the index).
const FIELD_WORDS: [f64; 3] = [10.0, 4.0, 60.0];
/// BM25's saturation of repeated words (`k1`) and its share of length normalisation (`b`).
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// The names a development gives — its actors, the accused and its source — as one text.
fn names(d: &DevelopmentView) -> String {
    let mut names: Vec<&str> = d.actors.iter().map(|a| a.name()).collect();
    names.extend(d.accused.iter().map(|a| a.name()));
    if let Some(s) = &d.source {
        names.push(s.name.as_str());
    }
    names.join(" · ")
}

/// What a development's hit is ranked by, read from its stored document (`DevelopmentView`)
/// without the rest of it: a window's hundreds of hits are each read for their rank.
#[derive(serde::Deserialize)]
struct RankedText<'a> {
    #[serde(borrow)]
    headline: Cow<'a, str>,
    #[serde(borrow)]
    body: Cow<'a, str>,
    #[serde(default, borrow)]
    actors: Vec<Named<'a>>,
    #[serde(default, borrow)]
    accused: Vec<Named<'a>>,
    #[serde(default, borrow)]
    source: Option<Named<'a>>,
}

/// An actor or a source, for its name only.
#[derive(serde::Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

impl Hit {
    /// The story's summary, from its stored head (when the hit is the story itself).
    fn summary(&self) -> String {
        self.head
            .as_deref()
            .and_then(|h| serde_json::from_str::<serde_json::Value>(h).ok())
            .and_then(|h| h.get("summary")?.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The texts a hit is ranked by: its headline, the names it gives (actors, accused,
    /// source) and its body; for a story's own document, its headline and summary.
    fn texts(&self) -> Result<[String; 3], serde_json::Error> {
        if let Some(doc) = &self.doc {
            let d: RankedText<'_> = serde_json::from_str(doc)?;
            let names: Vec<&str> = d
                .actors
                .iter()
                .chain(&d.accused)
                .chain(&d.source)
                .map(|n| n.name.as_ref())
                .collect();
            let names = names.join(" · ");
            return Ok([d.headline.into_owned(), names, d.body.into_owned()]);
        }
        let summary = self.summary();
        Ok([self.story_headline.clone(), String::new(), summary])
    }

    /// How well the hit matches `query`, from its own text: in each field, the words the
    /// query's terms match, saturating and set against the field's length as BM25 does, times
    /// the field's weight. Every hit of a window holds every term (they are all required), so
    /// an inverse document frequency would weigh the terms alike in every hit: it is left out,
    /// and with it any read beyond the hit itself.
    pub(crate) fn score(&self, query: &Query) -> Result<f64, serde_json::Error> {
        let texts = self.texts()?;
        let mut score = 0.0;
        for (i, text) in texts.iter().enumerate() {
            let words = words(text);
            if words.is_empty() {
                continue;
            }
            let found = matches(&words, query).iter().filter(|m| **m).count() as f64;
            let length = words.len() as f64 / FIELD_WORDS[i];
            score += FIELD_WEIGHTS[i] * found * (K1 + 1.0) / (found + K1 * (1.0 - B + B * length));
        }
        Ok(score)
    }

    /// The result shown for this hit, `None` if its rows no longer agree (a story gone).
    pub(crate) fn shown(&self, query: &Query) -> Result<Option<SearchHit>, serde_json::Error> {
        let Ok(id) = Uuid::parse_str(&self.story_id) else {
            return Ok(None);
        };
        let story = StoryRef {
            id,
            slug: self.slug.clone(),
            headline: self.story_headline.clone(),
        };
        if let Some(doc) = &self.doc {
            let d: DevelopmentView = serde_json::from_str(doc)?;
            let names = names(&d);
            let snippet = snippet(&[&d.body, &d.headline, &names], query);
            let state = state_name(d.state);
            return Ok(Some(SearchHit {
                story,
                development: Some(DevelopmentRef {
                    id: d.id,
                    kind: d.kind.as_str().to_owned(),
                    headline: d.headline.clone(),
                    occurred_at: d.occurred_at,
                    state: state.to_owned(),
                    retracted: d.state == DevelopmentStanding::Retracted,
                    position: d.position,
                }),
                snippet,
            }));
        }
        let summary = self.summary();
        let snippet = snippet(&[&summary, &self.story_headline], query);
        Ok(Some(SearchHit {
            story,
            development: None,
            snippet,
        }))
    }
}

// ----- snippets -----------------------------------------------------------------------------

/// Words of context shown around the first match.
const SNIPPET_BEFORE: usize = 8;
const SNIPPET_WORDS: usize = 32;

/// A snippet of the field in which the query matches most words (the first of those, else the
/// start of the first field): the text escaped first, then `<mark>` put around each matching
/// word — so nothing in the text can become markup.
pub fn snippet(fields: &[&str], query: &Query) -> String {
    let mut best: Option<(usize, &str, Vec<Word>, Vec<bool>)> = None;
    for field in fields {
        let words = words(field);
        let marked = matches(&words, query);
        let count = marked.iter().filter(|m| **m).count();
        if count > 0 && best.as_ref().is_none_or(|(c, ..)| count > *c) {
            best = Some((count, field, words, marked));
        }
    }
    if let Some((_, field, words, marked)) = best {
        let first = marked.iter().position(|m| *m).unwrap_or(0);
        return render(field, &words, &marked, first.saturating_sub(SNIPPET_BEFORE));
    }
    let field = fields.first().copied().unwrap_or("");
    let words = words(field);
    let marked = vec![false; words.len()];
    render(field, &words, &marked, 0)
}

/// Which words of a text the query's terms match (a phrase's words only where they follow
/// one another).
fn matches(words: &[Word], query: &Query) -> Vec<bool> {
    let mut marked = vec![false; words.len()];
    for term in &query.terms {
        let n = term.words.len();
        if n == 0 || words.len() < n {
            continue;
        }
        for start in 0..=words.len() - n {
            let hit = term.words.iter().enumerate().all(|(i, w)| {
                let word = &words[start + i].2;
                if term.prefix && i + 1 == n {
                    word.starts_with(w.as_str())
                } else {
                    word == w
                }
            });
            if hit {
                marked[start..start + n].iter_mut().for_each(|m| *m = true);
            }
        }
    }
    marked
}

fn escape(out: &mut String, text: &str) {
    let _ = maud::Escaper::new(out).write_str(text);
}

fn render(text: &str, words: &[Word], marked: &[bool], first: usize) -> String {
    let mut out = String::new();
    if words.is_empty() {
        escape(&mut out, text.chars().take(200).collect::<String>().trim());
        return out;
    }
    let last = (first + SNIPPET_WORDS).min(words.len());
    let (from, to) = (
        if first == 0 { 0 } else { words[first].0 },
        if last == words.len() {
            text.len()
        } else {
            words[last - 1].1
        },
    );
    if first > 0 {
        out.push('…');
    }
    let mut at = from;
    let mut i = first;
    while i < last {
        let (start, end, _) = &words[i];
        // Words from one run share its range: mark it once.
        if *start < at {
            i += 1;
            continue;
        }
        escape(&mut out, &text[at..*start]);
        if marked[i] {
            out.push_str("<mark>");
            escape(&mut out, &text[*start..*end]);
            out.push_str("</mark>");
        } else {
            escape(&mut out, &text[*start..*end]);
        }
        at = *end;
        i += 1;
    }
    escape(&mut out, &text[at..to]);
    if last < words.len() {
        out.push('…');
    }
    out.trim().to_owned()
}

/// The page shown of the hits read (one more than the page, if there are more).
pub(crate) fn found(mut hits: Vec<Hit>, s: &Search) -> Result<Found, crate::rows::ViewError> {
    let more = hits.len() > s.limit;
    hits.truncate(s.limit);
    let mut shown = Vec::with_capacity(hits.len());
    for hit in &hits {
        shown.extend(hit.shown(&s.query)?);
    }
    Ok(Found { hits: shown, more })
}

impl SearchRow {
    /// About how many bytes the row holds.
    pub(crate) fn approximate_size(&self) -> usize {
        let text = self.text.as_ref().map_or(0, |t| {
            t.headline.len() + t.body.len() + t.names.len() + t.filters.len() + t.occurred_at.len()
        });
        std::mem::size_of::<Self>() + self.story_id.len() + text
    }

    /// The document of development `d` of `story`.
    pub(crate) fn development(story: &StoryView, d: &DevelopmentView) -> Self {
        Self::development_of(story.id, d)
    }

    fn development_of(story: Uuid, d: &DevelopmentView) -> Self {
        let story_id = story.to_string();
        let visibility = match d.state {
            DevelopmentStanding::Published | DevelopmentStanding::Retracted => PUBLIC,
            // Staff only, as pending work is, until the embargo is lifted.
            DevelopmentStanding::PendingReview | DevelopmentStanding::Embargoed => PENDING,
            DevelopmentStanding::Rejected => {
                return Self {
                    key: d.position,
                    story_id,
                    text: None,
                }
            }
        };
        let (year, month) = (d.occurred_at.year(), d.occurred_at.month());
        let mut filters = vec![
            filter_word('s', &story_id),
            filter_word('k', d.kind.as_str()),
            filter_word('x', state_name(d.state)),
            year_word(year),
            month_word(year, month),
            visibility.to_owned(),
        ];
        filters.extend(
            d.actors
                .iter()
                .chain(&d.accused)
                .map(|a| filter_word('a', a.key())),
        );
        filters.sort();
        filters.dedup();
        Self {
            key: d.position,
            story_id,
            text: Some(SearchText {
                headline: fold(&d.headline),
                body: fold(&d.body),
                names: fold(&names(d)),
                filters: filters.join(" "),
                occurred_at: crate::rows::sortable_time(&d.occurred_at),
            }),
        }
    }

    /// The document of a story's own fields.
    pub(crate) fn story(view: &StoryView) -> Self {
        let story_id = view.id.to_string();
        Self {
            key: story_key(view.id),
            text: Some(SearchText {
                headline: fold(&view.headline),
                body: fold(&view.summary),
                names: String::new(),
                filters: format!("{} {PUBLIC}", filter_word('s', &story_id)),
                occurred_at: String::new(),
            }),
            story_id,
        }
    }
}

/// The filter word of everything readers see (published or retracted).
pub const PUBLIC: &str = "vp";

/// The filter word of developments waiting for review (staff only).
pub const PENDING: &str = "vs";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_text_folds_as_its_words_do() {
        for text in [
            "Campaign hack 12: the CEO's e-mail -- breached",
            "  leading and trailing  ",
            "ALL_CAPS_with_underscores and 3.14 digits",
            "",
            "!!!",
            "one",
        ] {
            let slow: Vec<String> = words(text).into_iter().map(|(_, _, w)| w).collect();
            assert_eq!(fold(text), slow.join(" "), "{text:?}");
        }
        assert_eq!(fold("The CEO's e-mail"), "the ceo s e mail");
    }

    #[test]
    fn folding_drops_accents_and_case() {
        assert_eq!(fold("Café  CRÈME, Ångström!"), "cafe creme angstrom");
        assert_eq!(fold("ﬁle ½"), "file 1 2");
        assert_eq!(fold("İran's"), "iran s");
    }

    #[test]
    fn queries_parse_into_words_phrases_and_prefixes() {
        let q = Query::parse(r#"Iran "UN mission" phish*"#).unwrap();
        assert_eq!(q.terms.len(), 3);
        assert_eq!(q.terms[1].words, vec!["un", "mission"]);
        assert!(q.terms[2].prefix);
        assert_eq!(
            q.fts5(),
            r#"{headline body names} : "iran" AND {headline body names} : "un mission" AND {headline body names} : "phish" *"#
        );
        assert_eq!(
            q.tsquery(),
            "( 'iran' ) & ( 'un' <-> 'mission' ) & ( 'phish':* )"
        );
    }

    #[test]
    fn prefixes_are_searched_for_as_the_words_they_stand_for() {
        let q = Query::parse(r#"iran "un miss"* phish*"#).unwrap();
        assert_eq!(q.prefixes().collect::<Vec<_>>(), ["miss", "phish"]);
        let mut known = Expansions::new();
        known.insert("miss".into(), vec!["missile".into(), "mission".into()]);
        known.insert("phish".into(), vec!["phishing".into()]);
        assert_eq!(
            q.fts5_expanded(&known).unwrap(),
            r#"{headline body names} : "iran" AND {headline body names} : ("un missile" OR "un mission") AND {headline body names} : ("phishing")"#
        );
        // The whole query as one phrase ends with the same words.
        assert!(
            q.as_phrase().is_none(),
            "`miss*` inside the query ends no phrase"
        );
        let q = Query::parse("un miss*").unwrap();
        assert_eq!(
            fts5_term_expanded(&q.as_phrase().unwrap(), &known).unwrap(),
            r#"{headline body names} : ("un missile" OR "un mission")"#
        );
        // A prefix no word begins with matches nothing.
        known.insert("phish".into(), vec![]);
        assert_eq!(Query::parse("phish*").unwrap().fts5_expanded(&known), None);
    }

    #[test]
    fn ascii_and_other_text_fold_alike() {
        for text in ["Election, ELECTORAL; électoral 2024x", "A-b_c d9 Zürich"] {
            let slow: Vec<String> = text
                .split(|c: char| !(c.is_alphanumeric() || is_combining_mark(c)))
                .filter(|w| !w.is_empty())
                .map(|w| {
                    w.nfkd()
                        .filter(|c| !is_combining_mark(*c))
                        .flat_map(char::to_lowercase)
                        .collect()
                })
                .collect();
            let fast: Vec<String> = words(text).into_iter().map(|(_, _, w)| w).collect();
            assert_eq!(fast, slow, "{text}");
        }
    }

    #[test]
    fn hostile_queries_are_refused_or_made_harmless() {
        assert_eq!(Query::parse("\""), Err(QueryError::UnclosedQuote));
        assert_eq!(Query::parse("*"), Err(QueryError::NoWords));
        assert_eq!(Query::parse(")"), Err(QueryError::NoWords));
        assert_eq!(Query::parse("a*"), Err(QueryError::ShortPrefix));
        assert_eq!(Query::parse(&"x".repeat(10_000)), Err(QueryError::TooLong));
        let near = Query::parse("NEAR(a b) AND OR").unwrap();
        assert_eq!(
            near.terms
                .iter()
                .map(|t| t.words.join(" "))
                .collect::<Vec<_>>(),
            vec!["near a", "b", "and", "or"]
        );
        let quotes = Query::parse(r#"'; DROP TABLE x; --"#).unwrap();
        assert!(quotes.fts5().matches('"').count() % 2 == 0);
        assert!(!quotes.tsquery().contains(';'));
    }

    #[test]
    fn snippets_escape_before_marking() {
        let q = Query::parse("script").unwrap();
        let s = snippet(&["<b>a</b> <script>alert(1)</script> done"], &q);
        assert_eq!(
            s,
            "&lt;b&gt;a&lt;/b&gt; &lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt; done"
        );
        let q = Query::parse(r#""un mission""#).unwrap();
        let s = snippet(&["Iran's UN mission said the UN will not"], &q);
        assert_eq!(
            s,
            "Iran's <mark>UN</mark> <mark>mission</mark> said the UN will not"
        );
    }

    #[test]
    fn time_filters_cover_their_range_with_years_and_months() {
        let words = time_words(
            Some("2024-11-15T00:00:00.000000Z"),
            Some("2026-02-01T00:00:00.000000Z"),
        )
        .unwrap();
        assert_eq!(
            words,
            [
                month_word(2024, 11),
                month_word(2024, 12),
                year_word(2025),
                month_word(2026, 1),
                month_word(2026, 2)
            ]
        );
        let whole = time_words(
            Some("2020-01-01T00:00:00.000000Z"),
            Some("2020-12-31T23:59:59.999999Z"),
        )
        .unwrap();
        assert_eq!(whole, [year_word(2020)]);
        let backwards = time_words(
            Some("2026-01-01T00:00:00.000000Z"),
            Some("2020-01-01T00:00:00.000000Z"),
        )
        .unwrap();
        assert!(backwards.is_empty());
        assert!(time_words(None, None).is_none());
        let open = time_words(None, Some("2026-01-01T00:00:00.000000Z")).unwrap();
        assert!(open.len() < 140, "{}", open.len());
    }

    #[test]
    fn tsvector_literals_keep_fields_apart() {
        let text = SearchText {
            headline: "un mission".into(),
            body: "mission".into(),
            names: String::new(),
            filters: "vp sabc".into(),
            occurred_at: String::new(),
        };
        assert_eq!(text.tsvector(), "'mission':2A,7D 'un':1A ");
        assert_eq!(text.filters_tsvector(), "'vp' 'sabc'");
    }
}
