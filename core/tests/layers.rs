//! The core's modules form layers (the crate doc's module map): every `crate::`
//! path in a module's production code must name a module of a lower layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module -> layer, read from the crate doc's table (`//! | 3 | `a`, `b` | ... |`).
fn declared_layers(lib: &str) -> BTreeMap<String, u32> {
    let mut layers = BTreeMap::new();
    for line in lib.lines() {
        let Some(row) = line.strip_prefix("//! | ") else {
            continue;
        };
        let mut cells = row.split(" | ");
        let (Some(layer), Some(modules)) = (cells.next(), cells.next()) else {
            continue;
        };
        let Ok(layer) = layer.trim().parse::<u32>() else {
            continue;
        };
        for module in modules.split(", ") {
            let name = module.trim().trim_matches('`').to_string();
            assert!(
                layers.insert(name.clone(), layer).is_none(),
                "{name} is in two layers"
            );
        }
    }
    layers
}

/// Names the crate root re-exports (`pub use config::{A, B}`), with their module.
fn root_names(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let code: String = lib
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for statement in code.split(';') {
        let Some(path) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let (module, rest) = path.split_once("::").expect("pub use module::...");
        for name in rest.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = name.trim();
            if !name.is_empty() {
                names.insert(name.to_string(), module.to_string());
            }
        }
    }
    names
}

/// Production code of a file: no comments, no inline `mod tests`.
fn production_code(source: &str) -> String {
    let end = source
        .find("#[cfg(test)]\nmod tests")
        .unwrap_or(source.len());
    source[..end]
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules each file's code names through `crate::`.
fn edges(src: &Path, root: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
            continue;
        }
        let relative = path.strip_prefix(src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        let name = path.file_name().unwrap().to_string_lossy();
        if top == "lib" || name == "tests.rs" || !name.ends_with(".rs") {
            continue;
        }
        let code = production_code(&std::fs::read_to_string(&path).unwrap());
        assert!(
            !code.contains("crate::{"),
            "{}: name each module in its own `use crate::module::...`",
            relative.display()
        );
        for (at, _) in code.match_indices("crate::") {
            if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue; // `shadow_crate::`, not this crate
            }
            let name: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let module = if name.starts_with(char::is_uppercase) {
                root.get(&name)
                    .unwrap_or_else(|| {
                        panic!("{}: crate::{name} is no root re-export", relative.display())
                    })
                    .clone()
            } else {
                name
            };
            if module != top {
                edges.entry(top.clone()).or_default().insert(module);
            }
        }
    }
    edges
}

#[test]
fn every_import_of_the_core_points_down_its_layers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(dir.join("lib.rs")).unwrap();
    let layers = declared_layers(&lib);
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| {
            l.strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))
        })
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let mapped: BTreeSet<&str> = layers.keys().map(String::as_str).collect();
    assert_eq!(
        declared, mapped,
        "every module of lib.rs has one row in the module map"
    );
    let mut upward = Vec::new();
    for (from, targets) in edges(&dir, &root_names(&lib)) {
        for to in targets {
            let (a, b) = (layers[&from], layers[&to]);
            println!("{from} ({a}) -> {to} ({b})");
            if b >= a {
                upward.push(format!("{from} (layer {a}) uses {to} (layer {b})"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not point down:\n{}",
        upward.join("\n")
    );
}
