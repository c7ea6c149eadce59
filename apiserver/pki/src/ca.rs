//! The cluster CA (`pki/ca.crt`, `pki/ca.key`): created once, then always
//! reused, because every certificate and kubeconfig handed out chains to it.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::certificate::X509Certificate;

use crate::error::{PkiError, Result};
use crate::files::{self, PRIVATE_MODE, PUBLIC_MODE};
use crate::keys;

/// kubeadm's CA lifetime.
const CA_VALIDITY: time::Duration = time::Duration::days(3650);
/// kubeadm backdates NotBefore so small clock skew between nodes is harmless.
pub(crate) const BACKDATE: time::Duration = time::Duration::minutes(5);

/// The CA certificate and its signing key.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: Vec<u8>,
    cert_path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Loads `pki_dir/ca.{crt,key}`, creating both if neither exists.
    pub(crate) fn load_or_create(pki_dir: &Path) -> Result<Self> {
        let (crt, key) = paths(pki_dir);
        if !crt.exists() && !key.exists() {
            let key_pair = keys::generate("ca.key")?;
            let mut params = CertificateParams::new(vec!["kubernetes".to_string()])
                .map_err(|e| PkiError::generate(crt.display(), e))?;
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(DnType::CommonName, "kubernetes");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
                KeyUsagePurpose::KeyCertSign,
            ];
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - BACKDATE;
            params.not_after = now + CA_VALIDITY;
            let cert = params
                .self_signed(&key_pair)
                .map_err(|e| PkiError::generate(crt.display(), e))?;
            files::write_atomic(&key, key_pair.serialize_pem().as_bytes(), PRIVATE_MODE)?;
            files::write_atomic(&crt, cert.pem().as_bytes(), PUBLIC_MODE)?;
        }
        Self::load(pki_dir)
    }

    /// Loads an existing CA; both files must be present and match.
    pub(crate) fn load(pki_dir: &Path) -> Result<Self> {
        let (crt, key) = paths(pki_dir);
        let cert_pem = files::read_required(&crt)?;
        let key_pem = files::read_required(&key)?;
        let cert_der = parse_cert_pem(&cert_pem, &crt.display().to_string())?;
        let key_pair = keys::parse_key_pem(&key_pem, &key.display().to_string())?;
        let x509 = parse_x509(&cert_der, &crt.display().to_string())?;
        if x509.public_key().raw != key_pair.subject_public_key_info().as_slice() {
            return Err(PkiError::KeyMismatch {
                what: key.display().to_string(),
            });
        }
        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(cert_der.as_slice()), key_pair)
            .map_err(|e| PkiError::pem(crt.display(), e))?;
        Ok(Self {
            cert_pem,
            cert_der,
            cert_path: crt,
            issuer,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Where the CA certificate lives.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// Errors unless `cert` carries a valid signature by this CA.
    pub(crate) fn check_signed(&self, cert: &X509Certificate<'_>, what: &str) -> Result<()> {
        let ca = parse_x509(&self.cert_der, &self.cert_path.display().to_string())?;
        cert.verify_signature(Some(ca.public_key()))
            .map_err(|_| PkiError::NotSignedByCa {
                what: what.to_string(),
                ca: self.cert_path.clone(),
            })
    }
}

fn paths(pki_dir: &Path) -> (PathBuf, PathBuf) {
    (pki_dir.join("ca.crt"), pki_dir.join("ca.key"))
}

/// First certificate of a PEM blob, DER.
pub(crate) fn parse_cert_pem(pem: &str, what: &str) -> Result<Vec<u8>> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.to_vec())
        .map_err(|e| PkiError::pem(what, format!("no certificate: {e}")))
}

/// Parses DER into x509-parser's view.
pub(crate) fn parse_x509<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| PkiError::pem(what, format!("corrupt certificate: {e}")))
}
