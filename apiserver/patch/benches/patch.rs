//! Server-side work of a patch on a Deployment with 50 containers: a
//! server-side apply that changes one image (merge, conflict check, field
//! sets, managedFields), and a strategic merge patch of the same change
//! plus the managedFields bookkeeping every non-apply write now does.
//!
//! Run: `hack/bench/patch.sh` (or `cargo bench -p rkube-patch --bench patch`).
//! `BENCH_ITERS` sets the iterations (default 2000).

use std::time::Instant;

use rkube_patch::apply::{Kind, Writer, apply, update};
use rkube_patch::{BuiltinSchema, root_type, strategic_merge_patch_for};
use serde_json::{Value, json};

const CONTAINERS: usize = 50;

fn deployment(image_of_first: &str) -> Value {
    let containers: Vec<Value> = (0..CONTAINERS)
        .map(|i| {
            json!({
                "name": format!("c{i}"),
                "image": if i == 0 { image_of_first.to_owned() } else { format!("registry.example/app{i}:1.0") },
                "ports": [{"containerPort": 8000 + i, "protocol": "TCP"}],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            })
        })
        .collect();
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "big", "namespace": "default", "labels": {"app": "big"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "big"}},
            "template": {
                "metadata": {"labels": {"app": "big"}},
                "spec": {
                    "containers": containers,
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "tolerations": [{"key": "k", "operator": "Exists"}],
                },
            },
        },
    })
}

fn time<F: FnMut()>(iters: u32, mut f: F) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() * 1000.0 / f64::from(iters)
}

fn main() {
    let iters: u32 = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let kind = Kind {
        schema: &BuiltinSchema,
        root: root_type("apps", "v1", "Deployment"),
        has_status: true,
    };
    let w = Writer {
        manager: "helm",
        api_version: "apps/v1",
        subresource: "",
        now: "2026-01-01T00:00:00Z",
    };
    let live = apply(&kind, None, &deployment("nginx:1.25"), &w, false).expect("first apply");
    let config = deployment("nginx:1.26");
    let size = serde_json::to_vec(&live).map(|v| v.len()).unwrap_or(0);
    let apply_ms = time(iters, || {
        let out = apply(&kind, Some(&live), &config, &w, false).expect("apply");
        std::hint::black_box(out);
    });
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c0", "image": "nginx:1.26"}]}}}});
    let smp_ms = time(iters, || {
        let out =
            strategic_merge_patch_for(&live, &patch, "apps", "v1", "Deployment").expect("patch");
        std::hint::black_box(out);
    });
    let u = Writer {
        manager: "kubectl-patch",
        ..w
    };
    let smp_tracked_ms = time(iters, || {
        let mut out =
            strategic_merge_patch_for(&live, &patch, "apps", "v1", "Deployment").expect("patch");
        update(&kind, Some(&live), &mut out, &u).expect("update");
        std::hint::black_box(out);
    });
    println!(
        "Deployment with {CONTAINERS} containers ({size} bytes as JSON with managedFields), {iters} iterations"
    );
    println!("  server-side apply (one image changed):              {apply_ms:.3} ms");
    println!("  strategic merge patch alone:                        {smp_ms:.3} ms");
    println!("  strategic merge patch + managedFields bookkeeping:  {smp_tracked_ms:.3} ms");
}
