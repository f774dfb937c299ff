//! CRC-32C (Castagnoli), the checksum of every sector, computed by the `crc32c` crate
//! (SSE 4.2 / ARMv8 CRC instructions where the CPU has them: a 4 KiB sector costs well
//! under a microsecond, which matters at a few dozen sectors per second on every node).
//! The known vectors below pin the polynomial and the bit order of the on-disk format.
//! It owns only the arithmetic; it must not know about sectors.

/// The CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        // A whole sector, against the bitwise definition (reflected 0x82F63B78).
        let sector: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut crc = !0u32;
        for &b in &sector {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
            }
        }
        assert_eq!(crc32c(&sector), !crc);
    }
}
