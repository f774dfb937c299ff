//! Linux's implementation of the daemon's platform boundaries ([`crate::platform`]):
//! the existing modules wired up as [`Linux`]. UDP sockets read in batches (`net`), the
//! disk worker thread (`diskio`), the fence guard process (`guard`), agents on tokio's
//! blocking pool (`executor`), the `BLKROSET` ioctl of `lock_standby`
//! (`agents::filesystem`), a timerfd (`alarm`), `CLOCK_MONOTONIC` (`clock`), SIGTERM and
//! SIGINT, `sd_notify` and the restart in place by `exec`. [`crate::start`] builds the
//! parts and runs the generic loop over them.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use engine::catalogue::{self, CodeInfo};
use engine::{ClusterSpec, GroupId, Heartbeat, Instant, LinkId, NodeId, OpId, OpKind, ResourceId};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use crate::alarm::Alarm;
use crate::clock::Clock;
use crate::diskio::DiskIo;
use crate::executor::{self, Agents, Done};
use crate::guard::GuardLink;
use crate::net::{self, Batch, DropsRead, UdpLink};
use crate::platform::{self, Answer, Job, Platform};

/// The Linux platform.
pub struct Linux;

impl Platform for Linux {
    type Clock = Clock;
    type Links = UdpLinks;
    type Disk = DiskIo;
    type Guard = GuardLink;
    type Agents = LinuxAgents;
    type Standby = ReadOnlyIoctl;
    type Timer = Alarm;
    type Service = Systemd;
}

impl platform::Clock for Clock {
    fn now(&self) -> Instant {
        Clock::now(self)
    }
}

/// How often at most a link's rejected packets are reported (W2111).
const REJECT_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// The `udp` links: one socket each ([`UdpLink`]) and the loop's receive buffers.
pub struct UdpLinks {
    pub udp: BTreeMap<LinkId, UdpLink>,
    batch: Batch,
    /// Per link: the rejections reported last, and when.
    rejects_reported: BTreeMap<LinkId, (u64, Instant)>,
}

impl UdpLinks {
    pub fn new(udp: BTreeMap<LinkId, UdpLink>) -> UdpLinks {
        UdpLinks { udp, batch: Batch::default(), rejects_reported: BTreeMap::new() }
    }
}

impl platform::Links for UdpLinks {
    fn send(&mut self, link: LinkId, to: NodeId, frame: &[u8]) {
        if let Some(udp) = self.udp.get_mut(&link) {
            udp.send(to, frame);
        }
    }

    async fn receive(&mut self) -> LinkId {
        let links: Vec<&UdpLink> = self.udp.values().collect();
        net::receive(&links, &mut self.batch).await
    }

    fn accepted(&mut self, link: LinkId) -> Vec<Heartbeat> {
        match self.udp.get_mut(&link) {
            Some(udp) => udp.check(&self.batch),
            None => Vec::new(),
        }
    }

    fn batch_full(&self) -> bool {
        self.batch.is_full()
    }

    /// Rejected packets, at most once per link per interval; floods' starts and ends.
    fn news(&mut self, spec: &ClusterSpec, now: Instant) -> Vec<(&'static CodeInfo, String)> {
        net::read_kernel_drops(self.udp.values_mut(), now, DropsRead::WhenDue);
        let mut reports = Vec::new();
        for (link, udp) in &self.udp {
            let counters = udp.receiver.counters();
            let total = counters.rejected_total();
            let (reported, at) =
                self.rejects_reported.get(link).copied().unwrap_or((0, Instant(0)));
            if total > reported
                && (at == Instant(0) || now.saturating_since(at) >= REJECT_REPORT_INTERVAL)
            {
                self.rejects_reported.insert(*link, (total, now));
                reports.push((
                    &catalogue::PACKETS_REJECTED,
                    format!(
                        "link {}: {} packets dropped so far ({}; from {})",
                        spec.link(*link).name,
                        total,
                        net::describe_reasons(counters),
                        udp.rejected_by.describe(4)
                    ),
                ));
            }
        }
        for (link, udp) in &mut self.udp {
            reports.extend(udp.flood_news(now, &spec.link(*link).name));
        }
        reports
    }

    fn receiving(&mut self, spec: &ClusterSpec, now: Instant) -> Vec<contract::Receiving> {
        // The status shows the kernel's drops as of now (a procfs read).
        net::read_kernel_drops(self.udp.values_mut(), now, DropsRead::Now);
        self.udp.values().map(|u| crate::control::receiving(spec, u, now)).collect()
    }

    fn config_of(&self, node: NodeId) -> Option<wire::ConfigSeen> {
        self.udp
            .values()
            .filter_map(|u| u.receiver.config_of(node))
            .max_by_key(|seen| (seen.incarnation, seen.sequence))
    }
}

impl platform::DiskWorker for DiskIo {
    fn submit(
        &mut self,
        id: u64,
        deadline: Instant,
        reads_after: Instant,
        job: Job,
    ) -> Result<(), String> {
        DiskIo::submit(self, id, deadline, reads_after, job)
    }

    fn quiet_answers(&mut self) -> Vec<Answer> {
        DiskIo::quiet_answers(self)
    }

    fn set_prompt_mode(&mut self, on: bool) {
        DiskIo::set_prompt_mode(self, on)
    }

    fn abandon(&mut self) {
        DiskIo::abandon(self)
    }
}

impl platform::FenceGuard for GuardLink {
    fn arm(&mut self, deadline: Option<Instant>, keep_earlier: bool) {
        GuardLink::arm(self, deadline, keep_earlier)
    }

    fn fire_now(&mut self) -> io::Result<()> {
        GuardLink::fire_now(self)
    }

    fn exit(&mut self) {
        GuardLink::exit(self)
    }

    fn wait_gone(&mut self, bound: Duration) -> bool {
        GuardLink::wait_gone(self, bound)
    }
}

/// Agents built once per resource, each operation on tokio's blocking pool
/// ([`executor::spawn`]).
pub struct LinuxAgents {
    pub agents: Arc<Agents>,
    pub done: mpsc::UnboundedSender<Done>,
    pub quiet: executor::Quiet,
}

impl platform::AgentRunner for LinuxAgents {
    fn start(
        &mut self,
        id: OpId,
        group: GroupId,
        resource: ResourceId,
        op: OpKind,
        timeout: Duration,
    ) {
        let done = self.done.clone();
        executor::spawn(&self.agents, id, group, resource, op, timeout, done, &self.quiet);
    }

    fn quiet(&mut self) -> Vec<Done> {
        self.quiet.take()
    }
}

/// `lock_standby` by the `BLKROSET` ioctl, on the blocking pool.
pub struct ReadOnlyIoctl;

impl platform::StandbyLock for ReadOnlyIoctl {
    fn set_read_only(&mut self, devices: Vec<PathBuf>) {
        // An ioctl on a device whose path hangs blocks: never on the loop's thread.
        tokio::task::spawn_blocking(move || {
            crate::stall::point("read_only");
            for device in devices {
                if let Err(e) = agents::filesystem::set_read_only(&device, true) {
                    tracing::warn!("cannot set {} read-only (lock_standby): {e}", device.display());
                }
            }
        });
    }
}

impl platform::LoopTimer for Alarm {
    fn set(&mut self, at: Instant) -> io::Result<()> {
        Alarm::set(self, at)
    }

    fn expired(&mut self) -> impl Future<Output = ()> {
        Alarm::expired(self)
    }
}

/// systemd around the daemon: SIGTERM and SIGINT, `sd_notify` (ready, stopping, the
/// watchdog at half the interval systemd set), the restart in place by `exec`.
pub struct Systemd {
    sigterm: Signal,
    sigint: Signal,
    watchdog: Option<Duration>,
}

impl Systemd {
    /// Needs a tokio runtime (the signal handlers are installed now).
    pub fn new() -> io::Result<Systemd> {
        Ok(Systemd {
            sigterm: signal(SignalKind::terminate())?,
            sigint: signal(SignalKind::interrupt())?,
            watchdog: watchdog_interval(),
        })
    }
}

/// Half the systemd watchdog interval when systemd set one for us.
fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec / 2))
    } else {
        None
    }
}

impl platform::Service for Systemd {
    async fn stop_requested(&mut self) {
        tokio::select! {
            biased;
            _ = self.sigterm.recv() => {}
            _ = self.sigint.recv() => {}
        }
    }

    fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    fn feed_watchdog(&mut self) {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
    }

    fn ready(&mut self) {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    }

    fn stopping(&mut self) {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    }

    /// Replaces this process with a new run of the same program and arguments (the
    /// PID, hence a supervisor's view of it, stays).
    fn restart_in_place(&mut self) -> io::Error {
        use std::os::unix::process::CommandExt as _;
        let program = match std::env::current_exe() {
            Ok(program) => program,
            Err(e) => return e,
        };
        std::process::Command::new(program).args(std::env::args_os().skip(1)).exec()
    }

    fn exit(&mut self, code: i32) -> ! {
        std::process::exit(code)
    }
}
