//! Private keys: generation and loading. Keys we write are PKCS#8 ("PRIVATE
//! KEY"); keys written by real kubeadm (PKCS#1 "RSA PRIVATE KEY", SEC1 "EC
//! PRIVATE KEY") are accepted too, so an existing `/etc/kubernetes/pki` works.

use rcgen::KeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::der::tlv;
use crate::error::{PkiError, Result};

/// A fresh ECDSA P-256 key (rcgen's default, as small and fast as it gets).
pub(crate) fn generate(what: &str) -> Result<KeyPair> {
    KeyPair::generate().map_err(|e| PkiError::generate(what, e))
}

/// Parses a PEM private key of any of the common encodings.
pub(crate) fn parse_key_pem(pem: &str, what: &str) -> Result<KeyPair> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| PkiError::pem(what, format!("no private key: {e}")))?;
    let pkcs8 = match &der {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        PrivateKeyDer::Pkcs1(k) => wrap_pkcs8(RSA_ALG_ID, k.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(k) => {
            let sec1 = k.secret_sec1_der();
            let curve = [P256_OID, P384_OID]
                .into_iter()
                .find(|oid| contains(sec1, oid))
                .ok_or_else(|| PkiError::pem(what, "unsupported EC curve"))?;
            let alg_id = [EC_PUBLIC_KEY_OID, curve].concat();
            wrap_pkcs8(&alg_id, sec1)
        }
        _ => return Err(PkiError::pem(what, "unsupported private key encoding")),
    };
    KeyPair::try_from(&PrivatePkcs8KeyDer::from(pkcs8))
        .map_err(|e| PkiError::pem(what, format!("unusable private key: {e}")))
}

/// AlgorithmIdentifier body for rsaEncryption (OID + NULL).
const RSA_ALG_ID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// OID id-ecPublicKey.
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// OID prime256v1.
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// OID secp384r1.
const P384_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// PrivateKeyInfo ::= SEQUENCE { version 0, AlgorithmIdentifier, OCTET STRING key }
fn wrap_pkcs8(alg_id_body: &[u8], key: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend(tlv(0x30, alg_id_body));
    body.extend(tlv(0x04, key));
    tlv(0x30, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{PublicKeyData, SigningKey};

    #[test]
    fn loads_kubeadm_style_rsa_pkcs1_key() {
        let key = parse_key_pem(include_str!("../testdata/rsa-pkcs1.key"), "rsa").unwrap();
        assert!(
            key.public_key_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        assert!(key.sign(b"x").is_ok());
    }

    #[test]
    fn loads_sec1_ec_key() {
        let key = parse_key_pem(include_str!("../testdata/ec-sec1.key"), "ec").unwrap();
        assert_eq!(key.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
        assert!(!key.subject_public_key_info().is_empty());
    }

    #[test]
    fn roundtrips_generated_key() {
        let key = generate("k").unwrap();
        let again = parse_key_pem(&key.serialize_pem(), "k").unwrap();
        assert_eq!(key.public_key_raw(), again.public_key_raw());
    }

    #[test]
    fn garbage_is_an_error_naming_the_source() {
        let err = parse_key_pem("not a key", "/x/ca.key").unwrap_err();
        assert!(err.to_string().contains("/x/ca.key"), "{err}");
    }
}
