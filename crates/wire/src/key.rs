//! The cluster key: 32 random bytes shared by every node, used for the heartbeat tags.
//! Its file holds the key as text, hex (64 digits) or standard base64 (44 characters),
//! surrounding whitespace ignored; `tandem keygen` writes [`Key::to_text`] (hex).
//!
//! It owns parsing and generating keys; it must not log or print a key (its `Debug` is
//! redacted) and it reads no file except in [`Key::from_file`].

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use rand_core::RngCore;

/// The length of a cluster key in bytes.
pub const KEY_BYTES: usize = 32;

/// A cluster key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_BYTES]);

/// Why a key could not be read.
#[derive(Debug)]
pub enum KeyError {
    /// The key file could not be read.
    Io(std::io::Error),
    /// The text is neither 64 hex digits nor 32 bytes in base64.
    Format(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Io(e) => write!(f, "cannot read the key file: {e}"),
            KeyError::Format(why) => write!(f, "not a cluster key: {why}"),
        }
    }
}

impl std::error::Error for KeyError {}

impl Key {
    /// A key from its raw bytes.
    pub fn new(bytes: [u8; KEY_BYTES]) -> Key {
        Key(bytes)
    }

    /// A fresh random key.
    pub fn generate(rng: &mut impl RngCore) -> Key {
        let mut bytes = [0; KEY_BYTES];
        rng.fill_bytes(&mut bytes);
        Key(bytes)
    }

    /// Parses the contents of a key file: 64 hex digits or 44 base64 characters.
    pub fn from_bytes(text: &[u8]) -> Result<Key, KeyError> {
        let text = std::str::from_utf8(text)
            .map_err(|_| KeyError::Format("the key file is not text".into()))?
            .trim();
        let bytes = if text.len() == 2 * KEY_BYTES {
            hex::decode(text).map_err(|e| KeyError::Format(format!("bad hex: {e}")))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| KeyError::Format("expected 64 hex digits or base64 text".into()))?
        };
        let bytes: [u8; KEY_BYTES] = bytes.try_into().map_err(|b: Vec<u8>| {
            KeyError::Format(format!("{} bytes, expected {KEY_BYTES}", b.len()))
        })?;
        Ok(Key(bytes))
    }

    /// Reads and parses a key file.
    pub fn from_file(path: &Path) -> Result<Key, KeyError> {
        Key::from_bytes(&std::fs::read(path).map_err(KeyError::Io)?)
    }

    /// The key as a key file holds it: 64 lowercase hex digits and a newline.
    pub fn to_text(&self) -> String {
        format!("{}\n", hex::encode(self.0))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn key() -> Key {
        Key::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(7))
    }

    #[test]
    fn hex_text_round_trips() {
        let key = key();
        assert_eq!(Key::from_bytes(key.to_text().as_bytes()).unwrap(), key);
    }

    #[test]
    fn base64_text_is_accepted() {
        let key = key();
        let text = base64::engine::general_purpose::STANDARD.encode(key.as_bytes());
        assert_eq!(Key::from_bytes(format!("  {text}\n").as_bytes()).unwrap(), key);
    }

    #[test]
    fn wrong_lengths_and_garbage_are_refused() {
        assert!(Key::from_bytes(b"").is_err());
        assert!(Key::from_bytes(&[0xff, 0xfe]).is_err());
        assert!(Key::from_bytes("ab".repeat(31).as_bytes()).is_err());
        assert!(Key::from_bytes("zz".repeat(32).as_bytes()).is_err());
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        assert!(Key::from_bytes(short.as_bytes()).is_err());
    }

    #[test]
    fn generated_keys_differ_and_debug_hides_them() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let (a, b) = (Key::generate(&mut rng), Key::generate(&mut rng));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "Key(<redacted>)");
    }

    #[test]
    fn from_file_reads_and_reports_missing_files() {
        let path = std::env::temp_dir().join(format!("wire-key-{}", std::process::id()));
        std::fs::write(&path, key().to_text()).unwrap();
        assert_eq!(Key::from_file(&path).unwrap(), key());
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(Key::from_file(&path), Err(KeyError::Io(_))));
    }
}
