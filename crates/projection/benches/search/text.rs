//! The text: a vocabulary drawn with a Zipf distribution, real words of news English first, then
//! made-up ones, and the collocations.

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
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub(crate) struct Vocabulary {
    pub(crate) words: Vec<String>,
    /// The cumulative Zipf distribution over `words`.
    cdf: Vec<f64>,
}

impl Vocabulary {
    pub(crate) fn new() -> Self {
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
    pub(crate) fn rank(&self, rank: usize) -> &str {
        &self.words[rank - 1]
    }

    /// `n` words of running text (collocations among them), sentences capitalised.
    pub(crate) fn text(&self, rng: &mut Rng, n: usize, sentences: bool) -> String {
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
