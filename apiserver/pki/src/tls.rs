//! rustls configurations for the apiserver and for its clients, always on the
//! ring provider so nothing depends on a process-wide default being installed.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{PkiError, Result};
use crate::files;
use crate::leaf::CertAndKey;

/// ALPN offered by the apiserver, preferred first.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Serving config from PEM files. With `client_ca_path`, client certificates
/// signed by that CA are verified but stay optional: requests without one
/// still reach the server (bearer tokens, anonymous, or a 401).
pub fn server_config(
    cert_pem_path: &Path,
    key_pem_path: &Path,
    client_ca_path: Option<&Path>,
) -> Result<Arc<ServerConfig>> {
    let chain = certs_from_pem(
        &files::read_required(cert_pem_path)?,
        &cert_pem_path.display().to_string(),
    )?;
    let key = key_from_pem(
        &files::read_required(key_pem_path)?,
        &key_pem_path.display().to_string(),
    )?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca_path {
        Some(ca_path) => {
            let roots = roots_from_pem(
                &files::read_required(ca_path)?,
                &ca_path.display().to_string(),
            )?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Client config trusting only `ca_pem`, optionally presenting a client
/// certificate. No ALPN is set; callers speaking HTTP/2 add `h2` themselves.
pub fn client_config(ca_pem: &str, identity: Option<&CertAndKey>) -> Result<Arc<ClientConfig>> {
    let roots = roots_from_pem(ca_pem, "CA certificate")?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match identity {
        Some(id) => builder.with_client_auth_cert(
            certs_from_pem(&id.cert_pem, "client certificate")?,
            key_from_pem(&id.key_pem, "client key")?,
        )?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Client config trusting the system's roots (webhooks with no caBundle).
/// Reads the trust store from disk: call it off the async runtime.
pub fn system_client_config() -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    // Unreadable or unparsable system certificates are skipped, as Go's
    // x509.SystemCertPool does.
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// All certificates in a PEM blob; at least one.
fn certs_from_pem(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::pem(what, e))?;
    if certs.is_empty() {
        return Err(PkiError::pem(what, "no CERTIFICATE block"));
    }
    Ok(certs)
}

fn key_from_pem(pem: &str, what: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| PkiError::pem(what, format!("no private key: {e}")))
}

fn roots_from_pem(pem: &str, what: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(pem, what)? {
        roots
            .add(cert)
            .map_err(|e| PkiError::pem(what, format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The API server's client config towards kubelets: its kubelet-client
/// certificate, and the kubelets' serving certificates checked against
/// `ca_pem` when one is given (`--kubelet-certificate-authority`), else not
/// checked at all, as upstream without that flag.
pub fn kubelet_client_config(
    identity: &CertAndKey,
    ca_pem: Option<&str>,
) -> Result<Arc<ClientConfig>> {
    if let Some(ca) = ca_pem {
        return client_config(ca, Some(identity));
    }
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        .with_client_auth_cert(
            certs_from_pem(&identity.cert_pem, "kubelet client certificate")?,
            key_from_pem(&identity.key_pem, "kubelet client key")?,
        )?;
    Ok(Arc::new(config))
}

/// Accepts any server certificate (signatures still verified).
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
