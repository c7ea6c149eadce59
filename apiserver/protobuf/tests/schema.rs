//! The generated table against its sources: fresh, and covering every served kind.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<cargo registry>/src/*/<name>`, if fetched.
fn registry_crate(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let src = home.join("registry/src");
    std::fs::read_dir(src)
        .ok()?
        .flatten()
        .map(|d| d.path().join(name))
        .find(|p| p.is_dir())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn quoted_const(text: &str, name: &str) -> Option<String> {
    let i = text.find(&format!("const {name}: &'static str = \""))?;
    let rest = &text[i..];
    let start = rest.find('"')? + 1;
    let end = start + rest[start..].find('"')?;
    Some(rest[start..end].to_owned())
}

#[test]
fn generated_schema_is_fresh() {
    if registry_crate("k8s-pb-0.9.0").is_none()
        || Command::new("python3").arg("-V").output().is_err()
    {
        eprintln!("skipped: python3 or the k8s-pb sources are not available");
        return;
    }
    let out = Command::new("python3")
        .arg(repo_root().join("hack/gen/protobuf.py"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_served_kind_with_a_protobuf_message_is_in_the_table() {
    let (Some(openapi), Some(pb)) = (
        registry_crate("k8s-openapi-0.29.0"),
        registry_crate("k8s-pb-0.9.0"),
    ) else {
        eprintln!("skipped: k8s-openapi/k8s-pb sources are not available");
        return;
    };
    let root = openapi.join("src/v1_36");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let (mut checked, mut missing) = (0, Vec::new());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let Some(i) = text.find("impl crate::Resource for ") else {
            continue;
        };
        let ty: String = text[i + 25..]
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect();
        let api_version = quoted_const(&text, "API_VERSION").unwrap();
        let kind = quoted_const(&text, "KIND").unwrap();
        // The k8s-pb module with the same path, e.g. api/core/v1/mod.rs.
        let module = file.parent().unwrap().strip_prefix(&root).unwrap();
        let Ok(pb_src) = std::fs::read_to_string(pb.join("src").join(module).join("mod.rs")) else {
            continue;
        };
        let has = |name: &str| {
            pb_src.lines().any(|l| {
                l.strip_prefix("pub struct ")
                    .and_then(|r| r.split([' ', '{']).next())
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        };
        if !has(&ty) {
            continue;
        }
        checked += 1;
        if !rkube_protobuf::is_supported(&api_version, &kind) {
            missing.push(format!("{api_version} {kind}"));
        }
        if let Some(list_kind) = quoted_const(&text, "LIST_KIND")
            && has(&format!("{ty}List"))
        {
            checked += 1;
            if !rkube_protobuf::is_supported(&api_version, &list_kind) {
                missing.push(format!("{api_version} {list_kind}"));
            }
        }
    }
    assert!(checked > 150, "only {checked} kinds checked");
    assert!(missing.is_empty(), "kinds without a schema: {missing:?}");
}

#[test]
fn table_is_consistent() {
    let kinds: Vec<_> = rkube_protobuf::kinds().collect();
    assert!(
        kinds
            .windows(2)
            .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
    );
    for (av, kind, msg) in kinds {
        let m = rkube_protobuf::message_for(av, kind).unwrap();
        assert_eq!(m.name, msg);
        assert!(m.fields.windows(2).all(|w| w[0].tag < w[1].tag), "{msg}");
    }
    let pod = rkube_protobuf::message_for("v1", "Pod").unwrap();
    assert_eq!(pod.name, "api::core::v1::Pod");
    let names: Vec<_> = pod.fields.iter().map(|f| (f.tag, f.json)).collect();
    assert_eq!(names, [(1, "metadata"), (2, "spec"), (3, "status")]);
}
