//! The workspace's shape, as ARCHITECTURE.md states it: crates depend downwards only, and no
//! module of a crate imports a module that imports it back. Read from the sources and manifests
//! as they are, so a new `use` or dependency that breaks either fails here, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each crate's layer: a crate may depend only on crates of a lower layer.
const LAYERS: [(&str, u8); 10] = [
    ("domain", 0),
    ("log", 1),
    ("web", 2),
    ("readmodel", 2),
    ("command", 3),
    ("projection", 3),
    ("notifier", 3),
    ("newsroom", 4),
    ("fuzzing", 5),
    ("testkit", 5),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

fn layer(krate: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(name, _)| *name == krate)
        .unwrap_or_else(|| panic!("crates/{krate} has no layer in LAYERS"))
        .1
}

/// The workspace crates `crates/<krate>` depends on (its `[dependencies]`, not dev ones).
fn dependencies(krate: &str) -> Vec<String> {
    let manifest =
        std::fs::read_to_string(workspace().join("crates").join(krate).join("Cargo.toml"))
            .expect("a crate's manifest");
    let mut in_dependencies = false;
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
        } else if in_dependencies {
            let name = line.split(['=', '.', ' ']).next().unwrap_or("");
            if name == "newsroom" {
                out.push("newsroom".to_owned());
            } else if let Some(rest) = name.strip_prefix("newsroom-") {
                out.push(rest.to_owned());
            }
        }
    }
    out
}

fn crates() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(workspace().join("crates"))
        .expect("crates/")
        .map(|e| {
            e.expect("an entry of crates/")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn crates_depend_downwards_only() {
    let mut seen = 0;
    for krate in crates() {
        for dependency in dependencies(&krate) {
            seen += 1;
            assert!(
                layer(&dependency) < layer(&krate),
                "crates/{krate} (layer {}) depends on newsroom-{dependency} (layer {})",
                layer(&krate),
                layer(&dependency)
            );
        }
    }
    // The manifests were read: the binary alone depends on seven of the others.
    assert!(seen >= 7, "{seen} dependencies read");
}

/// The top-level modules of a crate's `src` each of its top-level modules names through
/// `crate::` (or `super::` from a top-level file), outside comments and `#[cfg(test)]` code.
fn module_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let top_level: BTreeSet<String> = std::fs::read_dir(src)
        .expect("src/")
        .filter_map(|e| {
            let path = e.expect("an entry of src/").path();
            let stem = path.file_stem()?.to_string_lossy().into_owned();
            (path.is_dir() || path.extension().is_some_and(|x| x == "rs")).then_some(stem)
        })
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.to_owned()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("a directory of src/") {
                files.push(entry.expect("an entry").path());
            }
            continue;
        }
        if path.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let relative = path.strip_prefix(src).expect("under src/");
        let module = relative
            .components()
            .next()
            .expect("a file")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if !top_level.contains(&module) {
            continue;
        }
        let top_file = relative.components().count() == 1;
        let text = std::fs::read_to_string(&path).expect("a source file");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let named = imports.entry(module.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for prefix in ["crate::", "super::"] {
                if prefix == "super::" && !top_file {
                    continue;
                }
                for (at, _) in line.match_indices(prefix) {
                    let rest = &line[at + prefix.len()..];
                    let group = rest
                        .strip_prefix('{')
                        .map(|g| g.split('}').next().unwrap_or(""));
                    let names: Vec<&str> = match group {
                        Some(group) => group.split(',').collect(),
                        None => vec![rest],
                    };
                    for name in names {
                        let name: String = name
                            .trim()
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if name != module && top_level.contains(&name) {
                            named.insert(name);
                        }
                    }
                }
            }
        }
    }
    imports
}

/// A cycle of modules, if `imports` has one.
fn a_cycle(imports: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn walk(
        module: &str,
        imports: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in imports.get(module).into_iter().flatten() {
            if let Some(cycle) = walk(next, imports, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    imports
        .keys()
        .find_map(|m| walk(m, imports, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mut edges = 0;
    for krate in crates() {
        let src = workspace().join("crates").join(&krate).join("src");
        let imports = module_imports(&src);
        edges += imports.values().map(BTreeSet::len).sum::<usize>();
        assert_eq!(
            a_cycle(&imports),
            None,
            "crates/{krate}: modules in a cycle"
        );
    }
    // The sources were read: the crates' modules name each other hundreds of times.
    assert!(edges > 100, "{edges} imports read");
}

#[test]
fn a_cycle_is_found() {
    let imports: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_owned(), to.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        a_cycle(&imports),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let mut acyclic = imports.clone();
    acyclic.get_mut("c").unwrap().clear();
    assert_eq!(a_cycle(&acyclic), None);
}
