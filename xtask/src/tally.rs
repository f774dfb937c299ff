//! How many tests the suite ran, per crate, and whether any was skipped: read from
//! nextest's JUnit report (`target/nextest/default/junit.xml`, configured in
//! `.config/nextest.toml`: one `<testsuite>` per test binary, with its counts), its test
//! list (`cargo nextest list --message-format json`: every test of every binary, the
//! ignored ones too, with the binary's package) and libtest's closing lines (`Doc-tests
//! CRATE` ... `test result: ok. N passed; M failed; K ignored; ...`) for the doc tests
//! and for `cargo test` where nextest is missing. It only counts; the suite decides.

use std::collections::BTreeMap;

use anyhow::{bail, Context as _};
use serde_json::Value;

/// Counts of one crate (or all of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    pub passed: u32,
    pub failed: u32,
    /// Listed but not run (ignored, or not reached).
    pub skipped: u32,
}

impl Count {
    pub fn ran(&self) -> u32 {
        self.passed + self.failed
    }

    fn add(&mut self, other: Count) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// Counts per crate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub crates: BTreeMap<String, Count>,
}

impl Tally {
    pub fn total(&self) -> Count {
        let mut total = Count::default();
        for count in self.crates.values() {
            total.add(*count);
        }
        total
    }

    pub fn merge(&mut self, other: &Tally) {
        for (name, count) in &other.crates {
            self.crates.entry(name.clone()).or_default().add(*count);
        }
    }

    /// `agents 214, arbiter 61, ...`: tests run per crate.
    pub fn per_crate(&self) -> String {
        let parts: Vec<String> =
            self.crates.iter().map(|(name, count)| format!("{name} {}", count.ran())).collect();
        parts.join(", ")
    }
}

/// The value of attribute `name` in the start tag `tag` (`<testsuite a="1" ...>`).
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

/// Per test binary (nextest's binary id) from a JUnit report: (tests, failed) where
/// failed counts failures and errors.
pub fn junit(xml: &str) -> anyhow::Result<BTreeMap<String, (u32, u32)>> {
    let mut out = BTreeMap::new();
    for piece in xml.split("<testsuite ").skip(1) {
        let tag = format!(" {}", &piece[..piece.find('>').context("an unclosed <testsuite>")?]);
        let number = |name: &str| -> anyhow::Result<u32> {
            attribute(&tag, name)
                .with_context(|| format!("<testsuite> without {name}"))?
                .parse()
                .with_context(|| format!("<testsuite> {name} is not a number"))
        };
        let name = attribute(&tag, "name").context("<testsuite> without a name")?;
        out.insert(name.to_string(), (number("tests")?, number("failures")? + number("errors")?));
    }
    Ok(out)
}

/// Per test binary from nextest's JSON test list: (package, tests listed).
pub fn listed(json: &str) -> anyhow::Result<BTreeMap<String, (String, u32)>> {
    let list: Value = serde_json::from_str(json).context("nextest's test list is not JSON")?;
    let suites = list["rust-suites"].as_object().context("no rust-suites in nextest's list")?;
    let mut out = BTreeMap::new();
    for (binary, suite) in suites {
        let package = suite["package-name"].as_str().context("a suite without package-name")?;
        let tests = suite["testcases"].as_object().map_or(0, |cases| cases.len() as u32);
        out.insert(binary.clone(), (package.to_string(), tests));
    }
    Ok(out)
}

/// Per crate: what ran (JUnit) against what exists (the list); a binary that ran is
/// named in the list, or the report and the list disagree.
pub fn nextest(junit_xml: &str, list_json: &str) -> anyhow::Result<Tally> {
    let ran = junit(junit_xml)?;
    let listed = listed(list_json)?;
    let mut tally = Tally::default();
    for (binary, (package, tests)) in &listed {
        let (run, failed) = ran.get(binary).copied().unwrap_or((0, 0));
        let count = Count {
            passed: run.saturating_sub(failed),
            failed,
            skipped: tests.saturating_sub(run),
        };
        tally.crates.entry(package.clone()).or_default().add(count);
    }
    if let Some(binary) = ran.keys().find(|binary| !listed.contains_key(*binary)) {
        bail!("the JUnit report names test binary {binary}, which nextest does not list");
    }
    Ok(tally)
}

/// Per crate (or per test binary, as cargo names it) from libtest's output: each
/// `test result:` line counts for the latest `Doc-tests CRATE` or `Running X` line
/// before it. Ignored tests count as skipped.
pub fn libtest(output: &str) -> Tally {
    let mut tally = Tally::default();
    let mut current = String::from("?");
    for line in output.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("Doc-tests ") {
            current = name.trim().to_string();
        } else if let Some(running) = line.strip_prefix("Running ") {
            // `Running unittests src/lib.rs (target/debug/deps/agents-0123abcd)`
            let binary = running.rsplit('/').next().unwrap_or(running);
            let binary = binary.trim_end_matches(')');
            current = binary.rsplit_once('-').map_or(binary, |(name, _)| name).to_string();
        } else if let Some(result) = line.strip_prefix("test result: ") {
            let number = |what: &str| -> u32 {
                result
                    .split(';')
                    .find_map(|part| part.trim().strip_suffix(what))
                    .and_then(|n| n.trim().rsplit(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            };
            let count = Count {
                passed: number("passed"),
                failed: number("failed"),
                skipped: number("ignored"),
            };
            tally.crates.entry(current.clone()).or_default().add(count);
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUNIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="5" skipped="0" failures="1" errors="0">
    <testsuite name="agents" tests="2" skipped="0" errors="0" failures="0">
        <testcase name="a" classname="agents" time="0.1"/>
    </testsuite>
    <testsuite name="agents::conformance" tests="2" skipped="0" errors="0" failures="1">
    </testsuite>
    <testsuite name="xtask::tidy" tests="1" skipped="0" errors="0" failures="0">
    </testsuite>
</testsuites>"#;

    const LIST: &str = r#"{"rust-suites": {
        "agents": {"package-name": "agents", "testcases": {"a": {}, "b": {}}},
        "agents::conformance": {"package-name": "agents", "testcases": {"c": {}, "d": {}, "e": {"ignored": true}}},
        "agents::bin/x": {"package-name": "agents", "testcases": {}},
        "xtask::tidy": {"package-name": "xtask", "testcases": {"f": {}}}
    }}"#;

    #[test]
    fn nextest_counts_per_crate_and_finds_what_did_not_run() {
        let tally = nextest(JUNIT, LIST).unwrap();
        assert_eq!(tally.crates["agents"], Count { passed: 3, failed: 1, skipped: 1 });
        assert_eq!(tally.crates["xtask"], Count { passed: 1, failed: 0, skipped: 0 });
        assert_eq!(tally.total(), Count { passed: 4, failed: 1, skipped: 1 });
        assert_eq!(tally.per_crate(), "agents 4, xtask 1");
        let unknown = JUNIT.replace("xtask::tidy", "xtask::other");
        assert!(nextest(&unknown, LIST).is_err());
    }

    #[test]
    fn libtest_lines_count_for_the_crate_or_binary_before_them() {
        let output = "\
   Doc-tests config

running 2 tests
test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.1s

   Doc-tests engine
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.0s
     Running tests/ip.rs (target/debug/deps/ip-0123abcd)
test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1s
";
        let tally = libtest(output);
        assert_eq!(tally.crates["config"], Count { passed: 2, failed: 0, skipped: 1 });
        assert_eq!(tally.crates["engine"], Count::default());
        assert_eq!(tally.crates["ip"], Count { passed: 3, failed: 2, skipped: 0 });
        let mut all = tally.clone();
        all.merge(&tally);
        assert_eq!(all.total(), Count { passed: 10, failed: 4, skipped: 2 });
    }
}
