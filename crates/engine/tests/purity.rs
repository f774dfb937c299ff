//! The engine's purity, checked on its source (STYLE.md habit 2): its manifest declares
//! no dependencies, and no file under `src/` names a clock, OS randomness, a file,
//! socket, process, thread, environment or terminal API, or an I/O crate. It owns the
//! list of forbidden paths; it must not be weakened to let a file through — move the I/O
//! to the shell instead. (The workspace-level rule that the engine depends on no other
//! workspace crate is in `xtask/tests/tidy.rs`.)
//!
//! This test itself reads files, which is fine outside the engine's `src/`; clippy's
//! disallowed-method list in `clippy.toml` applies to all of the crate's targets, hence
//! the `allow` below.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::{Path, PathBuf};

/// Paths and calls the engine must not name, with why. A pattern that starts (ends) with
/// an identifier character only matches where no identifier character precedes
/// (follows) it, so `rand::` does not match `operand::` and `libc` not `libcore`.
const FORBIDDEN: &[(&str, &str)] = &[
    ("Instant::now", "reads the clock: take `now` as an argument"),
    ("SystemTime", "reads the wall clock: take `now` as an argument"),
    ("UNIX_EPOCH", "wall-clock time: take `now` as an argument"),
    ("std::time::Instant", "the OS monotonic clock: use engine::Instant, given by the caller"),
    ("thread_rng", "OS-seeded randomness: keep a seeded PRNG in the engine's state"),
    ("rand::", "a randomness crate: keep a seeded PRNG in the engine's state"),
    ("getrandom", "OS randomness"),
    ("std::fs", "files"),
    ("std::net", "sockets"),
    ("std::process", "processes"),
    ("std::thread", "threads"),
    ("std::env", "the process environment"),
    ("std::os", "OS-specific APIs"),
    ("io::stdin", "the terminal"),
    ("io::stdout", "the terminal"),
    ("io::stderr", "the terminal"),
    ("println!", "printing: return an Output instead"),
    ("eprintln!", "printing: return an Output instead"),
    ("print!", "printing: return an Output instead"),
    ("eprint!", "printing: return an Output instead"),
    ("dbg!", "printing: return an Output instead"),
    ("tokio", "an async I/O runtime"),
    ("libc", "raw OS calls"),
];

/// Manifest sections that would give the engine a dependency. Dev-dependencies are
/// allowed (tests may use helpers), though none are needed today.
fn is_dependency_section(header: &str) -> bool {
    let name = header.trim().trim_start_matches('[').trim_end_matches(']').trim();
    let last = name.rsplit('.').next().unwrap_or(name);
    let table_of_one = name.contains("dependencies.") && !name.contains("dev-dependencies.");
    matches!(last, "dependencies" | "build-dependencies") || table_of_one
}

#[test]
fn manifest_declares_no_dependencies() {
    let manifest_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    let found = dependency_entries(&manifest);
    assert!(
        found.is_empty(),
        "crates/engine/Cargo.toml must declare no dependencies (the engine is pure; \
         do the I/O in the shell), found:\n  {}",
        found.join("\n  ")
    );
}

/// `Cargo.toml:LINE: entry` for every entry in a dependency section.
fn dependency_entries(manifest: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_dependencies = false;
    for (index, line) in manifest.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            in_dependencies = is_dependency_section(line);
            if in_dependencies && line.contains("dependencies.") {
                found.push(format!("Cargo.toml:{}: {line}", index + 1));
            }
        } else if in_dependencies && !line.is_empty() {
            found.push(format!("Cargo.toml:{}: {line}", index + 1));
        }
    }
    found
}

#[test]
fn source_names_no_clock_randomness_or_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() >= 5, "found only {files:?} under {}", src.display());
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(file);
        for (line, pattern, why) in forbidden_uses(&text) {
            found.push(format!("crates/engine/{}:{line}: `{pattern}` ({why})", shown.display()));
        }
    }
    assert!(
        found.is_empty(),
        "the engine must not touch time, randomness or I/O (STYLE.md habit 2):\n  {}",
        found.join("\n  ")
    );
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files.sort();
}

/// Every forbidden use in `source` as (line number, pattern, why): forbidden patterns in
/// code outside comments and literals, and forbidden paths reached through `use` trees
/// such as `use std::{fs, time::{Instant, SystemTime}};`.
fn forbidden_uses(source: &str) -> Vec<(usize, &'static str, &'static str)> {
    let code = blank_comments_and_literals(source);
    let mut found = Vec::new();
    for (index, line) in code.lines().enumerate() {
        for (pattern, why) in FORBIDDEN {
            if contains_token(line, pattern) {
                found.push((index + 1, *pattern, *why));
            }
        }
    }
    for (line, path) in use_paths(&code) {
        let path = path.replace(' ', "");
        for (pattern, why) in FORBIDDEN {
            let already = found.iter().any(|(l, p, _)| *l == line && p == pattern);
            if !already && contains_token(&path, pattern) {
                found.push((line, *pattern, *why));
            }
        }
    }
    found.sort();
    found
}

fn is_ident(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// `pattern` occurs in `text` not glued to a longer identifier on either side.
fn contains_token(text: &str, pattern: &str) -> bool {
    let starts_ident = pattern.chars().next().is_some_and(is_ident);
    let ends_ident = pattern.chars().last().is_some_and(is_ident);
    text.match_indices(pattern).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + pattern.len()..].chars().next();
        let glued_before = starts_ident && before.is_some_and(is_ident);
        let glued_after = ends_ident && after.is_some_and(is_ident);
        !glued_before && !glued_after
    })
}

/// Replaces comments and the contents of string, byte-string, raw-string and char
/// literals with spaces, keeping every newline so line numbers stay right.
fn blank_comments_and_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        let next = chars.get(i + 1).copied();
        let prev_is_ident = i > 0 && is_ident(chars[i - 1]);
        if ch == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&chars, i, prev_is_ident) {
            // r"..." / r#"..."# / br"...": ends at a quote followed by as many hashes.
            while chars[i] != '"' {
                out.push(chars[i]);
                i += 1;
            }
            out.push('"');
            i += 1;
            while i < chars.len() {
                let closes =
                    chars[i] == '"' && (0..hashes).all(|k| chars.get(i + 1 + k) == Some(&'#'));
                if closes {
                    out.push('"');
                    i += 1;
                    break;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if ch == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if ch == '\'' && !prev_is_ident && is_char_literal(&chars, i) {
            out.push('\'');
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(' ');
                    i += 1;
                }
            }
            out.push('\'');
            i += 1;
        } else {
            out.push(ch);
            i += 1;
        }
    }
    out
}

/// The number of `#`s when a raw string literal starts at `i`.
fn raw_string_start(chars: &[char], i: usize, prev_is_ident: bool) -> Option<usize> {
    if prev_is_ident {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some(hashes)
}

/// A `'` at `i` opens a char literal (`'a'`, `'\n'`, `'\u{1F600}'`), not a lifetime.
fn is_char_literal(chars: &[char], i: usize) -> bool {
    match chars.get(i + 1) {
        Some('\\') => true,
        Some(_) => chars.get(i + 2) == Some(&'\''),
        None => false,
    }
}

/// Every path a `use` declaration brings in, fully spelled out, with the declaration's
/// line: `use std::{fs, time::Instant as T};` gives `std::fs` and `std::time::Instant`.
fn use_paths(code: &str) -> Vec<(usize, String)> {
    let mut paths = Vec::new();
    let mut search_from = 0;
    while let Some(offset) = code[search_from..].find("use ") {
        let at = search_from + offset;
        search_from = at + 4;
        let before = code[..at].chars().next_back();
        if before.is_some_and(is_ident) {
            continue;
        }
        let Some(end) = code[at..].find(';') else { break };
        let line = code[..at].matches('\n').count() + 1;
        let tree: String = code[at + 4..at + end].split_whitespace().collect::<Vec<_>>().join(" ");
        let mut flattened = Vec::new();
        flatten_use_tree(&tree, "", &mut flattened);
        paths.extend(flattened.into_iter().map(|path| (line, path)));
    }
    paths
}

fn flatten_use_tree(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim().trim_start_matches("::");
    match tree.find('{') {
        None => {
            let path = tree.split(" as ").next().unwrap_or(tree).trim();
            out.push(format!("{prefix}{path}"));
        }
        Some(open) => {
            let head = &tree[..open];
            let close = tree.rfind('}').unwrap_or(tree.len());
            let inner = &tree[open + 1..close];
            let prefix = format!("{prefix}{head}");
            for part in split_top_level(inner) {
                if !part.trim().is_empty() {
                    flatten_use_tree(part, &prefix, out);
                }
            }
        }
    }
}

/// Splits a use list at its top-level commas.
fn split_top_level(list: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (at, ch) in list.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&list[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts
}

// The checker's own tests: each shows it finds what it must and skips what it must.

fn patterns(source: &str) -> Vec<(usize, &'static str)> {
    forbidden_uses(source).into_iter().map(|(line, pattern, _)| (line, pattern)).collect()
}

#[test]
fn checker_finds_direct_calls_with_their_line() {
    let source = "fn f() {\n    let t = std::time::Instant::now();\n    println!(\"{t:?}\");\n}\n";
    assert_eq!(patterns(source), [(2, "Instant::now"), (2, "std::time::Instant"), (3, "println!")]);
}

#[test]
fn checker_finds_paths_inside_use_trees() {
    let source = "use std::{\n    collections::BTreeMap,\n    fs,\n    time::{Duration, SystemTime as Wall},\n};\nuse std::io::{self, stdout};\n";
    // A use tree reports at its first line; a name on a later line is found there too.
    assert_eq!(
        patterns(source),
        [(1, "SystemTime"), (1, "std::fs"), (4, "SystemTime"), (6, "io::stdout")]
    );
}

#[test]
fn checker_ignores_comments_strings_and_near_names() {
    let source = r####"
//! The shell calls std::fs and Instant::now, never the engine.
/* println!("x") /* nested std::net */ still a comment */
const TEXT: &str = "std::process::Command and thread_rng() in prose";
const RAW: &str = r#"tokio "quoted" std::env"#;
const C: char = '"';
fn operand() -> u32 { let librarian = 1; let _x: &'static str = "libc"; librarian }
fn reprint() {}
"####;
    assert_eq!(patterns(source), []);
}

#[test]
fn checker_reports_dependency_sections() {
    let manifest = "[package]\nname = \"engine\"\n\n[dependencies]\n# none\n\n[dev-dependencies]\nproptest = \"1\"\n\n[target.'cfg(unix)'.dependencies]\nlibc = \"0.2\"\n[dependencies.rand]\nversion = \"0.8\"\n";
    assert_eq!(
        dependency_entries(manifest),
        [
            "Cargo.toml:11: libc = \"0.2\"",
            "Cargo.toml:12: [dependencies.rand]",
            "Cargo.toml:13: version = \"0.8\"",
        ]
    );
    assert!(dependency_entries("[dependencies]\n\n[lints]\nworkspace = true\n").is_empty());
}
