//! Upstream `--runtime-config` parsing (`api/all=true,batch/v1=false,apps/v1/deployments=true`),
//! so operators can switch beta/alpha APIs on exactly as with kube-apiserver.

use std::fmt;

/// What one `--runtime-config` key addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Switch {
    /// `api/all`
    All,
    /// `api/ga`, `api/beta`, `api/alpha`
    Level(crate::Stability),
    /// `group/version` (`api/v1` is the core group)
    GroupVersion { group: String, version: String },
    /// `group/version/resource`
    Resource {
        group: String,
        version: String,
        resource: String,
    },
}

/// Parsed `--runtime-config`, in the order upstream applies it: `api/all`, then levels,
/// then group-versions; resource-level entries always win over their version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub entries: Vec<(Switch, bool)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeConfigError {
    /// The value is not a Go `strconv.ParseBool` boolean.
    InvalidValue { key: String, value: String },
    /// The key is not `api/<level>`, `group/version` or `group/version/resource`.
    InvalidKey(String),
    /// The group-version is not known to this server (upstream refuses to start).
    UnknownGroupVersion(String),
}

impl fmt::Display for RuntimeConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeConfigError::InvalidValue { key, value } => {
                write!(
                    f,
                    "invalid value of {key}: {value}, err: strconv.ParseBool: parsing {value:?}: invalid syntax"
                )
            }
            RuntimeConfigError::InvalidKey(key) => write!(f, "invalid key {key}"),
            RuntimeConfigError::UnknownGroupVersion(gv) => {
                write!(f, "group version {gv} that has not been registered")
            }
        }
    }
}

impl std::error::Error for RuntimeConfigError {}

/// Go's `strconv.ParseBool`; an empty value means `true` as upstream.
fn parse_bool(key: &str, value: &str) -> Result<bool, RuntimeConfigError> {
    match value {
        "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(RuntimeConfigError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
        }),
    }
}

fn phase(s: &Switch) -> u8 {
    match s {
        Switch::All => 0,
        Switch::Level(_) => 1,
        Switch::GroupVersion { .. } => 2,
        Switch::Resource { .. } => 3,
    }
}

impl RuntimeConfig {
    /// Parse the flag value; unknown group-versions are checked later against the catalogue.
    pub fn parse(spec: &str) -> Result<RuntimeConfig, RuntimeConfigError> {
        let mut entries = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item.split_once('=').unwrap_or((item, ""));
            let (key, value) = (key.trim(), value.trim());
            let enabled = parse_bool(key, value)?;
            let switch = match key {
                "api/all" => Switch::All,
                "api/ga" => Switch::Level(crate::Stability::Ga),
                "api/beta" => Switch::Level(crate::Stability::Beta),
                "api/alpha" => Switch::Level(crate::Stability::Alpha),
                _ => {
                    let tokens: Vec<&str> = key.split('/').collect();
                    if !(2..=3).contains(&tokens.len()) || tokens.iter().any(|t| t.is_empty()) {
                        return Err(RuntimeConfigError::InvalidKey(key.to_owned()));
                    }
                    // Upstream hack: `api/v1` is the legacy core group.
                    let group = if tokens[0] == "api" && tokens[1] == "v1" {
                        ""
                    } else {
                        tokens[0]
                    };
                    let (group, version) = (group.to_owned(), tokens[1].to_owned());
                    match tokens.get(2) {
                        Some(resource) => Switch::Resource {
                            group,
                            version,
                            resource: (*resource).to_owned(),
                        },
                        None => Switch::GroupVersion { group, version },
                    }
                }
            };
            entries.push((switch, enabled));
        }
        entries.sort_by_key(|(s, _)| phase(s));
        Ok(RuntimeConfig { entries })
    }
}
