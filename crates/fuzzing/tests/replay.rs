//! The fuzz targets on stable, so CI exercises them: every file of the checked-in corpus
//! (`fuzz/corpus/<target>/`, the seeds and anything a fuzzing run found), then a bounded run of
//! inputs made by mutating corpus files and of plain random bytes (proptest, which shrinks and
//! reports a failing input). `NEWSROOM_FUZZ_CASES` sets the number of generated inputs per
//! target (default 1,000); a long run on a developer's machine is the same test with a big number.

use std::path::{Path, PathBuf};

use newsroom_fuzzing::{run, TARGETS};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} is missing: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("a readable corpus file");
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

fn cases() -> u32 {
    std::env::var("NEWSROOM_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

#[test]
fn every_corpus_file_runs_without_a_failure() {
    for target in TARGETS {
        let files = corpus(target);
        assert!(
            files.len() >= 5,
            "{target}: the corpus has only {} files",
            files.len()
        );
        for (path, bytes) in files {
            let outcome = std::panic::catch_unwind(|| run(target, &bytes));
            assert!(outcome.is_ok(), "{target} failed on {}", path.display());
        }
    }
}

/// One mutation of an input: overwrite, insert or remove a byte at a place (taken modulo the
/// input's length), or splice in a piece of JSON that often changes what a parser does.
#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Splice(usize, &'static str),
}

const PIECES: &[&str] = &[
    "\"",
    "\\u0000",
    "\\ud800",
    "null",
    "[]",
    "{}",
    "-1",
    "1e999",
    "18446744073709551616",
    "\"StoryClosed\"",
    "\n",
    " ",
    ",",
    ":",
    "\u{202e}",
    "\u{fffd}",
    "é",
    "\r\n",
    "v1,",
    "whsec_",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), proptest::sample::select(PIECES))
            .prop_map(|(i, p)| Mutation::Splice(i, p)),
    ]
}

fn mutate(mut input: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match *m {
            Mutation::Set(i, b) if !input.is_empty() => {
                let i = at(i, input.len());
                input[i] = b;
            }
            Mutation::Insert(i, b) => {
                let i = at(i, input.len() + 1);
                input.insert(i, b);
            }
            Mutation::Remove(i) if !input.is_empty() => {
                let i = at(i, input.len());
                input.remove(i);
            }
            Mutation::Splice(i, piece) => {
                let i = at(i, input.len() + 1);
                input.splice(i..i, piece.bytes());
            }
            _ => {}
        }
    }
    input
}

fn fuzz(target: &'static str) {
    let seeds: Vec<Vec<u8>> = corpus(target).into_iter().map(|(_, b)| b).collect();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let mutated = (
        proptest::sample::select(seeds),
        proptest::collection::vec(mutation(), 1..8),
    )
        .prop_map(|(seed, mutations)| mutate(seed, &mutations));
    let random = proptest::collection::vec(any::<u8>(), 0..256);
    let inputs = prop_oneof![4 => mutated, 1 => random];
    runner
        .run(&inputs, |input| {
            run(target, &input);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{target}: {e}"));
}

#[test]
fn command_json_survives_mutated_and_random_input() {
    fuzz("command_json");
}

#[test]
fn event_decode_survives_mutated_and_random_input() {
    fuzz("event_decode");
}

#[test]
fn webhook_verify_survives_mutated_and_random_input() {
    fuzz("webhook_verify");
}
