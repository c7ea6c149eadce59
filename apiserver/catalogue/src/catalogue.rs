//! The set of served resources, with upstream's ordering rules for discovery.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::builtin::{BUILTIN, GROUP_PRIORITIES};
use crate::resource::ResourceInfo;
use crate::runtime_config::{RuntimeConfig, RuntimeConfigError, Switch};

/// Priority of groups nobody registered a priority for (CRDs, aggregated APIs), as upstream.
const DEFAULT_GROUP_PRIORITY: i32 = 1000;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupVersion {
    pub group: String,
    pub version: String,
}

impl GroupVersion {
    /// `apps/v1`, or `v1` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

type Versions = BTreeMap<String, BTreeMap<String, ResourceInfo>>;

/// Served resources keyed group -> version -> plural; cheap `&str` lookups on the request path.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    groups: BTreeMap<String, Versions>,
    priorities: BTreeMap<String, i32>,
}

/// Upstream kube-aware version order (GA > beta > alpha, then higher major, then higher minor,
/// non-kube-like versions last, alphabetically). `Less` means "preferred".
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn key(v: &str) -> (u8, i64, i64, &str) {
        let parsed = v.strip_prefix('v').and_then(|rest| {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let major: i64 = rest[..digits].parse().ok()?;
            let tail = &rest[digits..];
            let (level, minor) = if tail.is_empty() {
                (0, "0")
            } else if let Some(m) = tail.strip_prefix("beta") {
                (1, m)
            } else if let Some(m) = tail.strip_prefix("alpha") {
                (2, m)
            } else {
                return None;
            };
            let minor: i64 = minor.parse().ok()?;
            Some((level, -major, -minor))
        });
        match parsed {
            Some((l, ma, mi)) => (l, ma, mi, ""),
            None => (3, 0, 0, v),
        }
    }
    key(a).cmp(&key(b))
}

impl Catalogue {
    /// Every built-in resource upstream v1.36 can serve, enabled or not.
    pub fn all_builtin() -> Catalogue {
        let mut cat = Catalogue {
            groups: BTreeMap::new(),
            priorities: GROUP_PRIORITIES
                .iter()
                .map(|(g, p)| ((*g).to_owned(), *p))
                .collect(),
        };
        for raw in BUILTIN {
            cat.add(ResourceInfo::from(raw));
        }
        cat
    }

    /// What a default v1.36 kube-apiserver serves: GA group-versions only.
    pub fn builtin() -> Catalogue {
        let mut cat = Catalogue::all_builtin();
        cat.retain(|r| r.enabled_by_default);
        cat
    }

    /// The built-in set adjusted by an upstream `--runtime-config` value.
    pub fn with_runtime_config(spec: &str) -> Result<Catalogue, RuntimeConfigError> {
        Catalogue::from_runtime_config(&RuntimeConfig::parse(spec)?)
    }

    pub fn from_runtime_config(config: &RuntimeConfig) -> Result<Catalogue, RuntimeConfigError> {
        let mut cat = Catalogue::all_builtin();
        let mut versions: BTreeMap<(String, String), bool> = BTreeMap::new();
        let mut resources: BTreeMap<(String, String, String), bool> = BTreeMap::new();
        for gv in cat.group_versions() {
            let on = cat
                .resources_in(&gv.group, &gv.version)
                .iter()
                .any(|r| r.enabled_by_default);
            versions.insert((gv.group, gv.version), on);
        }
        for (switch, on) in &config.entries {
            match switch {
                Switch::All => versions.values_mut().for_each(|v| *v = *on),
                Switch::Level(level) => {
                    for ((_, version), v) in versions.iter_mut() {
                        if crate::Stability::of_version(version) == *level {
                            *v = *on;
                        }
                    }
                }
                Switch::GroupVersion { group, version }
                | Switch::Resource { group, version, .. } => {
                    let key = (group.clone(), version.clone());
                    if !versions.contains_key(&key) {
                        let gv = GroupVersion {
                            group: key.0,
                            version: key.1,
                        };
                        return Err(RuntimeConfigError::UnknownGroupVersion(gv.api_version()));
                    }
                    if let Switch::Resource { resource, .. } = switch {
                        resources.insert((key.0, key.1, resource.clone()), *on);
                    } else {
                        versions.insert(key, *on);
                    }
                }
            }
        }
        cat.retain(|r| {
            let key = (r.group.clone(), r.version.clone(), r.plural.clone());
            match resources.get(&key) {
                Some(on) => *on,
                None => versions.get(&(key.0, key.1)).copied().unwrap_or(false),
            }
        });
        Ok(cat)
    }

    fn retain(&mut self, keep: impl Fn(&ResourceInfo) -> bool) {
        for versions in self.groups.values_mut() {
            for resources in versions.values_mut() {
                resources.retain(|_, r| keep(r));
            }
            versions.retain(|_, resources| !resources.is_empty());
        }
        self.groups.retain(|_, versions| !versions.is_empty());
    }

    /// Add (or replace) a resource, e.g. a CRD version when it becomes served.
    pub fn add(&mut self, resource: ResourceInfo) -> Option<ResourceInfo> {
        self.groups
            .entry(resource.group.clone())
            .or_default()
            .entry(resource.version.clone())
            .or_default()
            .insert(resource.plural.clone(), resource)
    }

    /// Remove a resource (CRD deleted or version no longer served); empty groups disappear.
    pub fn remove(&mut self, group: &str, version: &str, plural: &str) -> Option<ResourceInfo> {
        let versions = self.groups.get_mut(group)?;
        let resources = versions.get_mut(version)?;
        let removed = resources.remove(plural);
        if resources.is_empty() {
            versions.remove(version);
        }
        if versions.is_empty() {
            self.groups.remove(group);
        }
        removed
    }

    /// Discovery priority of a group (upstream GroupPriorityMinimum); CRD groups default to 1000.
    pub fn set_group_priority(&mut self, group: &str, priority: i32) {
        self.priorities.insert(group.to_owned(), priority);
    }

    pub fn group_priority(&self, group: &str) -> i32 {
        self.priorities
            .get(group)
            .copied()
            .unwrap_or(DEFAULT_GROUP_PRIORITY)
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.groups.get(group)?.get(version)?.get(plural)
    }

    pub fn find_kind(&self, group: &str, version: &str, kind: &str) -> Option<&ResourceInfo> {
        self.groups
            .get(group)?
            .get(version)?
            .values()
            .find(|r| r.kind == kind)
    }

    /// Resources of one group-version, sorted by plural as upstream lists them.
    pub fn resources_in(&self, group: &str, version: &str) -> Vec<&ResourceInfo> {
        self.groups
            .get(group)
            .and_then(|v| v.get(version))
            .map(|r| r.values().collect())
            .unwrap_or_default()
    }

    /// Every served resource, in discovery order.
    pub fn resources(&self) -> Vec<&ResourceInfo> {
        self.group_versions()
            .iter()
            .flat_map(|gv| self.resources_in(&gv.group, &gv.version))
            .collect()
    }

    /// Served group names in discovery order: core (`""`) first, then by priority, then name.
    pub fn groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = self.groups.keys().map(String::as_str).collect();
        groups.sort_by(|a, b| {
            (!a.is_empty(), -self.group_priority(a), *a).cmp(&(
                !b.is_empty(),
                -self.group_priority(b),
                *b,
            ))
        });
        groups
    }

    /// Served versions of a group, preferred first.
    pub fn versions(&self, group: &str) -> Vec<&str> {
        let mut versions: Vec<&str> = self
            .groups
            .get(group)
            .map(|v| v.keys().map(String::as_str).collect())
            .unwrap_or_default();
        versions.sort_by(|a, b| compare_versions(a, b));
        versions
    }

    /// Upstream's preferred version (e.g. `v2` for autoscaling).
    pub fn preferred_version(&self, group: &str) -> Option<&str> {
        self.versions(group).first().copied()
    }

    /// All served group-versions in discovery order, preferred version first within a group.
    pub fn group_versions(&self) -> Vec<GroupVersion> {
        self.groups()
            .into_iter()
            .flat_map(|g| {
                self.versions(g).into_iter().map(move |v| GroupVersion {
                    group: g.to_owned(),
                    version: v.to_owned(),
                })
            })
            .collect()
    }
}
