//! The API's TLS: the server configuration from a PEM certificate chain and key
//! (`[api] tls_cert`, `tls_key`), and the cluster CA with one certificate per node that
//! `tandem keygen --config` writes (rcgen).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The CA's common name (the same every time, so that a CA whose key is kept can sign
/// new node certificates).
const CA_NAME: &str = "tandem cluster CA";

/// The rustls server configuration of the API (HTTP/1.1 over TLS 1.2 or 1.3).
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| anyhow::anyhow!("cannot read the certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("cannot read the private key {}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and the key do not make a usable pair")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The crypto provider of the API's TLS (and of the tests' clients): ring, which builds
/// with a C compiler only (aws-lc-rs also needs cmake); rustls marks it deprecated for
/// lacking post-quantum key exchange, which the API does not need yet.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate and its key, both PEM.
pub struct Pem {
    pub cert: String,
    pub key: String,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    params
}

/// A new cluster CA.
pub fn new_ca() -> anyhow::Result<Pem> {
    let key = KeyPair::generate()?;
    let cert = ca_params().self_signed(&key)?;
    Ok(Pem { cert: cert.pem(), key: key.serialize_pem() })
}

/// A certificate for node `name` serving at `ip`, signed by the CA whose key is
/// `ca_key` (PEM): its subject alternative names are the node's name and address.
pub fn node_certificate(ca_key: &str, name: &str, ip: IpAddr) -> anyhow::Result<Pem> {
    let ca_key = KeyPair::from_pem(ca_key).context("the CA key")?;
    let ca = ca_params().self_signed(&ca_key)?;
    let mut params = CertificateParams::new(vec![name.to_string()])?;
    params.subject_alt_names.push(SanType::IpAddress(ip));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca, &ca_key)?;
    Ok(Pem { cert: cert.pem(), key: key.serialize_pem() })
}
