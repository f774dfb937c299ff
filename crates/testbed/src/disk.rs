//! The lab's shared disk: one sparse image file formatted once with ext4, and one loop
//! device per host over that same file, as two servers see one SAN LUN as two block
//! devices (LAB-NOTES, "Realistic shared storage"). It owns creating and detaching those
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
}

impl SharedDisk {
    /// Creates the sparse image of `size_mib` MiB for the lab `prefix`, formats it with
    /// ext4 and attaches one loop device per host. On failure, whatever was created is
    /// removed again (by `Drop`).
    pub fn create(prefix: &str, size_mib: u64, hosts: usize) -> Result<SharedDisk, LabError> {
        if !(DISK_MIB_MIN..=DISK_MIB_MAX).contains(&size_mib) {
            return Err(LabError::new(format!(
                "shared disk of {size_mib} MiB: must be {DISK_MIB_MIN}..={DISK_MIB_MAX} MiB"
            )));
        }
        let mut disk = SharedDisk { image: image_path(prefix), devices: Vec::new() };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&disk.image)
            .map_err(|e| LabError::io(&format!("creating {}", disk.image.display()), e))?;
        file.set_len(size_mib << 20)
            .map_err(|e| LabError::io(&format!("sizing {}", disk.image.display()), e))?;
        drop(file);
        let image = disk.image.to_string_lossy().into_owned();
        run_ok("mkfs.ext4", &["-q", "-F", "-L", "tandem-lab", &image])?;
        for _ in 0..hosts {
            let device = attach(&image)?;
            disk.devices.push(device);
        }
        Ok(disk)
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

/// Attaches a new loop device over `image` and returns its path.
fn attach(image: &str) -> Result<PathBuf, LabError> {
    let mut last_error = None;
    for attempt in 0..ATTACH_ATTEMPTS_MAX {
        match run_ok("losetup", &["--find", "--show", image]) {
            Ok(output) => return Ok(PathBuf::from(output.stdout.trim())),
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
        for device in &self.devices {
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
