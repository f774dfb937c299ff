//! One problem found in a configuration file, and its rustc-style rendering:
//!
//! ```text
//! error[E1002]: unknown key `prot` in [[link]] `private`
//!  --> cluster.toml:12:1
//!   |
//! 12 | prot = 5405
//!   | ^^^^ unknown key
//!   |
//!   = help: did you mean `port`?
//! ```
//!
//! Every diagnostic carries a code from the engine's catalogue (so `tandem explain` has
//! its cause and fix) and a byte span into the file. This file only formats; it must
//! not decide what is wrong.

use std::fmt::Write as _;
use std::sync::Arc;

use annotate_snippets::{Level, Renderer, Snippet};
use engine::catalogue::{CodeInfo, Severity};

use crate::model::Span;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The catalogue entry; its letter gives the severity.
    pub code: &'static CodeInfo,
    /// The headline, e.g. "unknown key `prot` in [cluster]".
    pub message: String,
    /// The file the span points into.
    pub file_name: Arc<str>,
    /// Byte range in the file; may be empty (a position).
    pub span: Span,
    /// Text beside the caret.
    pub label: String,
    /// `= help:` lines.
    pub help: Vec<String>,
}

impl Diagnostic {
    pub fn severity(&self) -> Severity {
        self.code.severity
    }

    pub fn is_error(&self) -> bool {
        self.code.severity == Severity::Error
    }

    /// 1-based line and column (in characters) of the span's start in `source`.
    pub fn line_column(&self, source: &str) -> (usize, usize) {
        LineIndex::new(source).line_column(source, self.span.start)
    }

    /// Plain text (no colour), ending in a newline.
    pub fn render(&self, source: &str) -> String {
        self.render_with(source, &LineIndex::new(source), false)
    }

    /// With ANSI colours when `color` is true (use only on a terminal).
    pub fn render_styled(&self, source: &str, color: bool) -> String {
        self.render_with(source, &LineIndex::new(source), color)
    }

    fn render_with(&self, source: &str, index: &LineIndex, color: bool) -> String {
        let renderer = if color { Renderer::styled() } else { Renderer::plain() };
        let level = match self.code.severity {
            Severity::Error => Level::Error,
            Severity::Warning => Level::Warning,
            Severity::Info => Level::Info,
        };
        let start = self.span.start.min(source.len());
        let line_number = index.line_of(start);
        let line_start = index.starts[line_number];
        let line_end = source[line_start..].find('\n').map_or(source.len(), |i| line_start + i);
        let line = source[line_start..line_end].trim_end_matches('\r');
        let mut out = String::new();
        if line.is_empty() {
            // Nothing to put a caret under (an empty file or an empty line): the header
            // and the position alone, in the same shape.
            let message = level.title(&self.message).id(self.code.code);
            let _ = write!(out, "{}", renderer.render(message));
            if source.is_empty() {
                // No text (an unreadable or empty file): the file alone.
                let _ = write!(out, "\n --> {}", self.file_name);
            } else {
                let (l, c) = index.line_column(source, start);
                let _ = write!(out, "\n --> {}:{l}:{c}", self.file_name);
            }
            for help in &self.help {
                let _ = write!(out, "\n  = help: {help}");
            }
        } else {
            // Clip the span to its first line and make it at least one character wide.
            let mut from = start - line_start;
            from = from.min(line.len());
            while !line.is_char_boundary(from) {
                from -= 1;
            }
            let mut to = self.span.end.saturating_sub(line_start).min(line.len()).max(from);
            while !line.is_char_boundary(to) {
                to += 1;
            }
            if to == from {
                to = line[from..].chars().next().map_or(from, |c| from + c.len_utf8());
                if to == from {
                    // At the end of the line: point at its last character.
                    from = line[..from].char_indices().last().map_or(0, |(i, _)| i);
                    to = line.len();
                }
            }
            let snippet = Snippet::source(line)
                .line_start(line_number + 1)
                .origin(&self.file_name)
                .annotation(level.span(from..to).label(&self.label));
            let message = level
                .title(&self.message)
                .id(self.code.code)
                .snippet(snippet)
                .footers(self.help.iter().map(|h| Level::Help.title(h)));
            let _ = write!(out, "{}", renderer.render(message));
        }
        out.push('\n');
        out
    }
}

/// Renders every diagnostic (in order, separated by blank lines) and the summary line.
pub fn render_all(diagnostics: &[Diagnostic], source: &str, color: bool) -> String {
    let index = LineIndex::new(source);
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.render_with(source, &index, color));
        out.push('\n');
    }
    if let Some(summary) = summary(diagnostics) {
        out.push_str(&summary);
        out.push('\n');
    }
    out
}

/// "error: 3 errors, 1 warning" / "warning: 2 warnings"; `None` when there are none.
pub fn summary(diagnostics: &[Diagnostic]) -> Option<String> {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.iter().filter(|d| d.severity() == Severity::Warning).count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, 0) => None,
        (0, w) => Some(format!("warning: {}", plural(w, "warning"))),
        (e, 0) => Some(format!("error: {}", plural(e, "error"))),
        (e, w) => Some(format!("error: {}, {}", plural(e, "error"), plural(w, "warning"))),
    }
}

/// Byte offsets of line starts, so many diagnostics on a large file stay cheap.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(source: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 0-based line containing `offset`.
    fn line_of(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(line) => line,
            Err(next) => next - 1,
        }
    }

    /// 1-based line and character column.
    pub(crate) fn line_column(&self, source: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(source.len());
        let line = self.line_of(offset);
        let start = self.starts[line];
        let mut end = offset;
        while !source.is_char_boundary(end) {
            end -= 1;
        }
        (line + 1, source[start..end].chars().count() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostic(span: Span) -> Diagnostic {
        Diagnostic {
            code: &engine::catalogue::CONFIG_UNKNOWN_KEY,
            message: "unknown key `prot`".into(),
            file_name: "cluster.toml".into(),
            span,
            label: "unknown key".into(),
            help: vec!["did you mean `port`?".into()],
        }
    }

    #[test]
    fn renders_rustc_style() {
        let source = "[link]\nprot = 1\n";
        let text = diagnostic(7..11).render(source);
        assert_eq!(
            text,
            "error[E1002]: unknown key `prot`\n --> cluster.toml:2:1\n  |\n2 | prot = 1\n  | ^^^^ unknown key\n  |\n  = help: did you mean `port`?\n"
        );
    }

    #[test]
    fn positions_past_the_end_and_in_empty_files_render() {
        let text = diagnostic(9..9).render("[cluster]");
        assert!(text.contains("cluster.toml:1:9"), "{text}");
        let text = diagnostic(0..0).render("");
        assert!(text.contains(" --> cluster.toml\n"), "{text}");
        let text = diagnostic(10..10).render("[cluster]\n\nname = 1");
        assert!(text.contains(" --> cluster.toml:2:1"), "{text}");
        assert!(text.contains("= help: did you mean"), "{text}");
    }

    #[test]
    fn summary_counts() {
        let mut w = diagnostic(0..0);
        w.code = &engine::catalogue::CONFIG_SINGLE_LINK;
        let e = diagnostic(0..0);
        assert_eq!(summary(&[]), None);
        assert_eq!(summary(&[w.clone()]).unwrap(), "warning: 1 warning");
        assert_eq!(summary(&[e.clone(), e, w.clone(), w]).unwrap(), "error: 2 errors, 2 warnings");
    }
}
