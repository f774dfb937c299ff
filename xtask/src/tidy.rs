//! `cargo xtask tidy` (also a step of `cargo xtask test`): two source rules that no
//! compiler checks, over every Rust file of the workspace (`crates/`, `xtask/`, `fuzz/`;
//! never a `target/` or hidden directory). It owns the rules and their exact wording
//! below; it reads files only, it must never rewrite one, and it parses them with `syn`
//! (spans from `proc-macro2`'s `span-locations`), not with patterns.
//!
//! - **Every file opens with a `//!` paragraph**: its first line is `//! ` and text. No
//!   blank line, attribute (`#![...]`) or plain comment may come before it: no file of
//!   the workspace needs one there, and inner attributes may follow the module doc.
//! - **No non-test function is longer than [`FN_LINES_MAX`] lines unless a comment says
//!   why.** A function is every `fn` with a body (free, in an `impl`, a trait's default,
//!   nested in another function); its length counts from the line of its `fn` keyword
//!   to the line of its closing brace, both included (doc comments and attributes do
//!   not count). The why is a plain comment line `// Long because: <reason>` in the
//!   block of plain `//` comment lines directly above the `fn` line, that is after the
//!   function's doc comment and attributes, with a reason that is true. Test code is
//!   exempt: files under a `tests/` or `benches/` directory (integration tests, their
//!   support, benchmarks), modules, functions and impls marked `#[cfg(test)]` (or
//!   `#[cfg(all(test, ...))]`) with everything inside them, files declared by such a
//!   module (`#[cfg(test)] mod tests;`), and `#[test]`-like functions (any attribute
//!   whose last path segment is `test`, such as `#[tokio::test]`).
//!
//! Each offence is reported as `path:line: what`, paths relative to the workspace
//! root, in path order.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use syn::visit::Visit;

/// The longest a non-test function may be, in lines, without a why-comment.
pub const FN_LINES_MAX: usize = 100;

/// What the comment line that allows a longer function starts with.
pub const LONG_BECAUSE: &str = "// Long because:";

/// The directories under the workspace root whose Rust files are checked.
pub const ROOTS: &[&str] = &["crates", "xtask", "fuzz"];

/// Directories whose files are test code (integration tests, benchmarks).
const TEST_DIRS: &[&str] = &["tests", "benches"];

/// `cargo xtask tidy`: runs both checks over the workspace; fails if anything is amiss.
pub fn run() -> anyhow::Result<ExitCode> {
    let offences = report(&crate::repo_root())?;
    Ok(if offences == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs both checks over the workspace at `root`, prints every offence (on stderr) or
/// that there is none, and returns how many there are.
pub fn report(root: &Path) -> anyhow::Result<usize> {
    let offences = check_workspace(root)?;
    for offence in &offences {
        eprintln!("{offence}");
    }
    if offences.is_empty() {
        println!(
            "tidy: every file opens with //!, no function over {FN_LINES_MAX} lines unexplained"
        );
    } else {
        eprintln!("tidy: {} offence(s); the rules are in xtask/src/tidy.rs", offences.len());
    }
    Ok(offences.len())
}

/// Every offence in the workspace at `root`, as `path:line: what`, in path order.
pub fn check_workspace(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    for dir in ROOTS {
        collect_rust_files(&root.join(dir), &mut files)?;
    }
    files.sort();
    let mut sources = Vec::with_capacity(files.len());
    for path in &files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let relative = path.strip_prefix(root).unwrap_or(path).to_path_buf();
        sources.push((relative, text));
    }
    Ok(check_sources(&sources))
}

/// The offences in `sources` (path relative to the workspace root, text), which stand
/// for the whole set of files: a `#[cfg(test)] mod name;` in one makes another test code.
pub fn check_sources(sources: &[(PathBuf, String)]) -> Vec<String> {
    let mut offences = Vec::new();
    let mut parsed = Vec::new();
    for (path, text) in sources {
        if let Some(offence) = opening_offence(text) {
            offences.push((path.clone(), 1, offence));
        }
        match syn::parse_file(text) {
            Ok(file) => parsed.push((path, text, file)),
            Err(error) => {
                let line = error.span().start().line;
                offences.push((path.clone(), line, format!("does not parse: {error}")));
            }
        }
    }
    let test_files = test_module_files(parsed.iter().map(|(path, _, file)| (*path, file)));
    for (path, text, file) in &parsed {
        if is_test_path(path) || test_files.contains(*path) {
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        let mut finder = LongFunctions { in_test: false, found: Vec::new() };
        finder.visit_file(file);
        for long in finder.found {
            if !explained(&lines, long.fn_line) {
                let what = format!(
                    "fn {} is {} lines (over {FN_LINES_MAX}): split it, or add \
                     `{LONG_BECAUSE} <reason>` directly above the fn",
                    long.name, long.lines
                );
                offences.push((path.to_path_buf(), long.fn_line, what));
            }
        }
    }
    offences.sort();
    offences
        .into_iter()
        .map(|(path, line, what)| format!("{}:{line}: {what}", path.display()))
        .collect()
}

/// Appends every `.rs` file under `dir` (if it exists) to `files`, skipping `target/`
/// and hidden directories.
fn collect_rust_files(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            if name != "target" && !name.starts_with('.') {
                collect_rust_files(&path, files)?;
            }
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// Why the text does not open with a `//!` paragraph, if it does not.
fn opening_offence(text: &str) -> Option<String> {
    let first = text.lines().next().unwrap_or("");
    match first.strip_prefix("//!") {
        Some(rest) if !rest.trim().is_empty() => None,
        Some(_) => Some("the opening //! line is empty: the paragraph starts on line 1".into()),
        None => Some("does not open with a //! paragraph (line 1 must be `//! ...`)".into()),
    }
}

/// Whether a path (relative to the workspace root) lies in a test or bench directory.
fn is_test_path(path: &Path) -> bool {
    path.parent().is_some_and(|dir| {
        dir.components().any(|part| TEST_DIRS.iter().any(|test| part.as_os_str() == *test))
    })
}

/// The files that `#[cfg(test)] mod name;` declarations make test code, with the files
/// those declare in turn.
fn test_module_files<'a>(
    files: impl Iterator<Item = (&'a PathBuf, &'a syn::File)>,
) -> BTreeSet<PathBuf> {
    let mut declared = Vec::new();
    for (path, file) in files {
        let mut finder = ModuleFiles { in_test: false, dir: module_dir(path), found: Vec::new() };
        finder.visit_file(file);
        declared.extend(finder.found.into_iter().map(|(child, test)| (path.clone(), child, test)));
    }
    let mut tests: BTreeSet<PathBuf> = BTreeSet::new();
    loop {
        let before = tests.len();
        for (parent, children, test) in &declared {
            if *test || tests.contains(parent) {
                tests.extend(children.iter().cloned());
            }
        }
        if tests.len() == before {
            return tests;
        }
    }
}

/// The directory where the modules a file declares live: beside it for `lib.rs`,
/// `main.rs` and `mod.rs`, else in the directory named after it.
fn module_dir(path: &Path) -> PathBuf {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let stem = path.file_stem().unwrap_or_default();
    if ["lib", "main", "mod"].iter().any(|root| stem == *root) {
        dir
    } else {
        dir.join(stem)
    }
}

/// Whether the attributes make an item test code: `#[cfg(test)]`,
/// `#[cfg(all(.., test, ..))]`, or an attribute whose path ends in `test`.
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        if path.segments.last().is_some_and(|last| last.ident == "test") {
            return true;
        }
        path.is_ident("cfg") && attr.parse_args::<syn::Meta>().is_ok_and(|meta| cfg_is_test(&meta))
    })
}

/// Whether a `cfg` predicate holds only in test builds.
fn cfg_is_test(meta: &syn::Meta) -> bool {
    match meta {
        syn::Meta::Path(path) => path.is_ident("test"),
        syn::Meta::List(list) if list.path.is_ident("all") => list
            .parse_args_with(
                syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated,
            )
            .is_ok_and(|all| all.iter().any(cfg_is_test)),
        _ => false,
    }
}

/// Whether the plain comment lines directly above line `fn_line` (1-based) hold a
/// `// Long because: <reason>` line with a reason.
fn explained(lines: &[&str], fn_line: usize) -> bool {
    lines[..fn_line.saturating_sub(1).min(lines.len())]
        .iter()
        .rev()
        .map(|line| line.trim())
        .take_while(|line| line.starts_with("//") && !line.starts_with("///"))
        .filter(|line| !line.starts_with("//!"))
        .any(|line| line.strip_prefix(LONG_BECAUSE).is_some_and(|why| !why.trim().is_empty()))
}

/// A function over the limit.
struct Long {
    name: String,
    /// The line of its `fn` keyword (1-based).
    fn_line: usize,
    lines: usize,
}

/// Finds the non-test functions of one file that are over the limit.
struct LongFunctions {
    in_test: bool,
    found: Vec<Long>,
}

impl LongFunctions {
    /// Visits an item's insides as test code if its attributes say so.
    fn within(&mut self, attrs: &[syn::Attribute], visit: impl FnOnce(&mut Self)) {
        let outer = self.in_test;
        self.in_test |= is_test(attrs);
        visit(self);
        self.in_test = outer;
    }

    fn measure(&mut self, sig: &syn::Signature, block: &syn::Block) {
        if self.in_test {
            return;
        }
        let fn_line = sig.fn_token.span.start().line;
        let end_line = block.brace_token.span.close().end().line;
        let lines = end_line + 1 - fn_line;
        if lines > FN_LINES_MAX {
            self.found.push(Long { name: sig.ident.to_string(), fn_line, lines });
        }
    }
}

impl<'ast> Visit<'ast> for LongFunctions {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        self.within(&item.attrs, |this| syn::visit::visit_item_mod(this, item));
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        self.within(&item.attrs, |this| syn::visit::visit_item_impl(this, item));
    }

    fn visit_item_trait(&mut self, item: &'ast syn::ItemTrait) {
        self.within(&item.attrs, |this| syn::visit::visit_item_trait(this, item));
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        self.within(&item.attrs, |this| {
            this.measure(&item.sig, &item.block);
            syn::visit::visit_item_fn(this, item);
        });
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        self.within(&item.attrs, |this| {
            this.measure(&item.sig, &item.block);
            syn::visit::visit_impl_item_fn(this, item);
        });
    }

    fn visit_trait_item_fn(&mut self, item: &'ast syn::TraitItemFn) {
        self.within(&item.attrs, |this| {
            if let Some(block) = &item.default {
                this.measure(&item.sig, block);
            }
            syn::visit::visit_trait_item_fn(this, item);
        });
    }
}

/// Finds the `mod name;` declarations of one file: the candidate files of each, and
/// whether the declaration is test code.
struct ModuleFiles {
    in_test: bool,
    /// Where this file's child modules live (a nested inline `mod` adds its name).
    dir: PathBuf,
    found: Vec<(Vec<PathBuf>, bool)>,
}

impl<'ast> Visit<'ast> for ModuleFiles {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        let test = self.in_test || is_test(&item.attrs);
        let name = item.ident.to_string();
        let Some((_, items)) = &item.content else {
            let path_attr = item.attrs.iter().find_map(|attr| match &attr.meta {
                syn::Meta::NameValue(pair) if pair.path.is_ident("path") => match &pair.value {
                    syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(path), .. }) => {
                        Some(path.value())
                    }
                    _ => None,
                },
                _ => None,
            });
            let candidates = match path_attr {
                Some(path) => vec![self.dir.join(path)],
                None => {
                    vec![self.dir.join(format!("{name}.rs")), self.dir.join(&name).join("mod.rs")]
                }
            };
            self.found.push((candidates.into_iter().map(normalize).collect(), test));
            return;
        };
        let (outer_test, outer_dir) = (self.in_test, self.dir.clone());
        self.in_test = test;
        self.dir = self.dir.join(&name);
        for inner in items {
            self.visit_item(inner);
        }
        (self.in_test, self.dir) = (outer_test, outer_dir);
    }
}

/// A relative path with its `..` parts resolved where they can be.
fn normalize(path: PathBuf) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function whose body has `body` lines, so `body + 2` in all.
    fn function(name: &str, body: usize) -> String {
        let mut text = format!("fn {name}() {{\n");
        for i in 0..body {
            text.push_str(&format!("    let _x{i} = {i};\n"));
        }
        text.push_str("}\n");
        text
    }

    fn check(files: &[(&str, &str)]) -> Vec<String> {
        let sources: Vec<(PathBuf, String)> =
            files.iter().map(|(path, text)| (PathBuf::from(path), text.to_string())).collect();
        check_sources(&sources)
    }

    #[test]
    fn a_file_must_open_with_a_doc_paragraph() {
        let good = "//! What this owns.\n\nfn f() {}\n";
        assert!(check(&[("crates/a/src/lib.rs", good)]).is_empty());
        for bad in [
            "\n//! What this owns.\n",
            "#![no_main]\n//! What this owns.\n",
            "// What this owns.\n",
            "/// What this owns.\nfn f() {}\n",
            "//!\n//! What this owns.\n",
            "",
        ] {
            let offences = check(&[("crates/a/src/lib.rs", bad)]);
            assert_eq!(offences.len(), 1, "{bad:?}: {offences:?}");
            assert!(offences[0].starts_with("crates/a/src/lib.rs:1: "), "{offences:?}");
        }
        let attribute_after = "//! A fuzz target.\n\n#![no_main]\n\nfn f() {}\n";
        assert!(check(&[("fuzz/fuzz_targets/f.rs", attribute_after)]).is_empty());
    }

    #[test]
    fn a_long_function_is_reported_with_its_line() {
        let limit = format!("//! Doc.\n{}", function("at_limit", FN_LINES_MAX - 2));
        assert!(check(&[("crates/a/src/lib.rs", &limit)]).is_empty());
        let text =
            format!("//! Doc.\n\n/// Doc.\n#[inline]\n{}", function("long", FN_LINES_MAX - 1));
        assert_eq!(
            check(&[("crates/a/src/lib.rs", &text)]),
            ["crates/a/src/lib.rs:5: fn long is 101 lines (over 100): split it, or add \
              `// Long because: <reason>` directly above the fn"]
        );
    }

    #[test]
    fn methods_trait_defaults_and_nested_functions_count() {
        let body = function("inner", FN_LINES_MAX);
        let text = format!(
            "//! Doc.\nstruct S;\nimpl S {{\n{}}}\ntrait T {{\n{}}}\nfn outer() {{\n{body}}}\n",
            function("method", FN_LINES_MAX),
            function("default", FN_LINES_MAX),
        );
        let offences = check(&[("crates/a/src/lib.rs", &text)]);
        let names: Vec<&str> = offences
            .iter()
            .map(|o| o.split("fn ").nth(1).unwrap().split(' ').next().unwrap())
            .collect();
        assert_eq!(names, ["method", "default", "outer", "inner"], "{offences:?}");
    }

    #[test]
    fn a_why_comment_directly_above_the_fn_allows_it() {
        let long = function("long", FN_LINES_MAX);
        let allowed = [
            format!("//! Doc.\n/// Doc.\n#[inline]\n// Long because: one match over every input.\n{long}"),
            format!("//! Doc.\n// Long because: one table.\n// More words.\npub {long}"),
        ];
        for text in &allowed {
            assert!(check(&[("crates/a/src/lib.rs", text)]).is_empty(), "{text}");
        }
        let refused = [
            // No reason.
            format!("//! Doc.\n// Long because:\n{long}"),
            // Not directly above: an attribute comes between.
            format!("//! Doc.\n// Long because: a table.\n#[inline]\n{long}"),
            // A doc comment is no why-comment.
            format!("//! Doc.\n/// Long because: a table.\n{long}"),
            // Separated by a blank line.
            format!("//! Doc.\n// Long because: a table.\n\n{long}"),
        ];
        for text in &refused {
            assert_eq!(check(&[("crates/a/src/lib.rs", text)]).len(), 1, "{text}");
        }
    }

    #[test]
    fn test_code_is_exempt() {
        let long = function("long", FN_LINES_MAX);
        let doc = "//! Doc.\n";
        let in_tests = format!("{doc}#[cfg(test)]\nmod tests {{\n{long}}}\n");
        let in_all = format!("{doc}#[cfg(all(test, unix))]\nmod tests {{\n{long}}}\n");
        let a_test = format!("{doc}#[tokio::test]\nasync {long}");
        for text in [&in_tests, &in_all, &a_test] {
            assert!(check(&[("crates/a/src/lib.rs", text)]).is_empty(), "{text}");
        }
        let plain = format!("{doc}{long}");
        for path in
            ["crates/a/tests/lab.rs", "crates/a/tests/support/mod.rs", "crates/a/benches/b.rs"]
        {
            assert!(check(&[(path, &plain)]).is_empty(), "{path}");
        }
        let not_test = format!("{doc}#[cfg(any(test, unix))]\nmod tests {{\n{long}}}\n");
        assert_eq!(check(&[("crates/a/src/lib.rs", &not_test)]).len(), 1);
    }

    #[test]
    fn files_of_test_modules_are_exempt() {
        let long = format!("//! Doc.\n{}", function("long", FN_LINES_MAX));
        let parent = "//! Doc.\n#[cfg(test)]\nmod checks;\nmod real;\nmod inline {\n    #[cfg(test)]\n    mod deep;\n}\n";
        let child = "//! Doc.\nmod helpers;\n";
        let offences = check(&[
            ("crates/a/src/engine/mod.rs", parent),
            ("crates/a/src/engine/checks/mod.rs", child),
            ("crates/a/src/engine/checks/helpers.rs", &long),
            ("crates/a/src/engine/inline/deep.rs", &long),
            ("crates/a/src/engine/real.rs", &long),
            ("crates/a/src/other.rs", &long),
        ]);
        let paths: Vec<&str> = offences.iter().map(|o| o.split(':').next().unwrap()).collect();
        assert_eq!(paths, ["crates/a/src/engine/real.rs", "crates/a/src/other.rs"]);
    }

    #[test]
    fn a_file_that_does_not_parse_is_an_offence() {
        let offences = check(&[("crates/a/src/lib.rs", "//! Doc.\nfn broken( {\n")]);
        assert_eq!(offences.len(), 1, "{offences:?}");
        assert!(offences[0].starts_with("crates/a/src/lib.rs:"), "{offences:?}");
        assert!(offences[0].contains("does not parse"), "{offences:?}");
    }

    #[test]
    fn files_are_found_outside_target_and_hidden_directories() {
        let root = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
        for dir in ["crates/a/src", "crates/a/target/debug", "xtask/.hidden", "fuzz/fuzz_targets"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in [
            "crates/a/src/lib.rs",
            "crates/a/target/debug/build.rs",
            "xtask/.hidden/x.rs",
            "fuzz/fuzz_targets/f.rs",
            "crates/a/README.md",
        ] {
            std::fs::write(root.join(file), "").unwrap();
        }
        let offences = check_workspace(&root);
        std::fs::remove_dir_all(&root).unwrap();
        let paths: Vec<String> =
            offences.unwrap().iter().map(|o| o.split(':').next().unwrap().to_owned()).collect();
        assert_eq!(paths, ["crates/a/src/lib.rs", "fuzz/fuzz_targets/f.rs"]);
    }
}
