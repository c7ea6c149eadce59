#!/usr/bin/env python3
"""Generate apiserver/catalogue/src/builtin.rs from the upstream OpenAPI v2 document.

The product never reads the OpenAPI document at run time: this script turns
its paths (x-kubernetes-action + x-kubernetes-group-version-kind) into a
checked-in Rust table. Facts the document does not carry (short names,
categories, etcd key prefixes, storage-version overrides, group priorities)
live in the hand tables below, copied from upstream v1.36:
  pkg/registry/*/storage/storage.go          ShortNames() / Categories()
  pkg/kubeapiserver/default_storage_factory_builder.go  prefixes, overrides
  pkg/controlplane/apiserver/aggregator.go + cmd/kube-apiserver/app  priorities

Usage (from the repo root):  python3 hack/gen/catalogue.py [--check]
stdlib only.
"""

import base64
import hashlib
import json
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
REFERENCE = os.path.join(ROOT, "..", "shared", "reference", "kubernetes-openapi-v2.json")
OUTPUT = os.path.join(ROOT, "apiserver", "catalogue", "src", "builtin.rs")

# (group, plural) -> short names, from upstream ShortNames().
SHORT_NAMES = {
    ("", "componentstatuses"): ["cs"],
    ("", "configmaps"): ["cm"],
    ("", "endpoints"): ["ep"],
    ("", "events"): ["ev"],
    ("", "limitranges"): ["limits"],
    ("", "namespaces"): ["ns"],
    ("", "nodes"): ["no"],
    ("", "persistentvolumeclaims"): ["pvc"],
    ("", "persistentvolumes"): ["pv"],
    ("", "pods"): ["po"],
    ("", "replicationcontrollers"): ["rc"],
    ("", "resourcequotas"): ["quota"],
    ("", "serviceaccounts"): ["sa"],
    ("", "services"): ["svc"],
    ("apiextensions.k8s.io", "customresourcedefinitions"): ["crd", "crds"],
    ("apps", "daemonsets"): ["ds"],
    ("apps", "deployments"): ["deploy"],
    ("apps", "replicasets"): ["rs"],
    ("apps", "statefulsets"): ["sts"],
    ("autoscaling", "horizontalpodautoscalers"): ["hpa"],
    ("batch", "cronjobs"): ["cj"],
    ("certificates.k8s.io", "certificatesigningrequests"): ["csr"],
    ("events.k8s.io", "events"): ["ev"],
    ("networking.k8s.io", "ingresses"): ["ing"],
    ("networking.k8s.io", "networkpolicies"): ["netpol"],
    ("networking.k8s.io", "ipaddresses"): ["ip"],
    ("policy", "poddisruptionbudgets"): ["pdb"],
    ("scheduling.k8s.io", "priorityclasses"): ["pc"],
    ("storage.k8s.io", "storageclasses"): ["sc"],
    ("storage.k8s.io", "volumeattributesclasses"): ["vac"],
}

# (group, plural) -> categories, from upstream Categories().
CATEGORIES = {
    ("", "pods"): ["all"],
    ("", "replicationcontrollers"): ["all"],
    ("", "services"): ["all"],
    ("apps", "daemonsets"): ["all"],
    ("apps", "deployments"): ["all"],
    ("apps", "replicasets"): ["all"],
    ("apps", "statefulsets"): ["all"],
    ("autoscaling", "horizontalpodautoscalers"): ["all"],
    ("batch", "cronjobs"): ["all"],
    ("batch", "jobs"): ["all"],
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): ["api-extensions"],
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): ["api-extensions"],
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"): ["api-extensions"],
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"): ["api-extensions"],
    ("admissionregistration.k8s.io", "mutatingadmissionpolicies"): ["api-extensions"],
    ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings"): ["api-extensions"],
    ("apiextensions.k8s.io", "customresourcedefinitions"): ["api-extensions"],
    ("apiregistration.k8s.io", "apiservices"): ["api-extensions"],
}

# (group, plural) -> etcd key prefix under /registry/ when it is not the plural
# (SpecialDefaultResourcePrefixes, plus the CRD and aggregator servers).
STORAGE_PREFIXES = {
    ("", "replicationcontrollers"): "controllers",
    ("", "endpoints"): "services/endpoints",
    ("", "nodes"): "minions",
    ("", "services"): "services/specs",
    ("networking.k8s.io", "ingresses"): "ingress",
    ("apiextensions.k8s.io", "customresourcedefinitions"): "apiextensions.k8s.io/customresourcedefinitions",
    ("apiregistration.k8s.io", "apiservices"): "apiregistration.k8s.io/apiservices",
}

# Resources stored together with another group's resource (AddCohabitatingResources):
# (group, plural) -> (storage group, storage plural). The first is the storage owner.
COHABITATING = {
    ("events.k8s.io", "events"): ("", "events"),
}

# Resources with no etcd storage at all (virtual / review / connect-only).
VIRTUAL = {
    ("", "bindings"),
    ("", "componentstatuses"),
    ("authentication.k8s.io", "tokenreviews"),
    ("authentication.k8s.io", "selfsubjectreviews"),
    ("authorization.k8s.io", "subjectaccessreviews"),
    ("authorization.k8s.io", "localsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
}

# NewStorageFactoryConfigEffectiveVersion overrides for v1.36: (group, plural) -> version.
STORAGE_VERSION_OVERRIDES = {
    ("coordination.k8s.io", "leasecandidates"): "v1beta1",
    ("admissionregistration.k8s.io", "mutatingadmissionpolicies"): "v1beta1",
    ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings"): "v1beta1",
    ("certificates.k8s.io", "clustertrustbundles"): "v1beta1",
    ("certificates.k8s.io", "podcertificaterequests"): "v1beta1",
    ("resource.k8s.io", "devicetaintrules"): "v1alpha3",
    ("scheduling.k8s.io", "workloads"): "v1alpha2",
    ("scheduling.k8s.io", "podgroups"): "v1alpha2",
}

# GroupPriorityMinimum per group (apiVersionPriorities); versions inside a group
# follow the kube-aware version order, which matches upstream VersionPriority.
GROUP_PRIORITIES = {
    "": 18000,
    "apps": 17800,
    "events.k8s.io": 17750,
    "authentication.k8s.io": 17700,
    "authorization.k8s.io": 17600,
    "autoscaling": 17500,
    "batch": 17400,
    "certificates.k8s.io": 17300,
    "networking.k8s.io": 17200,
    "policy": 17100,
    "rbac.authorization.k8s.io": 17000,
    "storage.k8s.io": 16800,
    "apiextensions.k8s.io": 16700,
    "admissionregistration.k8s.io": 16700,
    "scheduling.k8s.io": 16600,
    "coordination.k8s.io": 16500,
    "node.k8s.io": 16300,
    "discovery.k8s.io": 16200,
    "resource.k8s.io": 16200,
    "flowcontrol.apiserver.k8s.io": 16100,
    "internal.apiserver.k8s.io": 16000,
    "storagemigration.k8s.io": 15800,
    # The aggregator always lists its own group first ("it's good to be king").
    "apiregistration.k8s.io": 20000,
}

ITEM_VERBS = {"get": "get", "put": "update", "patch": "patch", "delete": "delete"}
COLLECTION_VERBS = {"get": "list", "post": "create", "delete": "deletecollection"}
SUB_VERBS = {"get": "get", "post": "create", "put": "update", "patch": "patch", "delete": "delete"}
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

PATH_RE = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/(?P<rest>.+)$")


def version_key(v):
    """Kube-aware version order (GA > beta > alpha, then major, then minor), as a sort key."""
    m = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", v)
    if not m:
        return (3, 0, 0, v)
    major = int(m.group(1))
    level = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (level, -major, -minor, v)


def stability(v):
    if "alpha" in v:
        return "Alpha"
    if "beta" in v:
        return "Beta"
    return "Ga"


def svh(group, version, kind):
    """Upstream discovery.StorageVersionHash: base64(sha256("g/v/k")[:8])."""
    return base64.b64encode(hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()[:8]).decode()


def parse(doc):
    """Collect resources keyed by (group, version, plural) from the OpenAPI paths."""
    res = {}

    def entry(g, v, plural):
        return res.setdefault((g, v, plural), {
            "kind": None, "verbs": set(), "namespaced": False, "subs": {},
        })

    for path, item in doc["paths"].items():
        m = PATH_RE.match(path)
        if not m:
            continue
        g = "" if m.group("core") else m.group("group")
        v = m.group("core") or m.group("version")
        segs = m.group("rest").strip("/").split("/")
        watch = segs[0] == "watch"
        if watch:
            segs = segs[1:]
        namespaced = False
        if len(segs) >= 3 and segs[0] == "namespaces" and segs[1] == "{namespace}":
            namespaced = True
            segs = segs[2:]
        if not segs or segs[0].startswith("{"):
            continue
        plural = segs[0]
        rest = segs[1:]
        ops = {k: o for k, o in item.items() if k in HTTP_METHODS and isinstance(o, dict)}
        if not ops:
            continue
        if len(rest) >= 2 and rest[0] == "{name}":
            # subresource (proxy/{path} folds into proxy)
            sub = rest[1]
            e = entry(g, v, plural)
            e["namespaced"] |= namespaced
            s = e["subs"].setdefault(sub, {"gvk": None, "verbs": set()})
            for method, op in ops.items():
                gvk = op.get("x-kubernetes-group-version-kind")
                if gvk and s["gvk"] is None:
                    s["gvk"] = (gvk.get("group", ""), gvk["version"], gvk["kind"])
                if method in SUB_VERBS:
                    s["verbs"].add(SUB_VERBS[method])
            continue
        e = entry(g, v, plural)
        e["namespaced"] |= namespaced
        for method, op in ops.items():
            action = op.get("x-kubernetes-action")
            gvk = op.get("x-kubernetes-group-version-kind")
            if gvk and e["kind"] is None and (gvk.get("group", ""), gvk["version"]) == (g, v):
                e["kind"] = gvk["kind"]
            if watch or action in ("watch", "watchlist"):
                e["verbs"].add("watch")
            elif rest == ["{name}"]:
                if method in ITEM_VERBS:
                    e["verbs"].add(ITEM_VERBS[method])
            elif not rest:
                if method in COLLECTION_VERBS:
                    e["verbs"].add(COLLECTION_VERBS[method])
    # A bare POST-only collection whose kind lives elsewhere (none today) would lack a kind.
    for key, e in res.items():
        if e["kind"] is None:
            raise SystemExit(f"no kind for {key}")
    return res


def storage_version(res, g, plural, cohab):
    """Encoding version: an explicit override, else the group's preferred version holding the resource."""
    sg, sp = cohab
    if (g, plural) in STORAGE_VERSION_OVERRIDES:
        return STORAGE_VERSION_OVERRIDES[(g, plural)]
    versions = sorted({v for (gg, v, p) in res if gg == sg and p == sp}, key=version_key)
    return versions[0]


def rs_str(s):
    return json.dumps(s)


def rs_list(items):
    return "&[" + ", ".join(rs_str(i) for i in items) + "]"


def render(res):
    out = []
    out.append("// @generated by hack/gen/catalogue.py from ../shared/reference/kubernetes-openapi-v2.json.")
    out.append("// DO NOT EDIT: change the script (or its hand tables) and re-run it.")
    out.append("//! Built-in resource table of upstream Kubernetes v1.36 (every group-version in the")
    out.append("//! reference OpenAPI document, default-enabled or not).")
    out.append("")
    out.append("use crate::resource::Stability;")
    out.append("")
    out.append("/// One subresource row; `group`/`version` are empty when the kind is the parent's.")
    out.append("pub(crate) struct RawSub {")
    out.append("    pub name: &'static str,")
    out.append("    pub group: &'static str,")
    out.append("    pub version: &'static str,")
    out.append("    pub kind: &'static str,")
    out.append("    pub verbs: &'static [&'static str],")
    out.append("}")
    out.append("")
    out.append("/// One resource row; owned `ResourceInfo`s are built from these at start-up.")
    out.append("pub(crate) struct Raw {")
    for f, t in [("group", "&'static str"), ("version", "&'static str"), ("kind", "&'static str"),
                 ("plural", "&'static str"), ("singular", "&'static str"),
                 ("short_names", "&'static [&'static str]"), ("categories", "&'static [&'static str]"),
                 ("namespaced", "bool"), ("verbs", "&'static [&'static str]"),
                 ("subresources", "&'static [RawSub]"), ("storage_prefix", "&'static str"),
                 ("storage_version_hash", "&'static str"), ("enabled_by_default", "bool"),
                 ("stability", "Stability")]:
        out.append(f"    pub {f}: {t},")
    out.append("}")
    out.append("")
    groups = sorted({g for (g, _, _) in res}, key=lambda g: (-GROUP_PRIORITIES.get(g, 1000), g))
    out.append("/// Group priorities (upstream GroupPriorityMinimum); higher is listed first.")
    out.append("pub(crate) const GROUP_PRIORITIES: &[(&str, i32)] = &[")
    for g in groups:
        out.append(f"    ({rs_str(g)}, {GROUP_PRIORITIES.get(g, 1000)}),")
    out.append("];")
    out.append("")
    out.append("pub(crate) const BUILTIN: &[Raw] = &[")
    order = sorted(res, key=lambda k: (-GROUP_PRIORITIES.get(k[0], 1000), k[0], version_key(k[1]), k[2]))
    for (g, v, plural) in order:
        e = res[(g, v, plural)]
        kind = e["kind"]
        key = (g, plural)
        if key in VIRTUAL:
            prefix, hashv = "", ""
        else:
            cohab = COHABITATING.get(key, key)
            prefix = STORAGE_PREFIXES.get(cohab, cohab[1])
            sv = storage_version(res, g, plural, cohab)
            skind = res[(cohab[0], sv, cohab[1])]["kind"]
            hashv = svh(cohab[0], sv, skind)
        stab = stability(v)
        out.append("    Raw {")
        out.append(f"        group: {rs_str(g)},")
        out.append(f"        version: {rs_str(v)},")
        out.append(f"        kind: {rs_str(kind)},")
        out.append(f"        plural: {rs_str(plural)},")
        out.append(f"        singular: {rs_str(kind.lower())},")
        out.append(f"        short_names: {rs_list(SHORT_NAMES.get(key, []))},")
        out.append(f"        categories: {rs_list(CATEGORIES.get(key, []))},")
        out.append(f"        namespaced: {'true' if e['namespaced'] else 'false'},")
        out.append(f"        verbs: {rs_list(sorted(e['verbs']))},")
        if e["subs"]:
            out.append("        subresources: &[")
            for name in sorted(e["subs"]):
                s = e["subs"][name]
                sg, sv2, sk = s["gvk"]
                if (sg, sv2) == (g, v):
                    sg, sv2 = "", ""
                out.append(f"            RawSub {{ name: {rs_str(name)}, group: {rs_str(sg)}, version: {rs_str(sv2)}, "
                           f"kind: {rs_str(sk)}, verbs: {rs_list(sorted(s['verbs']))} }},")
            out.append("        ],")
        else:
            out.append("        subresources: &[],")
        out.append(f"        storage_prefix: {rs_str(prefix)},")
        out.append(f"        storage_version_hash: {rs_str(hashv)},")
        out.append(f"        enabled_by_default: {'true' if stab == 'Ga' else 'false'},")
        out.append(f"        stability: Stability::{stab},")
        out.append("    },")
    out.append("];")
    return "\n".join(out) + "\n"


def main():
    with open(REFERENCE, encoding="utf-8") as f:
        doc = json.load(f)
    text = render(parse(doc))
    if "--check" in sys.argv:
        with open(OUTPUT, encoding="utf-8") as f:
            if f.read() != text:
                sys.exit(f"{OUTPUT} is stale: re-run hack/gen/catalogue.py (then cargo fmt)")
        return
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
