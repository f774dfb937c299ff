//! Test hook: stalls named points of the daemon so that tests can show that nothing
//! which can block runs on the daemon's loop thread. `TANDEM_TEST_STALL=name:millis[,
//! name:millis...]` (read once, at the first call) makes [`point`]`(name)` sleep that
//! long each time it is reached; unset (always, outside tests) it does nothing but one
//! lookup. The points: `guard_start` (starting a fence guard), `read_only` (the
//! read-only ioctl on a standby's device), `journal` and `save_admin` (their writes).

use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable read.
pub const VARIABLE: &str = "TANDEM_TEST_STALL";

fn stalls() -> &'static [(String, Duration)] {
    static STALLS: OnceLock<Vec<(String, Duration)>> = OnceLock::new();
    STALLS.get_or_init(|| parse(&std::env::var(VARIABLE).unwrap_or_default()))
}

fn parse(text: &str) -> Vec<(String, Duration)> {
    text.split(',')
        .filter_map(|item| {
            let (name, millis) = item.trim().split_once(':')?;
            Some((name.to_string(), Duration::from_millis(millis.parse().ok()?)))
        })
        .collect()
}

/// Sleeps if the test hook names `name`.
pub fn point(name: &str) {
    if let Some((_, stall)) = stalls().iter().find(|(n, _)| n == name) {
        tracing::warn!("{VARIABLE}: stalling `{name}` for {stall:?}");
        std::thread::sleep(*stall);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_names_points_and_their_stalls() {
        assert_eq!(
            parse("journal:200, guard_start:3000,bad,x:y"),
            vec![
                ("journal".to_string(), Duration::from_millis(200)),
                ("guard_start".to_string(), Duration::from_millis(3000))
            ]
        );
        assert!(parse("").is_empty());
    }
}
