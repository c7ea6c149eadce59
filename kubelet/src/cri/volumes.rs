//! Pod volumes on the node, where upstream keeps them
//! (`<root-dir>/pods/<uid>/volumes/<plugin>/<name>`): emptyDir (a tmpfs
//! for `medium: Memory`), hostPath, and the API-backed configMap, secret,
//! downwardAPI and projected volumes, written with upstream's atomic
//! writer when the pod starts and rewritten when their sources change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, Volume, VolumeMount,
};
use kube::api::Api;

use super::atomic::{self, Payload};

/// Upstream's default mode of files in API-backed volumes.
const DEFAULT_MODE: i32 = 0o644;

/// A volume made ready on the host.
pub struct Prepared {
    pub name: String,
    pub host_path: PathBuf,
    /// Files of API objects: containers see them read-only.
    pub read_only: bool,
}

pub fn pod_dir(root: &Path, pod: &Pod) -> PathBuf {
    root.join("pods")
        .join(pod.metadata.uid.as_deref().unwrap_or("unknown"))
}

fn plugin_dir(root: &Path, pod: &Pod, plugin: &str, name: &str) -> PathBuf {
    pod_dir(root, pod).join("volumes").join(plugin).join(name)
}

/// Adds `data` by `items` (or every key) to the payload.
fn add_keys(
    payload: &mut Payload,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: i32,
    what: &str,
    optional: bool,
) -> anyhow::Result<()> {
    match items {
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(v) => {
                        let mode = item.mode.unwrap_or(default_mode);
                        payload.insert(item.path.clone(), (v.clone(), mode));
                    }
                    None if optional => {}
                    None => anyhow::bail!("couldn't find key {} in {what}", item.key),
                }
            }
        }
        None => {
            for (k, v) in data {
                payload.insert(k.clone(), (v.clone(), default_mode));
            }
        }
    }
    Ok(())
}

async fn config_map_data(
    client: &kube::Client,
    ns: &str,
    name: &str,
    optional: bool,
) -> anyhow::Result<Option<BTreeMap<String, Vec<u8>>>> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    match api.get_opt(name).await? {
        Some(cm) => {
            let mut out: BTreeMap<String, Vec<u8>> = cm
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
            out.extend(
                cm.binary_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0)),
            );
            Ok(Some(out))
        }
        None if optional => Ok(None),
        None => anyhow::bail!("configmap \"{name}\" not found"),
    }
}

async fn secret_data(
    client: &kube::Client,
    ns: &str,
    name: &str,
    optional: bool,
) -> anyhow::Result<Option<BTreeMap<String, Vec<u8>>>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    match api.get_opt(name).await? {
        Some(s) => {
            let mut out: BTreeMap<String, Vec<u8>> = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            out.extend(
                s.string_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes())),
            );
            Ok(Some(out))
        }
        None if optional => Ok(None),
        None => anyhow::bail!("secret \"{name}\" not found"),
    }
}

/// Upstream's downward API map format: `key="value"` lines, sorted, with
/// the value quoted as Go's %q.
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn downward_file(
    client: &kube::Client,
    pod: &Pod,
    f: &DownwardAPIVolumeFile,
) -> anyhow::Result<String> {
    if let Some(field) = &f.field_ref {
        return Ok(match field.field_path.as_str() {
            "metadata.labels" => format_map(pod.metadata.labels.as_ref()),
            "metadata.annotations" => format_map(pod.metadata.annotations.as_ref()),
            path => super::env::field(pod, path, "", "")?,
        });
    }
    if let Some(r) = &f.resource_field_ref {
        let c = super::env::ref_container(pod, r.container_name.as_deref()).ok_or_else(|| {
            anyhow::anyhow!(
                "downwardAPI item {}: no container {:?}",
                f.path,
                r.container_name.as_deref().unwrap_or_default()
            )
        })?;
        let divisor = r.divisor.as_ref().map(|d| d.0.as_str());
        return super::env::resource_field(client, pod, c, &r.resource, divisor).await;
    }
    anyhow::bail!(
        "downwardAPI item {}: no fieldRef or resourceFieldRef",
        f.path
    )
}

async fn add_downward(
    client: &kube::Client,
    payload: &mut Payload,
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
) -> anyhow::Result<()> {
    for f in items {
        let text = downward_file(client, pod, f).await?;
        let mode = f.mode.unwrap_or(default_mode);
        payload.insert(f.path.clone(), (text.into_bytes(), mode));
    }
    Ok(())
}

/// The plugin directory and current files of an API-backed volume
/// (configMap, secret, downwardAPI, projected); None for other kinds.
/// The pod's `fsGroup`, which owns its volumes' files.
pub fn fs_group(pod: &Pod) -> Option<u32> {
    let g = pod.spec.as_ref()?.security_context.as_ref()?.fs_group?;
    u32::try_from(g).ok()
}

/// What an API-backed volume holds; with an fsGroup its files are also
/// readable by the group, as upstream's ownership change makes them.
async fn api_payload(
    client: &kube::Client,
    pod: &Pod,
    v: &Volume,
) -> anyhow::Result<Option<(&'static str, Payload)>> {
    let mut found = api_files(client, pod, v).await?;
    if fs_group(pod).is_some()
        && let Some((_, payload)) = &mut found
    {
        for (_, mode) in payload.values_mut() {
            *mode |= 0o440;
        }
    }
    Ok(found)
}

async fn api_files(
    client: &kube::Client,
    pod: &Pod,
    v: &Volume,
) -> anyhow::Result<Option<(&'static str, Payload)>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut payload = Payload::new();
    if let Some(cm) = &v.config_map {
        let optional = cm.optional.unwrap_or(false);
        if let Some(data) = config_map_data(client, ns, &cm.name, optional).await? {
            let what = format!("configmap {}", cm.name);
            let mode = cm.default_mode.unwrap_or(DEFAULT_MODE);
            add_keys(
                &mut payload,
                &data,
                cm.items.as_ref(),
                mode,
                &what,
                optional,
            )?;
        }
        return Ok(Some(("kubernetes.io~configmap", payload)));
    }
    if let Some(s) = &v.secret {
        let optional = s.optional.unwrap_or(false);
        let name = s.secret_name.clone().unwrap_or_default();
        if let Some(data) = secret_data(client, ns, &name, optional).await? {
            let what = format!("secret {name}");
            let mode = s.default_mode.unwrap_or(DEFAULT_MODE);
            add_keys(&mut payload, &data, s.items.as_ref(), mode, &what, optional)?;
        }
        return Ok(Some(("kubernetes.io~secret", payload)));
    }
    if let Some(d) = &v.downward_api {
        let items = d.items.clone().unwrap_or_default();
        let mode = d.default_mode.unwrap_or(DEFAULT_MODE);
        add_downward(client, &mut payload, pod, &items, mode).await?;
        return Ok(Some(("kubernetes.io~downward-api", payload)));
    }
    if let Some(p) = &v.projected {
        let mode = p.default_mode.unwrap_or(DEFAULT_MODE);
        for source in p.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                let optional = cm.optional.unwrap_or(false);
                if let Some(data) = config_map_data(client, ns, &cm.name, optional).await? {
                    let what = format!("configmap {}", cm.name);
                    add_keys(
                        &mut payload,
                        &data,
                        cm.items.as_ref(),
                        mode,
                        &what,
                        optional,
                    )?;
                }
            } else if let Some(s) = &source.secret {
                let optional = s.optional.unwrap_or(false);
                if let Some(data) = secret_data(client, ns, &s.name, optional).await? {
                    let what = format!("secret {}", s.name);
                    add_keys(&mut payload, &data, s.items.as_ref(), mode, &what, optional)?;
                }
            } else if let Some(d) = &source.downward_api {
                let items = d.items.clone().unwrap_or_default();
                add_downward(client, &mut payload, pod, &items, mode).await?;
            } else if let Some(t) = &source.service_account_token {
                let token = super::tokens::token(client, pod, t).await?;
                payload.insert(t.path.clone(), (token.into_bytes(), mode));
            } else {
                anyhow::bail!("projected volume {}: unsupported source", v.name);
            }
        }
        return Ok(Some(("kubernetes.io~projected", payload)));
    }
    Ok(None)
}

/// Rewrites the pod's API-backed volumes whose sources changed (upstream's
/// periodic volume sync): updated keys, removed keys gone, new labels in
/// downward API files. A source that can't be read keeps the old files.
pub async fn refresh(root: &Path, client: &kube::Client, pod: &Pod) {
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        match api_payload(client, pod, v).await {
            Ok(Some((plugin, payload))) => {
                let dir = plugin_dir(root, pod, plugin, &v.name);
                if let Err(e) = atomic::write(&dir, &payload, fs_group(pod)) {
                    tracing::warn!(volume = %v.name, "updating the volume: {e:#}");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(volume = %v.name, "volume source: {e:#}"),
        }
    }
}

async fn prepare_one(
    root: &Path,
    client: &kube::Client,
    pod: &Pod,
    v: &Volume,
) -> anyhow::Result<Prepared> {
    let prepared = |host_path: PathBuf, read_only: bool| Prepared {
        name: v.name.clone(),
        host_path,
        read_only,
    };
    let gid = fs_group(pod);
    if let Some(empty) = &v.empty_dir {
        let dir = plugin_dir(root, pod, "kubernetes.io~empty-dir", &v.name);
        std::fs::create_dir_all(&dir)?;
        if empty.medium.as_deref() == Some("Memory") {
            mount_tmpfs(&dir)?;
        }
        // With an fsGroup, upstream's volume ownership: the group's, and
        // setgid so what containers create stays the group's.
        let mode = if gid.is_some() { 0o2777 } else { 0o777 };
        if gid.is_some() {
            std::os::unix::fs::chown(&dir, None, gid)?;
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))?;
        return Ok(prepared(dir, false));
    }
    if let Some(host) = &v.host_path {
        let path = PathBuf::from(&host.path);
        match host.type_.as_deref().unwrap_or("") {
            "DirectoryOrCreate" => {
                std::fs::create_dir_all(&path)?;
            }
            "FileOrCreate" if !path.exists() => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, b"")?;
            }
            "Directory" => {
                anyhow::ensure!(path.is_dir(), "hostPath {} is not a directory", host.path)
            }
            "File" => anyhow::ensure!(path.is_file(), "hostPath {} is not a file", host.path),
            _ => {}
        }
        return Ok(prepared(path, false));
    }
    if let Some((plugin, payload)) = api_payload(client, pod, v).await? {
        let dir = plugin_dir(root, pod, plugin, &v.name);
        atomic::write(&dir, &payload, gid)?;
        return Ok(prepared(dir, true));
    }
    anyhow::bail!(
        "volume {}: only emptyDir, hostPath, configMap, secret, downwardAPI and projected volumes are supported by this kubelet yet",
        v.name
    )
}

/// Whether `dir` is a mount point already (a restarted kubelet finds its
/// pods' memory volumes mounted, their data in them).
fn is_mounted(dir: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let dir = dir.to_string_lossy();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(1).is_some_and(|m| m == dir))
}

fn mount_tmpfs(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if is_mounted(dir) {
        return Ok(());
    }
    let target = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let fstype = c"tmpfs";
    // SAFETY: valid C strings; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    anyhow::ensure!(
        rc == 0,
        "mounting a tmpfs on {}: {}",
        dir.display(),
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// Makes every volume of the pod ready on the host.
pub async fn prepare(
    root: &Path,
    client: &kube::Client,
    pod: &Pod,
) -> anyhow::Result<Vec<Prepared>> {
    let mut out = Vec::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        out.push(
            prepare_one(root, client, pod, v)
                .await
                .with_context(|| format!("volume {:?}", v.name))?,
        );
    }
    Ok(out)
}

/// `subPathExpr` expanded from the container's environment; as upstream,
/// a variable that is unset or empty is an error.
fn expand_sub_path(expr: &str, vars: &HashMap<String, String>) -> anyhow::Result<String> {
    let mut missing = BTreeSet::new();
    let expanded = super::env::expand_with(expr, |name| match vars.get(name) {
        Some(v) if !v.is_empty() => Some(v.clone()),
        _ => {
            missing.insert(name.to_owned());
            Some(String::new())
        }
    });
    anyhow::ensure!(
        missing.is_empty(),
        "missing value for {}",
        missing.into_iter().collect::<Vec<_>>().join(", ")
    );
    Ok(expanded)
}

/// The CRI mounts of a container's volumeMounts; `vars` is the
/// container's environment, for `subPathExpr`.
pub fn mounts(
    prepared: &[Prepared],
    volume_mounts: Option<&Vec<VolumeMount>>,
    vars: &HashMap<String, String>,
) -> anyhow::Result<Vec<k8s_cri::v1::Mount>> {
    let mut out = Vec::new();
    for m in volume_mounts.into_iter().flatten() {
        let Some(v) = prepared.iter().find(|p| p.name == m.name) else {
            anyhow::bail!("volumeMount {:?}: no volume of that name", m.name);
        };
        let mut host = v.host_path.clone();
        let sub = match m.sub_path_expr.as_deref().filter(|s| !s.is_empty()) {
            Some(expr) => Some(expand_sub_path(expr, vars)?),
            None => m.sub_path.clone(),
        };
        if let Some(sub) = sub.as_deref().filter(|s| !s.is_empty()) {
            // Upstream's words for both.
            anyhow::ensure!(
                !sub.starts_with('/'),
                "error SubPath `{sub}` must not be an absolute path"
            );
            anyhow::ensure!(
                !sub.split('/').any(|p| p == ".."),
                "unable to provision SubPath `{sub}`: must not contain '..'"
            );
            let root = host.clone();
            host = host.join(sub);
            if !host.exists() {
                std::fs::create_dir_all(&host)?;
                // As upstream, with the volume's own permissions, so a
                // non-root container can write where it could before.
                let perm = std::fs::metadata(&root)?.permissions();
                let mut dir = host.as_path();
                while dir != root {
                    std::fs::set_permissions(dir, perm.clone())?;
                    dir = dir.parent().unwrap_or(&root);
                }
            }
        }
        out.push(k8s_cri::v1::Mount {
            container_path: m.mount_path.clone(),
            host_path: host.display().to_string(),
            readonly: m.read_only.unwrap_or(false) || v.read_only,
            ..Default::default()
        });
    }
    Ok(out)
}

/// Removes the pod's volume directories (unmounting tmpfs ones).
pub fn cleanup(root: &Path, pod: &Pod) {
    use std::os::unix::ffi::OsStrExt;
    let dir = pod_dir(root, pod);
    let empty = dir.join("volumes").join("kubernetes.io~empty-dir");
    if let Ok(entries) = std::fs::read_dir(&empty) {
        for e in entries.flatten() {
            if let Ok(target) = std::ffi::CString::new(e.path().as_os_str().as_bytes()) {
                // SAFETY: a valid C string; EINVAL when not a mount point.
                unsafe {
                    libc::umount2(target.as_ptr(), libc::MNT_DETACH);
                }
            }
        }
    }
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("removing {}: {e}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downward_maps_are_quoted_and_sorted() {
        let m: BTreeMap<String, String> =
            [("b".into(), "two\n".into()), ("a".into(), "one".into())].into();
        assert_eq!(format_map(Some(&m)), "a=\"one\"\nb=\"two\\n\"");
    }

    #[test]
    fn keys_by_items_with_modes() {
        let data: BTreeMap<String, Vec<u8>> = [("k".into(), b"v".to_vec())].into();
        let items = vec![KeyToPath {
            key: "k".into(),
            path: "sub/file".into(),
            mode: Some(0o600),
        }];
        let mut p = Payload::new();
        add_keys(&mut p, &data, Some(&items), DEFAULT_MODE, "cm", false).expect("keys");
        assert_eq!(p["sub/file"], (b"v".to_vec(), 0o600));
        let missing = vec![KeyToPath {
            key: "nope".into(),
            path: "x".into(),
            mode: None,
        }];
        assert!(add_keys(&mut p, &data, Some(&missing), DEFAULT_MODE, "cm", false).is_err());
        assert!(add_keys(&mut p, &data, Some(&missing), DEFAULT_MODE, "cm", true).is_ok());
        let mut all = Payload::new();
        add_keys(&mut all, &data, None, 0o640, "cm", false).expect("keys");
        assert_eq!(all["k"], (b"v".to_vec(), 0o640));
    }
}
