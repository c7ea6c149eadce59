//! Server-side apply and field ownership (`metadata.managedFields`), as
//! upstream's structured-merge-diff: every write records which manager set
//! which fields; an apply merges the manager's configuration into the live
//! object, refuses to change fields other managers own unless forced, and
//! removes the fields the manager stopped applying that nobody else owns.
//!
//! Generic over [`PatchSchema`], so any type with a schema gets it.

mod fieldpath;
mod typed;

use serde_json::{Map, Value, json};

pub use fieldpath::{PathElement, Set, path_string};
use typed::Meta;

use crate::schema::{FieldMeta, PatchSchema, TypeRef};

/// `Apply` or `Update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: String,
    pub fields: Set,
}

impl Entry {
    /// Whether `self` is the entry of the writer `w` (upstream's manager
    /// identity: name, operation, subresource, and for updates the version).
    fn is(&self, w: &Writer, op: Operation) -> bool {
        self.manager == w.manager
            && self.operation == op
            && self.subresource == w.subresource
            && (op == Operation::Apply || self.api_version == w.api_version)
    }

    /// The manager as upstream names it in conflict messages.
    fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation.as_str()));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Result<Entry, String> {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let operation = match v.get("operation").and_then(Value::as_str) {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => return Err(format!("invalid operation {:?}", other.unwrap_or_default())),
        };
        match v.get("fieldsType").and_then(Value::as_str) {
            Some("FieldsV1") | None => {}
            Some(other) => return Err(format!("invalid fieldsType {other:?}")),
        }
        let fields = match v.get("fieldsV1") {
            Some(f) => Set::from_fields_v1(f).ok_or("invalid fieldsV1")?,
            None => Set::new(),
        };
        Ok(Entry {
            manager: s("manager"),
            operation,
            api_version: s("apiVersion"),
            time: v.get("time").and_then(Value::as_str).map(str::to_owned),
            subresource: s("subresource"),
            fields,
        })
    }
}

/// Who writes: the field manager, the object's `apiVersion`, the
/// subresource ("" for the main resource) and the time to record.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: &'a str,
    pub now: &'a str,
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyError {
    /// Fields owned by other managers would change: (manager as upstream
    /// prints it, field path).
    Conflicts(Vec<(String, String)>),
    /// The request is malformed (400).
    BadRequest(String),
}

impl ApplyError {
    /// Upstream's message for a conflict error.
    pub fn conflict_message(conflicts: &[(String, String)]) -> String {
        if let [(m, p)] = conflicts {
            return format!("Apply failed with 1 conflict: conflict with {m}: {p}");
        }
        let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for (_, p) in conflicts.iter().filter(|(cm, _)| cm == m) {
                lines.push(format!("- {p}"));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    }
}

/// The schema of one kind, and which top-level fields a subresource's writes
/// leave alone (status on the main resource, spec on `status`).
#[derive(Clone, Copy)]
pub struct Kind<'a> {
    pub schema: &'a dyn PatchSchema,
    pub root: Option<TypeRef>,
    /// The kind has a status subresource.
    pub has_status: bool,
}

impl Kind<'_> {
    fn meta(&self) -> Meta {
        Some(FieldMeta {
            elem: self.root,
            ..FieldMeta::default()
        })
    }

    /// The fields of `v` that ownership is tracked for: without the
    /// identity and server-set metadata, and without what the subresource
    /// may not change.
    fn tracked(&self, mut set: Set, subresource: &str) -> Set {
        let f = |s: &str| PathElement::Field(s.into());
        set.remove_subtree(&f("apiVersion"));
        set.remove_subtree(&f("kind"));
        let meta = set.child_mut(&f("metadata"));
        for name in [
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        ] {
            meta.remove_subtree(&f(name));
        }
        // `metadata` itself is never owned, only what is in it.
        set.remove_member(&f("metadata"));
        let mut out = set;
        if self.has_status {
            if subresource == "status" {
                let keep = [f("metadata"), f("status")];
                let others: Vec<PathElement> = out
                    .members()
                    .chain(out.children().map(|(pe, _)| pe))
                    .filter(|pe| !keep.contains(pe))
                    .cloned()
                    .collect();
                for pe in others {
                    out.remove_subtree(&pe);
                }
            } else if subresource.is_empty() {
                out.remove_subtree(&f("status"));
            }
        }
        out
    }

    fn set_of(&self, v: &Value, subresource: &str) -> Set {
        self.tracked(typed::to_set(self.schema, v, &self.meta()), subresource)
    }
}

/// The annotation client-side `kubectl apply` keeps its configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The fields of the configuration in the object's last-applied annotation.
fn last_applied_set(kind: &Kind, live: &Value) -> Option<Set> {
    let text = live
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED)?
        .as_str()?;
    let config: Value = serde_json::from_str(text).ok()?;
    Some(kind.set_of(&config, ""))
}

/// The `managedFields` of an object; `Ok(None)` when it has none.
pub fn decode(obj: &Value) -> Result<Option<Vec<Entry>>, String> {
    match obj.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.is_empty() => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(Entry::from_json)
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err("managedFields must be a list".into()),
    }
}

/// Writes `entries` into the object's `metadata.managedFields`, in
/// upstream's order (applies first, then by time, manager, version).
pub fn encode(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    cap_update_managers(&mut entries);
    entries.sort_by(|a, b| {
        (
            a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

/// Upstream keeps at most this many `Update` managers per object.
const MAX_UPDATE_MANAGERS: usize = 10;

/// Over the cap, the oldest updates are merged into one `ancient-changes`
/// entry (as upstream's cap manager does), so objects written by many
/// managers keep bounded `managedFields`.
fn cap_update_managers(entries: &mut Vec<Entry>) {
    let updates = entries
        .iter()
        .filter(|e| e.operation == Operation::Update)
        .count();
    if updates <= MAX_UPDATE_MANAGERS {
        return;
    }
    let (mut old, rest): (Vec<Entry>, Vec<Entry>) = std::mem::take(entries)
        .into_iter()
        .partition(|e| e.operation == Operation::Update);
    *entries = rest;
    // Oldest first (entries without a time are oldest).
    old.sort_by(|a, b| a.time.cmp(&b.time));
    let keep = old.split_off(updates - MAX_UPDATE_MANAGERS + 1);
    let mut bucket = Entry {
        manager: "ancient-changes".into(),
        operation: Operation::Update,
        api_version: String::new(),
        time: None,
        subresource: String::new(),
        fields: Set::new(),
    };
    for e in old {
        bucket.fields.union_with(&e.fields);
        bucket.api_version = e.api_version;
        bucket.time = e.time;
    }
    entries.push(bucket);
    entries.extend(keep);
}

/// Whether a request's `managedFields` is `[{}]`: "reset to nothing".
fn is_reset(obj: &Value) -> bool {
    matches!(obj.pointer("/metadata/managedFields"), Some(Value::Array(a)) if a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty))
}

/// The managers of the live object; one that predates field tracking is
/// owned by `before-first-apply` as upstream does.
fn live_entries(kind: &Kind, live: &Value) -> Result<Vec<Entry>, ApplyError> {
    match decode(live) {
        Ok(Some(e)) => Ok(e),
        Ok(None) | Err(_) => {
            let fields = kind.set_of(live, "");
            Ok(vec![Entry {
                manager: "before-first-apply".into(),
                operation: Operation::Update,
                api_version: live
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                time: None,
                subresource: String::new(),
                fields,
            }])
        }
    }
}

/// Records a non-apply write (create, update, patch) of `new` over `old`
/// (`None` for a create) by `w` in `new`'s `managedFields`.
///
/// Managed fields sent with the request replace the live ones (`[{}]`
/// clears them); the writer then owns what it added or changed, and other
/// managers lose those fields.
pub fn update(
    kind: &Kind,
    old: Option<&Value>,
    new: &mut Value,
    w: &Writer,
) -> Result<(), ApplyError> {
    if is_reset(new) {
        encode(new, Vec::new());
        return Ok(());
    }
    let empty = json!({});
    let diff = typed::compare(kind.schema, old.unwrap_or(&empty), new, &kind.meta());
    let sent = new
        .pointer("/metadata/managedFields")
        .is_some_and(|m| m.as_array().is_some_and(|a| !a.is_empty()));
    let changed = kind.tracked(diff.modified.union(&diff.added), w.subresource);
    let removed = kind.tracked(diff.removed, w.subresource);
    if changed.is_empty() && removed.is_empty() {
        // Nothing tracked changed: the managers stay (no decoding).
        if !sent
            && let Some(live) = old.and_then(|o| o.pointer("/metadata/managedFields"))
            && let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.insert("managedFields".into(), live.clone());
        }
        return Ok(());
    }
    let mut entries = match decode(new) {
        Ok(Some(sent)) => sent,
        Ok(None) => match old {
            Some(o) => decode(o).ok().flatten().unwrap_or_default(),
            None => Vec::new(),
        },
        Err(e) => {
            return Err(ApplyError::BadRequest(format!(
                "metadata.managedFields: {e}"
            )));
        }
    };
    let mut mine = Set::new();
    let mut time = None;
    if let Some(i) = entries.iter().position(|e| e.is(w, Operation::Update)) {
        let e = entries.remove(i);
        mine = e.fields;
        time = e.time;
    }
    for e in &mut entries {
        e.fields = e.fields.difference(&changed).difference(&removed);
    }
    let updated = mine.union(&changed).difference(&removed);
    if updated != mine || time.is_none() {
        time = Some(w.now.to_owned());
    }
    entries.push(Entry {
        manager: w.manager.to_owned(),
        operation: Operation::Update,
        api_version: w.api_version.to_owned(),
        time,
        subresource: w.subresource.to_owned(),
        fields: updated,
    });
    encode(new, entries);
    Ok(())
}

/// Applies `config` by `w` to `live` (`None`: the object does not exist
/// yet) and returns the object to write, with its `managedFields`.
pub fn apply(
    kind: &Kind,
    live: Option<&Value>,
    config: &Value,
    w: &Writer,
    force: bool,
) -> Result<Value, ApplyError> {
    if !config.is_object() {
        return Err(ApplyError::BadRequest(
            "the applied configuration must be an object".into(),
        ));
    }
    if config.pointer("/metadata/managedFields").is_some() {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let empty = json!({});
    let live_v = live.unwrap_or(&empty);
    let mut entries = match live {
        Some(l) => live_entries(kind, l)?,
        None => Vec::new(),
    };
    let meta = kind.meta();
    let mut merged = live_v.clone();
    let mut changed = Set::new();
    typed::merge_into(
        kind.schema,
        &mut merged,
        config,
        &meta,
        &mut Vec::new(),
        &mut changed,
    );
    let new_set = kind.set_of(config, w.subresource);
    // Conflicts: fields others own that this apply changes.
    let changed = kind.tracked(changed, w.subresource);
    let mut conflicts = Vec::new();
    let mut conflicting = Set::new();
    for e in &entries {
        if e.is(w, Operation::Apply) {
            continue;
        }
        let c = e.fields.intersection(&changed);
        for p in c.paths() {
            conflicts.push((e.display(), path_string(&p)));
        }
        conflicting.union_with(&c);
    }
    if !conflicts.is_empty() {
        // kubectl taking over from its client-side apply: what the
        // last-applied annotation holds may be taken without forcing.
        let upgrade = w.manager == "kubectl"
            && last_applied_set(kind, live_v)
                .is_some_and(|allowed| conflicting.difference(&allowed).is_empty());
        if !force && !upgrade {
            return Err(ApplyError::Conflicts(conflicts));
        }
        for e in &mut entries {
            if !e.is(w, Operation::Apply) {
                e.fields = e.fields.difference(&changed);
            }
        }
    }
    let mut last = None;
    if let Some(i) = entries.iter().position(|e| e.is(w, Operation::Apply)) {
        last = Some(entries.remove(i));
    }
    // Fields this manager stopped applying go when nobody else owns them.
    if let Some(last) = &last {
        let dropped = last.fields.difference(&new_set);
        if !dropped.is_empty() {
            let mut owned = new_set.clone();
            for e in &entries {
                owned.union_with(&e.fields);
            }
            typed::remove(kind.schema, &mut merged, &dropped, Some(&owned), &meta);
        }
    }
    let time = match &last {
        Some(l) if l.fields == new_set && l.api_version == w.api_version => l.time.clone(),
        _ => Some(w.now.to_owned()),
    };
    entries.push(Entry {
        manager: w.manager.to_owned(),
        operation: Operation::Apply,
        api_version: w.api_version.to_owned(),
        time,
        subresource: w.subresource.to_owned(),
        fields: new_set,
    });
    // kubectl's server-side applies keep an existing client-side apply
    // annotation up to date (upstream's last-applied updater).
    if w.manager == "kubectl"
        && let Some(ann) = merged
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        && ann.contains_key(LAST_APPLIED)
    {
        let mut applied = config.clone();
        if let Some(a) = applied
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            a.remove(LAST_APPLIED);
        }
        ann.insert(LAST_APPLIED.into(), Value::String(applied.to_string()));
    }
    if let Some(m) = merged.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    } else if let Some(o) = merged.as_object_mut() {
        o.insert("metadata".into(), json!({}));
    }
    encode(&mut merged, entries);
    Ok(merged)
}

#[cfg(test)]
mod tests;
