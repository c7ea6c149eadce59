#!/usr/bin/env python3
"""Generate apiserver/src/openapi/{definitions,parameters,streams}.json: OpenAPI tables.

The API server builds its /openapi/v2 and /openapi/v3 documents from the
resource catalogue (paths, operations) plus this table (schemas). The table is
the `definitions` section of the upstream v1.36 OpenAPI v2 document, verbatim:
names, descriptions, types, formats, `required`, `$ref`s and every
x-kubernetes-* extension (group-version-kind, patch strategy and merge key,
list type and map keys, map type, unions), one definition per line so that
diffs after a regeneration stay readable. The product never reads the
reference at run time; the table is compiled in with include_str!.
parameters.json holds the query and path parameters of each action (list,
create, ...), copied from one upstream resource, since they are the same for all.
streams.json holds the path items of the streaming subresources (pods' log,
exec, attach, portforward, proxy; nodes' and services' proxy), whose
parameters are their own.

Usage (from the repo root):  python3 hack/gen/openapidefs.py [--check]
stdlib only.
"""

import json
import os
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
REFERENCE = os.path.join(ROOT, "..", "shared", "reference", "kubernetes-openapi-v2.json")
OUTPUT = os.path.join(ROOT, "apiserver", "src", "openapi", "definitions.json")
PARAMS_OUTPUT = os.path.join(ROOT, "apiserver", "src", "openapi", "parameters.json")
STREAMS_OUTPUT = os.path.join(ROOT, "apiserver", "src", "openapi", "streams.json")
# Subresources that stream (connect actions and logs): each takes its own
# parameters, so their upstream path items are copied whole.
STREAMS = ("/log", "/exec", "/attach", "/portforward", "/proxy", "/proxy/{path}")

# The upstream operations every resource's operations are modelled on: their
# non-body query parameters (names, types, descriptions) are the same for
# every resource, so one resource's are copied per action.
MODEL = "/apis/apps/v1/namespaces/{namespace}/deployments"
MODEL_ALL = "/apis/apps/v1/deployments"


def render(defs):
    lines = ["{"]
    names = sorted(defs)
    for i, n in enumerate(names):
        body = json.dumps(defs[n], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        comma = "," if i + 1 < len(names) else ""
        lines.append(f"{json.dumps(n)}:{body}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def parameters(doc):
    """Query and path parameters per action, with $refs resolved."""
    shared = doc["parameters"]
    paths = doc["paths"]

    def resolve(ps):
        out = []
        for p in ps:
            if "$ref" in p:
                p = shared[p["$ref"].rsplit("/", 1)[-1]]
            if p["in"] != "body":
                out.append(p)
        return out

    coll, item = paths[MODEL], paths[MODEL + "/{name}"]
    table = {
        "list": resolve(coll["get"]["parameters"]),
        "deletecollection": resolve(coll["delete"]["parameters"]),
        "post": resolve(coll["post"]["parameters"]),
        "get": resolve(item["get"].get("parameters", [])),
        "put": resolve(item["put"]["parameters"]),
        "patch": resolve(item["patch"]["parameters"]),
        "delete": resolve(item["delete"]["parameters"]),
        "path_collection": resolve(coll["parameters"]),
        "path_item": resolve(item["parameters"]),
        "path_all_namespaces": resolve(paths[MODEL_ALL]["parameters"]),
    }
    return json.dumps(table, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def streams(doc):
    """The streaming subresources' path items, with $refs resolved."""
    shared = doc["parameters"]

    def resolve(ps):
        return [shared[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p for p in ps]

    out = {}
    for path, item in doc["paths"].items():
        if not path.endswith(STREAMS):
            continue
        item = json.loads(json.dumps(item))
        for key, v in item.items():
            if key == "parameters":
                item[key] = resolve(v)
            elif "parameters" in v:
                v["parameters"] = resolve(v["parameters"])
        out[path] = item
    return json.dumps(out, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def main():
    with open(REFERENCE, encoding="utf-8") as f:
        doc = json.load(f)
    outputs = [
        (OUTPUT, render(doc["definitions"])),
        (PARAMS_OUTPUT, parameters(doc)),
        (STREAMS_OUTPUT, streams(doc)),
    ]
    if "--check" in sys.argv[1:]:
        for path, text in outputs:
            with open(path, encoding="utf-8") as f:
                if f.read() != text:
                    sys.exit(f"{path} is stale: run python3 hack/gen/openapidefs.py")
        return
    for path, text in outputs:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
