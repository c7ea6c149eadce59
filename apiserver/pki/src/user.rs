//! Who a verified client certificate speaks for, as upstream's x509
//! authenticator (CommonNameUserConversion) sees it.

use serde::{Deserialize, Serialize};

/// The group every authenticated request belongs to.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

/// CN becomes the user name and each O a group, then `system:authenticated`
/// is appended. `None` if the DER is not a certificate or has no CN (upstream
/// rejects those). The caller must already have verified the chain (rustls
/// does so during the handshake).
pub fn user_from_certificate(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    if name.is_empty() {
        return None;
    }
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(str::to_string)
        .collect();
    if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
        groups.push(AUTHENTICATED_GROUP.to_string());
    }
    Some(UserInfo { name, groups })
}
