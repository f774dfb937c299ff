//! The lab's shared disk: one sparse image file formatted once with ext4, and one loop
//! device per host over that same file, as two servers see one SAN LUN as two block
//! devices (LAB-NOTES, "Realistic shared storage"). With a heartbeat area the image is
//! split like a partitioned LUN: ext4 over the first part (each host's data device stops
//! there) and the area, unformatted for `tandem disk init`, over the rest (a second loop
//! device per host, with an offset). It owns creating and detaching those
//! devices and the image; it must not mount anything (mounting happens inside a host's
//! own mount namespace, by the caller) nor touch loop devices it did not attach.
//!
//! Because each host has its own device, buffered reads of what another host wrote may
//! be stale, as on real shared storage: readers that need the other host's latest
//! writes use O_DIRECT, or mount only after the other host unmounted.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::command::run_ok;
use crate::names::image_path;
use crate::LabError;

/// Smallest and largest shared disk a lab accepts, in MiB.
pub const DISK_MIB_MIN: u64 = 8;
/// See [`DISK_MIB_MIN`].
pub const DISK_MIB_MAX: u64 = 4096;

/// How often attaching a loop device is retried: parallel tests may race for the same
/// free device number.
const ATTACH_ATTEMPTS_MAX: u32 = 5;

/// How long detaching one loop device may take.
const DETACH_TIMEOUT: Duration = Duration::from_secs(10);

/// The image file and the loop devices over it, one per host (index = host).
#[derive(Debug)]
pub struct SharedDisk {
    image: PathBuf,
    devices: Vec<PathBuf>,
    /// Per host, the heartbeat area's device (empty without an area).
    area_devices: Vec<PathBuf>,
    /// The data devices' size limit (0: the whole image).
    data_limit: u64,
    area_bytes: u64,
}

impl SharedDisk {
    /// Creates the sparse image of `size_mib` MiB for the lab `prefix`, formats it with
    /// ext4 and attaches one loop device per host. On failure, whatever was created is
    /// removed again (by `Drop`).
    pub fn create(prefix: &str, size_mib: u64, hosts: usize) -> Result<SharedDisk, LabError> {
        SharedDisk::create_with_area(prefix, size_mib, 0, hosts)
    }

    /// [`SharedDisk::create`] plus a heartbeat area of `area_mib` MiB (none when 0)
    /// after the file system, with its own loop device per host.
    pub fn create_with_area(
        prefix: &str,
        size_mib: u64,
        area_mib: u64,
        hosts: usize,
    ) -> Result<SharedDisk, LabError> {
        if !(DISK_MIB_MIN..=DISK_MIB_MAX).contains(&size_mib) {
            return Err(LabError::new(format!(
                "shared disk of {size_mib} MiB: must be {DISK_MIB_MIN}..={DISK_MIB_MAX} MiB"
            )));
        }
        if area_mib > AREA_MIB_MAX {
            return Err(LabError::new(format!(
                "heartbeat area of {area_mib} MiB: at most {AREA_MIB_MAX} MiB"
            )));
        }
        let data_bytes = size_mib << 20;
        let mut disk = SharedDisk {
            image: image_path(prefix),
            devices: Vec::new(),
            area_devices: Vec::new(),
            data_limit: if area_mib > 0 { data_bytes } else { 0 },
            area_bytes: area_mib << 20,
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&disk.image)
            .map_err(|e| LabError::io(&format!("creating {}", disk.image.display()), e))?;
        file.set_len(data_bytes + disk.area_bytes)
            .map_err(|e| LabError::io(&format!("sizing {}", disk.image.display()), e))?;
        drop(file);
        let image = disk.image.to_string_lossy().into_owned();
        let fs_size = format!("{size_mib}M");
        run_ok("mkfs.ext4", &["-q", "-F", "-L", "tandem-lab", &image, &fs_size])?;
        for _ in 0..hosts {
            let device = attach(&image, 0, disk.data_limit)?;
            disk.devices.push(device);
            if disk.area_bytes > 0 {
                let area = attach(&image, data_bytes, disk.area_bytes)?;
                disk.area_devices.push(area);
            }
        }
        Ok(disk)
    }

    /// The heartbeat area's device of host `host`, if the disk has an area.
    pub fn area_device(&self, host: usize) -> Option<&Path> {
        self.area_devices.get(host).map(PathBuf::as_path)
    }

    /// Host `host`'s devices and the size limit each has while its path works.
    pub(crate) fn host_devices(&self, host: usize) -> Vec<(&Path, u64)> {
        let mut out = Vec::new();
        if let Some(device) = self.device(host) {
            out.push((device, self.data_limit));
        }
        if let Some(area) = self.area_device(host) {
            out.push((area, self.area_bytes));
        }
        out
    }

    /// The image file.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// The loop device of host `host`, if it exists.
    pub fn device(&self, host: usize) -> Option<&Path> {
        self.devices.get(host).map(PathBuf::as_path)
    }
}

/// Largest heartbeat area, in MiB (tandem's area for its limits needs about 40).
pub const AREA_MIB_MAX: u64 = 256;

/// Attaches a new loop device over `image` from byte `offset` on, `limit` bytes long
/// (0: to the end), and returns its path.
fn attach(image: &str, offset: u64, limit: u64) -> Result<PathBuf, LabError> {
    let mut last_error = None;
    let (offset, limit) = (offset.to_string(), limit.to_string());
    let mut args = vec!["--find", "--show"];
    if limit != "0" {
        args.extend(["--offset", &offset, "--sizelimit", &limit]);
    }
    args.push(image);
    for attempt in 0..ATTACH_ATTEMPTS_MAX {
        match run_ok("losetup", &args) {
            Ok(output) => {
                // A reused loop device keeps the read-only flag (BLKROSET, tandem's
                // lock_standby) its last user left on it.
                let device = output.stdout.trim().to_owned();
                run_ok("blockdev", &["--setrw", &device])?;
                return Ok(PathBuf::from(device));
            }
            Err(error) => last_error = Some(error),
        }
        thread::sleep(Duration::from_millis(20 << attempt));
    }
    Err(last_error.unwrap_or_else(|| LabError::new("losetup never ran".to_owned())))
}

/// Whether loop device `device` is still attached to `image`, per sysfs.
fn attached_to(device: &Path, image: &Path) -> bool {
    let Some(name) = device.file_name() else { return false };
    let backing = Path::new("/sys/block").join(name).join("loop/backing_file");
    match std::fs::read_to_string(backing) {
        Ok(file) => Path::new(file.trim().trim_end_matches("(deleted)").trim()) == image,
        Err(_) => false,
    }
}

/// Detaches `device` and waits until it really is: while anything else holds the device
/// open (a concurrent `losetup --find`, a probe), the kernel only marks it to detach on
/// the last close.
fn detach(device: &Path, image: &Path) -> Result<(), LabError> {
    run_ok("losetup", &["--detach", &device.to_string_lossy()])?;
    let deadline = Instant::now() + DETACH_TIMEOUT;
    while attached_to(device, image) {
        if Instant::now() >= deadline {
            return Err(LabError::new(format!(
                "{} still attached after {} ms",
                device.display(),
                DETACH_TIMEOUT.as_millis()
            )));
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

impl Drop for SharedDisk {
    fn drop(&mut self) {
        for device in self.devices.iter().chain(&self.area_devices) {
            if let Err(error) = detach(device, &self.image) {
                eprintln!("testbed: could not detach {}: {error}", device.display());
            }
        }
        if let Err(error) = std::fs::remove_file(&self.image) {
            if error.kind() != std::io::ErrorKind::NotFound {
                eprintln!("testbed: could not remove {}: {error}", self.image.display());
            }
        }
    }
}
