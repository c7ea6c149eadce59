//! Service account tokens: JWTs signed with the service-account key
//! (`--service-account-signing-key-file`), checked with the public key
//! (`--service-account-key-file`), with upstream's claims: `iss`, `sub`
//! `system:serviceaccount:<ns>:<name>`, `aud`, `exp`/`iat`/`nbf`, `jti`
//! and the `kubernetes.io` claim naming the account and the object the
//! token is bound to.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Ref {
    pub name: String,
    pub uid: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct KubernetesClaims {
    pub namespace: String,
    pub serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    algorithm: Algorithm,
    kid: String,
    jwk: Value,
    pub issuer: String,
    /// `--api-audiences`: what a token must be meant for to reach this
    /// server (the issuer when not given, as upstream).
    pub audiences: Vec<String>,
    /// Where `/openid/v1/jwks` is served, for the discovery document.
    pub jwks_uri: String,
}

/// The DER inside a PEM block.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    STANDARD.decode(body.trim()).ok()
}

impl Tokens {
    pub fn new(
        private_key_pem: &str,
        public_key_pem: &str,
        issuer: String,
        audiences: Vec<String>,
        jwks_uri: String,
    ) -> anyhow::Result<Tokens> {
        let (encoding, decoding, algorithm) =
            match EncodingKey::from_ec_pem(private_key_pem.as_bytes()) {
                Ok(e) => (
                    e,
                    DecodingKey::from_ec_pem(public_key_pem.as_bytes())?,
                    Algorithm::ES256,
                ),
                Err(_) => (
                    EncodingKey::from_rsa_pem(private_key_pem.as_bytes())?,
                    DecodingKey::from_rsa_pem(public_key_pem.as_bytes())?,
                    Algorithm::RS256,
                ),
            };
        let der = pem_der(public_key_pem)
            .ok_or_else(|| anyhow::anyhow!("the service account public key is not PEM"))?;
        // Upstream's key id: the SHA-256 of the PKIX public key.
        let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &der));
        let mut jwk = json!({"use": "sig", "kid": kid, "alg": format!("{algorithm:?}")});
        // An uncompressed P-256 point ends the SPKI: 0x04 || x || y.
        if algorithm == Algorithm::ES256 && der.len() >= 65 && der[der.len() - 65] == 4 {
            let point = &der[der.len() - 64..];
            jwk["kty"] = json!("EC");
            jwk["crv"] = json!("P-256");
            jwk["x"] = json!(URL_SAFE_NO_PAD.encode(&point[..32]));
            jwk["y"] = json!(URL_SAFE_NO_PAD.encode(&point[32..]));
        } else {
            jwk["kty"] = json!("RSA");
        }
        let audiences = if audiences.is_empty() {
            vec![issuer.clone()]
        } else {
            audiences
        };
        Ok(Tokens {
            encoding,
            decoding,
            algorithm,
            kid,
            jwk,
            issuer,
            audiences,
            jwks_uri,
        })
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
    }

    /// The claims of a token this server signed, meant for one of
    /// `audiences`, and in its lifetime; the reason otherwise.
    pub fn verify(&self, token: &str, audiences: &[String]) -> Result<Claims, String> {
        let mut v = Validation::new(self.algorithm);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(audiences);
        v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        v.validate_nbf = true;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| e.to_string())
    }

    /// `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// `/.well-known/openid-configuration`.
    pub fn openid_configuration(&self, jwks_uri: &str) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [format!("{:?}", self.algorithm)],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let key = rcgen::KeyPair::generate().unwrap();
        Tokens::new(
            &key.serialize_pem(),
            &key.public_key_pem(),
            "https://kubernetes.default.svc.cluster.local".into(),
            vec![],
            "https://127.0.0.1:6443/openid/v1/jwks".into(),
        )
        .unwrap()
    }

    fn claims(aud: &str, exp_in: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: "https://kubernetes.default.svc.cluster.local".into(),
            sub: "system:serviceaccount:default:app".into(),
            aud: vec![aud.into()],
            exp: now + exp_in,
            iat: now,
            nbf: now,
            jti: Some("j".into()),
            kubernetes: KubernetesClaims {
                namespace: "default".into(),
                serviceaccount: Ref {
                    name: "app".into(),
                    uid: "u".into(),
                },
                ..Default::default()
            },
        }
    }

    #[test]
    fn signed_tokens_verify_for_their_audience_only() {
        let t = tokens();
        let token = t
            .sign(&claims("https://kubernetes.default.svc.cluster.local", 600))
            .unwrap();
        let got = t.verify(&token, &t.audiences).unwrap();
        assert_eq!(got.kubernetes.serviceaccount.name, "app");
        assert!(t.verify(&token, &["other".to_string()]).is_err());
        let expired = t
            .sign(&claims(
                "https://kubernetes.default.svc.cluster.local",
                -3600,
            ))
            .unwrap();
        assert!(t.verify(&expired, &t.audiences).is_err());
        let other = tokens();
        assert!(other.verify(&token, &other.audiences).is_err());
        let jwk = &t.jwks()["keys"][0];
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["x"].as_str().unwrap().len(), 43);
    }
}
