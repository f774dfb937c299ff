//! The loop's timer: one `timerfd` on `CLOCK_MONOTONIC`, set to the absolute instant of
//! the loop's next deadline (the engine's [`Instant`]s are that clock, so no conversion
//! and no drift) and watched by the runtime like a socket.
//!
//! Why not tokio's timers: a fresh `sleep_until` per loop iteration (or a reset one)
//! whose deadline is earlier than what the time driver last planned makes the driver
//! wake itself through its eventfd, which at idle doubled the loop's wake-ups; a timerfd
//! is re-armed with one system call, only when the deadline changes, and wakes the loop
//! exactly once when it expires.

use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::task::Poll;
use std::time::Duration;

use engine::Instant;
use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// What [`Alarm::set`] holds after the alarm went off (no instant a caller gives).
const WENT_OFF: Instant = Instant(0);

/// A one-shot alarm at an absolute `CLOCK_MONOTONIC` instant.
pub struct Alarm {
    fd: AsyncFd<Fd>,
    /// What the timer is set to (`Instant::MAX`: not set; [`WENT_OFF`]: went off, so
    /// not set either, and any instant given next is set anew).
    set: Instant,
}

impl Alarm {
    /// Needs a tokio runtime with I/O enabled.
    pub fn new() -> io::Result<Alarm> {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // SAFETY: the timerfd is moved into the AsyncFd and owned by it until it is
        // dropped, so the descriptor stays open and `as_raw_fd` always returns it
        // (tokio's safe constructors for this are deprecated in favour of this one).
        #[allow(unsafe_code)]
        let fd = unsafe { AsyncFd::register_with_interest(Fd(timer), Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Alarm { fd, set: Instant::MAX })
    }

    /// Sets the alarm to go off at `at` (at once if it has passed; never for
    /// [`Instant::MAX`]). A system call only when `at` changes.
    pub fn set(&mut self, at: Instant) -> io::Result<()> {
        if at == self.set {
            return Ok(());
        }
        let timer = &self.fd.get_ref().0;
        if at == Instant::MAX {
            timer.unset()?;
        } else {
            // Zero would disarm the timer: the earliest real instant is 1 ns.
            let spec = TimeSpec::from_duration(Duration::from_nanos(at.0.max(1)));
            timer.set(Expiration::OneShot(spec), TimerSetTimeFlags::TFD_TIMER_ABSTIME)?;
        }
        self.set = at;
        Ok(())
    }

    /// Waits until the alarm goes off (for ever when it is not set). After it went off
    /// it is unset until [`Alarm::set`] is called again (with any instant, the same
    /// one included: it then goes off at once).
    pub async fn expired(&mut self) {
        poll_fn(|cx| loop {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(Ok(guard)) => guard,
                // A timerfd does not fail to poll; if it did, never firing would stop
                // the loop's deadlines, so treat it as expired (the loop re-checks).
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            };
            // Read the expiry count. Either way the timer is not readable any more
            // until it is set again and goes off, which is a new edge for the runtime:
            // forget the readiness now rather than with one more (failing) read later.
            let read = guard.get_inner().0.wait();
            guard.clear_ready();
            match read {
                Err(Errno::EAGAIN) => continue,
                // Went off (or cannot be read: treated as gone off, the loop re-checks).
                _ => return Poll::Ready(()),
            }
        })
        .await;
        self.set = WENT_OFF;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::monotonic_ns;

    #[test]
    fn goes_off_at_the_instant_it_is_set_to_and_not_before() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut alarm = Alarm::new().unwrap();
            let start = monotonic_ns();
            let at = Instant(start) + Duration::from_millis(30);
            alarm.set(at).unwrap();
            alarm.expired().await;
            assert!(monotonic_ns() >= at.0, "went off early");
            // Unset: does not go off.
            alarm.set(Instant::MAX).unwrap();
            let quiet =
                tokio::time::timeout(Duration::from_millis(50), alarm.expired()).await.is_err();
            assert!(quiet, "an unset alarm went off");
            // A passed instant goes off at once, and again when set to it anew.
            alarm.set(Instant(1)).unwrap();
            alarm.expired().await;
            let now = Instant(monotonic_ns());
            alarm.set(now).unwrap();
            alarm.expired().await;
            alarm.set(now).unwrap();
            alarm.expired().await;
        });
    }
}
