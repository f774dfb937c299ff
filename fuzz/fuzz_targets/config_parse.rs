//! Fuzz target `config_parse`: `config::parse` on arbitrary text (arbitrary bytes made
//! UTF-8 the way a reader would see them, invalid sequences replaced). It must never
//! panic; diagnostics are the expected answer to nonsense. Beyond that it checks that
//! an accepted file carries no error, a refused one at least one, that every span lies
//! inside the text on character boundaries, and that rendering the diagnostics (what
//! `tandem validate` prints) works.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let diagnostics = match config::parse(&text, "fuzz.toml") {
        Ok((_config, warnings)) => {
            assert!(warnings.iter().all(|d| !d.is_error()), "an accepted file with an error");
            warnings
        }
        Err(diagnostics) => {
            assert!(diagnostics.iter().any(|d| d.is_error()), "a refused file without an error");
            diagnostics
        }
    };
    for d in &diagnostics {
        assert!(d.span.start <= d.span.end && d.span.end <= text.len(), "span {:?}", d.span);
        assert!(text.is_char_boundary(d.span.start) && text.is_char_boundary(d.span.end));
    }
    let rendered = config::render_all(&diagnostics, &text, false);
    assert_eq!(rendered.is_empty(), diagnostics.is_empty());
    let _ = config::summary(&diagnostics);
});
