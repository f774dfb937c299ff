//! The error catalogue: the one table of every code tandem can show a person — errors
//! (`E`), warnings (`W`) and, a deviation from PRODUCT.md section 7 explained in
//! `docs/errors.md`, informational events (`I`) so that every event has a code.
//!
//! Areas by the first digit: 1 configuration, 2 links and heartbeats, 3 arbitration and
//! leases, 4 resources, groups and agents, 5 API and security, 6 alerts. Each area has
//! its own file; [`ALL`] joins them. `tandem explain`, the console's help and
//! `docs/errors.md` read only this table; tests check that every entry has a cause and a
//! fix, that codes are unique and that the letter matches the severity.

/// Defines an area's codes as statics plus the `AREA` list, in one place.
macro_rules! codes {
    ($( $name:ident = $code:literal, $sev:ident, $title:literal,
        cause: $cause:literal, fix: $fix:literal; )*) => {
        $(
            #[doc = $title]
            pub static $name: $crate::catalogue::CodeInfo = $crate::catalogue::CodeInfo {
                code: $code,
                severity: $crate::catalogue::Severity::$sev,
                title: $title,
                cause: $cause,
                fix: $fix,
            };
        )*
        pub(super) const AREA: &[&$crate::catalogue::CodeInfo] = &[$(&$name),*];
    };
}

mod alerts;
mod config;
mod groups;
mod leases;
mod links;
mod security;

pub use alerts::*;
pub use config::*;
pub use groups::*;
pub use leases::*;
pub use links::*;
pub use security::*;

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
    /// The letter that starts codes of this severity.
    pub fn letter(self) -> char {
        match self {
            Severity::Info => 'I',
            Severity::Warning => 'W',
            Severity::Error => 'E',
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The areas, by the first digit of a code (PRODUCT.md section 7).
pub const AREAS: &[(char, &str)] = &[
    ('1', "configuration"),
    ('2', "links and heartbeats"),
    ('3', "arbitration and leases"),
    ('4', "resources and agents"),
    ('5', "API and security"),
    ('6', "alerts"),
];

/// The name of a code's area ("links and heartbeats" for `W2101`).
pub fn area_name(code: &str) -> &'static str {
    let digit = code.chars().nth(1);
    AREAS.iter().find(|(d, _)| Some(*d) == digit).map_or("unknown area", |(_, name)| name)
}

/// One entry of the catalogue.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CodeInfo {
    pub code: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    /// The likely causes, as sentences.
    pub cause: &'static str,
    /// What to do, as sentences or numbered steps.
    pub fix: &'static str,
}

impl fmt::Display for CodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// Every code, area by area, in code order within an area.
pub fn all() -> impl Iterator<Item = &'static CodeInfo> {
    CODE_AREAS.iter().flat_map(|area| area.iter().copied())
}

const CODE_AREAS: &[&[&CodeInfo]] =
    &[config::AREA, links::AREA, leases::AREA, groups::AREA, security::AREA, alerts::AREA];

/// Look a code up, case-insensitively (`tandem explain w2101` works).
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    all().find(|c| c.code.eq_ignore_ascii_case(code.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_code_has_cause_and_fix_and_well_formed_code() {
        let mut seen = HashSet::new();
        for c in all() {
            assert!(seen.insert(c.code), "duplicate code {}", c.code);
            assert_eq!(c.code.len(), 5, "{}: a letter and four digits", c.code);
            assert!(c.code[1..].bytes().all(|b| b.is_ascii_digit()), "{}", c.code);
            assert_eq!(c.code.chars().next(), Some(c.severity.letter()), "{}", c.code);
            assert!(matches!(&c.code[1..2], "1" | "2" | "3" | "4" | "5" | "6"), "{}", c.code);
            assert!(c.title.trim().len() >= 5, "{}: title", c.code);
            assert!(c.cause.trim().len() >= 20, "{}: cause text missing", c.code);
            assert!(c.fix.trim().len() >= 20, "{}: fix text missing", c.code);
        }
    }

    #[test]
    fn areas_are_in_code_order() {
        let codes: Vec<&str> = all().map(|c| &c.code[1..]).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        assert_eq!(codes, sorted, "keep each area file in code order");
    }

    #[test]
    fn lookup_ignores_case() {
        let first = all().next().unwrap();
        assert_eq!(lookup(&first.code.to_lowercase()), Some(first));
        assert_eq!(lookup("E9999"), None);
    }
}
