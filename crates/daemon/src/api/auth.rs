//! Bearer tokens checked against the users file: the file is read at start and again
//! when its modification time changes (looked at most once a second); a token that
//! verified is remembered by its SHA-256 fingerprint for [`VERIFIED_FOR`], so that only
//! a token's first request (and one per minute after) pays for argon2, which runs on the
//! blocking pool, at most [`HASH_CHECKS_MAX`] at a time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::users::{self, Role, UsersFile};

/// How long a verified token is taken without hashing it again. A removed user or a new
/// hash ends it at once (the cached entry is checked against the current file).
pub const VERIFIED_FOR: Duration = Duration::from_secs(60);

/// Hash checks at once: each takes about 19 MiB and tens of milliseconds; a flood of
/// bad tokens waits here instead of taking every core.
pub const HASH_CHECKS_MAX: usize = 2;

/// Fingerprints kept at most (a flood of different good tokens cannot grow it further).
const CACHE_MAX: usize = 4096;

/// Why a request is not authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token that is no user's.
    Bad,
}

/// Who a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authed {
    pub user: String,
    pub role: Role,
}

struct Loaded {
    users: UsersFile,
    modified: Option<SystemTime>,
    looked: Instant,
}

/// The users file as the API knows it, and the verified tokens.
pub struct Authenticator {
    path: PathBuf,
    loaded: Mutex<Loaded>,
    verified: Mutex<HashMap<[u8; 32], (String, String, Instant)>>,
    checks: Semaphore,
    /// A hash no token matches, checked for a token naming no user, so that such a
    /// token costs as long to refuse as a wrong token of a real user: the time of an
    /// answer does not tell which user names exist.
    decoy: String,
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Authenticator {
    /// Reads the users file (an invalid one is an error).
    pub fn new(path: PathBuf) -> anyhow::Result<Authenticator> {
        let stamp = modified(&path);
        let users = UsersFile::load(&path)?;
        Ok(Authenticator {
            path,
            loaded: Mutex::new(Loaded { users, modified: stamp, looked: Instant::now() }),
            verified: Mutex::new(HashMap::new()),
            checks: Semaphore::new(HASH_CHECKS_MAX),
            decoy: users::hash_token(&users::new_token("decoy")),
        })
    }

    /// Reads the file again if it changed; an invalid new version is logged (E5110) and
    /// the previous users stay.
    fn refresh(&self) {
        let mut loaded = self.loaded.lock().expect("users lock");
        if loaded.looked.elapsed() < Duration::from_secs(1) {
            return;
        }
        loaded.looked = Instant::now();
        let stamp = modified(&self.path);
        if stamp == loaded.modified {
            return;
        }
        loaded.modified = stamp;
        match UsersFile::load(&self.path) {
            Ok(users) => {
                tracing::info!("read the API users file {} again", self.path.display());
                loaded.users = users;
            }
            Err(e) => tracing::error!(
                code = engine::catalogue::API_USERS_INVALID.code,
                "{}: {e:#}; keeping the users read before",
                engine::catalogue::API_USERS_INVALID.code
            ),
        }
    }

    /// The role and token hash of user `name` in the users file as it is now (read
    /// again if it changed): what a console session checks on each request.
    pub fn user(&self, name: &str) -> Option<(Role, String)> {
        self.refresh();
        let loaded = self.loaded.lock().expect("users lock");
        loaded.users.get(name).map(|user| (user.role, user.hash.clone()))
    }

    /// The user of the `Authorization` header's bearer token.
    pub async fn check(&self, header: Option<&str>) -> Result<Authed, Refusal> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::Missing)?;
        self.refresh();
        let name = users::name_of_token(token).unwrap_or("");
        let found = {
            let loaded = self.loaded.lock().expect("users lock");
            loaded.users.get(name).map(|user| (user.role, user.hash.clone()))
        };
        let Some((role, hash)) = found else {
            // No such user: refused after the same work as a wrong token.
            let _ = self.verify(self.decoy.clone(), token).await;
            return Err(Refusal::Bad);
        };
        let fingerprint: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        {
            let verified = self.verified.lock().expect("cache lock");
            if let Some((who, with, at)) = verified.get(&fingerprint) {
                if who == name && *with == hash && at.elapsed() < VERIFIED_FOR {
                    return Ok(Authed { user: name.to_string(), role });
                }
            }
        }
        if !self.verify(hash.clone(), token).await {
            return Err(Refusal::Bad);
        }
        let mut verified = self.verified.lock().expect("cache lock");
        if verified.len() >= CACHE_MAX {
            verified.retain(|_, (_, _, at)| at.elapsed() < VERIFIED_FOR);
            if verified.len() >= CACHE_MAX {
                verified.clear();
            }
        }
        verified.insert(fingerprint, (name.to_string(), hash, Instant::now()));
        Ok(Authed { user: name.to_string(), role })
    }

    /// Whether `token` matches `hash`: argon2 on the blocking pool, at most
    /// [`HASH_CHECKS_MAX`] at a time.
    async fn verify(&self, hash: String, token: &str) -> bool {
        let Ok(permit) = self.checks.acquire().await else { return false };
        let token = token.to_string();
        let good = tokio::task::spawn_blocking(move || users::verify_token(&hash, &token))
            .await
            .unwrap_or(false);
        drop(permit);
        good
    }
}
