//! A test hook, and nothing else: named points in the daemon's blocking work where a
//! test can make the calling thread sleep, to show that a slow or hung disk (a journal
//! fsync, a state file's rename) stalls only the thread that does that work and never
//! the daemon's loop. `TANDEM_TEST_STALL=name:millis[,name:millis]`, read once at the
//! first [`point`], names the points and how long each one sleeps every time it is
//! passed. Unset (always, outside tests), a point costs one load of a parsed-once
//! empty list. ARCHITECTURE.md lists the points ("Test hooks").
//!
//! Points: `journal` (the journal writer, before each batch's write and fsync),
//! `save_admin` (the same thread, before `admin.json` is written), `guard_start` (the
//! fence guard's thread, before it starts a guard), `read_only` (the blocking pool,
//! before the read-only ioctl on a standby's device).

use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable that names the points to stall.
pub const ENV: &str = "TANDEM_TEST_STALL";

fn points() -> &'static [(String, Duration)] {
    static POINTS: OnceLock<Vec<(String, Duration)>> = OnceLock::new();
    POINTS.get_or_init(|| std::env::var(ENV).map(|text| parse(&text)).unwrap_or_default())
}

/// `name:millis[,name:millis]`; a malformed item is ignored (it is a test hook: a
/// typo shows as a test that does not stall, not as a daemon that does not start).
fn parse(text: &str) -> Vec<(String, Duration)> {
    text.split(',')
        .filter_map(|item| {
            let (name, millis) = item.trim().split_once(':')?;
            Some((name.to_string(), Duration::from_millis(millis.trim().parse().ok()?)))
        })
        .collect()
}

/// Sleeps here if `TANDEM_TEST_STALL` names `name`.
pub fn point(name: &str) {
    for (point, pause) in points() {
        if point == name {
            std::thread::sleep(*pause);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_parsed_and_bad_items_ignored() {
        let parsed = parse("journal:250, save_admin:1000,bad,x:y");
        assert_eq!(
            parsed,
            [
                ("journal".to_string(), Duration::from_millis(250)),
                ("save_admin".to_string(), Duration::from_millis(1000)),
            ]
        );
        assert!(parse("").is_empty());
    }
}
