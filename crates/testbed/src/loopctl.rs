//! Shrinking and restoring a loop device's visible size (`LOOP_GET_STATUS64` /
//! `LOOP_SET_STATUS64` with `lo_sizelimit`): how the lab takes one host's disk path away
//! while the other hosts keep theirs (LAB-NOTES: there is no device-mapper here, and
//! hiding the device node does not affect descriptors already open). It owns the one
//! `unsafe` block of this crate, the two ioctls; it must not touch a device the lab did
//! not attach (the caller passes only its own devices).
//!
//! With the size limit at one sector, reads past it return nothing and writes past it
//! fail, on descriptors already open (also `O_DIRECT` ones) and under a mounted ext4
//! alike; a limit of 0 means "the whole backing file" again.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd as _;
use std::path::Path;
use std::thread;
use std::time::Duration;

/// `LO_NAME_SIZE` and `LO_KEY_SIZE` of linux/loop.h.
const LO_NAME_SIZE: usize = 64;
const LO_KEY_SIZE: usize = 32;

/// How often a status change is retried when the kernel asks for it (`EAGAIN`: pages of
/// the device were dirtied while it was invalidating them) or the device is busy.
const SET_ATTEMPTS_MAX: u32 = 20;

/// `struct loop_info64` of linux/loop.h, field for field.
#[repr(C)]
#[derive(Clone, Copy)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; LO_KEY_SIZE],
    lo_init: [u64; 2],
}

// linux/loop.h: `LOOP_SET_STATUS64` = 0x4C04, `LOOP_GET_STATUS64` = 0x4C05, both taking a
// pointer to a `struct loop_info64` (old-style numbers, hence the `_bad` macros).
nix::ioctl_write_ptr_bad!(loop_set_status64, 0x4C04, LoopInfo64);
nix::ioctl_read_bad!(loop_get_status64, 0x4C05, LoopInfo64);

/// Sets the size limit of loop device `device` to `bytes` (0: no limit), keeping every
/// other setting of the device as it is.
pub fn set_size_limit(device: &Path, bytes: u64) -> io::Result<()> {
    // Root may change the status of a device opened read-only; opening it for writing
    // would count as a writer for tools that look.
    let file = File::open(device)?;
    let fd = file.as_raw_fd();
    let mut info = status(&file)?;
    info.lo_sizelimit = bytes;
    let mut attempt = 0;
    loop {
        // SAFETY: `fd` belongs to `file`, open for the whole call; the kernel only reads
        // the `struct loop_info64` from a live local that `LOOP_GET_STATUS64` filled in.
        match unsafe { loop_set_status64(fd, &info) } {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EBUSY)
                if attempt + 1 < SET_ATTEMPTS_MAX =>
            {
                attempt += 1;
                thread::sleep(Duration::from_millis(10 << attempt.min(4)));
            }
            Err(error) => return Err(io::Error::from(error)),
        }
    }
}

/// The status of the loop device open as `file`.
fn status(file: &File) -> io::Result<LoopInfo64> {
    let mut info = LoopInfo64 {
        lo_device: 0,
        lo_inode: 0,
        lo_rdevice: 0,
        lo_offset: 0,
        lo_sizelimit: 0,
        lo_number: 0,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: 0,
        lo_file_name: [0; LO_NAME_SIZE],
        lo_crypt_name: [0; LO_NAME_SIZE],
        lo_encrypt_key: [0; LO_KEY_SIZE],
        lo_init: [0; 2],
    };
    // SAFETY: `file` is open for the whole call and the kernel writes exactly one
    // `struct loop_info64`, whose layout `LoopInfo64` repeats, into a live local.
    unsafe { loop_get_status64(file.as_raw_fd(), &mut info) }.map_err(io::Error::from)?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_struct_has_the_kernels_size() {
        // 5 x u64, 4 x u32, 64 + 64 + 32 bytes, 2 x u64 (linux/loop.h).
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
    }
}
