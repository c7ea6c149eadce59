#!/usr/bin/env python3
"""Generate apiserver/protobuf/src/schema.rs: the Kubernetes protobuf schema table.

Sources (both generated upstream from the same Go structs, read from the local
cargo registry, i.e. `cargo fetch` must have run):
  k8s-pb 0.9.0        prost structs: message names, field tags, wire types,
                      repeated/map labels, nested message types
  k8s-openapi 0.29.0  (v1_36) serde impls: the real JSON field names and which
                      fields are required (non-Option), plus Resource impls
                      (apiVersion, kind, list kind)

Facts neither source carries (whether a Go field is a pointer, i.e. whether a
zero value on the wire means "set to zero" or "unset") live in the hand tables
below. The Go marshallers write every non-pointer scalar unconditionally, so a
zero scalar of a non-pointer `omitempty` field must be dropped to reproduce
upstream JSON, while a zero pointer field must be kept.

Usage (from the repo root):  python3 hack/gen/protobuf.py [--check]
stdlib only.
"""

import glob
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUTPUT = os.path.join(ROOT, "apiserver", "protobuf", "src", "schema.rs")
PB_VERSION = "0.9.0"
OPENAPI_VERSION = "0.29.0"
OPENAPI_FEATURE = "v1_36"

# Optional (Option<T> in k8s-openapi) strings are non-pointer `omitempty` in Go
# unless listed here: these are `*string` where "" means something.
KEEP_EMPTY_STRING = {
    "api::core::v1::PersistentVolumeClaimSpec.storageClassName",
    "api::core::v1::PersistentVolumeClaimSpec.volumeAttributesClassName",
    "api::core::v1::PersistentVolumeSpec.volumeAttributesClassName",
    "api::core::v1::ModifyVolumeStatus.targetVolumeAttributesClassName",
}

# Optional bool/int fields are assumed to be Go pointers (zero kept) unless
# listed here: known non-pointer `omitempty` scalars, zero dropped.
OMIT_ZERO = {
    "apimachinery::pkg::apis::meta::v1::ObjectMeta": ["generation"],
    "apimachinery::pkg::apis::meta::v1::ListMeta": ["remainingItemCount"],
    "apimachinery::pkg::apis::meta::v1::APIResource": ["namespaced"],
    "apimachinery::pkg::apis::meta::v1::Status": ["code"],
    "apimachinery::pkg::apis::meta::v1::StatusDetails": ["retryAfterSeconds"],
    "apimachinery::pkg::apis::meta::v1::Condition": ["observedGeneration"],
    "apimachinery::pkg::apis::meta::v1::ListOptions": ["watch", "allowWatchBookmarks", "limit"],
    "api::core::v1::Container": ["stdin", "stdinOnce", "tty"],
    "api::core::v1::EphemeralContainerCommon": ["stdin", "stdinOnce", "tty"],
    "api::core::v1::EphemeralContainer": ["stdin", "stdinOnce", "tty"],
    "api::core::v1::ContainerPort": ["hostPort"],
    "api::core::v1::VolumeMount": ["readOnly"],
    "api::core::v1::Probe": ["initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                             "successThreshold", "failureThreshold"],
    "api::core::v1::PodSpec": ["hostNetwork", "hostPID", "hostIPC"],
    "api::core::v1::ServicePort": ["nodePort"],
    "api::core::v1::ServiceSpec": ["publishNotReadyAddresses", "healthCheckNodePort"],
    "api::core::v1::NodeSpec": ["unschedulable"],
    "api::core::v1::Event": ["count"],
    "api::core::v1::EventSeries": ["count"],
    "api::core::v1::PodStatus": ["observedGeneration"],
    "api::core::v1::PodCondition": ["observedGeneration"],
    "api::core::v1::ReplicationControllerSpec": ["minReadySeconds"],
    "api::core::v1::ReplicationControllerStatus": ["fullyLabeledReplicas", "readyReplicas",
                                                   "availableReplicas", "observedGeneration"],
    "api::core::v1::AWSElasticBlockStoreVolumeSource": ["partition", "readOnly"],
    "api::core::v1::AwsElasticBlockStoreVolumeSource": ["partition", "readOnly"],
    "api::core::v1::GCEPersistentDiskVolumeSource": ["partition", "readOnly"],
    "api::core::v1::GcePersistentDiskVolumeSource": ["partition", "readOnly"],
    "api::core::v1::NFSVolumeSource": ["readOnly"],
    "api::core::v1::NfsVolumeSource": ["readOnly"],
    "api::core::v1::PersistentVolumeClaimVolumeSource": ["readOnly"],
    "api::core::v1::ISCSIVolumeSource": ["readOnly"],
    "api::core::v1::IscsiVolumeSource": ["readOnly"],
    "api::core::v1::ISCSIPersistentVolumeSource": ["readOnly"],
    "api::core::v1::IscsiPersistentVolumeSource": ["readOnly"],
    "api::core::v1::FCVolumeSource": ["readOnly"],
    "api::core::v1::FcVolumeSource": ["readOnly"],
    "api::core::v1::CephFSVolumeSource": ["readOnly"],
    "api::core::v1::CephFsVolumeSource": ["readOnly"],
    "api::core::v1::CephFSPersistentVolumeSource": ["readOnly"],
    "api::core::v1::CephFsPersistentVolumeSource": ["readOnly"],
    "api::core::v1::RBDVolumeSource": ["readOnly"],
    "api::core::v1::RbdVolumeSource": ["readOnly"],
    "api::core::v1::RBDPersistentVolumeSource": ["readOnly"],
    "api::core::v1::RbdPersistentVolumeSource": ["readOnly"],
    "api::core::v1::FlexVolumeSource": ["readOnly"],
    "api::core::v1::FlexPersistentVolumeSource": ["readOnly"],
    "api::core::v1::CinderVolumeSource": ["readOnly"],
    "api::core::v1::CinderPersistentVolumeSource": ["readOnly"],
    "api::core::v1::AzureFileVolumeSource": ["readOnly"],
    "api::core::v1::AzureFilePersistentVolumeSource": ["readOnly"],
    "api::core::v1::QuobyteVolumeSource": ["readOnly"],
    "api::core::v1::PortworxVolumeSource": ["readOnly"],
    "api::core::v1::ScaleIOVolumeSource": ["readOnly", "sslEnabled"],
    "api::core::v1::ScaleIoVolumeSource": ["readOnly", "sslEnabled"],
    "api::core::v1::ScaleIOPersistentVolumeSource": ["readOnly", "sslEnabled"],
    "api::core::v1::ScaleIoPersistentVolumeSource": ["readOnly", "sslEnabled"],
    "api::core::v1::StorageOSVolumeSource": ["readOnly"],
    "api::core::v1::StorageOsVolumeSource": ["readOnly"],
    "api::core::v1::StorageOSPersistentVolumeSource": ["readOnly"],
    "api::core::v1::StorageOsPersistentVolumeSource": ["readOnly"],
    "api::core::v1::CSIPersistentVolumeSource": ["readOnly"],
    "api::core::v1::CsiPersistentVolumeSource": ["readOnly"],
    "api::core::v1::ContainerStateTerminated": ["signal"],
    "api::core::v1::NodeStatus": [],
    "api::core::v1::PodLogOptions": ["follow", "previous", "timestamps", "insecureSkipTLSVerifyBackend"],
    "api::core::v1::PodExecOptions": ["stdin", "stdout", "stderr", "tty"],
    "api::core::v1::PodAttachOptions": ["stdin", "stdout", "stderr", "tty"],
    "api::apps::v1::DeploymentSpec": ["minReadySeconds", "paused"],
    "api::apps::v1::DeploymentStatus": ["observedGeneration", "replicas", "updatedReplicas",
                                        "readyReplicas", "availableReplicas", "unavailableReplicas"],
    "api::apps::v1::ReplicaSetSpec": ["minReadySeconds"],
    "api::apps::v1::ReplicaSetStatus": ["fullyLabeledReplicas", "readyReplicas",
                                        "availableReplicas", "observedGeneration"],
    "api::apps::v1::StatefulSetSpec": ["minReadySeconds"],
    "api::apps::v1::StatefulSetStatus": ["observedGeneration", "readyReplicas", "currentReplicas",
                                         "updatedReplicas", "availableReplicas"],
    "api::apps::v1::DaemonSetSpec": ["minReadySeconds"],
    "api::apps::v1::DaemonSetStatus": ["observedGeneration", "updatedNumberScheduled",
                                       "numberAvailable", "numberUnavailable"],
    "api::batch::v1::JobStatus": ["active", "succeeded", "failed"],
    "api::autoscaling::v1::ScaleSpec": ["replicas"],
    "api::autoscaling::v1::HorizontalPodAutoscalerStatus": [],
    "api::autoscaling::v2::HorizontalPodAutoscalerStatus": ["currentReplicas"],
    "api::policy::v1::PodDisruptionBudgetStatus": ["observedGeneration"],
    "api::networking::v1::ServiceBackendPort": ["number"],
    "api::networking::v1::IngressPortStatus": [],
    "api::discovery::v1::EndpointConditions": [],
}

# Time-valued fields with Go `omitzero` (dropped when zero instead of `null`).
OMIT_ZERO_TIME = {
    "apimachinery::pkg::apis::meta::v1::ObjectMeta.creationTimestamp",
}

# Messages with a custom JSON form (see src/wellknown.rs).
SPECIAL = {
    "apimachinery::pkg::apis::meta::v1::Time": "Time",
    "apimachinery::pkg::apis::meta::v1::MicroTime": "MicroTime",
    "apimachinery::pkg::apis::meta::v1::Duration": "Duration",
    "apimachinery::pkg::apis::meta::v1::FieldsV1": "RawJson",
    "apimachinery::pkg::apis::meta::v1::Verbs": "StringArray",
    "apimachinery::pkg::api::resource::Quantity": "Quantity",
    "apimachinery::pkg::util::intstr::IntOrString": "IntOrString",
    "apimachinery::pkg::runtime::RawExtension": "RawExtension",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1::Json": "RawJson",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaPropsOrArray": "SchemaOrArray",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaPropsOrBool": "SchemaOrBool",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaPropsOrStringArray": "SchemaOrStringArray",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1beta1::Json": "RawJson",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1beta1::JsonSchemaPropsOrArray": "SchemaOrArray",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1beta1::JsonSchemaPropsOrBool": "SchemaOrBool",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1beta1::JsonSchemaPropsOrStringArray": "SchemaOrStringArray",
}
for _g in ("authentication", "authorization", "certificates"):
    for _v in ("v1", "v1beta1", "v1alpha1"):
        SPECIAL[f"api::{_g}::{_v}::ExtraValue"] = "StringArray"

# Kinds registered into every group version by metav1.AddToGroupVersion
# (resolved at run time for any apiVersion) and their meta/v1 messages.
META_KINDS = ["DeleteOptions", "CreateOptions", "UpdateOptions", "PatchOptions", "GetOptions",
              "ListOptions", "Status", "WatchEvent"]

# Skipped k8s-pb modules (test fixtures).
SKIP_MODULES = ("apimachinery::pkg::apis::testapigroup",)

SCALARS = {"string": "Str", "bytes": "Bytes", "bool": "Bool", "int32": "I32", "int64": "I64",
           "uint32": "U32", "uint64": "U64", "double": "F64", "float": "F32"}
RUST_WORDS = {"Option", "Vec", "Box", "String", "BTreeMap", "HashMap", "core", "prost", "alloc",
              "option", "vec", "boxed", "string", "collections", "u8", "i32", "i64", "u32", "u64",
              "bool", "f32", "f64", "btree_map"}


def registry_dir(name):
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    hits = sorted(glob.glob(os.path.join(home, "registry", "src", "*", name)))
    if not hits:
        sys.exit(f"protobuf.py: {name} not found in {home}/registry/src (run `cargo fetch`)")
    return hits[-1]


def strip_comments(text):
    return "\n".join(l for l in text.split("\n") if not l.lstrip().startswith("//"))


def first_doc_words(body_lines):
    """Map field rust name -> first word of its doc comment."""
    out, doc = {}, None
    for line in body_lines:
        s = line.strip()
        if s.startswith("///"):
            if doc is None:
                words = s[3:].strip().split()
                doc = words[0] if words else ""
        elif s.startswith("pub "):
            m = re.match(r"pub (?:r#)?(\w+):", s)
            if m and doc is not None:
                out[m.group(1)] = doc
            doc = None
    return out


def parse_pb(root):
    """-> {path: {"fields": [...], "resource": (apiVersion, kind) or None}}"""
    msgs = {}
    src = os.path.join(root, "src")
    for path in sorted(glob.glob(os.path.join(src, "**", "mod.rs"), recursive=True)):
        rel = os.path.relpath(os.path.dirname(path), src)
        if rel == ".":
            continue
        module = rel.replace(os.sep, "::")
        if module.startswith(SKIP_MODULES):
            continue
        raw = open(path, encoding="utf-8").read()
        for m in re.finditer(r"^pub struct (\w+) \{(?:\}|\n(.*?)^\})", raw, re.S | re.M):
            name, body = m.group(1), m.group(2) or ""
            docs = first_doc_words(body.split("\n"))
            body = strip_comments(body)
            fields = []
            for fm in re.finditer(r"#\[prost\((.*?)\)\]\s*pub (?:r#)?(\w+):\s*(.*?),\s*(?=#\[prost|$)",
                                  body, re.S):
                attr, rname, ty = fm.group(1), fm.group(2), " ".join(fm.group(3).split())
                tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                mm = re.match(r'btree_map = "string, (\w+)"', attr)
                if mm:
                    card, wire = "Map", mm.group(1)
                else:
                    wire = attr.split(",")[0].split("=")[0].strip()
                    card = "Rep" if "repeated" in attr else "One"
                target = None
                if wire == "message":
                    paths = [p for p in re.findall(r"[\w:]+", ty)
                             if p.split("::")[-1] not in RUST_WORDS and p[:1] not in "0123456789"]
                    target = resolve(module, paths[-1])
                elif wire not in SCALARS:
                    sys.exit(f"protobuf.py: unsupported prost type {attr!r} in {module}::{name}")
                fields.append({"tag": tag, "rust": rname, "wire": wire, "card": card,
                               "target": target, "doc": docs.get(rname)})
            msgs[f"{module}::{name}"] = {"fields": fields, "module": module, "name": name}
        for m in re.finditer(r'impl crate::Resource for (\w+) \{\s*const API_VERSION: &\'static str = "([^"]*)";'
                             r'.*?const KIND: &\'static str = "([^"]*)";', raw, re.S):
            key = f"{module}::{m.group(1)}"
            if key in msgs:
                msgs[key]["resource"] = (m.group(2), m.group(3))
    return msgs


def resolve(module, path):
    parts = module.split("::")
    segs = path.split("::")
    if segs[0] == "crate":
        return "::".join(segs[1:])
    if segs[0] != "super":
        return "::".join(parts + segs)
    while segs and segs[0] == "super":
        parts.pop()
        segs.pop(0)
    return "::".join(parts + segs)


def parse_openapi(root):
    """-> ({module::Struct: {rust_name: (json_name, required)}}, [(apiVersion, kind, module::Struct, list_kind)])"""
    structs, resources = {}, []
    src = os.path.join(root, "src", OPENAPI_FEATURE)
    for path in sorted(glob.glob(os.path.join(src, "**", "*.rs"), recursive=True)):
        module = os.path.relpath(os.path.dirname(path), src).replace(os.sep, "::")
        raw = open(path, encoding="utf-8").read()
        for m in re.finditer(r"^pub struct (\w+) \{(?:\}|\n(.*?)^\})", raw, re.S | re.M):
            name, body = m.group(1), strip_comments(m.group(2) or "")
            required = {fm.group(1): not fm.group(2).startswith("Option<")
                        for fm in re.finditer(r"pub (\w+): ([^\n]*),\n", body + "\n")}
            jsons = dict((r, j) for j, r in re.findall(r'"([^"]+)" => Field::Key_(\w+),', raw))
            structs[f"{module}::{name}"] = {r: (jsons.get(r), req) for r, req in required.items()}
        rm = re.search(r'impl crate::Resource for (\w+) \{\s*const API_VERSION: &\'static str = "([^"]*)";'
                       r'.*?const KIND: &\'static str = "([^"]*)";', raw, re.S)
        if rm:
            lk = re.search(r'const LIST_KIND: &\'static str = "([^"]*)";', raw)
            resources.append((rm.group(2), rm.group(3), f"{module}::{rm.group(1)}", lk.group(1) if lk else None))
    return structs, resources


def squash(s):
    return re.sub(r"[^a-z0-9]", "", s.lower())


def camel(rust):
    head, *rest = rust.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def openapi_struct(structs, pb_path, any_version=False):
    """Find the k8s-openapi struct for a k8s-pb message (names differ in acronym case)."""
    if pb_path in structs:
        return structs[pb_path]
    module, name = pb_path.rsplit("::", 1)
    group = module.rsplit("::", 1)[0]
    hit = None
    for key, val in structs.items():
        kmod, kname = key.rsplit("::", 1)
        if kname.lower() != name.lower():
            continue
        if kmod == module:
            return val
        if any_version and kmod.rsplit("::", 1)[0] == group and hit is None:
            hit = val
    return hit


def match(oa, rust):
    """-> (json name, required) of a k8s-pb field in a k8s-openapi struct, or None."""
    for c in (rust, rust + "_"):
        if c in oa and oa[c][0]:
            return oa[c]
    for j, req in oa.values():
        if j and squash(j) == squash(rust):
            return j, req
    return None


def inlines_into(pb, target, oa):
    """Whether every field of message `target` (recursively) has a JSON name in `oa`."""
    fields = pb[target]["fields"]
    return bool(fields) and all(
        match(oa, f["rust"]) is not None or (f["wire"] == "message" and f["card"] == "One"
                                           and inlines_into(pb, f["target"], oa))
        for f in fields)


def build():
    pb = parse_pb(registry_dir(f"k8s-pb-{PB_VERSION}"))
    structs, resources = parse_openapi(registry_dir(f"k8s-openapi-{OPENAPI_VERSION}"))
    names = sorted(pb)
    index = {n: i for i, n in enumerate(names)}
    # Name source per message: its own k8s-openapi struct, else that of the struct it is
    # inlined into (Go embedded structs, `json:",inline"`), else the same struct in another
    # version of its group.
    source = {p: openapi_struct(structs, p) for p in names}
    inline = set()
    changed = True
    while changed:
        changed = False
        for p in names:
            oa = source[p]
            if oa is None:
                continue
            for f in pb[p]["fields"]:
                key = (p, f["rust"])
                if f["wire"] != "message" or f["card"] != "One" or key in inline or match(oa, f["rust"]):
                    continue
                if inlines_into(pb, f["target"], oa):
                    inline.add(key)
                    if source[f["target"]] is None:
                        source[f["target"]] = oa
                    changed = True
    for p in names:
        if source[p] is None:
            source[p] = openapi_struct(structs, p, any_version=True)
    unmatched = []
    out_msgs = []
    for path in names:
        msg = pb[path]
        oa = source[path]
        omit = set(OMIT_ZERO.get(path, []))
        fields = []
        for f in sorted(msg["fields"], key=lambda f: f["tag"]):
            hit = match(oa, f["rust"]) if oa is not None else None
            json_name, required = hit if hit else (None, False)
            is_inline = (path, f["rust"]) in inline
            if json_name is None and not is_inline:
                doc = (f["doc"] or "").rstrip(".,:")
                json_name = doc if doc and squash(doc) == squash(f["rust"]) \
                    and re.fullmatch(r"[A-Za-z0-9]+", doc) and doc[:1].islower() else camel(f["rust"])
                if oa is not None and path not in SPECIAL:
                    unmatched.append(f"{path}.{f['rust']} -> {json_name}")
            if f["wire"] == "message":
                if f["target"] not in index:
                    sys.exit(f"protobuf.py: {path}.{f['rust']}: unknown message {f['target']}")
                ty = f"M({index[f['target']]})"
            else:
                ty = SCALARS[f["wire"]]
            card = "Inline" if is_inline else f["card"]
            json_name = json_name or ""
            key = f"{path}.{json_name}"
            if f["card"] != "One":
                omit_zero = True
            elif f["wire"] == "message":
                omit_zero = key in OMIT_ZERO_TIME
            elif required:
                omit_zero = False
            elif f["wire"] in ("string", "bytes"):
                omit_zero = key not in KEEP_EMPTY_STRING
            else:
                omit_zero = json_name in omit
            fields.append((f["tag"], json_name, ty, card, omit_zero))
        out_msgs.append((path, SPECIAL.get(path, "None"), fields))

    kinds = {}
    for path in names:
        res = pb[path].get("resource")
        if res:
            kinds[res] = path
            lst = path + "List"
            if lst in pb:
                kinds[(res[0], res[1] + "List")] = lst
    for api_version, kind, oa_path, list_kind in resources:
        m = oa_path if oa_path in pb else next((p for p in pb if p.lower() == oa_path.lower()), None)
        if m is None:
            continue
        kinds.setdefault((api_version, kind), m)
        if list_kind and m + "List" in pb:
            kinds.setdefault((api_version, list_kind), m + "List")
    kinds.setdefault(("v1", "List"), "api::core::v1::List")
    for k in META_KINDS:
        kinds[("meta.k8s.io/v1", k)] = f"apimachinery::pkg::apis::meta::v1::{k}"
        kinds.setdefault(("v1", k), f"apimachinery::pkg::apis::meta::v1::{k}")
    meta_kinds = [(k, index[f"apimachinery::pkg::apis::meta::v1::{k}"]) for k in META_KINDS]
    return out_msgs, sorted((av, k, index[p]) for (av, k), p in kinds.items()), meta_kinds, unmatched


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render():
    msgs, kinds, meta_kinds, _ = build()
    o = []
    o.append(f"// @generated by hack/gen/protobuf.py from k8s-pb {PB_VERSION} and k8s-openapi "
             f"{OPENAPI_VERSION} ({OPENAPI_FEATURE}). DO NOT EDIT.")
    o.append("// Regenerate: python3 hack/gen/protobuf.py")
    o.append("use crate::types::{Card::*, Field, Message, Special as S, Ty::*};")
    o.append("")
    o.append("const fn f(tag: u32, json: &'static str, ty: crate::types::Ty, card: crate::types::Card, omit_zero: bool) -> Field {")
    o.append("    Field { tag, json, ty, card, omit_zero }")
    o.append("}")
    o.append("")
    o.append("/// Every message, sorted by k8s-pb path; `M(i)` indexes this table.")
    o.append(f"pub(crate) static MESSAGES: [Message; {len(msgs)}] = [")
    for i, (path, special, fields) in enumerate(msgs):
        fs = ", ".join(f"f({t},{rust_str(j)},{ty},{c},{'true' if oz else 'false'})" for t, j, ty, c, oz in fields)
        o.append(f"/*{i}*/ Message {{ name: {rust_str(path)}, special: S::{special}, fields: &[{fs}] }},")
    o.append("];")
    o.append("")
    o.append("/// (apiVersion, kind) -> message index, sorted.")
    o.append(f"pub(crate) static KINDS: [(&str, &str, u16); {len(kinds)}] = [")
    for av, k, i in kinds:
        o.append(f"({rust_str(av)},{rust_str(k)},{i}),")
    o.append("];")
    o.append("")
    o.append("/// Kinds every group version serves (metav1.AddToGroupVersion).")
    o.append(f"pub(crate) static META_KINDS: [(&str, u16); {len(meta_kinds)}] = [")
    for k, i in meta_kinds:
        o.append(f"({rust_str(k)},{i}),")
    o.append("];")
    return "\n".join(o) + "\n"


def main():
    text = render()
    if "--report" in sys.argv:
        _, _, _, unmatched = build()
        print("\n".join(unmatched))
        print(f"{len(unmatched)} fields without a k8s-openapi JSON name", file=sys.stderr)
        return
    if "--check" in sys.argv:
        cur = open(OUTPUT, encoding="utf-8").read() if os.path.exists(OUTPUT) else ""
        if cur != text:
            sys.exit(f"{os.path.relpath(OUTPUT, ROOT)} is stale: run python3 hack/gen/protobuf.py")
        return
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"wrote {os.path.relpath(OUTPUT, ROOT)}")


if __name__ == "__main__":
    main()
