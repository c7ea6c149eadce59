//! Deployments, ReplicaSets, ReplicationControllers, StatefulSets,
//! DaemonSets, Jobs and CronJobs (`pkg/apis/{apps,batch,core}/validation`).

use crate::error::{FieldError, go_quote, go_repr};
use crate::json::{at, child, has, int, is_true, s};
use crate::meta::{
    Errors, IMMUTABLE, MetaRules, as_selector, labels_repr, name_label, name_subdomain,
    nonneg_field, selector_is_empty, selector_repr, validate_annotations, validate_label_selector,
    validate_labels, validate_nonnegative, validate_object_meta, validate_object_meta_update,
};
use crate::pods::validate_pod_template_spec;
use serde_json::Value;

const SUBDOMAIN: MetaRules = MetaRules {
    namespaced: Some(true),
    name: name_subdomain,
    builtin: true,
};

const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";

fn spec_of(obj: &Value) -> &Value {
    at(obj, &["spec"])
}

fn template_labels(spec: &Value) -> Option<&Value> {
    at(spec, &["template", "metadata"]).get("labels")
}

/// Semantic equality: nulls, empty maps and empty lists equal absence.
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !crate::json::empty_obj(Some(x)))
                .map(|(k, x)| (k.clone(), normalize(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn semantic_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    let n = |x: Option<&Value>| {
        x.map(normalize)
            .filter(|v| !crate::json::empty_obj(Some(v)))
    };
    n(a) == n(b)
}

/// `%#v` of an `intstr.IntOrString`.
fn int_or_string_repr(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(sv)) => go_repr(format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_quote(sv)
        )),
        other => go_repr(format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            other.and_then(Value::as_i64).unwrap_or(0)
        )),
    }
}

fn percent_value(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_str)
        .and_then(|sv| sv.strip_suffix('%'))
        .and_then(|n| n.parse().ok())
}

fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(_)) => percent_value(v).unwrap_or(0),
        other => other.and_then(Value::as_i64).unwrap_or(0),
    }
}

/// `ValidatePositiveIntOrPercent`.
fn positive_int_or_percent(v: Option<&Value>, path: &str) -> Errors {
    match v {
        Some(Value::String(sv)) => {
            let ok = sv
                .strip_suffix('%')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
            if ok {
                Vec::new()
            } else {
                vec![FieldError::invalid(
                    path,
                    int_or_string_repr(v),
                    crate::meta::regex_error(
                        "a valid percent string must be a numeric string followed by an ending '%'",
                        "[0-9]+%",
                        &["1%", "93%"],
                    ),
                )]
            }
        }
        other => validate_nonnegative(other.and_then(Value::as_i64).unwrap_or(0), path),
    }
}

fn not_more_than_100(v: Option<&Value>, path: &str) -> Errors {
    match percent_value(v) {
        Some(p) if p > 100 => vec![FieldError::invalid(
            path,
            int_or_string_repr(v),
            "must not be greater than 100%",
        )],
        _ => Vec::new(),
    }
}

/// Selector presence/validity and the ReplicaSet-style template checks.
fn selector_and_template(spec: &Value, kind_word: &str, restart_kind: &str) -> Errors {
    let mut errs = Vec::new();
    let sel = spec.get("selector").filter(|v| !v.is_null());
    match sel {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => {
            errs.extend(validate_label_selector(Some(sel), "spec.selector"));
            if selector_is_empty(sel) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    selector_repr(Some(sel)),
                    format!("empty selector is invalid for {kind_word}"),
                ));
            }
        }
    }
    match as_selector(sel) {
        Err(()) => errs.push(FieldError::invalid(
            "spec.selector",
            selector_repr(sel),
            "invalid label selector",
        )),
        Ok(selector) => {
            let tpl = at(spec, &["template"]);
            if !selector.is_empty() && !selector.matches_labels_json(template_labels(spec)) {
                errs.push(FieldError::invalid(
                    "spec.template.metadata.labels",
                    labels_repr(template_labels(spec)),
                    SELECTOR_MISMATCH,
                ));
            }
            errs.extend(validate_pod_template_spec(tpl, "spec.template"));
            let rp = s(at(tpl, &["spec"]), "restartPolicy");
            if rp != "Always" {
                errs.push(FieldError::not_supported(
                    "spec.template.spec.restartPolicy",
                    rp,
                    &["Always"],
                ));
            }
            if has(at(tpl, &["spec"]), "activeDeadlineSeconds") {
                errs.push(FieldError::forbidden(
                    "spec.template.spec.activeDeadlineSeconds",
                    format!("activeDeadlineSeconds in {restart_kind} is not Supported"),
                ));
            }
        }
    }
    errs
}

fn validate_deployment_strategy(spec: &Value) -> Errors {
    let mut errs = Vec::new();
    let strategy = at(spec, &["strategy"]);
    let ty = s(strategy, "type");
    match ty {
        "Recreate" => {
            if has(strategy, "rollingUpdate") {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match strategy.get("rollingUpdate").filter(|v| !v.is_null()) {
            None => errs.push(FieldError::required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let p = "spec.strategy.rollingUpdate";
                let mu = ru.get("maxUnavailable");
                let ms = ru.get("maxSurge");
                errs.extend(positive_int_or_percent(mu, &child(p, "maxUnavailable")));
                errs.extend(positive_int_or_percent(ms, &child(p, "maxSurge")));
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    errs.push(FieldError::invalid(
                        &child(p, "maxUnavailable"),
                        int_or_string_repr(mu),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                errs.extend(not_more_than_100(mu, &child(p, "maxUnavailable")));
            }
        },
        _ => errs.push(FieldError::not_supported(
            "spec.strategy",
            go_repr(format!(
                "apps.DeploymentStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}}",
                go_quote(ty)
            )),
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs
}

/// `ValidateDeployment` (spec part).
fn deployment_spec(spec: &Value) -> Errors {
    let mut errs = nonneg_field(spec, "replicas", "spec");
    errs.extend(selector_and_template(spec, "deployment", "ReplicaSet"));
    errs.extend(validate_deployment_strategy(spec));
    errs.extend(nonneg_field(spec, "minReadySeconds", "spec"));
    errs.extend(nonneg_field(spec, "revisionHistoryLimit", "spec"));
    if let Some(pds) = int(spec, "progressDeadlineSeconds") {
        errs.extend(validate_nonnegative(pds, "spec.progressDeadlineSeconds"));
        if pds <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                pds,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

fn replicaset_spec(spec: &Value) -> Errors {
    let mut errs = nonneg_field(spec, "replicas", "spec");
    errs.extend(nonneg_field(spec, "minReadySeconds", "spec"));
    errs.extend(selector_and_template(spec, "deployment", "ReplicaSet"));
    errs
}

fn rc_spec(spec: &Value) -> Errors {
    let mut errs = nonneg_field(spec, "minReadySeconds", "spec");
    let sel = spec.get("selector");
    if crate::json::empty_obj(sel) {
        errs.push(FieldError::required("spec.selector", ""));
    }
    errs.extend(nonneg_field(spec, "replicas", "spec"));
    let Some(tpl) = spec.get("template").filter(|v| !v.is_null()) else {
        errs.push(FieldError::required("spec.template", ""));
        return errs;
    };
    let pairs = crate::json::string_pairs(sel);
    if !pairs.is_empty() {
        let labels = crate::json::string_pairs(at(tpl, &["metadata"]).get("labels"));
        if !pairs.iter().all(|p| labels.contains(p)) {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                labels_repr(template_labels(spec)),
                SELECTOR_MISMATCH,
            ));
        }
    }
    errs.extend(validate_pod_template_spec(tpl, "spec.template"));
    let rp = s(at(tpl, &["spec"]), "restartPolicy");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            rp,
            &["Always"],
        ));
    }
    if has(at(tpl, &["spec"]), "activeDeadlineSeconds") {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicationController is not Supported",
        ));
    }
    errs
}

fn statefulset_spec(spec: &Value) -> Errors {
    let mut errs = Vec::new();
    match s(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let us = at(spec, &["updateStrategy"]);
    match s(us, "type") {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if has(us, "rollingUpdate") {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    us.get("rollingUpdate").cloned().unwrap_or(Value::Null),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            let ru = at(us, &["rollingUpdate"]);
            errs.extend(nonneg_field(
                ru,
                "partition",
                "spec.updateStrategy.rollingUpdate",
            ));
            if let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) {
                let p = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                errs.extend(positive_int_or_percent(Some(mu), p));
                if int_or_percent_value(Some(mu)) == 0 {
                    errs.push(FieldError::invalid(
                        p,
                        int_or_string_repr(Some(mu)),
                        "cannot be 0",
                    ));
                }
                errs.extend(not_more_than_100(Some(mu), p));
            }
        }
        _ => errs.push(FieldError::invalid(
            "spec.updateStrategy",
            us.clone(),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    let policy = at(spec, &["persistentVolumeClaimRetentionPolicy"]);
    if !policy.is_null() {
        for k in ["whenDeleted", "whenScaled"] {
            let v = s(policy, k);
            if !["Retain", "Delete"].contains(&v) {
                errs.push(FieldError::not_supported(
                    &format!("spec.persistentVolumeClaimRetentionPolicy.{k}"),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    errs.extend(nonneg_field(spec, "replicas", "spec"));
    errs.extend(nonneg_field(spec, "minReadySeconds", "spec"));
    if let Some(start) = int(at(spec, &["ordinals"]), "start") {
        errs.extend(validate_nonnegative(start, "spec.ordinals.start"));
    }
    let sel = spec.get("selector").filter(|v| !v.is_null());
    match sel {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sv) => {
            errs.extend(validate_label_selector(Some(sv), "spec.selector"));
            if selector_is_empty(sv) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    selector_repr(Some(sv)),
                    "empty selector is invalid for statefulset",
                ));
            }
        }
    }
    match as_selector(sel) {
        Err(()) => errs.push(FieldError::invalid("spec.selector", selector_repr(sel), "")),
        Ok(selector) => {
            // Upstream checks only the template's metadata here; pod spec
            // errors surface when the controller creates the pods.
            if !selector.is_empty() && !selector.matches_labels_json(template_labels(spec)) {
                errs.push(FieldError::invalid(
                    "spec.template.metadata.labels",
                    labels_repr(template_labels(spec)),
                    SELECTOR_MISMATCH,
                ));
            }
            let meta = at(spec, &["template", "metadata"]);
            errs.extend(validate_labels(meta.get("labels"), "spec.template.labels"));
            errs.extend(validate_annotations(
                meta.get("annotations"),
                "spec.template.annotations",
            ));
        }
    }
    let tspec = at(spec, &["template", "spec"]);
    let rp = s(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            rp,
            &["Always"],
        ));
    }
    if has(tspec, "activeDeadlineSeconds") {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    errs
}

fn daemonset_spec(spec: &Value) -> Errors {
    let sel = spec.get("selector").filter(|v| !v.is_null());
    let mut errs = validate_label_selector(sel, "spec.selector");
    if let Ok(selector) = as_selector(sel)
        && !selector.matches_labels_json(template_labels(spec))
    {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            labels_repr(template_labels(spec)),
            SELECTOR_MISMATCH,
        ));
    }
    if let Some(sv) = sel
        && selector_is_empty(sv)
    {
        errs.push(FieldError::invalid(
            "spec.selector",
            selector_repr(Some(sv)),
            "empty selector is invalid for daemonset",
        ));
    }
    errs.extend(validate_pod_template_spec(
        at(spec, &["template"]),
        "spec.template",
    ));
    let tspec = at(spec, &["template", "spec"]);
    let rp = s(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            rp,
            &["Always"],
        ));
    }
    if has(tspec, "activeDeadlineSeconds") {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    errs.extend(nonneg_field(spec, "minReadySeconds", "spec"));
    errs.extend(nonneg_field(spec, "templateGeneration", "spec"));
    let us = at(spec, &["updateStrategy"]);
    let p = "spec.updateStrategy";
    match s(us, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match us.get("rollingUpdate").filter(|v| !v.is_null()) {
            None => errs.push(FieldError::required(&child(p, "rollingUpdate"), "")),
            Some(ru) => {
                let rp = child(p, "rollingUpdate");
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                errs.extend(positive_int_or_percent(mu, &child(&rp, "maxUnavailable")));
                errs.extend(positive_int_or_percent(ms, &child(&rp, "maxSurge")));
                errs.extend(not_more_than_100(mu, &child(&rp, "maxUnavailable")));
                errs.extend(not_more_than_100(ms, &child(&rp, "maxSurge")));
                let (hu, hs) = (int_or_percent_value(mu) != 0, int_or_percent_value(ms) != 0);
                if hu && hs {
                    errs.push(FieldError::invalid(
                        &child(&rp, "maxSurge"),
                        int_or_string_repr(ms),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !hu && !hs {
                    errs.push(FieldError::required(
                        &child(&rp, "maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    ));
                }
            }
        },
        ty => errs.push(FieldError::not_supported(
            p,
            go_repr(format!(
                "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}",
                go_quote(ty)
            )),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    errs.extend(nonneg_field(spec, "revisionHistoryLimit", "spec"));
    errs
}

/// `validateJobSpec` (shared by Jobs and CronJob job templates).
fn job_spec_common(spec: &Value, base: &str) -> Errors {
    let mut errs = Vec::new();
    for k in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ] {
        errs.extend(nonneg_field(spec, k, base));
    }
    if has(spec, "maxFailedIndexes") {
        errs.extend(nonneg_field(spec, "maxFailedIndexes", base));
        if !has(spec, "backoffLimitPerIndex") {
            errs.push(FieldError::required(
                &child(base, "backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
    }
    if let Some(mode) = spec.get("completionMode").and_then(Value::as_str) {
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(FieldError::not_supported(
                &child(base, "completionMode"),
                mode,
                &["NonIndexed", "Indexed"],
            ));
        }
        if mode == "Indexed" {
            if !has(spec, "completions") {
                errs.push(FieldError::required(
                    &child(base, "completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = int(spec, "parallelism")
                && p > 100_000
            {
                errs.push(FieldError::invalid(
                    &child(base, "parallelism"),
                    p,
                    "must be less than or equal to 100000 when completion mode is Indexed",
                ));
            }
        }
    }
    if s(spec, "completionMode") != "Indexed" {
        for k in ["backoffLimitPerIndex", "maxFailedIndexes"] {
            if let Some(v) = int(spec, k) {
                errs.push(FieldError::invalid(
                    &child(base, k),
                    v,
                    "requires indexed completion mode",
                ));
            }
        }
    }
    let pfp = has(spec, "podFailurePolicy");
    if let Some(prp) = spec.get("podReplacementPolicy").and_then(Value::as_str) {
        let p = child(base, "podReplacementPolicy");
        if pfp {
            if prp != "Failed" {
                errs.push(FieldError::not_supported(&p, prp, &["Failed"]));
            }
        } else if prp != "Failed" && prp != "TerminatingOrFailed" {
            errs.push(FieldError::not_supported(
                &p,
                prp,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let tpl_path = child(base, "template");
    errs.extend(validate_pod_template_spec(
        at(spec, &["template"]),
        &tpl_path,
    ));
    let rp = s(at(spec, &["template", "spec"]), "restartPolicy");
    let rp_path = child(&tpl_path, "spec.restartPolicy");
    if rp == "Always" || rp.is_empty() {
        errs.push(FieldError::required(
            &rp_path,
            "valid values: \"OnFailure\", \"Never\"",
        ));
    } else if rp != "OnFailure" && rp != "Never" {
        errs.push(FieldError::not_supported(
            &rp_path,
            rp,
            &["OnFailure", "Never"],
        ));
    } else if pfp && rp != "Never" {
        errs.push(FieldError::invalid(
            &rp_path,
            rp,
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
    errs
}

fn job_spec(spec: &Value) -> Errors {
    let mut errs = job_spec_common(spec, "spec");
    let sel = spec.get("selector").filter(|v| !v.is_null());
    match sel {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(_) => errs.extend(validate_label_selector(sel, "spec.selector")),
    }
    if let Ok(selector) = as_selector(sel)
        && !selector.matches_labels_json(template_labels(spec))
    {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            labels_repr(template_labels(spec)),
            SELECTOR_MISMATCH,
        ));
    }
    errs
}

fn validate_job(job: &Value) -> Errors {
    let mut errs = validate_object_meta(job, &SUBDOMAIN);
    let spec = spec_of(job);
    errs.extend(job_spec(spec));
    if s(spec, "completionMode") == "Indexed"
        && let Some(c) = int(spec, "completions").filter(|c| *c > 0)
    {
        let name = s(at(job, &["metadata"]), "name");
        let host = format!("{name}-{}", c - 1);
        if !crate::meta::dns1123_label_errors(&host).is_empty() {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                format!("will not able to create pod with invalid DNS label: {host}"),
            ));
        }
    }
    errs
}

fn template_repr(v: Option<&Value>) -> Value {
    go_repr(v.map(Value::to_string).unwrap_or_else(|| "null".into()))
}

fn validate_job_update(new: &Value, old: &Value) -> Errors {
    let mut errs = validate_object_meta_update(new, old, true);
    let (ns, os) = (spec_of(new), spec_of(old));
    errs.extend(job_spec(ns));
    let indexed = s(ns, "completionMode") == "Indexed";
    if ns.get("completions") != os.get("completions") {
        if !indexed {
            let shown = ns.get("completions").cloned().unwrap_or(Value::Null);
            errs.push(FieldError::invalid("spec.completions", shown, IMMUTABLE));
        } else if int(ns, "completions") != int(ns, "parallelism") {
            let shown = ns.get("completions").cloned().unwrap_or(Value::Null);
            errs.push(FieldError::invalid(
                "spec.completions",
                shown,
                "can only be modified in tandem with spec.parallelism",
            ));
        }
    }
    if !semantic_eq(ns.get("selector"), os.get("selector")) {
        errs.push(FieldError::invalid(
            "spec.selector",
            selector_repr(ns.get("selector")),
            IMMUTABLE,
        ));
    }
    let mutable_sched = is_true(os, "suspend") && !has(at(old, &["status"]), "startTime");
    let strip = |t: Option<&Value>| -> Option<Value> {
        let mut t = t.cloned()?;
        if mutable_sched {
            if let Some(m) = t.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("labels");
                m.remove("annotations");
            }
            if let Some(m) = t.get_mut("spec").and_then(Value::as_object_mut) {
                for k in ["nodeSelector", "affinity", "tolerations", "schedulingGates"] {
                    m.remove(k);
                }
            }
        }
        Some(t)
    };
    if !semantic_eq(
        strip(ns.get("template")).as_ref(),
        strip(os.get("template")).as_ref(),
    ) {
        errs.push(FieldError::invalid(
            "spec.template",
            template_repr(ns.get("template")),
            IMMUTABLE,
        ));
    }
    for k in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        if !semantic_eq(ns.get(k), os.get(k)) {
            let shown = ns.get(k).cloned().unwrap_or(Value::Null);
            errs.push(FieldError::invalid(&child("spec", k), shown, IMMUTABLE));
        }
    }
    errs
}

fn cronjob_spec(spec: &Value, old: Option<&Value>) -> Errors {
    let mut errs = Vec::new();
    let schedule = s(spec, "schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        if let Err(e) = crate::cron::parse_standard(schedule) {
            errs.push(FieldError::invalid("spec.schedule", schedule, e));
        }
        let allow_tz = old.is_some_and(|o| s(o, "schedule").contains("TZ"));
        if allow_tz && schedule.contains("TZ") && has(spec, "timeZone") {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    errs.extend(nonneg_field(spec, "startingDeadlineSeconds", "spec"));
    let tz = spec.get("timeZone").and_then(Value::as_str);
    if old.is_none_or(|o| o.get("timeZone").and_then(Value::as_str) != tz)
        && let Some(tz) = tz
    {
        errs.extend(validate_time_zone(tz));
    }
    let cp = s(spec, "concurrencyPolicy");
    match cp {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        _ => errs.push(FieldError::not_supported(
            "spec.concurrencyPolicy",
            cp,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jt = at(spec, &["jobTemplate", "spec"]);
    errs.extend(job_spec_common(jt, "spec.jobTemplate.spec"));
    if let Some(sel) = jt.get("selector").filter(|v| !v.is_null()) {
        errs.push(FieldError::invalid(
            "spec.jobTemplate.spec.selector",
            selector_repr(Some(sel)),
            "`selector` will be auto-generated",
        ));
    }
    if is_true(jt, "manualSelector") {
        errs.push(FieldError::not_supported(
            "spec.jobTemplate.spec.manualSelector",
            true,
            &["nil", "false"],
        ));
    }
    errs.extend(nonneg_field(spec, "successfulJobsHistoryLimit", "spec"));
    errs.extend(nonneg_field(spec, "failedJobsHistoryLimit", "spec"));
    errs
}

/// `validateTimeZone`, minus the tz database lookup.
fn validate_time_zone(tz: &str) -> Errors {
    let p = "spec.timeZone";
    if tz.is_empty() {
        return vec![FieldError::invalid(
            p,
            tz,
            "timeZone must be nil or non-empty string",
        )];
    }
    let part_ok = |part: &str| {
        part != "."
            && part != ".."
            && !part.starts_with('-')
            && (1..=14).contains(&part.len())
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+'))
    };
    if !tz.split('/').all(part_ok) {
        return vec![FieldError::invalid(
            p,
            tz,
            format!("unknown time zone {tz}"),
        )];
    }
    if tz.eq_ignore_ascii_case("Local") {
        return vec![FieldError::invalid(
            p,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        )];
    }
    Vec::new()
}

fn validate_cronjob(cj: &Value) -> Errors {
    let mut errs = validate_object_meta(cj, &SUBDOMAIN);
    errs.extend(cronjob_spec(spec_of(cj), None));
    let name = s(at(cj, &["metadata"]), "name");
    if name.len() > 52 {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be no more than 52 characters",
        ));
    }
    errs
}

/// Validation on create for a workload resource, `None` if not one.
pub fn validate_create(group: &str, resource: &str, obj: &Value) -> Option<Errors> {
    let spec = spec_of(obj);
    let errs = match (group, resource) {
        ("apps", "deployments") => {
            let mut e = validate_object_meta(obj, &SUBDOMAIN);
            e.extend(deployment_spec(spec));
            e
        }
        ("apps", "replicasets") => {
            let mut e = validate_object_meta(obj, &SUBDOMAIN);
            e.extend(replicaset_spec(spec));
            e
        }
        ("", "replicationcontrollers") => {
            let mut e = validate_object_meta(obj, &SUBDOMAIN);
            e.extend(rc_spec(spec));
            e
        }
        ("apps", "statefulsets") => {
            let rules = MetaRules {
                name: name_label,
                ..SUBDOMAIN
            };
            let mut e = validate_object_meta(obj, &rules);
            e.extend(statefulset_spec(spec));
            e
        }
        ("apps", "daemonsets") => {
            let mut e = validate_object_meta(obj, &SUBDOMAIN);
            e.extend(daemonset_spec(spec));
            e
        }
        ("batch", "jobs") => validate_job(obj),
        ("batch", "cronjobs") => validate_cronjob(obj),
        _ => return None,
    };
    Some(errs)
}

fn selector_immutable(new: &Value, old: &Value) -> Errors {
    let (ns, os) = (spec_of(new).get("selector"), spec_of(old).get("selector"));
    if semantic_eq(ns, os) {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            "spec.selector",
            selector_repr(ns),
            IMMUTABLE,
        )]
    }
}

const STS_UPDATABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

/// Validation on update for a workload resource, `None` if not one.
pub fn validate_update(group: &str, resource: &str, new: &Value, old: &Value) -> Option<Errors> {
    let mut errs = validate_object_meta_update(new, old, true);
    let spec = spec_of(new);
    match (group, resource) {
        ("apps", "deployments") => {
            errs.extend(deployment_spec(spec));
            errs.extend(selector_immutable(new, old));
        }
        ("apps", "replicasets") => {
            errs.extend(replicaset_spec(spec));
            errs.extend(selector_immutable(new, old));
        }
        ("", "replicationcontrollers") => errs.extend(rc_spec(spec)),
        ("apps", "statefulsets") => {
            errs.extend(statefulset_spec(spec));
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(m) = v.as_object_mut() {
                    for k in STS_UPDATABLE {
                        m.remove(*k);
                    }
                }
                normalize(&v)
            };
            if strip(spec) != strip(spec_of(old)) {
                errs.push(FieldError::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        ("apps", "daemonsets") => {
            let (ng, og) = (
                int(spec, "templateGeneration"),
                int(spec_of(old), "templateGeneration"),
            );
            if let (Some(n), Some(o)) = (ng, og)
                && n < o
            {
                errs.push(FieldError::invalid(
                    "spec.templateGeneration",
                    n,
                    "must not be decremented",
                ));
            }
            errs.extend(daemonset_spec(spec));
            errs.extend(selector_immutable(new, old));
        }
        ("batch", "jobs") => return Some(validate_job_update(new, old)),
        ("batch", "cronjobs") => errs.extend(cronjob_spec(spec, Some(spec_of(old)))),
        _ => return None,
    }
    Some(errs)
}

#[cfg(test)]
pub(crate) fn value_repr_for_tests(v: &Value) -> String {
    crate::error::render_value(&selector_repr(Some(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selector_go_repr() {
        assert_eq!(
            value_repr_for_tests(&json!({"matchLabels": {"app": "a"}})),
            "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"a\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
        let _ = name_subdomain;
    }
}
