//! Integration tests of the area on real files (and, as root with `losetup`, on loop
//! devices): formatting and its refusals, corruption on disk read as an error, two
//! openers seeing each other's writes as two hosts would, and the arbiter's disk lease
//! client driven through the real driver. They own only their temporary files and
//! loop devices, which they always remove.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use arbiter::disk::{Block, ClientOutput, DiskLeaseClient, DiskLeaseConfig, GroupRecord, Record};
use diskarea::{format_area, inspect, perform, Area, AreaError, Found, Mode, AREA_BYTES_MIN};
use engine::{GroupId, Instant, LeaseRequest, LeaseResult, NodeId, OpId, Timing};

fn temp_area(dir: &Path, bytes: u64) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new_in(dir).expect("temp file");
    file.as_file().set_len(bytes).expect("set_len");
    file
}

fn disk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

#[test]
fn foreign_and_foreign_data_refused_unless_forced() {
    let file = temp_area(&disk_dir(), AREA_BYTES_MIN);
    let report = format_area(file.path(), "alpha", 2, 2, false).unwrap();
    println!("mode on the target dir's filesystem: {:?}", report.mode);
    assert_eq!(report.bytes_written, 15 * 4096);
    // The same cluster may re-format its own area.
    let again = format_area(file.path(), "alpha", 2, 3, false).unwrap();
    assert!(matches!(again.previous, Found::Header(ref h) if h.cluster_name == "alpha"));
    // Another cluster is refused, and the header is left as it was.
    let refused = format_area(file.path(), "beta", 2, 2, false);
    assert!(matches!(refused, Err(AreaError::ForeignCluster { ref name, .. }) if name == "alpha"));
    assert!(Area::open(file.path(), "alpha").is_ok());
    assert!(matches!(Area::open(file.path(), "beta"), Err(AreaError::ForeignCluster { .. })));
    // --force takes it over.
    format_area(file.path(), "beta", 2, 2, true).unwrap();
    assert!(Area::open(file.path(), "beta").is_ok());
    assert!(matches!(Area::open(file.path(), "alpha"), Err(AreaError::ForeignCluster { .. })));
    // Data that is not a tandem area is refused without --force.
    std::fs::write(file.path(), vec![0x5a; AREA_BYTES_MIN as usize]).unwrap();
    assert!(matches!(
        format_area(file.path(), "alpha", 2, 2, false),
        Err(AreaError::NotFormatted(_))
    ));
    assert!(matches!(Area::open(file.path(), "alpha"), Err(AreaError::NotFormatted(_))));
    format_area(file.path(), "alpha", 2, 2, true).unwrap();
    let (found, bytes, _) = inspect(file.path()).unwrap();
    assert!(matches!(found, Found::Header(h) if h.cluster_name == "alpha"));
    assert_eq!(bytes, AREA_BYTES_MIN);
}

#[test]
fn too_small_areas_refused() {
    let file = temp_area(&disk_dir(), AREA_BYTES_MIN - 4096);
    let result = format_area(file.path(), "alpha", 2, 2, false);
    assert!(matches!(result, Err(AreaError::TooSmall { needed, .. }) if needed == AREA_BYTES_MIN));
    let file = temp_area(&disk_dir(), 8 << 20);
    let result = format_area(file.path(), "alpha", 32, 10_000, false);
    assert!(matches!(
        result,
        Err(AreaError::TooSmall { needed, .. }) if needed == diskarea::AREA_BYTES_FOR_LIMITS
    ));
    // The area of the limits fits in its size.
    let file = temp_area(&disk_dir(), diskarea::AREA_BYTES_FOR_LIMITS);
    let report = format_area(file.path(), "big", 32, 10_000, false).unwrap();
    assert_eq!(report.bytes_written, diskarea::AREA_BYTES_FOR_LIMITS);
    let area = Area::open(file.path(), "big").unwrap();
    assert_eq!(area.read_record(Block::Group(GroupId(9_999))).unwrap(), Record::Blank);
}

#[test]
fn a_flipped_bit_on_disk_is_an_error() {
    let file = temp_area(&disk_dir(), AREA_BYTES_MIN);
    format_area(file.path(), "alpha", 2, 2, false).unwrap();
    let area = Area::open(file.path(), "alpha").unwrap();
    let record = Record::Group(GroupRecord { owner: Some(NodeId(1)), stamp: (1, 2) });
    area.write_record(Block::Group(GroupId(1)), &record).unwrap();
    assert_eq!(area.read_record(Block::Group(GroupId(1))).unwrap(), record);
    // Group 1 of a 2 × 2 area is sector 12; flip one bit of its body.
    let mut bytes = std::fs::read(file.path()).unwrap();
    bytes[12 * 4096 + 30] ^= 0x04;
    std::fs::write(file.path(), &bytes).unwrap();
    let area = Area::open(file.path(), "alpha").unwrap();
    let read = area.read_record(Block::Group(GroupId(1)));
    assert!(matches!(read, Err(AreaError::Corrupt { sector: 12, .. })), "{read:?}");
    let result = perform(&area, &arbiter::disk::IoOp::Read(Block::Group(GroupId(1))));
    assert!(matches!(result, arbiter::disk::IoResult::Failed(_)));
}

/// Two openers of one image, each with its own descriptor, as two hosts would.
fn two_openers_see_each_other(path: &Path, a: &Path, b: &Path) -> Mode {
    format_area(path, "pair", 2, 2, false).unwrap();
    let first = Area::open(a, "pair").unwrap();
    let second = Area::open(b, "pair").unwrap();
    for seq in 1..=20u64 {
        let payload: Vec<u8> = (0..(seq as usize * 700)).map(|i| (i as u64 ^ seq) as u8).collect();
        first.write_heartbeat(NodeId(0), seq, &payload).unwrap();
        assert_eq!(second.read_heartbeat(NodeId(0)).unwrap(), Some((seq, payload.clone())));
        second.write_heartbeat(NodeId(1), seq, &payload[..10]).unwrap();
        assert_eq!(first.read_heartbeat(NodeId(1)).unwrap(), Some((seq, payload[..10].to_vec())));
    }
    assert_eq!(first.mode(), second.mode());
    first.mode()
}

#[test]
fn two_openers_of_one_file_see_each_others_slots() {
    let file = temp_area(&disk_dir(), AREA_BYTES_MIN);
    let mode = two_openers_see_each_other(file.path(), file.path(), file.path());
    println!("target dir: {mode:?}");
    // tmpfs (no O_DIRECT before Linux 6.6): the buffered fallback.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        let file = temp_area(shm, AREA_BYTES_MIN);
        let mode = two_openers_see_each_other(file.path(), file.path(), file.path());
        println!("/dev/shm: {mode:?}");
    } else {
        testgate::cannot_run("the tmpfs case", "no /dev/shm (a tmpfs)");
    }
}

/// Runs `client` until it answers `id`, carrying out its I/O on `area` in real time.
fn drive(
    client: &mut DiskLeaseClient,
    area: &Area,
    start: std::time::Instant,
    id: u64,
    request: LeaseRequest,
) -> LeaseResult {
    let now = || Instant::from_nanos(start.elapsed().as_nanos() as u64);
    client.request(now(), OpId(id), request);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(std::time::Instant::now() < deadline, "no answer to request {id}");
        match client.poll_output() {
            ClientOutput::Io { io, op } => {
                let result = perform(area, &op);
                let ended = now();
                client.io_done(ended, ended, io, result);
            }
            ClientOutput::Reply { id: answered, result } => {
                assert_eq!(answered, OpId(id));
                return result;
            }
            ClientOutput::Wait(at) => {
                assert_ne!(at, Instant::MAX, "the client waits for nothing");
                let wait = Duration::from_nanos(at.as_nanos().saturating_sub(now().as_nanos()));
                std::thread::sleep(wait);
                client.timeout(now());
            }
        }
    }
}

#[test]
fn lease_client_claims_renews_and_releases_through_the_driver() {
    let file = temp_area(&disk_dir(), AREA_BYTES_MIN);
    format_area(file.path(), "lease", 2, 2, false).unwrap();
    let start = std::time::Instant::now();
    let config = DiskLeaseConfig::new(&Timing::default(), Duration::from_millis(100));
    let area = Area::open(file.path(), "lease").unwrap();
    let mut a = DiskLeaseClient::new(NodeId(0), 1, config);
    let granted = drive(&mut a, &area, start, 1, LeaseRequest::Acquire(GroupId(1)));
    assert!(matches!(granted, LeaseResult::Granted { .. }), "{granted:?}");
    assert_eq!(area.read_record(Block::Group(GroupId(1))).unwrap().owner(), Some(NodeId(0)));
    let renewed = drive(&mut a, &area, start, 2, LeaseRequest::Renew);
    assert!(matches!(renewed, LeaseResult::Granted { .. }), "{renewed:?}");
    match area.read_record(Block::Host(NodeId(0))).unwrap() {
        Record::Host(h) => assert_eq!(h.groups, vec![GroupId(1)]),
        other => panic!("host record {other:?}"),
    }
    let released = drive(&mut a, &area, start, 3, LeaseRequest::Release(GroupId(1)));
    assert!(!matches!(released, LeaseResult::Denied { .. }), "{released:?}");
    assert_eq!(area.read_record(Block::Group(GroupId(1))).unwrap().owner(), None);
    // Another node, through its own descriptor, now claims the freed group.
    let other = Area::open(file.path(), "lease").unwrap();
    let mut b = DiskLeaseClient::new(NodeId(1), 1, config);
    let granted = drive(&mut b, &other, start, 4, LeaseRequest::Acquire(GroupId(1)));
    assert!(matches!(granted, LeaseResult::Granted { .. }), "{granted:?}");
    assert_eq!(area.read_record(Block::Group(GroupId(1))).unwrap().owner(), Some(NodeId(1)));
}

/// A loop device, detached on drop (even when the test panics).
struct Loop(String);

impl Loop {
    fn attach(image: &Path) -> Result<Loop, String> {
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(image)
            .output()
            .map_err(|e| format!("cannot run losetup: {e}"))?;
        if !out.status.success() {
            return Err(format!("losetup failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        let device = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        // A reused loop device keeps the read-only flag (BLKROSET) that lock_standby
        // left on it in a concurrent test; writes would fail with EPERM.
        let loop_device = Loop(device);
        let rw = Command::new("blockdev").arg("--setrw").arg(&loop_device.0).status();
        if !rw.is_ok_and(|s| s.success()) {
            return Err(format!("blockdev --setrw {} failed", loop_device.0));
        }
        Ok(loop_device)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

#[test]
fn two_loop_devices_over_one_image() {
    if let Err(missing) = testgate::root() {
        testgate::cannot_run(
            "two_loop_devices_over_one_image",
            &format!("loop devices: {missing}"),
        );
        return;
    }
    let image = temp_area(&disk_dir(), 2 << 20);
    let (a, b) = match (Loop::attach(image.path()), Loop::attach(image.path())) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(why), _) | (_, Err(why)) => {
            testgate::cannot_run(
                "two_loop_devices_over_one_image",
                &format!("no loop device: {why}"),
            );
            return;
        }
    };
    let mode = two_openers_see_each_other(Path::new(&a.0), Path::new(&a.0), Path::new(&b.0));
    assert_eq!(mode, Mode::Direct, "block devices are always opened with O_DIRECT");
    let start = std::time::Instant::now();
    let config = DiskLeaseConfig::new(&Timing::default(), Duration::from_millis(100));
    let area = Area::open(Path::new(&b.0), "pair").unwrap();
    let mut client = DiskLeaseClient::new(NodeId(1), 1, config);
    let granted = drive(&mut client, &area, start, 1, LeaseRequest::Acquire(GroupId(0)));
    assert!(matches!(granted, LeaseResult::Granted { .. }), "{granted:?}");
    let seen = Area::open(Path::new(&a.0), "pair").unwrap();
    assert_eq!(seen.read_record(Block::Group(GroupId(0))).unwrap().owner(), Some(NodeId(1)));
}
