//! The crate's module graph has no circles (issue 16), and README's Architecture table says
//! what each module imports.
//!
//! A module is a top-level module of `src/` (`src/NAME.rs` or `src/NAME/**.rs`); it imports
//! another when its code (test modules included; comments and string literals not) names a
//! `crate::OTHER` path, in a `use` or inline, `use crate::{a, b::c}` groups included. Paths
//! inside one module (`super::`, `crate::SELF::...`) are not edges: a module may be layered
//! inside as it likes. `lib.rs` and `main.rs` only declare and dispatch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges of a circle another change removes, allowed until it lands. Each must still exist
/// (the test fails on a stale entry, so the list only shrinks).
const KNOWN_CIRCLE_EDGES: &[(&str, &str)] = &[];

/// One module's imports: other module -> where it is named (`file:line`, first few).
type Imports = BTreeMap<String, Vec<String>>;

/// The source with comments, string and character literals blanked out (newlines kept, so
/// line numbers stay right).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == b'r'
            && (next == Some(b'"') || next == Some(b'#'))
            && !i
                .checked_sub(1)
                .is_some_and(|p| b[p].is_ascii_alphanumeric() || b[p] == b'_')
        {
            // Raw string r"..." / r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let end = (j + 1..b.len())
                .find(|&k| b[k..].starts_with(&close))
                .map_or(b.len(), |k| k + close.len());
            for &x in &b[i..end] {
                blank(&mut out, x);
            }
            i = end;
        } else if c == b'"' {
            blank(&mut out, c);
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            if i < b.len() {
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let end = if next == Some(b'\\') {
                (i + 2..b.len()).find(|&k| b[k] == b'\'').map(|k| k + 1)
            } else {
                // One character (UTF-8 up to 4 bytes) then a quote.
                (i + 2..(i + 6).min(b.len()))
                    .find(|&k| b[k] == b'\'')
                    .filter(|&k| {
                        std::str::from_utf8(&b[i + 1..k]).is_ok_and(|s| s.chars().count() == 1)
                    })
            };
            match end {
                Some(e) => {
                    for &x in &b[i..e.max(i + 1)] {
                        blank(&mut out, x);
                    }
                    i = e.max(i + 1);
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).expect("only ASCII bytes were replaced")
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first path segment of each item of a `{...}` group starting at `s` (after `{`).
fn group_heads(s: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in s.char_indices() {
        match c {
            '{' => {
                depth += 1;
                item_start = false;
            }
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if c.is_whitespace() => {}
            _ if item_start && depth == 0 => {
                heads.push(ident_at(&s[i..]));
                item_start = false;
            }
            _ => {}
        }
    }
    heads
}

/// The top-level modules each `crate::` path in `code` names, with its line.
fn crate_paths(code: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (pos, _) in code.match_indices("crate::") {
        // `$crate::` and `foo_crate::` are not this crate.
        if code[..pos]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        {
            continue;
        }
        let line = code[..pos].matches('\n').count() + 1;
        let rest = code[pos + "crate::".len()..].trim_start();
        let heads = match rest.strip_prefix('{') {
            Some(group) => group_heads(group),
            None => vec![ident_at(rest)],
        };
        found.extend(heads.into_iter().map(|h| (h.to_string(), line)));
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module graph of the crate at `root`: module -> imports.
fn module_graph(root: &Path) -> BTreeMap<String, Imports> {
    let src = root.join("src");
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            let mut v = Vec::new();
            rust_files(&p, &mut v);
            files.entry(name).or_default().extend(v);
        } else if p.extension().is_some_and(|x| x == "rs") && name != "lib" && name != "main" {
            files.entry(name).or_default().push(p);
        }
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, paths) in &files {
        let mut imports = Imports::new();
        for path in paths {
            let text = std::fs::read_to_string(path).unwrap();
            for (other, line) in crate_paths(&code_only(&text)) {
                if &other == module || !modules.contains(&other) {
                    continue;
                }
                let at = format!(
                    "{}:{line}",
                    path.strip_prefix(root).unwrap_or(path).display()
                );
                let sites = imports.entry(other).or_default();
                if sites.len() < 3 {
                    sites.push(at);
                }
            }
        }
        graph.insert(module.clone(), imports);
    }
    graph
}

/// The circles of the graph (ignoring `allowed` edges): each group of modules that reach one
/// another, with the edges inside it and where each is named.
fn circles(graph: &BTreeMap<String, Imports>, allowed: &[(&str, &str)]) -> Vec<String> {
    let edge = |a: &str, b: &str| {
        !allowed.contains(&(a, b)) && graph.get(a).is_some_and(|i| i.contains_key(b))
    };
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(n) = todo.pop() {
            for m in graph[&n].keys() {
                if edge(&n, m) && seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<String, BTreeSet<String>> =
        graph.keys().map(|m| (m.clone(), reach(m))).collect();
    let mut groups = BTreeSet::new();
    for (m, r) in &reached {
        let group: BTreeSet<String> = r
            .iter()
            .filter(|o| reached[*o].contains(m))
            .cloned()
            .chain(std::iter::once(m.clone()))
            .collect();
        if group.len() > 1 {
            groups.insert(group);
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let edges: Vec<String> = g
                .iter()
                .flat_map(|a| g.iter().map(move |b| (a, b)))
                .filter(|(a, b)| edge(a, b))
                .map(|(a, b)| format!("{a} -> {b} ({})", graph[a][b].join(", ")))
                .collect();
            format!(
                "{:?}:\n    {}",
                g.iter().collect::<Vec<_>>(),
                edges.join("\n    ")
            )
        })
        .collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_module_graph_has_no_circles() {
    let graph = module_graph(&root());
    assert!(graph.len() > 10, "found the modules of src/: {graph:?}");
    let stale: Vec<_> = KNOWN_CIRCLE_EDGES
        .iter()
        .filter(|(a, b)| !graph.get(*a).is_some_and(|i| i.contains_key(*b)))
        .collect();
    assert!(
        stale.is_empty(),
        "these allowed edges are gone; remove them from KNOWN_CIRCLE_EDGES: {stale:?}"
    );
    let found = circles(&graph, KNOWN_CIRCLE_EDGES);
    assert!(
        found.is_empty(),
        "import circles between the modules of src/ (issue 16: a module imports only modules \
         below it):\n  {}",
        found.join("\n  ")
    );
}

/// README's Architecture table lists, for each module, exactly the modules it imports.
#[test]
fn readme_architecture_table_lists_the_imports() {
    let graph = module_graph(&root());
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Architecture")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has an Architecture section");
    let mut table: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (module, imports) = (cells[1], cells[cells.len() - 2]);
        let module = module.trim_matches('`').trim_end_matches('/').to_string();
        // Names in backticks that are modules (a note like `presets` (`md5`) names an item).
        let named = imports
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| graph.contains_key(*n))
            .map(str::to_string)
            .collect();
        table.insert(module, named);
    }
    let code: BTreeMap<String, BTreeSet<String>> = graph
        .iter()
        .map(|(m, i)| (m.clone(), i.keys().cloned().collect()))
        .collect();
    let mut wrong = Vec::new();
    for (m, imports) in &code {
        match table.get(m) {
            None => wrong.push(format!("{m}: no row (imports {imports:?})")),
            Some(t) if t != imports => wrong.push(format!(
                "{m}: README says {t:?}, the code imports {imports:?} ({:?})",
                graph[m]
            )),
            Some(_) => {}
        }
    }
    for m in table.keys().filter(|m| !code.contains_key(*m)) {
        wrong.push(format!("{m}: a row but no module src/{m}"));
    }
    assert!(
        wrong.is_empty(),
        "README's Architecture table is out of date:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_scanner_reads_paths_not_comments_or_strings() {
    let src = r##"
use crate::api::Kind; // crate::fake_a
use crate::{policy::Offline, validate::{self, Outcome}};
/* crate::fake_b /* nested crate::fake_c */ */
let s = "crate::fake_d \" crate::fake_e";
let r = r#"crate::fake_f "quoted" "#;
let c = '"'; let l: &'a str = x; crate::server::run();
    let y = $crate::fake_g; my_crate::fake_h;
"##;
    let got: Vec<(String, usize)> = crate_paths(&code_only(src));
    let got: Vec<(&str, usize)> = got.iter().map(|(m, l)| (m.as_str(), *l)).collect();
    assert_eq!(
        got,
        vec![("api", 2), ("policy", 3), ("validate", 3), ("server", 7)]
    );
}
