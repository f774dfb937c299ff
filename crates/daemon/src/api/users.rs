//! The API's users file (`[api] users_file`, default /etc/tandem/users.toml): one
//! `[[user]]` table per user with its `name`, `role` and `hash`, the argon2id hash (PHC
//! string) of its token. The token itself is stored nowhere: `tandem user add` prints it
//! once. A token is `NAME.SECRET` (64 hex digits of secret), so that a request costs one
//! hash check, against its own user's hash.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context as _;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

/// What a user may do. `viewer` < `operator` < `admin`; `app` is apart: an
/// application's token, for its own app's routes only (none of the routes of this
/// version: an app token gets 403 on each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
    App,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Admin, Role::App];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::App => "app",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Whether this role may use a route that needs `need`.
    pub fn may(self, need: Role) -> bool {
        let rank = |r: Role| match r {
            Role::Viewer => Some(0),
            Role::Operator => Some(1),
            Role::Admin => Some(2),
            Role::App => None,
        };
        match (rank(self), rank(need)) {
            (Some(mine), Some(needed)) => mine >= needed,
            (None, None) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One user of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// argon2id PHC string of the token.
    pub hash: String,
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    #[serde(default, rename = "user")]
    pub users: Vec<User>,
}

/// A user name: 1 to 64 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid user name (1 to 64 of a-z, 0-9, `-` and `_`, starting \
             with a letter or digit)"
        ))
    }
}

impl UsersFile {
    /// Reads and checks the file: valid TOML of this shape, names valid and unique,
    /// every hash an argon2id PHC string.
    pub fn load(path: &Path) -> anyhow::Result<UsersFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the users file {}", path.display()))?;
        UsersFile::parse(&text, &path.display().to_string())
    }

    /// Checks the text of a users file as [`UsersFile::load`] does; `origin` names it in
    /// the errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<UsersFile> {
        let file: UsersFile = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("the users file {origin} is invalid: {e}"))?;
        let mut seen = BTreeMap::new();
        for user in &file.users {
            check_name(&user.name).map_err(|e| anyhow::anyhow!("the users file {origin}: {e}"))?;
            if seen.insert(user.name.as_str(), ()).is_some() {
                anyhow::bail!("the users file {origin} names `{}` twice", user.name);
            }
            let parsed =
                PasswordHash::new(&user.hash).ok().filter(|h| h.algorithm.as_str() == "argon2id");
            if parsed.is_none() {
                anyhow::bail!(
                    "the users file {origin}: the hash of `{}` is not an argon2id PHC string \
                     (`$argon2id$...`; `tandem user add` writes them)",
                    user.name
                );
            }
        }
        Ok(file)
    }

    /// The file's text as [`UsersFile::save`] writes it (without its comment line).
    pub fn to_text(&self) -> anyhow::Result<String> {
        toml::to_string(self).context("serialising the users file")
    }

    /// The file, or an empty one if there is none yet.
    pub fn load_or_empty(path: &Path) -> anyhow::Result<UsersFile> {
        if path.exists() {
            UsersFile::load(path)
        } else {
            Ok(UsersFile::default())
        }
    }

    /// Writes the file (mode 0600, through a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = self.to_text()?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = (|| -> std::io::Result<()> {
            let mut file =
                OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
            file.write_all(b"# tandem API users: `tandem user add|remove|list` edit this file.\n")?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temp, path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written.with_context(|| format!("writing {}", path.display()))
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }
}

/// A new random token for user `name`: `NAME.` and 64 hex digits (256 bits).
pub fn new_token(name: &str) -> String {
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    format!("{name}.{}", hex::encode(secret))
}

/// The user a token names (the part before its dot).
pub fn name_of_token(token: &str) -> Option<&str> {
    token.split_once('.').map(|(name, _)| name).filter(|n| check_name(n).is_ok())
}

/// The argon2id hash (PHC string, default parameters) of `token`. Slow by design.
pub fn hash_token(token: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(token.as_bytes(), &salt)
        .expect("argon2 with its default parameters hashes any input")
        .to_string()
}

/// Whether `token` matches the PHC string `hash`. Slow by design: not on async threads.
pub fn verify_token(hash: &str, token: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|h| Argon2::default().verify_password(token.as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_app_is_apart() {
        use Role::*;
        assert!(Admin.may(Operator) && Admin.may(Viewer) && Operator.may(Viewer));
        assert!(!Viewer.may(Operator) && !Operator.may(Admin));
        assert!(!App.may(Viewer) && !Admin.may(App) && App.may(App));
    }

    #[test]
    fn a_users_file_round_trips_and_hashes_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let token = new_token("alice");
        assert_eq!(name_of_token(&token), Some("alice"));
        let users = UsersFile {
            users: vec![User {
                name: "alice".into(),
                role: Role::Operator,
                hash: hash_token(&token),
            }],
        };
        users.save(&path).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let back = UsersFile::load(&path).unwrap();
        assert_eq!(back, users);
        assert!(!std::fs::read_to_string(&path).unwrap().contains(&token), "no token stored");
        assert!(verify_token(&back.users[0].hash, &token));
        assert!(!verify_token(&back.users[0].hash, &new_token("alice")));
        std::fs::write(&path, "[[user]]\nname = \"bob\"\nrole = \"viewer\"\nhash = \"plain\"\n")
            .unwrap();
        let err = UsersFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("argon2id"), "{err}");
        std::fs::write(&path, "[[user]]\nname = \"bob\"\nrole = \"root\"\nhash = \"x\"\n").unwrap();
        assert!(UsersFile::load(&path).is_err());
    }
}
