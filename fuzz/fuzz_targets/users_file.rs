//! Fuzz target `users_file`: the API's users file parser
//! (`daemon::api::users::UsersFile::parse`, what `load` does with the file's text) on
//! arbitrary text. Nothing may panic; a file it accepts has valid, unique names and
//! argon2id hashes, and re-encodes (as `tandem user add` writes it) to text that parses
//! to the same users.

#![no_main]

use daemon::api::users::{check_name, UsersFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(file) = UsersFile::parse(text, "users.toml") {
        let mut names: Vec<&str> = file.users.iter().map(|u| u.name.as_str()).collect();
        assert!(names.iter().all(|n| check_name(n).is_ok()));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), file.users.len(), "a name twice");
        let again = file.to_text().expect("an accepted file encodes");
        assert_eq!(UsersFile::parse(&again, "users.toml").expect("and parses again"), file);
    }
});
