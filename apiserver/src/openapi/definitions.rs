//! The schema table: upstream's OpenAPI v2 definitions, generated into
//! `definitions.json` by `hack/gen/openapidefs.py` and compiled in, with a
//! (group, version, kind) index and reference closures.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use serde_json::{Map, Value};

pub(crate) const TABLE: &str = include_str!("definitions.json");
pub(crate) const PARAMETERS: &str = include_str!("parameters.json");

pub(crate) const REF_PREFIX_V2: &str = "#/definitions/";

/// The table, indexed: each definition stays JSON text in the binary and
/// is parsed when a document needs it (the parsed table would hold ~7 MB).
pub struct Definitions {
    raw: BTreeMap<&'static str, &'static str>,
    by_gvk: HashMap<(String, String, String), String>,
}

/// Indexed once, on first use: the table is part of the binary, so a bad
/// line is a build defect, caught by the tests.
pub static DEFINITIONS: LazyLock<Definitions> = LazyLock::new(|| Definitions::new(TABLE));

const STREAMS: &str = include_str!("streams.json");

/// Upstream's path items of the streaming subresources, by path.
pub static STREAM_PATHS: LazyLock<Map<String, Value>> =
    LazyLock::new(|| serde_json::from_str(STREAMS).expect("streams.json is generated valid JSON"));

/// Query and path parameters per action (`list`, `post`, `path_item`, ...).
pub static PARAMETER_TABLE: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    serde_json::from_str(PARAMETERS).expect("parameters.json is generated valid JSON")
});

pub fn parameters(action: &str) -> Vec<Value> {
    PARAMETER_TABLE
        .get(action)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn gvk_key(g: &Value) -> Option<(String, String, String)> {
    let s = |k: &str| g.get(k).and_then(Value::as_str).map(str::to_owned);
    Some((s("group")?, s("version")?, s("kind")?))
}

impl Definitions {
    /// Indexes a table written by `hack/gen/openapidefs.py`: a JSON object
    /// with one `"name":{definition}` member per line.
    pub fn new(table: &'static str) -> Definitions {
        let mut raw = BTreeMap::new();
        let mut by_gvk = HashMap::new();
        for line in table.lines() {
            let line = line.trim_end_matches(',');
            let Some((name, body)) = line.strip_prefix('"').and_then(|l| l.split_once("\":"))
            else {
                continue;
            };
            raw.insert(name, body);
            if !body.contains("\"x-kubernetes-group-version-kind\"") {
                continue;
            }
            let Ok(d) = serde_json::from_str::<Value>(body) else {
                continue;
            };
            let Some(gvks) = d
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
            else {
                continue;
            };
            for g in gvks {
                if let Some(k) = gvk_key(g) {
                    // A kind served by one definition only wins over the
                    // shared ones (DeleteOptions lists every group).
                    if gvks.len() == 1 || !by_gvk.contains_key(&k) {
                        by_gvk.insert(k, name.to_owned());
                    }
                }
            }
        }
        Definitions { raw, by_gvk }
    }

    /// How many definitions the table holds.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// One definition, parsed.
    pub fn get(&self, name: &str) -> Option<Value> {
        serde_json::from_str(self.raw.get(name)?).ok()
    }

    /// The definition name of a kind (`io.k8s.api.apps.v1.Deployment`),
    /// looked up in the extra definitions (custom resources) first.
    pub fn for_kind(
        &self,
        extra: &Map<String, Value>,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Option<String> {
        let key = (group.to_owned(), version.to_owned(), kind.to_owned());
        let in_extra = extra.iter().find(|(_, d)| {
            d.get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .is_some_and(|gs| gs.iter().any(|g| gvk_key(g).as_ref() == Some(&key)))
        });
        match in_extra {
            Some((name, _)) => Some(name.clone()),
            None => self.by_gvk.get(&key).cloned(),
        }
    }

    /// A definition by name: an extra one (custom resources) first.
    pub fn lookup<'a>(&self, name: &str, extra: &'a Map<String, Value>) -> Option<Cow<'a, Value>> {
        match extra.get(name) {
            Some(d) => Some(Cow::Borrowed(d)),
            None => self.get(name).map(Cow::Owned),
        }
    }

    /// The names of the given definitions and of every definition they
    /// reference, transitively (each is parsed again when written, so the
    /// whole set is never held parsed at once).
    pub fn closure(
        &self,
        roots: impl IntoIterator<Item = String>,
        extra: &Map<String, Value>,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = roots.into_iter().collect();
        while let Some(name) = todo.pop() {
            if out.contains(&name) {
                continue;
            }
            let Some(def) = self.lookup(&name, extra) else {
                continue;
            };
            collect_refs(&def, &mut todo);
            out.insert(name);
        }
        out
    }
}

/// Every `$ref` target name under a schema.
pub fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref"
                    && let Some(r) = x.as_str()
                {
                    let name = r.rsplit('/').next().unwrap_or(r);
                    out.push(name.to_owned());
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}
