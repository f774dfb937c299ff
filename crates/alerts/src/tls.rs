//! The files a target names, read once at start: a CA file's certificates (to trust
//! instead of the built-in public roots) and an SMTP password file (root's only).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use engine::catalogue;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::StartError;

fn unusable(path: &Path, why: impl std::fmt::Display) -> StartError {
    StartError {
        code: &catalogue::ALERT_FILE_UNUSABLE,
        message: format!("{}: {why}", path.display()),
    }
}

/// Every PEM certificate of `path` (at least one).
pub(crate) fn read_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, StartError> {
    let bytes = std::fs::read(path).map_err(|e| unusable(path, e))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| unusable(path, format!("not PEM: {e:?}")))?;
    if certs.is_empty() {
        return Err(unusable(path, "no PEM certificate in it"));
    }
    Ok(certs)
}

/// The password on the first line of `path`, a file no one but its owner (root) may
/// read.
pub(crate) fn read_password(path: &Path) -> Result<String, StartError> {
    let meta = std::fs::metadata(path).map_err(|e| unusable(path, e))?;
    if meta.mode() & 0o077 != 0 {
        return Err(unusable(
            path,
            format!(
                "mode {:o} lets others than its owner read it; chmod 600 it",
                meta.mode() & 0o777
            ),
        ));
    }
    if meta.uid() != 0 && nix_uid() == 0 {
        return Err(unusable(path, format!("owned by uid {}, not root", meta.uid())));
    }
    let text = std::fs::read_to_string(path).map_err(|e| unusable(path, e))?;
    let password = text.lines().next().unwrap_or("").to_string();
    if password.is_empty() {
        return Err(unusable(path, "the first line is empty"));
    }
    Ok(password)
}

/// Our own uid, from the owner of `/proc/self` (no libc call needed).
fn nix_uid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}

/// A rustls client configuration trusting exactly `roots` (ring as the provider).
pub(crate) fn client_config(
    roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut store = rustls::RootCertStore::empty();
    for cert in roots {
        store.add(cert.clone()).map_err(|e| format!("CA certificate refused: {e}"))?;
    }
    // ring, the provider of the whole workspace (lettre's and the API's too); its lack of
    // a post-quantum key exchange is what the deprecation note is about.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
