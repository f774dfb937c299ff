//! `tandem explain CODE` and `tandem explain --list`: shows the catalogue's entry for a
//! code (severity, title, cause, fix), wrapped to the terminal. It owns only the
//! presentation; every word it prints about a code comes from `engine::catalogue`, and
//! it must not keep its own texts about codes. An unknown code exits 1 and suggests the
//! nearest known codes.

use std::fmt::Write as _;
use std::process::ExitCode;

use engine::catalogue::{self, CodeInfo};

#[derive(clap::Args)]
pub struct Args {
    /// The code to explain, e.g. W2101 (any case).
    #[arg(required_unless_present = "list")]
    code: Option<String>,
    /// List every code with its title instead.
    #[arg(long, conflicts_with = "code")]
    list: bool,
}

/// Text is never wrapped wider than this, even on a wide terminal: long lines read badly.
const WIDTH_MAX: usize = 88;
/// Nor narrower than this, so a tiny or misreported terminal still gets readable text.
const WIDTH_MIN: usize = 40;
/// How many codes an unknown code's message suggests at most.
const SUGGESTIONS_MAX: usize = 3;
/// Suggested codes differ from the one asked for in at most this many characters.
const SUGGESTION_DISTANCE_MAX: usize = 2;

use engine::catalogue::area_name;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let width = output_width();
    if args.list {
        print!("{}", render_list(width));
        return Ok(ExitCode::SUCCESS);
    }
    let asked = args.code.unwrap_or_default();
    match catalogue::lookup(&asked) {
        Some(info) => {
            print!("{}", render_entry(info, width));
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprint!("{}", render_unknown(&asked));
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The terminal's width (or `COLUMNS`), kept within [`WIDTH_MIN`, `WIDTH_MAX`].
fn output_width() -> usize {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .or_else(|| terminal_size::terminal_size().map(|(width, _)| usize::from(width.0)));
    columns.unwrap_or(WIDTH_MAX).clamp(WIDTH_MIN, WIDTH_MAX)
}

fn render_entry(info: &CodeInfo, width: usize) -> String {
    let mut out = String::new();
    let heading = format!("{} ({}): {}", info.code, info.severity, info.title);
    out.push_str(&wrap(&heading, width, "", "  "));
    out.push_str("\nCause:\n");
    out.push_str(&wrap(info.cause.trim(), width, "  ", "  "));
    out.push_str("\nFix:\n");
    for step in numbered_steps(info.fix.trim()) {
        // Lines after the first of a numbered step line up with the text after "1. ".
        let hang = match step.split_once(' ') {
            Some((number, _)) if is_step_number(number) => number.len() + 1,
            _ => 0,
        };
        out.push_str(&wrap(step, width, "  ", &" ".repeat(2 + hang)));
    }
    let footer = format!(
        "Area: {}. All codes: `tandem explain --list`, or docs/errors.md#{}.",
        area_name(info.code),
        info.code
    );
    out.push('\n');
    out.push_str(&wrap(&footer, width, "", ""));
    out
}

fn render_list(width: usize) -> String {
    let mut out = String::new();
    let mut current_area = None;
    for info in catalogue::all() {
        let area = info.code.chars().nth(1);
        if area != current_area {
            if current_area.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "{}xxx {}", area.unwrap_or('?'), area_name(info.code));
            current_area = area;
        }
        let prefix = format!("  {}  {:<7}  ", info.code, info.severity.as_str());
        let hang = " ".repeat(prefix.len());
        out.push_str(&wrap(info.title, width, &prefix, &hang));
    }
    let _ = writeln!(
        out,
        "\n{} codes. `tandem explain CODE` prints a code's cause and fix.",
        catalogue::all().count()
    );
    out
}

fn render_unknown(asked: &str) -> String {
    let asked = asked.trim();
    let mut out = format!("error: there is no code `{asked}` in tandem's catalogue\n");
    let nearest = nearest_codes(asked);
    if !nearest.is_empty() {
        out.push_str("did you mean:\n");
        for info in nearest {
            let _ = writeln!(out, "  {}  {}", info.code, info.title);
        }
    }
    out.push_str("`tandem explain --list` lists every code.\n");
    out
}

/// The known codes closest to `asked` (edit distance, ties by code order).
fn nearest_codes(asked: &str) -> Vec<&'static CodeInfo> {
    let asked = asked.to_ascii_uppercase();
    let mut scored: Vec<(usize, &'static CodeInfo)> = catalogue::all()
        .map(|info| (edit_distance(&asked, info.code), info))
        .filter(|(distance, _)| *distance <= SUGGESTION_DISTANCE_MAX)
        .collect();
    scored.sort_by_key(|(distance, _)| *distance);
    scored.into_iter().take(SUGGESTIONS_MAX).map(|(_, info)| info).collect()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Splits "1. Do this. 2. Then that." into its steps; other text stays one piece.
fn numbered_steps(text: &str) -> Vec<&str> {
    if !text.starts_with("1. ") {
        return vec![text];
    }
    let mut steps = Vec::new();
    let mut start = 0;
    let mut next = 2;
    while let Some(offset) = text[start..].find(&format!(" {next}. ")) {
        let end = start + offset;
        steps.push(text[start..end].trim());
        start = end + 1;
        next += 1;
    }
    steps.push(text[start..].trim());
    steps
}

fn is_step_number(word: &str) -> bool {
    word.strip_suffix('.')
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Greedy word wrap: every line starts with `first` (the first) or `rest` (the others)
/// and stays within `width` columns unless a single word is longer. Ends with a newline.
fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_owned();
    let mut line_has_word = false;
    for word in text.split_whitespace() {
        let space = usize::from(line_has_word);
        let fits = line.chars().count() + space + word.chars().count() <= width;
        if line_has_word && !fits {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_owned();
            line_has_word = false;
        }
        if line_has_word {
            line.push(' ');
        }
        line.push_str(word);
        line_has_word = true;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_renders_within_the_width() {
        for info in catalogue::all() {
            let text = render_entry(info, 60);
            assert!(text.starts_with(&format!("{} (", info.code)), "{text}");
            for line in text.lines() {
                let longest_word = line.split_whitespace().map(str::len).max().unwrap_or(0);
                assert!(line.chars().count() <= 60 || longest_word > 40, "{}: {line}", info.code);
            }
        }
    }

    #[test]
    fn wrap_breaks_between_words_and_indents() {
        assert_eq!(wrap("one two three four", 11, "- ", "  "), "- one two\n  three\n  four\n");
    }

    #[test]
    fn numbered_fix_texts_split_into_steps() {
        assert_eq!(
            numbered_steps("1. Check power. 2. Check links. 3. Wait."),
            ["1. Check power.", "2. Check links.", "3. Wait."]
        );
        assert_eq!(
            numbered_steps("Nothing to do. 2. not a list"),
            ["Nothing to do. 2. not a list"]
        );
    }

    #[test]
    fn unknown_codes_suggest_their_neighbours() {
        let first = catalogue::all().next().expect("the catalogue has codes");
        let mut wrong_letter = first.code.to_owned();
        wrong_letter.replace_range(0..1, if first.code.starts_with('X') { "Y" } else { "X" });
        let nearest = nearest_codes(&wrong_letter.to_lowercase());
        assert!(nearest.contains(&first), "{wrong_letter}: {nearest:?}");
        assert!(nearest.len() <= SUGGESTIONS_MAX);
        assert!(render_unknown("Q0000x").contains("--list"));
    }

    #[test]
    fn edit_distance_counts_single_changes() {
        assert_eq!(edit_distance("W2101", "W2101"), 0);
        assert_eq!(edit_distance("E2101", "W2101"), 1);
        assert_eq!(edit_distance("W210", "W2101"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn list_names_every_code() {
        let list = render_list(WIDTH_MAX);
        for info in catalogue::all() {
            assert!(list.contains(info.code), "{}", info.code);
        }
        let first = catalogue::all().next().expect("the catalogue has codes");
        let aligned =
            format!("  {}  {:<7}  {}\n", first.code, first.severity.as_str(), first.title);
        assert!(list.contains(&aligned), "{list}");
    }
}
