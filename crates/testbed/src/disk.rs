//! The lab's shared disk: one sparse image file formatted once with ext4, and one loop
//! device per host over that same file, as two servers see one SAN LUN as two block
//! devices (LAB-NOTES, "Realistic shared storage"). A heartbeat area is a second, small
//! image with its own loop device per host, like the small dedicated LUN that SBD and
//! sanlock deployments use: sharing one backing file with the data, every synchronous
//! heartbeat write flushed the file system's dirty data too and took hundreds of
//! milliseconds after a large write. It owns creating and detaching those
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
use crate::names::{area_image_path, image_path};
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
    /// The heartbeat area's image, when there is one.
    area_image: Option<PathBuf>,
    /// Per host, the heartbeat area's device (empty without an area).
    area_devices: Vec<PathBuf>,
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
            area_image: None,
            area_devices: Vec::new(),
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&disk.image)
            .map_err(|e| LabError::io(&format!("creating {}", disk.image.display()), e))?;
        file.set_len(data_bytes)
            .map_err(|e| LabError::io(&format!("sizing {}", disk.image.display()), e))?;
        drop(file);
        let image = disk.image.to_string_lossy().into_owned();
        run_ok("mkfs.ext4", &["-q", "-F", "-L", "tandem-lab", &image])?;
        if area_mib > 0 {
            let path = area_image_path(prefix);
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| LabError::io(&format!("creating {}", path.display()), e))?;
            disk.area_image = Some(path.clone());
            file.set_len(area_mib << 20)
                .map_err(|e| LabError::io(&format!("sizing {}", path.display()), e))?;
        }
        for _ in 0..hosts {
            let device = attach(&image)?;
            disk.devices.push(device);
            if let Some(area_image) = &disk.area_image {
                let area = attach(&area_image.to_string_lossy())?;
                disk.area_devices.push(area);
            }
        }
        Ok(disk)
    }

    /// The heartbeat area's device of host `host`, if the disk has an area.
    pub fn area_device(&self, host: usize) -> Option<&Path> {
        self.area_devices.get(host).map(PathBuf::as_path)
    }

    /// Host `host`'s devices (data, and area if any).
    pub(crate) fn host_devices(&self, host: usize) -> Vec<&Path> {
        self.device(host).into_iter().chain(self.area_device(host)).collect()
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

/// Attaches a new loop device over `image` and returns its path.
fn attach(image: &str) -> Result<PathBuf, LabError> {
    let mut last_error = None;
    for attempt in 0..ATTACH_ATTEMPTS_MAX {
        match run_ok("losetup", &["--find", "--show", image]) {
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
        let areas = self.area_devices.iter().map(|d| (d, self.area_image.as_ref()));
        let data = self.devices.iter().map(|d| (d, Some(&self.image)));
        for (device, image) in data.chain(areas) {
            if let Err(error) = detach(device, image.expect("an area device has an image")) {
                eprintln!("testbed: could not detach {}: {error}", device.display());
            }
        }
        for image in std::iter::once(&self.image).chain(&self.area_image) {
            if let Err(error) = std::fs::remove_file(image) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("testbed: could not remove {}: {error}", image.display());
                }
            }
        }
    }
}
