//! The run's fingerprint and its readable record.
//!
//! [`TraceHash`] is a blake3 hash over every event the simulator processes and every
//! output an engine produces, in order: two runs of one seed must give the same hash,
//! and a change anywhere shows. Values are written as fixed-width little-endian bytes
//! into a buffer that is hashed in large chunks (hashing each value alone is slow).
//!
//! [`Timeline`] is the transition summary people read: engine events, ground-truth
//! changes and injected actions, one line each, with real (simulated) time in
//! milliseconds. Neither knows how the simulator works.

/// Bytes gathered before they are fed to blake3.
const TRACE_BUFFER_BYTES: usize = 64 * 1024;

pub struct TraceHash {
    hasher: blake3::Hasher,
    buffer: Vec<u8>,
}

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash {
            hasher: blake3::Hasher::new(),
            buffer: Vec::with_capacity(TRACE_BUFFER_BYTES + 256),
        }
    }
}

impl TraceHash {
    pub fn u8(&mut self, value: u8) {
        self.buffer.push(value);
    }
    pub fn u64(&mut self, value: u64) {
        self.buffer.extend_from_slice(&value.to_le_bytes());
        self.flush_if_full();
    }
    pub fn bytes(&mut self, value: &[u8]) {
        self.u64(value.len() as u64);
        self.buffer.extend_from_slice(value);
        self.flush_if_full();
    }
    fn flush_if_full(&mut self) {
        if self.buffer.len() >= TRACE_BUFFER_BYTES {
            self.hasher.update(&self.buffer);
            self.buffer.clear();
        }
    }
    /// The hash of everything written so far, as hex.
    pub fn finish(&self) -> String {
        let mut hasher = self.hasher.clone();
        hasher.update(&self.buffer);
        hasher.finalize().to_hex().to_string()
    }
}

/// One line of the transition summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineLine {
    pub at_ns: u64,
    pub text: String,
}

/// The transition summary. Off in swarm runs (formatting costs), on for `--seed` and
/// scripted runs.
#[derive(Default)]
pub struct Timeline {
    lines: Vec<TimelineLine>,
}

/// A run of thousands of lines is unreadable; past this the timeline keeps counting but
/// stops storing.
pub const TIMELINE_LINES_MAX: usize = 200_000;

impl Timeline {
    pub fn push(&mut self, at_ns: u64, text: String) {
        if self.lines.len() < TIMELINE_LINES_MAX {
            self.lines.push(TimelineLine { at_ns, text });
        }
    }

    pub fn lines(&self) -> &[TimelineLine] {
        &self.lines
    }

    /// Every line as `    1234 ms  text`, one per line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            out.push_str(&format_line(line.at_ns, &line.text));
            out.push('\n');
        }
        out
    }
}

/// `at_ns` as milliseconds, right-aligned, then the text.
pub fn format_line(at_ns: u64, text: &str) -> String {
    format!("{:>8} ms  {}", at_ns / 1_000_000, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_content_and_order() {
        let mut a = TraceHash::default();
        let mut b = TraceHash::default();
        a.u64(1);
        a.u64(2);
        b.u64(2);
        b.u64(1);
        assert_ne!(a.finish(), b.finish());
        let mut c = TraceHash::default();
        c.u64(1);
        c.u64(2);
        assert_eq!(a.finish(), c.finish());
    }

    #[test]
    fn hash_covers_more_than_one_buffer() {
        let mut a = TraceHash::default();
        let mut b = TraceHash::default();
        for i in 0..100_000u64 {
            a.u64(i);
            b.u64(if i == 99_999 { 0 } else { i });
        }
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn timeline_renders_milliseconds() {
        let mut t = Timeline::default();
        t.push(2_500_000_000, "alpha  +db/data running".to_owned());
        assert_eq!(t.render(), "    2500 ms  alpha  +db/data running\n");
    }
}
