//! The client's view: `tandem probe` (the demo's client, run in the lab's client
//! namespace or on loopback) prints one line per attempt, `<ms> ok <node>` or `<ms>
//! fail <why>`, stamped with [`monotonic_ms`] when the attempt ended.

/// Milliseconds of `CLOCK_MONOTONIC`, the clock of `tandem probe`'s stamps (one clock
/// for every process of the machine, namespaces included).
pub fn monotonic_ms() -> i64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() * 1000 + t.tv_nsec() / 1_000_000)
        .unwrap_or(0)
}

/// One attempt of the client: when it ended (monotonic ms) and who answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub at_ms: i64,
    /// The answering node's name, or why there was no answer.
    pub answer: Result<String, String>,
}

/// `tandem probe`'s lines in time order (the probe's attempts overlap, so lines may
/// come a little out of order); a partial last line is left out.
pub fn parse_attempts(output: &str) -> Vec<Attempt> {
    let mut attempts: Vec<Attempt> = output
        .split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .filter_map(|line| {
            let mut parts = line.trim_end().splitn(3, ' ');
            let at_ms = parts.next()?.parse().ok()?;
            let answer = match parts.next()? {
                "ok" => Ok(parts.next().unwrap_or("").to_string()),
                "fail" => Err(parts.next().unwrap_or("").to_string()),
                _ => return None,
            };
            Some(Attempt { at_ms, answer })
        })
        .collect();
    attempts.sort_by_key(|a| a.at_ms);
    attempts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_lines_parse_in_time_order_and_a_partial_line_waits() {
        let got = parse_attempts(
            "100 ok alpha\n140 ok beta\n120 fail connection refused (os error 111)\n160 ok be",
        );
        assert_eq!(
            got,
            [
                Attempt { at_ms: 100, answer: Ok("alpha".into()) },
                Attempt { at_ms: 120, answer: Err("connection refused (os error 111)".into()) },
                Attempt { at_ms: 140, answer: Ok("beta".into()) },
            ]
        );
    }
}
