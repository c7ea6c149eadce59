//! Leaf certificates signed by the cluster CA: issuing, and deciding whether
//! an existing one can be kept (right CA, right key, not expired, and
//! carrying the requested subject, usage and SANs).

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose, PublicKeyData, SanType,
    SigningKey,
};
use x509_parser::extensions::GeneralName;

use crate::ca::{self, BACKDATE, CertificateAuthority};
use crate::der;
use crate::error::{PkiError, Result};
use crate::files::{self, PRIVATE_MODE, PUBLIC_MODE};
use crate::keys;

/// kubeadm's lifetime for leaf certificates.
const LEAF_VALIDITY: time::Duration = time::Duration::days(365);

/// A certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAndKey")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// What the certificate is for (its extended key usage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Usage {
    Server,
    Client,
}

/// What a leaf must contain.
#[derive(Clone, Debug)]
pub(crate) struct LeafSpec {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub usage: Usage,
}

impl LeafSpec {
    pub(crate) fn client(common_name: &str, organizations: &[&str]) -> Self {
        LeafSpec {
            common_name: common_name.to_string(),
            organizations: organizations.iter().map(|s| s.to_string()).collect(),
            dns_names: Vec::new(),
            ips: Vec::new(),
            usage: Usage::Client,
        }
    }
}

/// Outcome of inspecting an existing certificate.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Keep it.
    Fits,
    /// Signed by our CA but expired or lacking something requested.
    Reissue,
    /// Signed by some other CA.
    ForeignCa,
}

/// Signs a new certificate with a fresh key.
pub(crate) fn issue(ca: &CertificateAuthority, spec: &LeafSpec, what: &str) -> Result<CertAndKey> {
    let gen_err = |e| PkiError::generate(what, e);
    let key = keys::generate(what)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    // rcgen keeps one value per attribute type; with several groups the
    // subject is rewritten below.
    if let [org] = spec.organizations.as_slice() {
        params
            .distinguished_name
            .push(DnType::OrganizationName, org.as_str());
    }
    params
        .distinguished_name
        .push(DnType::CommonName, spec.common_name.as_str());
    for dns in &spec.dns_names {
        params
            .subject_alt_names
            .push(SanType::DnsName(dns.clone().try_into().map_err(gen_err)?));
    }
    params
        .subject_alt_names
        .extend(spec.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![match spec.usage {
        Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + LEAF_VALIDITY;
    let cert = params.signed_by(&key, ca.issuer()).map_err(gen_err)?;
    let der = if spec.organizations.len() > 1 {
        let subject = der::subject_name(&spec.common_name, &spec.organizations);
        resign_with_subject(ca, cert.der(), &subject, what)?
    } else {
        cert.der().to_vec()
    };
    Ok(CertAndKey {
        cert_pem: pem_encode("CERTIFICATE", &der),
        key_pem: key.serialize_pem(),
    })
}

/// Replaces the subject inside an rcgen-made certificate and signs it again.
fn resign_with_subject(
    ca: &CertificateAuthority,
    cert_der: &[u8],
    subject: &[u8],
    what: &str,
) -> Result<Vec<u8>> {
    let broken = || PkiError::pem(what, "unexpected certificate layout");
    let x509 = ca::parse_x509(cert_der, what)?;
    let tbs = x509.tbs_certificate.as_ref();
    let old_subject = x509.subject().as_raw();
    let offset = |inner: &[u8], outer: &[u8]| (inner.as_ptr() as usize) - (outer.as_ptr() as usize);
    let subj_start = offset(old_subject, tbs);
    let subj_end = subj_start + old_subject.len();
    let tbs_hdr = der::header_len(tbs).ok_or_else(broken)?;
    let tbs_body = [
        tbs.get(tbs_hdr..subj_start).ok_or_else(broken)?,
        subject,
        tbs.get(subj_end..).ok_or_else(broken)?,
    ]
    .concat();
    let new_tbs = der::tlv(0x30, &tbs_body);
    // Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signatureValue }
    let after_tbs = cert_der
        .get(offset(tbs, cert_der) + tbs.len()..)
        .ok_or_else(broken)?;
    let alg_len = der::tlv_len(after_tbs).ok_or_else(broken)?;
    let sig_alg = after_tbs.get(..alg_len).ok_or_else(broken)?;
    let signature = ca
        .issuer()
        .key()
        .sign(&new_tbs)
        .map_err(|e| PkiError::generate(what, e))?;
    let bit_string = der::tlv(0x03, &[&[0u8][..], &signature].concat());
    Ok(der::tlv(
        0x30,
        &[new_tbs.as_slice(), sig_alg, &bit_string].concat(),
    ))
}

/// Decides whether `pair` can be kept for `spec`. Errors only on unparsable
/// input or a key that does not belong to the certificate.
pub(crate) fn inspect(
    ca: &CertificateAuthority,
    pair: &CertAndKey,
    spec: &LeafSpec,
    cert_what: &str,
    key_what: &str,
) -> Result<Verdict> {
    let der = ca::parse_cert_pem(&pair.cert_pem, cert_what)?;
    let cert = ca::parse_x509(&der, cert_what)?;
    let key = keys::parse_key_pem(&pair.key_pem, key_what)?;
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(PkiError::KeyMismatch {
            what: key_what.to_string(),
        });
    }
    if ca.check_signed(&cert, cert_what).is_err() {
        return Ok(Verdict::ForeignCa);
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if cert.validity().not_after.timestamp() <= now {
        return Ok(Verdict::Reissue);
    }
    let subject = cert.subject();
    let cn: Vec<&str> = subject
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .collect();
    let mut orgs: Vec<&str> = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .collect();
    let mut want_orgs: Vec<&str> = spec.organizations.iter().map(String::as_str).collect();
    orgs.sort_unstable();
    want_orgs.sort_unstable();
    if cn != [spec.common_name.as_str()] || orgs != want_orgs {
        return Ok(Verdict::Reissue);
    }
    let eku_ok = match cert.extended_key_usage() {
        Ok(Some(eku)) => match spec.usage {
            Usage::Server => eku.value.server_auth || eku.value.any,
            Usage::Client => eku.value.client_auth || eku.value.any,
        },
        _ => false,
    };
    if !eku_ok {
        return Ok(Verdict::Reissue);
    }
    let mut dns_present = Vec::new();
    let mut ips_present = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns_present.push(d.to_ascii_lowercase()),
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        ips_present.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        ips_present.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    let has_all = spec
        .dns_names
        .iter()
        .all(|d| dns_present.contains(&d.to_ascii_lowercase()))
        && spec.ips.iter().all(|ip| ips_present.contains(ip));
    Ok(if has_all {
        Verdict::Fits
    } else {
        Verdict::Reissue
    })
}

/// Keeps `pki_dir/<base>.{crt,key}` if it fits `spec`, else issues a new pair.
/// A pair signed by another CA is an error, as with kubeadm: overwriting it
/// silently could lock out whoever relies on it.
pub(crate) fn ensure_on_disk(
    ca: &CertificateAuthority,
    pki_dir: &Path,
    base: &str,
    spec: &LeafSpec,
) -> Result<CertAndKey> {
    let crt_path = pki_dir.join(format!("{base}.crt"));
    let key_path = pki_dir.join(format!("{base}.key"));
    let crt_what = crt_path.display().to_string();
    let key_what = key_path.display().to_string();
    if let (Some(cert_pem), Some(key_pem)) = (
        files::read_optional(&crt_path)?,
        files::read_optional(&key_path)?,
    ) {
        let pair = CertAndKey { cert_pem, key_pem };
        match inspect(ca, &pair, spec, &crt_what, &key_what)? {
            Verdict::Fits => return Ok(pair),
            Verdict::ForeignCa => {
                return Err(PkiError::NotSignedByCa {
                    what: crt_what,
                    ca: ca.cert_path().to_path_buf(),
                });
            }
            Verdict::Reissue => {}
        }
    }
    let pair = issue(ca, spec, &crt_what)?;
    files::write_atomic(&key_path, pair.key_pem.as_bytes(), PRIVATE_MODE)?;
    files::write_atomic(&crt_path, pair.cert_pem.as_bytes(), PUBLIC_MODE)?;
    Ok(pair)
}

/// A self-signed serving pair at `dir/<base>.{crt,key}`, reused when both
/// exist: what upstream's kubelet makes (`<host>@<timestamp>`, with the host
/// as SAN) when given no --tls-cert-file.
pub fn ensure_self_signed(
    dir: &Path,
    base: &str,
    host: &str,
    ips: &[IpAddr],
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let crt_path = dir.join(format!("{base}.crt"));
    let key_path = dir.join(format!("{base}.key"));
    if crt_path.exists() && key_path.exists() {
        return Ok((crt_path, key_path));
    }
    let what = crt_path.display().to_string();
    let gen_err = |e| PkiError::generate(&what, e);
    let key = keys::generate(&what)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let now = time::OffsetDateTime::now_utc();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("{host}@{}", now.unix_timestamp()),
    );
    if !host.is_empty() {
        params.subject_alt_names.push(SanType::DnsName(
            host.to_string().try_into().map_err(gen_err)?,
        ));
    }
    params
        .subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - BACKDATE;
    params.not_after = now + LEAF_VALIDITY;
    let cert = params.self_signed(&key).map_err(gen_err)?;
    files::write_atomic(&key_path, key.serialize_pem().as_bytes(), PRIVATE_MODE)?;
    files::write_atomic(&crt_path, cert.pem().as_bytes(), PUBLIC_MODE)?;
    Ok((crt_path, key_path))
}

/// PEM armour with 64-column lines.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
