//! The architecture check: the layering of `src/` as a test.
//!
//! Cyclone's layers, lowest first. A file may use its own layer and the
//! layers below it, never one above; no two files may depend on each other,
//! directly or around a longer loop; and no source file may pass
//! [`MAX_LINES`]. The table below *is* the map of the crate: a new
//! top-level module fails this test until it is given a layer here.
//!
//! How a dependency is read: every path that starts with `crate::`,
//! `super::`, `self::`, a child module's name, or `cyclone::` (in the
//! binary) is resolved to the file that defines what it names. A path
//! through a re-export (`pub use a::Thing` in a `mod.rs`) is followed to
//! the file that defines `Thing`. A module's own re-exports are its table
//! of contents, not a dependency, so they draw no arrow; every other
//! reference does, in code or in a `use`. A `mod.rs` using its own
//! submodules is composition (the module is made of them) and draws no
//! arrow either; a submodule naming its parent's items does. `lib.rs` is
//! the crate's facade and is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layers, lowest first. The key is a top-level module of `src/` (or
/// `bin` for `src/bin/`); the number is its rank.
const LAYERS: &[(&str, u8)] = &[
    ("sys", 0),
    ("stats", 0),
    ("ioloop", 1),
    ("iostream", 2),
    ("netutil", 3),
    ("tcpserver", 3),
    ("tcpclient", 3),
    ("proxy_protocol", 3),
    ("socket_activation", 3),
    ("handover", 3),
    ("workers", 3),
    ("process", 3),
    ("tls", 3),
    ("http1", 4),
    ("websocket", 5),
    ("httpclient", 5),
    ("web", 6),
    // Hidden re-exports of internals for the fuzz targets: above everything
    // it re-exports, so nothing in the library can lean on it.
    ("fuzzing", 7),
    // Test helpers for users' applications: a server and a client.
    ("testing", 7),
    ("bin", 8),
];

/// Beyond this a file almost always holds two ideas (the style guide aims
/// for ~600; 800 leaves room for an idea with many tests beside it).
const MAX_LINES: usize = 800;

#[test]
fn the_source_tree_has_no_cycles_upward_arrows_or_long_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &src, &mut files);
    assert!(
        files.len() > 10,
        "found only {} files under src/",
        files.len()
    );
    let problems = check(&files);
    assert!(
        problems.is_empty(),
        "architecture check failed:\n  {}",
        problems.join("\n  ")
    );
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// Checks a source tree given as (path under `src/`, text) pairs and returns
/// one line per problem, each naming the files involved.
fn check(files: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let modules: BTreeMap<String, &str> = files
        .iter()
        .filter_map(|(path, _)| module_of(path).map(|m| (m, path.as_str())))
        .collect();
    let parsed: BTreeMap<&str, Parsed> = files
        .iter()
        .map(|(path, text)| (path.as_str(), parse(path, text, &modules)))
        .collect();
    // A module's name table: what each name `use`d at its top level stands for.
    let tables: BTreeMap<String, &BTreeMap<String, Vec<String>>> = parsed
        .iter()
        .filter_map(|(path, p)| module_of(path).map(|m| (m, &p.table)))
        .collect();

    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (path, text) in files {
        let lines = text.lines().count();
        if lines > MAX_LINES {
            problems.push(format!(
                "{path}: {lines} lines (limit {MAX_LINES}): split it by idea"
            ));
        }
        if path == "lib.rs" {
            continue;
        }
        let Some(rank) = layer_of(path) else {
            problems.push(format!(
                "{path}: its top-level module has no layer in LAYERS"
            ));
            continue;
        };
        for reference in &parsed[path.as_str()].references {
            let target_module = resolve(reference, &modules, &tables, 0);
            let Some(&target) = modules.get(&target_module) else {
                continue;
            };
            if target == path || target == "lib.rs" || is_submodule(target, path) {
                continue;
            }
            edges.entry(path).or_default().insert(target);
            if let Some(target_rank) = layer_of(target)
                && target_rank > rank
            {
                problems.push(format!(
                    "{path} -> {target}: an arrow up (layer {rank} uses layer {target_rank}) via `{}`",
                    reference.join("::")
                ));
            }
        }
    }
    for cycle in cycles(&edges) {
        let arrows: Vec<String> = cycle
            .iter()
            .flat_map(|from| {
                edges[from]
                    .iter()
                    .filter(|to| cycle.contains(to))
                    .map(move |to| format!("{from} -> {to}"))
            })
            .collect();
        problems.push(format!(
            "import cycle between {}: {}",
            cycle.join(", "),
            arrows.join(", ")
        ));
    }
    problems
}

/// A module is made of its submodules: `ioloop/mod.rs` building its loop
/// from `ioloop/timers.rs` is composition, not an import, so that arrow is
/// not drawn (the child naming its parent's items still is).
fn is_submodule(child: &str, parent: &str) -> bool {
    match (module_of(child), module_of(parent)) {
        (Some(c), Some(p)) => parent.ends_with("mod.rs") && c.starts_with(&format!("{p}::")),
        _ => false,
    }
}

/// `ioloop/poller/mod.rs` -> `ioloop::poller`; `lib.rs` -> ``; binaries have
/// no module path the library can name.
fn module_of(path: &str) -> Option<String> {
    if path.starts_with("bin/") {
        return None;
    }
    let stem = path.strip_suffix(".rs")?;
    let stem = stem.strip_suffix("/mod").unwrap_or(stem);
    Some(if stem == "lib" {
        String::new()
    } else {
        stem.replace('/', "::")
    })
}

fn layer_of(path: &str) -> Option<u8> {
    let top = path.split(['/', '.']).next()?;
    LAYERS
        .iter()
        .find(|(name, _)| *name == top)
        .map(|&(_, rank)| rank)
}

/// Follows `path` (absolute, without `crate`) to the module that defines
/// what it names, through the re-exports of the modules it passes.
fn resolve(
    path: &[String],
    modules: &BTreeMap<String, &str>,
    tables: &BTreeMap<String, &BTreeMap<String, Vec<String>>>,
    depth: usize,
) -> String {
    let mut split = path.len();
    while split > 0 && !modules.contains_key(&path[..split].join("::")) {
        split -= 1;
    }
    let module = path[..split].join("::");
    // A name the module imported from elsewhere in the crate: follow it
    // (bounded, in case two tables name each other).
    if let (Some(name), Some(table)) = (path.get(split), tables.get(&module))
        && let Some(target) = table.get(name).filter(|_| depth < 16)
    {
        let mut next = target.clone();
        next.extend_from_slice(&path[split + 1..]);
        return resolve(&next, modules, tables, depth + 1);
    }
    module
}

/// What one file says about the rest of the crate.
struct Parsed {
    /// Every crate path it uses, absolute, re-exports left out.
    references: Vec<Vec<String>>,
    /// Names its top-level `use` items bring in, with their absolute paths.
    table: BTreeMap<String, Vec<String>>,
}

fn parse(path: &str, text: &str, modules: &BTreeMap<String, &str>) -> Parsed {
    let tokens = tokenize(&strip_comments_and_literals(text));
    let in_bin = path.starts_with("bin/");
    let file_module: Vec<String> = module_of(path)
        .filter(|m| !m.is_empty())
        .map(|m| m.split("::").map(str::to_string).collect())
        .unwrap_or_default();
    let mut parsed = Parsed {
        references: Vec::new(),
        table: BTreeMap::new(),
    };
    // Inline `mod name { .. }` blocks (tests, mostly): the module path and
    // the brace depth each one opened at.
    let mut inline: Vec<(usize, usize)> = Vec::new();
    let mut module = file_module.clone();
    let mut depth = 0;
    let mut statement_start = 0;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        match t {
            "{" => {
                if i >= 2 && tokens[i - 2] == "mod" {
                    module.push(tokens[i - 1].clone());
                    inline.push((depth, module.len()));
                }
                depth += 1;
            }
            "}" => {
                depth -= 1;
                if inline.last().is_some_and(|&(d, _)| d == depth) {
                    inline.pop();
                    module.pop();
                }
            }
            ";" => statement_start = i + 1,
            _ => {}
        }
        if matches!(t, "{" | "}") {
            statement_start = i + 1;
        }
        let starts_path = tokens.get(i + 1).is_some_and(|n| n == "::")
            && (i == 0 || tokens[i - 1] != "::")
            && (matches!(t, "crate" | "super" | "self")
                || (in_bin && t == "cyclone")
                || modules.contains_key(&join(&module, t)));
        if !starts_path {
            i += 1;
            continue;
        }
        let (paths, end) = path_tree(&tokens, i);
        let head = &tokens[statement_start..i];
        let is_use = head.last().is_some_and(|h| h == "use");
        let is_reexport = is_use && head.iter().any(|h| h == "pub");
        let top_level = depth == 0;
        for (segments, alias) in paths {
            let Some(absolute) = absolutize(&segments, &module, in_bin) else {
                continue;
            };
            if is_use && top_level {
                let name = alias.unwrap_or_else(|| absolute.last().cloned().unwrap_or_default());
                if name != "*" && !absolute.is_empty() {
                    parsed.table.insert(name, absolute.clone());
                }
            }
            if !is_reexport {
                parsed.references.push(absolute);
            }
        }
        i = end;
    }
    parsed
}

fn join(module: &[String], name: &str) -> String {
    let mut parts = module.to_vec();
    parts.push(name.to_string());
    parts.join("::")
}

/// Turns a path as written into one from the crate root; `None` for paths
/// that leave the crate.
fn absolutize(segments: &[String], module: &[String], in_bin: bool) -> Option<Vec<String>> {
    let mut out = module.to_vec();
    let mut rest = segments;
    match segments.first().map(String::as_str) {
        Some("crate") => {
            out.clear();
            rest = &segments[1..];
        }
        Some("cyclone") if in_bin => {
            out.clear();
            rest = &segments[1..];
        }
        Some("self") => rest = &segments[1..],
        _ => {}
    }
    for (k, segment) in rest.iter().enumerate() {
        if segment == "super" {
            out.pop()?;
        } else if segment == "self" && k > 0 {
            // `a::{self}` names `a` itself.
        } else {
            out.push(segment.clone());
        }
    }
    Some(out)
}

/// A path as written, and the name it is imported as (`as` alias).
type UsePath = (Vec<String>, Option<String>);

/// Reads `a::b::{c, d::{e as f}}` starting at `start`; returns each full path
/// with its alias, and the index just past the path.
fn path_tree(tokens: &[String], start: usize) -> (Vec<UsePath>, usize) {
    let mut prefix = vec![tokens[start].clone()];
    let mut i = start + 1;
    while tokens.get(i).is_some_and(|t| t == "::") {
        match tokens.get(i + 1).map(String::as_str) {
            Some("{") => {
                let mut out = Vec::new();
                i += 2;
                while i < tokens.len() && tokens[i] != "}" {
                    if tokens[i] == "," {
                        i += 1;
                        continue;
                    }
                    let (inner, end) = path_tree(tokens, i);
                    for (mut segments, alias) in inner {
                        let mut full = prefix.clone();
                        full.append(&mut segments);
                        out.push((full, alias));
                    }
                    i = end;
                }
                return (out, i + 1);
            }
            Some(segment) => {
                prefix.push(segment.to_string());
                i += 2;
            }
            None => break,
        }
    }
    let alias = if tokens.get(i).is_some_and(|t| t == "as") {
        tokens.get(i + 1).cloned()
    } else {
        None
    };
    let end = if alias.is_some() { i + 2 } else { i };
    (vec![(prefix, alias)], end)
}

/// Identifiers, `::` and single punctuation characters.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".to_string());
            i += 2;
        } else {
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
            i += 1;
        }
    }
    tokens
}

/// Blanks out comments, string and character literals, so that neither a
/// doc example nor a string such as "crate::x" reads as a dependency.
fn strip_comments_and_literals(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let next = b.get(i + 1).copied();
        if b[i] == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if b[i] == '/' && next == Some('*') {
            let mut nesting = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    nesting += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    nesting -= 1;
                    i += 2;
                    if nesting == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if b[i] == 'r' && matches!(next, Some('"') | Some('#')) && !ident_before(&b, i) {
            // Raw string r"..", r#".."#: ends at a quote and as many hashes.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(b[i]);
                i += 1;
                continue;
            }
            j += 1;
            while j < b.len() && !(b[j] == '"' && (1..=hashes).all(|k| b.get(j + k) == Some(&'#')))
            {
                j += 1;
            }
            i = j + 1 + hashes;
            out.push_str("\"\"");
        } else if b[i] == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == '\'' && (next == Some('\\') || b.get(i + 2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\u{..}'); a lifetime has no
            // closing quote right after one character.
            i += 1;
            while i < b.len() && b[i] != '\'' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn ident_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles<'a>(edges: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(v: &'a str, edges: &BTreeMap<&'a str, BTreeSet<&'a str>>, s: &mut State<'a>) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, edges, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for &v in edges.keys() {
        if !state.index.contains_key(v) {
            visit(v, edges, &mut state);
        }
    }
    state.found
}

// The check on small made-up trees: each kind of problem is found, and the
// rules that keep it quiet (re-exports, inline test modules) hold.

fn tree(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

#[test]
fn an_import_cycle_between_two_files_is_reported() {
    let problems = check(&tree(&[
        ("lib.rs", "pub mod http1;"),
        ("http1/mod.rs", "mod conn; mod server;"),
        (
            "http1/conn.rs",
            "use super::server::App; pub struct Connection;",
        ),
        (
            "http1/server.rs",
            "use super::conn::Connection; pub struct App;",
        ),
    ]));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("import cycle between http1/conn.rs, http1/server.rs"),
        "{problems:?}"
    );
}

#[test]
fn an_arrow_to_a_higher_layer_is_reported() {
    let problems = check(&tree(&[
        ("lib.rs", "pub mod ioloop; pub mod process;"),
        (
            "ioloop/mod.rs",
            "fn f() { crate::process::LOOP_CREATED.store(true); }",
        ),
        ("process.rs", "pub static LOOP_CREATED: u8 = 0;"),
    ]));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("ioloop/mod.rs -> process.rs: an arrow up"),
        "{problems:?}"
    );
}

#[test]
fn a_path_through_a_reexport_is_followed_to_the_defining_file() {
    // web/app.rs names `super::Request`, which web/mod.rs re-exports from
    // request.rs: the arrow is app -> request, and mod.rs's re-exports draw
    // none, so there is no cycle with mod.rs.
    let problems = check(&tree(&[
        ("lib.rs", "pub mod web;"),
        (
            "web/mod.rs",
            "mod app; mod request; pub use app::App; pub use request::Request;",
        ),
        ("web/app.rs", "use super::Request; pub struct App;"),
        ("web/request.rs", "use super::App; pub struct Request;"),
    ]));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("web/app.rs, web/request.rs")),
        "{problems:?}"
    );
}

#[test]
fn a_test_module_using_its_own_file_draws_no_arrow() {
    let problems = check(&tree(&[
        ("lib.rs", "pub mod web;"),
        ("web/mod.rs", "mod app; pub use app::App;"),
        (
            "web/app.rs",
            "pub struct App;\n#[cfg(test)]\nmod tests { use super::*; use super::App; }",
        ),
    ]));
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn paths_in_comments_and_strings_are_not_dependencies() {
    let problems = check(&tree(&[
        ("lib.rs", "pub mod ioloop; pub mod web;"),
        (
            "ioloop/mod.rs",
            "// crate::web::App\nconst S: &str = \"crate::web::App\"; const R: &str = r#\"crate::web::x\"#;",
        ),
        ("web/mod.rs", "pub struct App;"),
    ]));
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn a_module_using_its_own_submodule_is_composition_not_a_cycle() {
    let problems = check(&tree(&[
        ("lib.rs", "pub mod iostream;"),
        (
            "iostream/mod.rs",
            "mod read; pub struct IOStream; fn f() { read::fill(); }",
        ),
        ("iostream/read.rs", "use super::IOStream; pub fn fill() {}"),
    ]));
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn a_file_over_the_line_limit_is_reported() {
    let long = "fn f() {}\n".repeat(MAX_LINES + 1);
    let problems = check(&tree(&[("lib.rs", "pub mod web;"), ("web/mod.rs", &long)]));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("web/mod.rs: 801 lines"),
        "{problems:?}"
    );
}

#[test]
fn a_top_level_module_without_a_layer_is_reported() {
    let problems = check(&tree(&[("lib.rs", "pub mod gadgets;"), ("gadgets.rs", "")]));
    assert_eq!(
        problems,
        vec!["gadgets.rs: its top-level module has no layer in LAYERS".to_string()]
    );
}
