//! The kubelet on a real containerd (needs root, containerd, runc, the CNI
//! plugins and busybox-static: hack/install-deps.sh). Each test runs
//! `rkube up --kubelet`, which starts its own containerd under the data
//! dir and imports the images hack/images builds. Outside CI a machine
//! without them skips these tests; with CI=true that is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

use crate::harness::Cluster;

/// Generous: these wait for things that happen within seconds.
const PATIENCE: Duration = Duration::from_secs(60);

/// What running pods for real needs, or why it is missing.
fn missing_prerequisite() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    for binary in ["containerd", "ctr", "runc", "cc"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(binary).is_file()));
        if !found {
            return Some(format!("{binary} is not installed"));
        }
    }
    if !Path::new("/usr/lib/cni/bridge").exists() {
        return Some("the CNI plugins are not installed".into());
    }
    None
}

/// Whether to run: false (skip) outside CI when the machine can't run
/// containers; in CI that is a failure.
pub(crate) fn can_run() -> bool {
    match missing_prerequisite() {
        None => true,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("kubelet CRI tests can't run in CI: {why} (hack/install-deps.sh)")
        }
        Some(why) => {
            eprintln!("skipping: {why} (hack/install-deps.sh installs what is missing)");
            false
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A cluster with one real node; on drop it also ends what its containerd
/// left running (shims and containers of pods a failed test left) and
/// its mounts and bridge.
pub(crate) struct CriCluster {
    pub(crate) cluster: Cluster,
    _images: tempfile::TempDir,
    pub(crate) node: String,
}

impl CriCluster {
    pub(crate) async fn up(pod_cidr: &str) -> CriCluster {
        Self::up_with(pod_cidr, &[], &[]).await
    }

    /// With images hack/images builds besides pause and busybox, and more
    /// `rkube up` flags.
    pub(crate) async fn up_with(pod_cidr: &str, extra: &[&str], args: &[&str]) -> CriCluster {
        Self::start(pod_cidr, extra, args, false).await
    }

    /// Everything `rkube up` runs, the controller manager too.
    pub(crate) async fn up_full(pod_cidr: &str) -> CriCluster {
        Self::start(pod_cidr, &[], &[], true).await
    }

    async fn start(pod_cidr: &str, extra: &[&str], args: &[&str], controllers: bool) -> CriCluster {
        let images = tempfile::tempdir().expect("tempdir");
        let built = Command::new("python3")
            .arg(repo().join("hack/images/build.py"))
            .arg(images.path())
            .args(["pause", "busybox"])
            .args(extra)
            .output()
            .expect("python3 runs");
        assert!(
            built.status.success(),
            "hack/images/build.py: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let dir = images.path().to_str().expect("utf-8 path").to_owned();
        let mut all = vec![
            "--kubelet",
            "--image-archive-dir",
            &dir,
            "--pod-cidr",
            pod_cidr,
        ];
        all.extend(args);
        let cluster = if controllers {
            Cluster::up_full(&all).await
        } else {
            Cluster::up_with_scheduler_and_args(&all).await
        };
        let nodes: Api<Node> = Api::all(cluster.client().await);
        let node = wait_until("the node to be Ready", || async {
            let list = nodes.list(&Default::default()).await.ok()?;
            let n = list.items.into_iter().next()?;
            let ready = n
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then(|| n.metadata.name.unwrap_or_default())
        })
        .await;
        CriCluster {
            cluster,
            _images: images,
            node,
        }
    }

    /// The node's allocatable `what` (cpu, memory...), as a quantity.
    pub(crate) fn allocatable(&self, what: &str) -> String {
        self.cluster.kubectl_ok(&[
            "get",
            "node",
            &self.node,
            "-o",
            &format!("jsonpath={{.status.allocatable.{what}}}"),
        ])
    }

    pub(crate) async fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.cluster.client().await, "default")
    }
}

impl Drop for CriCluster {
    fn drop(&mut self) {
        // The kubelet removes what its pods left (sandboxes, network
        // namespaces) when they are deleted.
        let _ = self.cluster.kubectl(&[
            "delete",
            "pods",
            "--all",
            "--all-namespaces",
            "--wait=true",
            "--timeout=60s",
        ]);
        self.cluster.stop();
        let dir = self.cluster.dir.path().to_string_lossy().into_owned();
        cleanup_runtime(&dir);
    }
}

fn proc_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Ends the shims of the containerd under `dir` and everything below
/// them, then detaches the mounts under `dir` and deletes the bridge.
fn cleanup_runtime(dir: &str) {
    let pids = proc_pids();
    let mut doomed: Vec<i32> = pids
        .iter()
        .copied()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("containerd-shim") && c.contains(dir)
            })
        })
        .collect();
    let mut i = 0;
    while i < doomed.len() {
        let parent = doomed[i];
        for pid in &pids {
            if parent_of(*pid) == Some(parent) && !doomed.contains(pid) {
                doomed.push(*pid);
            }
        }
        i += 1;
    }
    // Network namespaces of the doomed (pause) processes, to delete with
    // them.
    use std::os::unix::fs::MetadataExt;
    let inodes: Vec<u64> = doomed
        .iter()
        .filter_map(|pid| std::fs::metadata(format!("/proc/{pid}/ns/net")).ok())
        .map(|m| m.ino())
        .collect();
    let netns: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| std::fs::metadata(e.path()).is_ok_and(|m| inodes.contains(&m.ino())))
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for pid in doomed.iter().rev() {
        // SAFETY: plain kill(2) of processes this test's runtime started.
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
    for name in netns {
        let _ = Command::new("ip").args(["netns", "delete", &name]).output();
    }
    if let Ok(mounts) = std::fs::read_to_string("/proc/mounts") {
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(dir))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = Command::new("umount").args(["-l", m]).output();
        }
    }
    let conflist = Path::new(dir).join("kubelet/containerd/cni/10-rkube.conflist");
    if let Ok(text) = std::fs::read_to_string(conflist)
        && let Ok(v) = serde_json::from_str::<Value>(&text)
        && let Some(name) = v["name"].as_str()
    {
        let _ = Command::new("ip").args(["link", "delete", name]).output();
    }
}

pub(crate) async fn wait_until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn json_of<T: k8s_openapi::serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("json")
}

async fn pod_json(pods: &Api<Pod>, name: &str) -> Option<Value> {
    pods.get_opt(name).await.ok().flatten().map(|p| json_of(&p))
}

pub(crate) async fn wait_phase(pods: &Api<Pod>, name: &str, phase: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let p = pod_json(pods, name).await;
        if let Some(p) = &p
            && p["status"]["phase"] == phase
        {
            return p.clone();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for pod {name} {phase}: {}",
            p.map(|p| p["status"].to_string()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn log_dir(pod: &Value) -> PathBuf {
    PathBuf::from(format!(
        "/var/log/pods/{}_{}_{}",
        pod["metadata"]["namespace"].as_str().unwrap_or(""),
        pod["metadata"]["name"].as_str().unwrap_or(""),
        pod["metadata"]["uid"].as_str().unwrap_or("")
    ))
}

fn read_log(pod: &Value, container: &str, restart: u32) -> String {
    let path = log_dir(pod).join(container).join(format!("{restart}.log"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The CRI log line's timestamp as comparable nanoseconds of the day's
/// text ("2026-01-02T03:04:05.123Z" → fraction padded to 9 digits).
fn log_time(line: &str) -> String {
    let ts = line.split(' ').next().unwrap_or("").trim_end_matches('Z');
    let (whole, frac) = ts.split_once('.').unwrap_or((ts, ""));
    format!("{whole}.{frac:0<9}")
}

/// The pod's last state before it was deleted, from a watch.
async fn delete_and_watch(pods: &Api<Pod>, name: &str, grace: Option<u32>) -> (Value, bool) {
    let current = pods.get(name).await.expect("pod");
    let rv = current
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(120);
    let mut events = pods.watch(&params, &rv).await.expect("watch").boxed();
    let delete = DeleteParams {
        grace_period_seconds: grace,
        ..Default::default()
    };
    pods.delete(name, &delete).await.expect("delete");
    // Graceful: the object is still there, terminating.
    let terminating = pods
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .is_some_and(|p| p.metadata.deletion_timestamp.is_some());
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let next = tokio::time::timeout(Duration::from_secs(5), events.try_next()).await;
        match next {
            Ok(Ok(Some(WatchEvent::Deleted(p)))) => return (json_of(&p), terminating),
            Ok(Ok(Some(_))) | Err(_) => {}
            Ok(Ok(None)) | Ok(Err(_)) => panic!("the watch on {name} ended"),
        }
    }
    panic!("pod {name} was not deleted in time");
}

pub(crate) fn pod(name: &str, spec: Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .expect("pod")
}

pub(crate) fn busybox(name: &str, script: &str) -> Value {
    json!({
        "name": name,
        "image": "docker.io/library/busybox:1.36",
        "command": ["sh", "-c", script],
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn cri_kubectl_run_busybox_runs_and_logs() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.1.0/24").await;
    let nodes: Api<Node> = Api::all(c.cluster.client().await);
    let node = json_of(&nodes.get(&c.node).await.expect("node"));
    assert!(
        node["status"]["nodeInfo"]["containerRuntimeVersion"]
            .as_str()
            .unwrap_or("")
            .starts_with("containerd://"),
        "{}",
        node["status"]["nodeInfo"]
    );
    c.cluster.kubectl_ok(&[
        "run",
        "echo",
        "--image=busybox:1.36",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "echo hello from rkube; sleep 3",
    ]);
    let pods = c.pods().await;
    let running = wait_phase(&pods, "echo", "Running").await;
    let s = &running["status"];
    let ip = s["podIP"].as_str().unwrap_or("");
    assert!(ip.starts_with("10.245.1."), "podIP {ip}");
    assert_eq!(s["podIPs"][0]["ip"], ip);
    assert!(s["hostIP"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(s["startTime"].is_string());
    assert_eq!(s["qosClass"], "BestEffort");
    let cs = &s["containerStatuses"][0];
    assert_eq!(cs["name"], "echo");
    assert_eq!(cs["ready"], true);
    assert_eq!(cs["started"], true);
    assert_eq!(cs["restartCount"], 0);
    assert!(cs["state"]["running"]["startedAt"].is_string(), "{cs}");
    assert_eq!(cs["image"], "docker.io/library/busybox:1.36");
    assert!(cs["imageID"].as_str().is_some_and(|i| !i.is_empty()));
    assert!(
        cs["containerID"]
            .as_str()
            .is_some_and(|i| i.starts_with("containerd://"))
    );
    let done = wait_phase(&pods, "echo", "Succeeded").await;
    let t = &done["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["exitCode"], 0, "{t}");
    assert_eq!(t["reason"], "Completed");
    let ready = done["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "PodCompleted");
    let log = read_log(&done, "echo", 0);
    assert!(log.contains(" stdout F hello from rkube"), "{log}");
    c.cluster.kubectl_ok(&["delete", "pod", "echo"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cri_init_containers_run_in_order() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.2.0/24").await;
    let pods = c.pods().await;
    pods.create(
        &PostParams::default(),
        &pod(
            "ordered",
            json!({
                "restartPolicy": "Never",
                "initContainers": [busybox("first", "echo first"), busybox("second", "echo second")],
                "containers": [busybox("main", "echo main")],
            }),
        ),
    )
    .await
    .expect("create");
    let done = wait_phase(&pods, "ordered", "Succeeded").await;
    let init = done["status"]["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(init.len(), 2);
    for s in &init {
        assert_eq!(s["state"]["terminated"]["reason"], "Completed", "{s}");
    }
    let first = log_time(&read_log(&done, "first", 0));
    let second = log_time(&read_log(&done, "second", 0));
    let main = log_time(&read_log(&done, "main", 0));
    assert!(first < second && second < main, "{first} {second} {main}");

    // A failing init container with restartPolicy Never fails the pod;
    // nothing after it runs.
    pods.create(
        &PostParams::default(),
        &pod(
            "init-fails",
            json!({
                "restartPolicy": "Never",
                "initContainers": [busybox("bad", "exit 2"), busybox("never", "echo no")],
                "containers": [busybox("main", "echo no")],
            }),
        ),
    )
    .await
    .expect("create");
    let failed = wait_phase(&pods, "init-fails", "Failed").await;
    let s = &failed["status"];
    assert_eq!(
        s["initContainerStatuses"][0]["state"]["terminated"]["exitCode"],
        2
    );
    assert!(
        s["initContainerStatuses"][1]["state"]["waiting"].is_object(),
        "{s}"
    );
    assert_eq!(
        s["containerStatuses"][0]["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    let initialized = s["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Initialized"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(initialized["status"], "False");
    for name in ["ordered", "init-fails"] {
        pods.delete(name, &Default::default())
            .await
            .expect("delete");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cri_restart_policy_always_backs_off() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.3.0/24").await;
    let pods = c.pods().await;
    pods.create(
        &PostParams::default(),
        &pod(
            "crash",
            json!({"containers": [busybox("crash", "echo boom; exit 1")]}),
        ),
    )
    .await
    .expect("create");
    let saw_backoff = std::sync::atomic::AtomicBool::new(false);
    let p = wait_until("two restarts", || {
        let pods = pods.clone();
        let saw = &saw_backoff;
        async move {
            let p = pod_json(&pods, "crash").await?;
            let cs = &p["status"]["containerStatuses"][0];
            if cs["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
                saw.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            (cs["restartCount"].as_i64()? >= 2).then_some(p)
        }
    })
    .await;
    assert!(
        saw_backoff.load(std::sync::atomic::Ordering::Relaxed),
        "the container waited in CrashLoopBackOff"
    );
    let cs = &p["status"]["containerStatuses"][0];
    let last = &cs["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 1, "{cs}");
    assert_eq!(last["reason"], "Error");
    assert_ne!(last["containerID"], cs["containerID"], "{cs}");
    assert_eq!(p["status"]["phase"], "Running");
    for restart in 0..2 {
        assert!(read_log(&p, "crash", restart).contains("stdout F boom"));
    }
    pods.delete("crash", &Default::default())
        .await
        .expect("delete");
}

#[tokio::test(flavor = "multi_thread")]
async fn cri_deletion_respects_the_grace_period() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.4.0/24").await;
    let pods = c.pods().await;
    // One container exits on SIGTERM, one ignores it (sleep as PID 1) and
    // is killed when its grace period ends.
    pods.create(
        &PostParams::default(),
        &pod(
            "polite",
            json!({"containers": [busybox(
                "app",
                "trap 'echo got TERM; exit 0' TERM; echo up; while true; do sleep 0.1; done"
            )]}),
        ),
    )
    .await
    .expect("create");
    let mut stubborn = pod(
        "stubborn",
        json!({"terminationGracePeriodSeconds": 2, "containers": [{
            "name": "app", "image": "docker.io/library/busybox:1.36", "command": ["sleep", "3600"],
        }]}),
    );
    stubborn.metadata.name = Some("stubborn".into());
    pods.create(&PostParams::default(), &stubborn)
        .await
        .expect("create");
    for name in ["polite", "stubborn"] {
        wait_phase(&pods, name, "Running").await;
    }
    // The trap is set once the script printed.
    let running = pod_json(&pods, "polite").await.expect("pod");
    wait_until("the polite container to start", || async {
        let log = std::fs::read_to_string(log_dir(&running).join("app/0.log")).ok()?;
        log.contains("stdout F up").then_some(())
    })
    .await;

    let (last, terminating) = delete_and_watch(&pods, "polite", Some(30)).await;
    assert!(terminating, "the pod stays while its containers stop");
    let t = &last["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["exitCode"], 0, "exited on SIGTERM: {last}");
    assert_eq!(last["status"]["phase"], "Succeeded");

    let (last, terminating) = delete_and_watch(&pods, "stubborn", None).await;
    assert!(terminating, "the pod stays for its grace period");
    let t = &last["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["exitCode"], 137, "killed after the grace period: {last}");
    assert_eq!(last["status"]["phase"], "Failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn cri_volumes_and_env_are_what_upstream_gives() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.5.0/24").await;
    c.cluster.kubectl_ok_with_input(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {color: blue, size: large}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cret}
"#,
    );
    let pods = c.pods().await;
    let script = "echo env:$COLOR:$PASSWORD:$cfg_size:$POD_NAME:$GREETING; \
                  echo args:$1; \
                  echo cm:$(cat /etc/cm/color); \
                  echo secret:$(cat /etc/secret/password); \
                  echo labels:$(cat /etc/info/labels); \
                  echo name:$(cat /etc/info/name); \
                  echo projected:$(cat /etc/all/color)/$(cat /etc/all/pw); \
                  echo data > /scratch/f && echo scratch:$(cat /scratch/f)";
    let mut p = pod(
        "viewer",
        json!({
            "restartPolicy": "Never",
            "containers": [{
                "name": "app",
                "image": "docker.io/library/busybox:1.36",
                "command": ["sh", "-c", script, "sh"],
                "args": ["$(POD_NAME)-arg"],
                "env": [
                    {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "GREETING", "value": "hi-$(POD_NAME)"}
                ],
                "envFrom": [{"prefix": "cfg_", "configMapRef": {"name": "settings"}}],
                "volumeMounts": [
                    {"name": "cm", "mountPath": "/etc/cm"},
                    {"name": "secret", "mountPath": "/etc/secret"},
                    {"name": "info", "mountPath": "/etc/info"},
                    {"name": "all", "mountPath": "/etc/all"},
                    {"name": "scratch", "mountPath": "/scratch"}
                ]
            }],
            "volumes": [
                {"name": "cm", "configMap": {"name": "settings"}},
                {"name": "secret", "secret": {"secretName": "creds"}},
                {"name": "info", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}
                ]}},
                {"name": "all", "projected": {"sources": [
                    {"configMap": {"name": "settings", "items": [{"key": "color", "path": "color"}]}},
                    {"secret": {"name": "creds", "items": [{"key": "password", "path": "pw"}]}}
                ]}},
                {"name": "scratch", "emptyDir": {}}
            ]
        }),
    );
    p.metadata.labels = Some([("app".to_owned(), "viewer".to_owned())].into());
    pods.create(&PostParams::default(), &p)
        .await
        .expect("create");
    let done = wait_phase(&pods, "viewer", "Succeeded").await;
    let log = read_log(&done, "app", 0);
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once(" stdout F ").map(|(_, text)| text))
        .collect();
    assert_eq!(
        lines,
        [
            "env:blue:s3cret:large:viewer:hi-viewer",
            "args:viewer-arg",
            "cm:blue",
            "secret:s3cret",
            "labels:app=\"viewer\"",
            "name:viewer",
            "projected:blue/s3cret",
            "scratch:data",
        ],
        "{log}"
    );
    pods.delete("viewer", &Default::default())
        .await
        .expect("delete");
}

fn condition_status(pod: &Value, kind: &str) -> String {
    pod["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn cri_probes_restart_and_gate_readiness() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.6.0/24").await;
    let pods = c.pods().await;
    // Liveness: healthy for a while, then its exec probe fails and the
    // container is restarted.
    pods.create(
        &PostParams::default(),
        &pod(
            "liveness",
            json!({"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "app",
                "image": "docker.io/library/busybox:1.36",
                "command": ["sh", "-c", "touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 600"],
                "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]},
                                   "periodSeconds": 1, "failureThreshold": 2},
            }]}),
        ),
    )
    .await
    .expect("create");
    // Readiness: not ready, ready once the file exists, not ready again
    // when it goes (exec); and an httpd behind httpGet readiness and
    // tcpSocket liveness probes.
    pods.create(
        &PostParams::default(),
        &pod(
            "readiness",
            json!({"terminationGracePeriodSeconds": 1, "containers": [
                {
                    "name": "flips",
                    "image": "docker.io/library/busybox:1.36",
                    "command": ["sh", "-c", "sleep 3; touch /tmp/ready; sleep 4; rm /tmp/ready; sleep 600"],
                    "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]},
                                        "periodSeconds": 1, "failureThreshold": 1},
                },
                {
                    "name": "web",
                    "image": "docker.io/library/busybox:1.36",
                    "command": ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/index.html", "port": "http"}, "periodSeconds": 1},
                    "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                }
            ]}),
        ),
    )
    .await
    .expect("create");

    let mut seen = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Some(p) = pod_json(&pods, "readiness").await
            && p["status"]["phase"] == "Running"
        {
            let ready = condition_status(&p, "Ready");
            if seen.last() != Some(&ready) {
                seen.push(ready);
            }
            let web = p["status"]["containerStatuses"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["name"] == "web"))
                .cloned()
                .unwrap_or_default();
            if seen.len() >= 3 {
                assert_eq!(web["ready"], true, "httpGet readiness: {web}");
                assert_eq!(web["restartCount"], 0, "tcpSocket liveness: {web}");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        seen,
        ["False", "True", "False"],
        "the Ready condition over time"
    );

    let p = wait_until("the liveness probe to restart the container", || async {
        let p = pod_json(&pods, "liveness").await?;
        (p["status"]["containerStatuses"][0]["restartCount"].as_i64()? >= 1).then_some(p)
    })
    .await;
    let last = &p["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert!(last["exitCode"].as_i64().is_some_and(|c| c != 0), "{last}");
    for name in ["liveness", "readiness"] {
        pods.delete(name, &Default::default())
            .await
            .expect("delete");
    }
}

/// The request paths a busybox httpd started with `-vv` logged.
fn served_paths(pod: &Value, container: &str) -> String {
    let path = log_dir(pod).join(container).join("0.log");
    std::fs::read_to_string(path).unwrap_or_default()
}

// [sig-node] Container Lifecycle Hook: postStart/preStop, exec and
// httpGet (conformance "Pod Lifecycle, post start/prestop exec/http
// hook"): like upstream, the hooks call a handler pod, whose log shows
// them.
#[tokio::test(flavor = "multi_thread")]
async fn cri_lifecycle_hooks_reach_the_handler() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.7.0/24").await;
    let pods = c.pods().await;
    pods.create(
        &PostParams::default(),
        &pod(
            "handler",
            json!({"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "web",
                "image": "docker.io/library/busybox:1.36",
                "command": ["sh", "-c", "mkdir -p /www && for p in poststart-exec prestop-exec poststart-http prestop-http; do echo ok > /www/$p; done && exec httpd -f -vv -p 8080 -h /www"],
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
            }]}),
        ),
    )
    .await
    .expect("create");
    let handler = wait_until("the handler to be ready", || async {
        let p = pod_json(&pods, "handler").await?;
        (condition_status(&p, "Ready") == "True").then_some(p)
    })
    .await;
    let ip = handler["status"]["podIP"]
        .as_str()
        .expect("podIP")
        .to_owned();
    let wget = |path: &str| json!({"exec": {"command": ["wget", "-qO-", format!("http://{ip}:8080/{path}")]}});
    let http =
        |path: &str| json!({"httpGet": {"host": ip, "port": 8080, "path": format!("/{path}")}});
    for (name, post_start, pre_stop) in [
        ("hook-exec", wget("poststart-exec"), wget("prestop-exec")),
        ("hook-http", http("poststart-http"), http("prestop-http")),
    ] {
        pods.create(
            &PostParams::default(),
            &pod(
                name,
                json!({"terminationGracePeriodSeconds": 3, "containers": [{
                    "name": "app",
                    "image": "docker.io/library/busybox:1.36",
                    "command": ["sleep", "600"],
                    "lifecycle": {"postStart": post_start, "preStop": pre_stop},
                }]}),
            ),
        )
        .await
        .expect("create");
    }
    for (name, kind) in [("hook-exec", "exec"), ("hook-http", "http")] {
        wait_phase(&pods, name, "Running").await;
        wait_until(&format!("the {kind} postStart hook's request"), || async {
            served_paths(&handler, "web")
                .contains(&format!("/poststart-{kind}"))
                .then_some(())
        })
        .await;
        assert!(
            !served_paths(&handler, "web").contains(&format!("/prestop-{kind}")),
            "preStop ran before the pod was deleted"
        );
        let (_, terminating) = delete_and_watch(&pods, name, None).await;
        assert!(terminating, "graceful deletion");
        assert!(
            served_paths(&handler, "web").contains(&format!("/prestop-{kind}")),
            "the {kind} preStop hook's request: {}",
            served_paths(&handler, "web")
        );
    }
    pods.delete("handler", &Default::default())
        .await
        .expect("delete");
}

// [sig-node] Container Runtime blackbox test on terminated container:
// termination messages from the file (default and custom path, non-root)
// and from the log with FallbackToLogsOnError.
#[tokio::test(flavor = "multi_thread")]
async fn cri_termination_messages() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.8.0/24").await;
    let pods = c.pods().await;
    let cases = [
        // name, script, extra container fields, expected message
        (
            "msg-succeeded-logs",
            "echo -n DONE",
            json!({"terminationMessagePolicy": "FallbackToLogsOnError"}),
            None,
        ),
        (
            "msg-succeeded-file",
            "echo -n OK > /dev/termination-log",
            json!({"terminationMessagePolicy": "FallbackToLogsOnError"}),
            Some("OK"),
        ),
        (
            "msg-failed-logs",
            "echo -n DONE; exit 1",
            json!({"terminationMessagePolicy": "FallbackToLogsOnError"}),
            Some("DONE"),
        ),
        (
            "msg-failed-file-policy",
            "echo -n DONE; exit 1",
            json!({}),
            None,
        ),
        (
            "msg-custom-path",
            "echo -n DONE > /dev/termination-custom-log",
            json!({"terminationMessagePath": "/dev/termination-custom-log",
                   "securityContext": {"runAsUser": 1000}}),
            Some("DONE"),
        ),
    ];
    for (name, script, extra, _) in &cases {
        let mut container = busybox("app", script);
        if let (Some(c), Some(e)) = (container.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        pods.create(
            &PostParams::default(),
            &pod(
                name,
                json!({"restartPolicy": "Never", "containers": [container]}),
            ),
        )
        .await
        .expect("create");
    }
    for (name, _, _, want) in &cases {
        let phase = if name.contains("failed") {
            "Failed"
        } else {
            "Succeeded"
        };
        let p = wait_phase(&pods, name, phase).await;
        let t = &p["status"]["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(t["message"].as_str(), *want, "{name}: {t}");
        pods.delete(name, &Default::default())
            .await
            .expect("delete");
    }
}

// [sig-node] Probing container: gRPC liveness probes ("Pod liveness
// probe, using grpc call, success/failure"), with etcd's health service as
// upstream's tests use it.
#[tokio::test(flavor = "multi_thread")]
async fn cri_grpc_probes() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up_with("10.245.9.0/24", &["etcd"], &[]).await;
    let pods = c.pods().await;
    let etcd = |name: &str, probe_port: u16| {
        pod(
            name,
            json!({"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "etcd",
                "image": "registry.k8s.io/etcd:latest",
                "imagePullPolicy": "IfNotPresent",
                "command": ["/usr/local/bin/etcd", "--listen-client-urls", "http://0.0.0.0:2379",
                            "--advertise-client-urls", "http://127.0.0.1:2379"],
                "readinessProbe": {"grpc": {"port": 2379}, "periodSeconds": 1},
                "livenessProbe": {"grpc": {"port": probe_port}, "initialDelaySeconds": 3,
                                  "periodSeconds": 1, "failureThreshold": 1},
            }]}),
        )
    };
    for (name, port) in [("grpc-ok", 2379), ("grpc-bad", 2333)] {
        pods.create(&PostParams::default(), &etcd(name, port))
            .await
            .expect("create");
    }
    wait_until("the gRPC readiness probe to pass", || async {
        let p = pod_json(&pods, "grpc-ok").await?;
        (condition_status(&p, "Ready") == "True").then_some(())
    })
    .await;
    wait_until(
        "the failing gRPC liveness probe to restart etcd",
        || async {
            let p = pod_json(&pods, "grpc-bad").await?;
            (p["status"]["containerStatuses"][0]["restartCount"].as_i64()? >= 1).then_some(())
        },
    )
    .await;
    let ok = pod_json(&pods, "grpc-ok").await.expect("grpc-ok");
    assert_eq!(
        ok["status"]["containerStatuses"][0]["restartCount"], 0,
        "a passing gRPC liveness probe restarted etcd: {}",
        ok["status"]
    );
    for name in ["grpc-ok", "grpc-bad"] {
        pods.delete(name, &Default::default())
            .await
            .expect("delete");
    }
}

// Static pods: a manifest in --pod-manifest-path runs on the node with a
// mirror pod (config annotations, owned by the Node); removing the file
// removes the pod.
#[tokio::test(flavor = "multi_thread")]
async fn cri_static_pod_gets_a_mirror_pod() {
    if !can_run() {
        return;
    }
    let manifests = tempfile::tempdir().expect("tempdir");
    let manifest = manifests.path().join("web.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: static}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: web\n    image: docker.io/library/busybox:1.36\n    command: [sh, -c, 'echo static-started; exec sleep 600']\n",
    )
    .expect("write manifest");
    let dir = manifests.path().to_str().expect("utf-8").to_owned();
    let c = CriCluster::up_with("10.245.10.0/24", &[], &["--pod-manifest-path", &dir]).await;
    let pods = c.pods().await;
    let name = format!("web-{}", c.node);
    let mirror = wait_phase(&pods, &name, "Running").await;
    let annotations = &mirror["metadata"]["annotations"];
    assert_eq!(
        annotations["kubernetes.io/config.source"], "file",
        "{annotations}"
    );
    let hash = annotations["kubernetes.io/config.mirror"]
        .as_str()
        .expect("mirror annotation");
    assert_eq!(annotations["kubernetes.io/config.hash"], hash);
    let owner = &mirror["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Node", "{owner}");
    assert_eq!(owner["name"], c.node.as_str());
    assert_eq!(mirror["spec"]["nodeName"], c.node.as_str());
    wait_until("the static pod's output", || async {
        read_log(&mirror, "web", 0)
            .contains("static-started")
            .then_some(())
    })
    .await;

    std::fs::remove_file(&manifest).expect("remove manifest");
    wait_until("the mirror pod to go", || async {
        pods.get_opt(&name).await.ok()?.is_none().then_some(())
    })
    .await;
}

// [sig-storage] ConfigMap/Secret/Projected "updates should be reflected in
// volume", "optional updates", DownwardAPI "should update labels on
// modification": the kubelet rewrites API-backed volumes (atomically, as
// upstream's writer) when their sources change.
#[tokio::test(flavor = "multi_thread")]
async fn cri_volume_contents_follow_their_sources() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.11.0/24").await;
    c.cluster.kubectl_ok_with_input(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: live}
data: {a: one, b: gone-soon}
---
apiVersion: v1
kind: Secret
metadata: {name: live}
stringData: {s: first}
"#,
    );
    let pods = c.pods().await;
    let script = "while true; do \
                  echo \"cm=$(cat /cm/a):$(cat /cm/b 2>/dev/null || echo none) \
                  sec=$(cat /sec/s) proj=$(cat /all/a)/$(cat /all/s) \
                  opt=$(cat /opt/k 2>/dev/null || echo none) \
                  labels=$(cat /info/labels | tr '\\n' ,)\"; sleep 1; done";
    let mut p = pod(
        "live",
        json!({
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "app",
                "image": "docker.io/library/busybox:1.36",
                "command": ["sh", "-c", script],
                "volumeMounts": [
                    {"name": "cm", "mountPath": "/cm"},
                    {"name": "sec", "mountPath": "/sec"},
                    {"name": "all", "mountPath": "/all"},
                    {"name": "opt", "mountPath": "/opt"},
                    {"name": "info", "mountPath": "/info"},
                ],
            }],
            "volumes": [
                {"name": "cm", "configMap": {"name": "live"}},
                {"name": "sec", "secret": {"secretName": "live"}},
                {"name": "all", "projected": {"sources": [
                    {"configMap": {"name": "live", "items": [{"key": "a", "path": "a"}]}},
                    {"secret": {"name": "live"}},
                ]}},
                {"name": "opt", "configMap": {"name": "later", "optional": true}},
                {"name": "info", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                ]}},
            ],
        }),
    );
    p.metadata.labels = Some([("stage".to_owned(), "one".to_owned())].into());
    pods.create(&PostParams::default(), &p)
        .await
        .expect("create");
    let running = wait_phase(&pods, "live", "Running").await;
    let first = "cm=one:gone-soon sec=first proj=one/first opt=none labels=stage=\"one\"";
    let deadline = Instant::now() + PATIENCE;
    while !read_log(&running, "app", 0).contains(first) {
        let log = read_log(&running, "app", 0);
        let last = log.lines().last().unwrap_or("").to_owned();
        assert!(Instant::now() < deadline, "first contents: {last}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    c.cluster.kubectl_ok_with_input(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: live}
data: {a: two}
---
apiVersion: v1
kind: Secret
metadata: {name: live}
stringData: {s: second}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: later}
data: {k: created}
"#,
    );
    c.cluster
        .kubectl_ok(&["label", "pod", "live", "stage=two", "--overwrite"]);
    let second = "cm=two:none sec=second proj=two/second opt=created labels=stage=\"two\"";
    let deadline = Instant::now() + Duration::from_secs(90);
    while !read_log(&running, "app", 0).contains(second) {
        let log = read_log(&running, "app", 0);
        assert!(
            Instant::now() < deadline,
            "volumes not updated: {}",
            log.lines().last().unwrap_or("")
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    pods.delete("live", &Default::default())
        .await
        .expect("delete");
}

#[tokio::test(flavor = "multi_thread")]
async fn cri_service_account_token_volume() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.30.0/24").await;
    // No controller manager here: the account and the CA ConfigMap its
    // controllers would make are made by hand.
    c.cluster
        .kubectl_ok(&["create", "serviceaccount", "reader"]);
    c.cluster.kubectl_ok(&[
        "create",
        "configmap",
        "kube-root-ca.crt",
        "--from-literal=ca.crt=the-cluster-ca",
    ]);
    let dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    let script = format!("cat {dir}/namespace; echo; cat {dir}/ca.crt; echo; cat {dir}/token");
    let spec = json!({
        "serviceAccountName": "reader",
        "restartPolicy": "Never",
        "containers": [busybox("read", &script)],
    });
    let pods = c.pods().await;
    pods.create(&PostParams::default(), &pod("reader", spec))
        .await
        .expect("create pod");
    let done = wait_phase(&pods, "reader", "Succeeded").await;
    let log = read_log(&done, "read", 0);
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .collect();
    assert_eq!(lines.first(), Some(&"default"), "{log}");
    assert_eq!(lines.get(1), Some(&"the-cluster-ca"), "{log}");
    let token = lines.get(2).copied().unwrap_or_default().to_owned();
    assert!(token.starts_with("eyJ"), "{log}");
    // The kubelet asked for a token bound to this pod.
    let reviews: Api<k8s_openapi::api::authentication::v1::TokenReview> =
        Api::all(c.cluster.client().await);
    let review = reviews
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"spec": {"token": token}})).expect("review"),
        )
        .await
        .expect("token review");
    let status = serde_json::to_value(review.status).expect("json");
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(
        status["user"]["username"],
        "system:serviceaccount:default:reader"
    );
    assert_eq!(
        status["user"]["extra"]["authentication.kubernetes.io/pod-name"][0],
        "reader"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cri_restarted_kubelet_takes_over_running_pods() {
    if !can_run() {
        return;
    }
    let mut c = CriCluster::up("10.245.31.0/24").await;
    let spec = json!({
        "containers": [busybox("app", "echo started; sleep 3600")],
        "terminationGracePeriodSeconds": 1,
    });
    let pods = c.pods().await;
    pods.create(&PostParams::default(), &pod("keep", spec))
        .await
        .expect("create pod");
    let before = wait_phase(&pods, "keep", "Running").await;
    let id = before["status"]["containerStatuses"][0]["containerID"].clone();
    // The whole `rkube up` is killed and started again on the same data:
    // containerd comes back to the same shims and the kubelet adopts them.
    c.cluster.restart().await;
    let pods = c.pods().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = wait_phase(&pods, "keep", "Running").await;
    let cs = &after["status"]["containerStatuses"][0];
    assert_eq!(cs["containerID"], id, "{cs}");
    assert_eq!(cs["restartCount"], 0, "{cs}");
    assert!(cs["state"]["running"].is_object(), "{cs}");
    let log = read_log(&after, "app", 0);
    assert_eq!(log.matches("started").count(), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cri_service_environment_variables() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.32.0/24").await;
    c.cluster.kubectl_ok_with_input(
        &["apply", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fooservice"},
                "spec": {"ports": [{"name": "http", "port": 8765, "targetPort": 8080}]}})
        .to_string(),
    );
    let ip = c.cluster.kubectl_ok(&[
        "get",
        "service",
        "fooservice",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let pods = c.pods().await;
    for (name, links) in [("linked", true), ("unlinked", false)] {
        let spec = json!({
            "enableServiceLinks": links,
            "restartPolicy": "Never",
            "containers": [busybox("env", "env | sort; echo expanded=$(FOOSERVICE_SERVICE_PORT)")],
        });
        let mut spec = spec;
        // `$(VAR)` in args expands from service variables too.
        spec["containers"][0]["command"] = json!([
            "sh",
            "-c",
            "env | sort; echo expanded=$(FOOSERVICE_SERVICE_PORT)"
        ]);
        pods.create(&PostParams::default(), &pod(name, spec))
            .await
            .expect("create pod");
        let done = wait_phase(&pods, name, "Succeeded").await;
        let log = read_log(&done, "env", 0);
        assert!(log.contains(" KUBERNETES_SERVICE_HOST="), "{log}");
        assert!(log.contains(" KUBERNETES_PORT_443_TCP_PROTO=tcp"), "{log}");
        let expected = [
            format!("FOOSERVICE_SERVICE_HOST={ip}"),
            "FOOSERVICE_SERVICE_PORT=8765".to_owned(),
            "FOOSERVICE_SERVICE_PORT_HTTP=8765".to_owned(),
            format!("FOOSERVICE_PORT=tcp://{ip}:8765"),
            format!("FOOSERVICE_PORT_8765_TCP=tcp://{ip}:8765"),
            "FOOSERVICE_PORT_8765_TCP_PROTO=tcp".to_owned(),
            "FOOSERVICE_PORT_8765_TCP_PORT=8765".to_owned(),
            format!("FOOSERVICE_PORT_8765_TCP_ADDR={ip}"),
        ];
        for var in &expected {
            assert_eq!(
                log.contains(&format!(" {var}\n")),
                links,
                "{name} {var}: {log}"
            );
        }
        // Unexpanded, the shell sees a command substitution instead.
        assert_eq!(log.contains("expanded=8765"), links, "{name}: {log}");
    }
}

/// Waits for the pod's containers but `running` to have exited; the pod.
async fn wait_all_exited_but(pods: &Api<Pod>, name: &str, running: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let p = pod_json(pods, name).await.unwrap_or_default();
        let exited = p["status"]["containerStatuses"]
            .as_array()
            .is_some_and(|statuses| {
                statuses
                    .iter()
                    .filter(|s| s["name"] != running)
                    .all(|s| s["state"]["terminated"].is_object())
            });
        if exited {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: containers but {running} still running: {}",
            p["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for a container's CRI log (its first run) to pass `check`.
async fn wait_for_output(
    pods: &Api<Pod>,
    name: &str,
    container: &str,
    check: impl Fn(&str) -> bool,
) {
    wait_until(&format!("{name}/{container}'s output"), || async {
        let p = pod_json(pods, name).await?;
        let log = std::fs::read_to_string(log_dir(&p).join(container).join("0.log")).ok()?;
        check(&log).then_some(())
    })
    .await
}

/// What a container printed, line by line, from its CRI log.
fn stdout_lines(pod: &Value, container: &str) -> Vec<String> {
    read_log(pod, container, 0)
        .lines()
        .filter_map(|l| l.split_once(" stdout F ").map(|(_, text)| text.to_owned()))
        .collect()
}

/// Upstream's "KubeletManagedEtcHosts" and "hostAliases" conformance
/// tests: the kubelet writes /etc/hosts unless the container mounts its
/// own or the pod uses the host's network; and a pod's own DNS settings
/// (`dnsPolicy: None`).
#[tokio::test(flavor = "multi_thread")]
async fn cri_kubelet_managed_etc_hosts_and_host_aliases() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.43.0/24").await;
    let pods = c.pods().await;
    let cat = "cat /etc/hosts";
    let mut own = busybox("own", cat);
    own["volumeMounts"] = json!([{"name": "host-etc-hosts", "mountPath": "/etc/hosts"}]);
    let specs = [
        (
            "managed",
            json!({
                "restartPolicy": "Never",
                "hostAliases": [
                    {"ip": "123.45.67.89", "hostnames": ["foo", "bar"]},
                    {"ip": "10.9.8.7", "hostnames": ["baz"]}
                ],
                "containers": [busybox("plain", cat), own],
                "volumes": [{"name": "host-etc-hosts", "hostPath": {"path": "/etc/hosts", "type": "File"}}]
            }),
        ),
        (
            "named",
            json!({
                "restartPolicy": "Never", "hostname": "db", "subdomain": "backend",
                "containers": [busybox("plain", cat)]
            }),
        ),
        (
            "dns",
            json!({
                "restartPolicy": "Never", "dnsPolicy": "None",
                "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["resolv.conf.local"],
                              "options": [{"name": "ndots", "value": "2"}]},
                "containers": [busybox("plain", "cat /etc/resolv.conf")]
            }),
        ),
        (
            "hostnet",
            json!({
                "restartPolicy": "Never", "hostNetwork": true,
                "hostAliases": [{"ip": "10.1.1.1", "hostnames": ["alias"]}],
                "containers": [busybox("plain", cat)]
            }),
        ),
    ];
    for (name, spec) in &specs {
        pods.create(&PostParams::default(), &pod(name, spec.clone()))
            .await
            .expect("create");
    }
    let header = "# Kubernetes-managed hosts file.";
    let managed = wait_phase(&pods, "managed", "Succeeded").await;
    let ip = managed["status"]["podIP"].as_str().unwrap_or("").to_owned();
    let plain = stdout_lines(&managed, "plain");
    assert_eq!(plain.first().map(String::as_str), Some(header), "{plain:?}");
    for line in [
        "127.0.0.1\tlocalhost".to_owned(),
        format!("{ip}\tmanaged"),
        "# Entries added by HostAliases.".to_owned(),
        "123.45.67.89\tfoo\tbar".to_owned(),
        "10.9.8.7\tbaz".to_owned(),
    ] {
        assert!(plain.contains(&line), "{line:?} in {plain:?}");
    }
    // The container mounting /etc/hosts sees the node's file.
    let node_hosts: Vec<String> = std::fs::read_to_string("/etc/hosts")
        .expect("/etc/hosts")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(stdout_lines(&managed, "own"), node_hosts);
    let named = wait_phase(&pods, "named", "Succeeded").await;
    let ip = named["status"]["podIP"].as_str().unwrap_or("");
    let lines = stdout_lines(&named, "plain");
    assert!(
        lines.contains(&format!("{ip}\tdb.backend.default.svc.cluster.local\tdb")),
        "{lines:?}"
    );
    // dnsPolicy None: the pod's dnsConfig is its resolv.conf.
    let dns = wait_phase(&pods, "dns", "Succeeded").await;
    let lines = stdout_lines(&dns, "plain");
    for line in [
        "nameserver 1.1.1.1",
        "search resolv.conf.local",
        "options ndots:2",
    ] {
        assert!(lines.iter().any(|l| l == line), "{line:?} in {lines:?}");
    }
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("nameserver")).count(),
        1,
        "{lines:?}"
    );
    // Host network: the node's file, with the aliases after it.
    let hostnet = wait_phase(&pods, "hostnet", "Succeeded").await;
    let lines = stdout_lines(&hostnet, "plain");
    assert!(!lines.iter().any(|l| l == header), "{lines:?}");
    assert_eq!(lines[..node_hosts.len()], node_hosts[..], "{lines:?}");
    assert!(lines.contains(&"10.1.1.1\talias".to_owned()), "{lines:?}");
}

/// Security contexts reach the container as upstream's conformance tests
/// check them: user and group ids (container over pod), no_new_privs,
/// read-only root filesystems, unprivileged containers, and sysctls
/// (safe ones set in the pod, unsafe ones refused by the kubelet).
#[tokio::test(flavor = "multi_thread")]
async fn cri_security_contexts_and_sysctls() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.44.0/24").await;
    let pods = c.pods().await;
    let ids = "echo $(id -u):$(id -g)";
    let nnp = "grep NoNewPrivs /proc/self/status | tr -d '\\t '";
    let with_sc = |name: &str, script: &str, sc: Value| {
        let mut c = busybox(name, script);
        c["securityContext"] = sc;
        c
    };
    let spec = json!({
        "restartPolicy": "Never",
        "securityContext": {
            "runAsUser": 1001, "runAsGroup": 2002,
            "sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}]
        },
        "containers": [
            with_sc("nobody", ids, json!({"runAsUser": 65534})),
            with_sc("pod-ids", ids, json!({})),
            with_sc("own-ids", ids, json!({"runAsUser": 1003, "runAsGroup": 1004})),
            with_sc("no-escalation", nnp, json!({"allowPrivilegeEscalation": false})),
            with_sc("escalation", nnp, json!({"allowPrivilegeEscalation": true})),
            with_sc("read-only", "touch /file && echo wrote || echo refused",
                    json!({"readOnlyRootFilesystem": true, "runAsUser": 0})),
            with_sc("writable", "touch /file && echo wrote || echo refused",
                    json!({"readOnlyRootFilesystem": false, "runAsUser": 0})),
            with_sc("unprivileged", "ip link add dummy0 type dummy && echo added || echo refused",
                    json!({"privileged": false, "runAsUser": 0})),
            with_sc("sysctl", "cat /proc/sys/kernel/shm_rmid_forced", json!({}))
        ]
    });
    pods.create(&PostParams::default(), &pod("contexts", spec))
        .await
        .expect("create");
    let done = wait_phase(&pods, "contexts", "Succeeded").await;
    for (container, expected) in [
        ("nobody", "65534:2002"),
        ("pod-ids", "1001:2002"),
        ("own-ids", "1003:1004"),
        ("no-escalation", "NoNewPrivs:1"),
        ("escalation", "NoNewPrivs:0"),
        ("read-only", "refused"),
        ("writable", "wrote"),
        ("unprivileged", "refused"),
        ("sysctl", "1"),
    ] {
        assert_eq!(stdout_lines(&done, container), [expected], "{container}");
    }
    // An unsafe sysctl: the kubelet refuses the pod.
    let spec = json!({
        "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "10000000"}]},
        "containers": [busybox("c", "true")]
    });
    pods.create(&PostParams::default(), &pod("unsafe", spec))
        .await
        .expect("create");
    let failed = wait_phase(&pods, "unsafe", "Failed").await;
    assert_eq!(failed["status"]["reason"], "SysctlForbidden", "{failed}");
    assert_eq!(
        failed["status"]["message"],
        "Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted"
    );
}

/// The downward API's env and volume values (ids, IPs, resources with
/// node allocatable as the default limit) and the file modes and owners
/// of API-backed volumes read by a non-root user with an fsGroup.
#[tokio::test(flavor = "multi_thread")]
async fn cri_downward_api_and_volume_modes() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.45.0/24").await;
    c.cluster.kubectl_ok_with_input(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {color: blue, size: large}
binaryData: {blob: 3q2+7w==}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cret}
"#,
    );
    let alloc = |what: &str| c.allocatable(what);
    let (node_cpu, node_memory) = (alloc("cpu"), alloc("memory"));
    let pods = c.pods().await;
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    let resource =
        |r: &str, divisor: &str| json!({"resourceFieldRef": {"resource": r, "divisor": divisor}});
    let script = "echo env:$UID_:$NS:$IP:$HOST_IP:$CPU_LIMIT:$MEM_REQUEST:$DEFAULT_CPU:$DEFAULT_MEM; \
                  for f in /cm/color /cm/blob /cm2/c /sec/password /proj/color /proj/pw /down/cpu /down/mem; do \
                  echo $f:$(stat -L -c '%a:%g' $f):$(od -An -tx1 $f | tr -d ' \\n' | head -c 16); done; \
                  echo id:$(id -u):$(id -G); \
                  echo sub:$(stat -c '%a:%g' /scratch); \
                  echo data > /sub/f && ls /scratch/viewer";
    let spec = json!({
        "restartPolicy": "Never",
        "securityContext": {"runAsUser": 1000, "fsGroup": 1001},
        "containers": [{
            "name": "app",
            "image": "docker.io/library/busybox:1.36",
            "command": ["sh", "-c", script],
            "resources": {"requests": {"cpu": "250m", "memory": "32Mi"}, "limits": {"cpu": "1250m", "memory": "64Mi"}},
            "env": [
                {"name": "UID_", "valueFrom": field("metadata.uid")},
                {"name": "NS", "valueFrom": field("metadata.namespace")},
                {"name": "IP", "valueFrom": field("status.podIP")},
                {"name": "HOST_IP", "valueFrom": field("status.hostIP")},
                {"name": "NAME", "valueFrom": field("metadata.name")},
                {"name": "CPU_LIMIT", "valueFrom": resource("limits.cpu", "1m")},
                {"name": "MEM_REQUEST", "valueFrom": resource("requests.memory", "1Mi")}
            ],
            "volumeMounts": [
                {"name": "cm", "mountPath": "/cm"},
                {"name": "cm2", "mountPath": "/cm2"},
                {"name": "sec", "mountPath": "/sec"},
                {"name": "proj", "mountPath": "/proj"},
                {"name": "down", "mountPath": "/down"},
                {"name": "scratch", "mountPath": "/scratch"},
                {"name": "scratch", "mountPath": "/sub", "subPathExpr": "$(NAME)"}
            ]
        }, {
            // Limits it doesn't set are the node's allocatable.
            "name": "bare",
            "image": "docker.io/library/busybox:1.36",
            "command": ["sh", "-c", "echo $DEFAULT_CPU:$DEFAULT_MEM"],
            "env": [
                {"name": "DEFAULT_CPU", "valueFrom": resource("limits.cpu", "1")},
                {"name": "DEFAULT_MEM", "valueFrom": resource("limits.memory", "1")}
            ]
        }],
        "volumes": [
            {"name": "cm", "configMap": {"name": "settings", "defaultMode": 0o400}},
            {"name": "cm2", "configMap": {"name": "settings", "items": [{"key": "color", "path": "c", "mode": 0o600}]}},
            {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0o440}},
            {"name": "proj", "projected": {"defaultMode": 0o444, "sources": [
                {"configMap": {"name": "settings", "items": [{"key": "color", "path": "color"}]}},
                {"secret": {"name": "creds", "items": [{"key": "password", "path": "pw", "mode": 0o400}]}}
            ]}},
            {"name": "down", "downwardAPI": {"items": [
                {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "requests.cpu", "divisor": "1m"}},
                {"path": "mem", "resourceFieldRef": {"containerName": "bare", "resource": "limits.memory", "divisor": "1Mi"}}
            ]}},
            {"name": "scratch", "emptyDir": {}}
        ]
    });
    let created = pods
        .create(&PostParams::default(), &pod("viewer", spec))
        .await
        .expect("create");
    let done = wait_phase(&pods, "viewer", "Succeeded").await;
    let uid = created.metadata.uid.unwrap_or_default();
    let ip = done["status"]["podIP"].as_str().unwrap_or("");
    let host_ip = done["status"]["hostIP"].as_str().unwrap_or("");
    let hex = |s: &str| {
        s.bytes()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    // Node allocatable memory in MiB, rounded up, as the volume has it.
    let bytes = rkube_scheduler::quantity::value(&node_memory).expect("memory quantity");
    let mib = (bytes + (1 << 20) - 1) >> 20;
    assert_eq!(
        stdout_lines(&done, "app"),
        [
            format!("env:{uid}:default:{ip}:{host_ip}:1250:32::"),
            format!("/cm/color:440:1001:{}", hex("blue")),
            "/cm/blob:440:1001:deadbeef".to_owned(),
            format!("/cm2/c:640:1001:{}", hex("blue")),
            format!("/sec/password:440:1001:{}", hex("s3cret")),
            format!("/proj/color:444:1001:{}", hex("blue")),
            format!("/proj/pw:440:1001:{}", hex("s3cret")),
            format!("/down/cpu:644:1001:{}", hex("250")),
            format!("/down/mem:644:1001:{}", hex(&mib.to_string())),
            "id:1000:0 1001".to_owned(),
            "sub:2777:1001".to_owned(),
            "f".to_owned(),
        ]
    );
    let cpu = rkube_scheduler::quantity::milli_value(&node_cpu).expect("cpu quantity");
    assert_eq!(
        stdout_lines(&done, "bare"),
        [format!("{}:{bytes}", (cpu + 999) / 1000)]
    );
}

/// `subPathExpr` that expands to an absolute path or one with `..`
/// leaves the container waiting with CreateContainerConfigError, as
/// upstream's Variable Expansion tests expect.
#[tokio::test(flavor = "multi_thread")]
async fn cri_failing_sub_path_expansions() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.46.0/24").await;
    let pods = c.pods().await;
    for (name, value, message) in [
        (
            "absolute",
            "/tmp",
            "error SubPath `/tmp` must not be an absolute path",
        ),
        (
            "backsteps",
            "..",
            "unable to provision SubPath `..`: must not contain '..'",
        ),
    ] {
        let mut ctr = busybox("c", "true");
        ctr["env"] = json!([{"name": "POD_NAME", "value": value}]);
        ctr["volumeMounts"] =
            json!([{"name": "work", "mountPath": "/logscontainer", "subPathExpr": "$(POD_NAME)"}]);
        let spec = json!({"containers": [ctr], "volumes": [{"name": "work", "emptyDir": {}}]});
        pods.create(&PostParams::default(), &pod(name, spec))
            .await
            .expect("create");
        let waiting = wait_until("CreateContainerConfigError", || async {
            let p = pod_json(&pods, name).await?;
            let w = &p["status"]["containerStatuses"][0]["state"]["waiting"];
            (w["reason"] == "CreateContainerConfigError").then(|| w.clone())
        })
        .await;
        assert!(
            waiting["message"].as_str().unwrap_or("").contains(message),
            "{waiting}"
        );
    }
}

/// Upstream's EmptyDir conformance tests: files of modes 0644, 0666 and
/// 0777 written by root and by a non-root user on the default medium and
/// on tmpfs, the volumes' own mode (0777) and mount type; and a volume
/// shared by two containers.
#[tokio::test(flavor = "multi_thread")]
async fn cri_empty_dir_modes_and_sharing() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.47.0/24").await;
    let pods = c.pods().await;
    let script = |who: &str| {
        format!(
            "for v in /default /mem; do echo $v:$(stat -c %A $v):$(awk -v v=$v '$2==v{{print $3}}' /proc/mounts); \
             for m in 0644 0666 0777; do f=$v/{who}-$m; echo mount-tester > $f && chmod $m $f && \
             echo $f:$(stat -c %A $f):$(cat $f); done; done"
        )
    };
    let mounts = json!([
        {"name": "default", "mountPath": "/default"},
        {"name": "mem", "mountPath": "/mem"}
    ]);
    let tester = |who: &str, uid: i64| {
        let mut c = busybox(who, &script(who));
        c["securityContext"] = json!({"runAsUser": uid});
        c["volumeMounts"] = mounts.clone();
        c
    };
    let mut writer = busybox("writer", "echo shared > /default/shared; sleep 600");
    writer["volumeMounts"] = mounts.clone();
    let mut reader = busybox(
        "reader",
        "until [ -f /default/shared ]; do sleep 0.2; done; cat /default/shared",
    );
    reader["volumeMounts"] = mounts.clone();
    let spec = json!({
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 1,
        "containers": [tester("root", 0), tester("nonroot", 1001)],
        "volumes": [
            {"name": "default", "emptyDir": {}},
            {"name": "mem", "emptyDir": {"medium": "Memory"}}
        ]
    });
    pods.create(&PostParams::default(), &pod("modes", spec.clone()))
        .await
        .expect("create");
    let mut shared = spec;
    shared["containers"] = json!([writer, reader]);
    pods.create(&PostParams::default(), &pod("shared", shared))
        .await
        .expect("create");
    let done = wait_phase(&pods, "modes", "Succeeded").await;
    let default_fs = {
        let lines = stdout_lines(&done, "root");
        lines[0].rsplit(':').next().unwrap_or("").to_owned()
    };
    assert_ne!(default_fs, "tmpfs", "the default medium is the node's disk");
    for who in ["root", "nonroot"] {
        let mut expected = Vec::new();
        for (v, fs) in [("/default", default_fs.as_str()), ("/mem", "tmpfs")] {
            expected.push(format!("{v}:drwxrwxrwx:{fs}"));
            for (m, text) in [
                ("0644", "-rw-r--r--"),
                ("0666", "-rw-rw-rw-"),
                ("0777", "-rwxrwxrwx"),
            ] {
                expected.push(format!("{v}/{who}-{m}:{text}:mount-tester"));
            }
        }
        assert_eq!(stdout_lines(&done, who), expected, "{who}");
    }
    let p = wait_until("the reader to see the writer's file", || async {
        let p = pod_json(&pods, "shared").await?;
        let reader = p["status"]["containerStatuses"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == "reader")?
            .clone();
        reader["state"]["terminated"].is_object().then_some(p)
    })
    .await;
    assert_eq!(stdout_lines(&p, "reader"), ["shared"]);
}

/// Probe outcomes upstream's "Probing container" tests check: an httpGet
/// liveness probe that starts failing restarts the container (the count
/// only climbs), passing httpGet and exec liveness probes never do, a
/// readiness probe that always fails never makes the pod Ready nor
/// restarts it, and one with an initial delay makes it Ready only after
/// the delay.
#[tokio::test(flavor = "multi_thread")]
async fn cri_probe_outcomes() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.48.0/24").await;
    let pods = c.pods().await;
    let httpd = "mkdir -p /www && echo ok > /www/healthz && httpd -p 8080 -h /www";
    let app = |name: &str, script: &str, probes: Value| {
        let mut c = busybox(name, script);
        if let (Some(c), Some(p)) = (c.as_object_mut(), probes.as_object()) {
            c.extend(p.clone());
        }
        c
    };
    let http = json!({"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1, "failureThreshold": 1});
    let spec = json!({
        "terminationGracePeriodSeconds": 1,
        "containers": [
            app("http-dies", &format!("{httpd}; sleep 3; rm /www/healthz; sleep 600"),
                json!({"livenessProbe": http})),
        ]
    });
    pods.create(&PostParams::default(), &pod("dies", spec))
        .await
        .expect("create");
    let mut delayed = http.clone();
    delayed["initialDelaySeconds"] = json!(5);
    let spec = json!({
        "terminationGracePeriodSeconds": 1,
        "containers": [
            app("http-healthy", &format!("{httpd}; sleep 600"),
                json!({"livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                         "initialDelaySeconds": 1, "periodSeconds": 1}})),
            app("exec-healthy", "echo ok > /tmp/health; sleep 600",
                json!({"livenessProbe": {"exec": {"command": ["cat", "/tmp/health"]},
                                         "initialDelaySeconds": 1, "periodSeconds": 1}})),
        ]
    });
    pods.create(&PostParams::default(), &pod("healthy", spec))
        .await
        .expect("create");
    let spec = json!({
        "terminationGracePeriodSeconds": 1,
        "containers": [app("never", "sleep 600",
            json!({"readinessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1}}))]
    });
    pods.create(&PostParams::default(), &pod("never-ready", spec))
        .await
        .expect("create");
    let spec = json!({
        "terminationGracePeriodSeconds": 1,
        "containers": [app("late", &format!("{httpd}; sleep 600"),
            json!({"readinessProbe": delayed}))]
    });
    pods.create(&PostParams::default(), &pod("delayed", spec))
        .await
        .expect("create");

    // Restarts of the failing liveness probe, watched until two.
    let mut counts = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while counts.last().is_none_or(|n| *n < 2) {
        assert!(Instant::now() < deadline, "restart counts {counts:?}");
        let n = pod_json(&pods, "dies")
            .await
            .and_then(|p| p["status"]["containerStatuses"][0]["restartCount"].as_i64());
        if let Some(n) = n
            && counts.last() != Some(&n)
        {
            counts.push(n);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");

    let healthy = pod_json(&pods, "healthy").await.expect("pod");
    for s in healthy["status"]["containerStatuses"]
        .as_array()
        .expect("statuses")
    {
        assert_eq!(s["restartCount"], 0, "{s}");
        assert_eq!(s["ready"], true, "{s}");
    }
    let never = pod_json(&pods, "never-ready").await.expect("pod");
    assert_eq!(never["status"]["phase"], "Running");
    assert_eq!(condition_status(&never, "Ready"), "False");
    let s = &never["status"]["containerStatuses"][0];
    assert_eq!(
        (s["ready"].clone(), s["restartCount"].clone()),
        (json!(false), json!(0)),
        "{s}"
    );
    assert!(s["state"]["running"].is_object(), "{s}");

    let delayed = wait_until("the delayed pod to be Ready", || async {
        let p = pod_json(&pods, "delayed").await?;
        (condition_status(&p, "Ready") == "True").then_some(p)
    })
    .await;
    let s = &delayed["status"]["containerStatuses"][0];
    assert_eq!(s["restartCount"], 0, "{s}");
    let started = s["state"]["running"]["startedAt"].as_str().unwrap_or("");
    let ready = delayed["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or("");
    let at = |t: &str| {
        serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>(json!(t))
            .map(|t| t.0.as_second())
    };
    let waited = at(ready).expect("ready time") - at(started).expect("start time");
    assert!(
        waited >= 5,
        "Ready {waited}s after the start, before the initial delay"
    );
}

/// Restart policies upstream's InitContainer and Container Runtime tests
/// check: a failing init container of a RestartAlways pod is restarted
/// and the app never starts; OnFailure restarts a failed container and
/// the pod succeeds once it exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn cri_failing_init_containers_and_on_failure() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.49.0/24").await;
    let pods = c.pods().await;
    let spec = json!({
        "terminationGracePeriodSeconds": 1,
        "initContainers": [busybox("init1", "exit 1"), busybox("init2", "true")],
        "containers": [busybox("run1", "sleep 600")]
    });
    pods.create(&PostParams::default(), &pod("init-fails", spec))
        .await
        .expect("create");
    let mut retry = busybox(
        "retry",
        "[ -f /work/once ] && exit 0; touch /work/once; exit 1",
    );
    retry["volumeMounts"] = json!([{"name": "work", "mountPath": "/work"}]);
    let spec = json!({
        "restartPolicy": "OnFailure",
        "containers": [retry],
        "volumes": [{"name": "work", "emptyDir": {}}]
    });
    pods.create(&PostParams::default(), &pod("on-failure", spec))
        .await
        .expect("create");
    let p = wait_until("the failing init container to be restarted", || async {
        let p = pod_json(&pods, "init-fails").await?;
        (p["status"]["initContainerStatuses"][0]["restartCount"].as_i64()? >= 1).then_some(p)
    })
    .await;
    let status = &p["status"];
    assert_eq!(status["phase"], "Pending", "{status}");
    assert_eq!(condition_status(&p, "Initialized"), "False", "{status}");
    let init1 = &status["initContainerStatuses"][0];
    assert_eq!(init1["lastState"]["terminated"]["exitCode"], 1, "{init1}");
    let init2 = &status["initContainerStatuses"][1];
    assert_eq!(
        init2["state"]["waiting"]["reason"], "PodInitializing",
        "{init2}"
    );
    let run1 = &status["containerStatuses"][0];
    assert_eq!(
        run1["state"]["waiting"]["reason"], "PodInitializing",
        "{run1}"
    );
    let done = wait_phase(&pods, "on-failure", "Succeeded").await;
    let s = &done["status"]["containerStatuses"][0];
    assert_eq!(s["restartCount"], 1, "{s}");
    assert_eq!(s["lastState"]["terminated"]["exitCode"], 1, "{s}");
    assert_eq!(s["state"]["terminated"]["exitCode"], 0, "{s}");
}

/// Upstream's "Containers" conformance tests: `command` replaces the
/// image's ENTRYPOINT (and drops its CMD), `args` replaces its CMD, and
/// an image runs as built when both are blank.
#[tokio::test(flavor = "multi_thread")]
async fn cri_command_and_args_override_the_image() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up_with("10.245.50.0/24", &["entrypoint-tester"], &[]).await;
    let pods = c.pods().await;
    let tester = |name: &str, command: Option<Value>, args: Option<Value>| {
        let mut c = json!({"name": name, "image": "rkube.local/entrypoint-tester:1.0"});
        if let Some(v) = command {
            c["command"] = v;
        }
        if let Some(v) = args {
            c["args"] = v;
        }
        c
    };
    let spec = json!({
        "restartPolicy": "Never",
        "containers": [
            tester("defaults", None, None),
            tester("args", None, Some(json!(["override", "arguments"]))),
            tester("command", Some(json!(["/bin/echo", "command"])), None),
            tester("both", Some(json!(["/bin/echo", "command"])), Some(json!(["and", "args"]))),
        ]
    });
    pods.create(&PostParams::default(), &pod("tester", spec))
        .await
        .expect("create");
    let done = wait_phase(&pods, "tester", "Succeeded").await;
    for (container, expected) in [
        ("defaults", "entrypoint default arguments"),
        ("args", "entrypoint override arguments"),
        ("command", "command"),
        ("both", "command and args"),
    ] {
        assert_eq!(stdout_lines(&done, container), [expected], "{container}");
    }
}

/// Upstream's "Ephemeral Containers" conformance tests: one added through
/// the pod's `ephemeralcontainers` subresource runs (and kubectl execs
/// into it and reads its log); a second is added by an update; existing
/// ones can't be removed.
#[tokio::test(flavor = "multi_thread")]
async fn cri_ephemeral_containers() {
    if !can_run() {
        return;
    }
    use kube::api::{Patch, PatchParams};
    let c = CriCluster::up("10.245.51.0/24").await;
    let pods = c.pods().await;
    let spec = json!({
        "terminationGracePeriodSeconds": 1,
        "containers": [busybox("app", "sleep 600")]
    });
    pods.create(&PostParams::default(), &pod("target", spec))
        .await
        .expect("create");
    wait_phase(&pods, "target", "Running").await;
    let debugger = json!({
        "name": "debugger",
        "image": "docker.io/library/busybox:1.36",
        "command": ["sh", "-c", "echo polo; sleep 600"],
        "stdin": true, "tty": true
    });
    let patch = json!({"spec": {"ephemeralContainers": [debugger]}});
    pods.patch_ephemeral_containers("target", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("add an ephemeral container");
    let running = |name: &'static str| {
        let pods = pods.clone();
        async move {
            wait_until(&format!("ephemeral container {name} running"), || async {
                let p = pod_json(&pods, "target").await?;
                let s = p["status"]["ephemeralContainerStatuses"]
                    .as_array()?
                    .iter()
                    .find(|s| s["name"] == name)?
                    .clone();
                s["state"]["running"].is_object().then_some(p)
            })
            .await
        }
    };
    running("debugger").await;
    let out = c
        .cluster
        .kubectl_ok(&["exec", "target", "-c", "debugger", "--", "echo", "marco"]);
    assert_eq!(out.trim(), "marco");
    let logs = c.cluster.kubectl_ok(&["logs", "target", "-c", "debugger"]);
    assert_eq!(logs.trim(), "polo");

    // A second one through an update of the subresource.
    let mut current = pods
        .get_ephemeral_containers("target")
        .await
        .expect("get ephemeralcontainers");
    let mut second: k8s_openapi::api::core::v1::EphemeralContainer = serde_json::from_value(
        json!({"name": "second", "image": "docker.io/library/busybox:1.36",
                                      "command": ["sleep", "601"]}),
    )
    .expect("ephemeral container");
    second.target_container_name = Some("app".into());
    if let Some(spec) = current.spec.as_mut() {
        spec.ephemeral_containers
            .get_or_insert_with(Vec::new)
            .push(second);
    }
    let updated = pods
        .replace_ephemeral_containers("target", &PostParams::default(), &current)
        .await
        .expect("update ephemeralcontainers");
    let names: Vec<String> = updated
        .spec
        .iter()
        .flat_map(|s| s.ephemeral_containers.iter().flatten())
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(names, ["debugger", "second"]);
    let p = running("second").await;
    // It shares its target's process namespace.
    let ps = c
        .cluster
        .kubectl_ok(&["exec", "target", "-c", "second", "--", "ps", "-o", "args"]);
    assert!(ps.contains("sleep 600") && ps.contains("sleep 601"), "{ps}");
    assert_eq!(
        p["status"]["ephemeralContainerStatuses"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // What `kubectl debug` does: a strategic merge patch of the
    // subresource with one more container.
    c.cluster.kubectl_ok(&[
        "debug",
        "target",
        "--image=docker.io/library/busybox:1.36",
        "--container=dbg",
        "--",
        "echo",
        "debugged",
    ]);
    wait_until("the kubectl debug container's output", || async {
        let out = c.cluster.kubectl(&["logs", "target", "-c", "dbg"]);
        (String::from_utf8_lossy(&out.stdout).trim() == "debugged").then_some(())
    })
    .await;

    // Not through a plain update, and never removed.
    let mut removed = pods.get("target").await.expect("pod");
    removed.metadata.resource_version = None;
    if let Some(spec) = removed.spec.as_mut() {
        spec.ephemeral_containers = None;
    }
    for result in [
        pods.replace_ephemeral_containers("target", &PostParams::default(), &removed)
            .await,
        pods.replace("target", &PostParams::default(), &removed)
            .await,
    ] {
        match result {
            Err(kube::Error::Api(s)) => assert_eq!(s.code, 422, "{s:?}"),
            other => panic!("removing ephemeral containers: {other:?}"),
        }
    }
}

/// Upstream's volume file tests without an fsGroup: downwardAPI files
/// (plain and projected) for the pod name, each container resource
/// (node allocatable for unset limits), default and item modes, and
/// labels and annotations that follow updates; configMap and secret
/// modes (default, item) as root and read by a non-root user.
#[tokio::test(flavor = "multi_thread")]
async fn cri_volume_files_and_modes() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.52.0/24").await;
    c.cluster.kubectl_ok_with_input(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {data-1: value-1, data-2: value-2}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {data-1: secret-1}
"#,
    );
    let alloc = |what: &str| c.allocatable(what);
    let node_cpu = rkube_scheduler::quantity::milli_value(&alloc("cpu")).expect("cpu");
    let node_memory = rkube_scheduler::quantity::value(&alloc("memory")).expect("memory");
    let pods = c.pods().await;
    let res = |container: &str, r: &str| json!({"containerName": container, "resource": r});
    let items = json!([
        {"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "podname-0400", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400},
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "cpu_limit", "resourceFieldRef": res("reader", "limits.cpu")},
        {"path": "cpu_request", "resourceFieldRef": res("reader", "requests.cpu")},
        {"path": "memory_limit", "resourceFieldRef": res("reader", "limits.memory")},
        {"path": "memory_request", "resourceFieldRef": res("reader", "requests.memory")},
        {"path": "default_cpu_limit", "resourceFieldRef": res("watcher", "limits.cpu")},
        {"path": "default_memory_limit", "resourceFieldRef": res("watcher", "limits.memory")}
    ]);
    let files = [
        "/down/podname",
        "/down/podname-0400",
        "/down-0400/podname",
        "/proj-down/podname",
        "/proj-down/podname-0400",
        "/proj-down-0400/podname",
        "/cm/data-1",
        "/cm-0400/data-1",
        "/cm-items/path/to/data-2",
        "/sec/data-1",
        "/sec-0400/data-1",
        "/sec-items/new-path-data-1",
        "/proj/data-1",
        "/proj/secret-1",
    ];
    let show = files
        .iter()
        .map(|f| format!("echo {f}:$(stat -L -c %A {f}):$(cat {f});"))
        .collect::<String>();
    let resources = ["cpu_limit", "cpu_request", "memory_limit", "memory_request"]
        .iter()
        .chain(&["default_cpu_limit", "default_memory_limit"])
        .map(|f| format!("echo {f}:$(cat /down/{f}):$(cat /proj-down/{f});"))
        .collect::<String>();
    let mounts = json!([
        {"name": "down", "mountPath": "/down"},
        {"name": "down-0400", "mountPath": "/down-0400"},
        {"name": "proj-down", "mountPath": "/proj-down"},
        {"name": "proj-down-0400", "mountPath": "/proj-down-0400"},
        {"name": "cm", "mountPath": "/cm"},
        {"name": "cm-0400", "mountPath": "/cm-0400"},
        {"name": "cm-items", "mountPath": "/cm-items"},
        {"name": "sec", "mountPath": "/sec"},
        {"name": "sec-0400", "mountPath": "/sec-0400"},
        {"name": "sec-items", "mountPath": "/sec-items"},
        {"name": "proj", "mountPath": "/proj"}
    ]);
    let mut reader = busybox("reader", &format!("{show}{resources}"));
    reader["resources"] = json!({"requests": {"cpu": "250m", "memory": "32Mi"},
                                 "limits": {"cpu": "1250m", "memory": "64Mi"}});
    reader["volumeMounts"] = mounts.clone();
    let mut nonroot = busybox(
        "nonroot",
        "for f in /cm/data-1 /proj/data-1 /down/podname; do echo $f:$(cat $f); done",
    );
    nonroot["securityContext"] = json!({"runAsUser": 1000});
    nonroot["volumeMounts"] = mounts.clone();
    let mut watcher = busybox(
        "watcher",
        "while true; do echo $(cat /down/labels) $(cat /down/annotations) $(cat /proj-down/labels) $(cat /proj-down/annotations); sleep 0.5; done",
    );
    watcher["volumeMounts"] = mounts;
    let down = |mode: Option<i32>| {
        let mut v = json!({"items": items});
        if let Some(m) = mode {
            v["defaultMode"] = json!(m);
        }
        v
    };
    let spec = json!({
        "terminationGracePeriodSeconds": 1,
        "restartPolicy": "OnFailure",
        "containers": [reader, nonroot, watcher],
        "volumes": [
            {"name": "down", "downwardAPI": down(None)},
            {"name": "down-0400", "downwardAPI": down(Some(0o400))},
            {"name": "proj-down", "projected": {"sources": [{"downwardAPI": down(None)}]}},
            {"name": "proj-down-0400", "projected": {"defaultMode": 0o400, "sources": [{"downwardAPI": down(None)}]}},
            {"name": "cm", "configMap": {"name": "cm"}},
            {"name": "cm-0400", "configMap": {"name": "cm", "defaultMode": 0o400}},
            {"name": "cm-items", "configMap": {"name": "cm", "items": [{"key": "data-2", "path": "path/to/data-2", "mode": 0o400}]}},
            {"name": "sec", "secret": {"secretName": "sec"}},
            {"name": "sec-0400", "secret": {"secretName": "sec", "defaultMode": 0o400}},
            {"name": "sec-items", "secret": {"secretName": "sec", "items": [{"key": "data-1", "path": "new-path-data-1", "mode": 0o400}]}},
            {"name": "proj", "projected": {"sources": [
                {"configMap": {"name": "cm", "items": [{"key": "data-1", "path": "data-1"}]}},
                {"secret": {"name": "sec", "items": [{"key": "data-1", "path": "secret-1"}]}}
            ]}}
        ]
    });
    let mut p = pod("files", spec);
    p.metadata.labels = Some([("key1".to_owned(), "value1".to_owned())].into());
    p.metadata.annotations = Some([("builder".to_owned(), "bar".to_owned())].into());
    pods.create(&PostParams::default(), &p)
        .await
        .expect("create");
    let done = wait_all_exited_but(&pods, "files", "watcher").await;
    let (rw, r) = ("-rw-r--r--", "-r--------");
    let expected_files = [
        ("/down/podname", rw, "files"),
        ("/down/podname-0400", r, "files"),
        ("/down-0400/podname", r, "files"),
        ("/proj-down/podname", rw, "files"),
        ("/proj-down/podname-0400", r, "files"),
        ("/proj-down-0400/podname", r, "files"),
        ("/cm/data-1", rw, "value-1"),
        ("/cm-0400/data-1", r, "value-1"),
        ("/cm-items/path/to/data-2", r, "value-2"),
        ("/sec/data-1", rw, "secret-1"),
        ("/sec-0400/data-1", r, "secret-1"),
        ("/sec-items/new-path-data-1", r, "secret-1"),
        ("/proj/data-1", rw, "value-1"),
        ("/proj/secret-1", rw, "secret-1"),
    ];
    let mut expected: Vec<String> = expected_files
        .iter()
        .map(|(f, mode, text)| format!("{f}:{mode}:{text}"))
        .collect();
    let cpu = ((node_cpu + 999) / 1000).to_string();
    for (f, v) in [
        ("cpu_limit", "2".to_owned()),
        ("cpu_request", "1".to_owned()),
        ("memory_limit", "67108864".to_owned()),
        ("memory_request", "33554432".to_owned()),
        ("default_cpu_limit", cpu),
        ("default_memory_limit", node_memory.to_string()),
    ] {
        expected.push(format!("{f}:{v}:{v}"));
    }
    assert_eq!(stdout_lines(&done, "reader"), expected);
    assert_eq!(
        stdout_lines(&done, "nonroot"),
        [
            "/cm/data-1:value-1",
            "/proj/data-1:value-1",
            "/down/podname:files"
        ]
    );
    // Labels and annotations follow updates, in both volumes.
    let before = "key1=\"value1\" builder=\"bar\" key1=\"value1\" builder=\"bar\"";
    let after = "key3=\"value3\" builder=\"foo\" key3=\"value3\" builder=\"foo\"";
    let watched = |text: &'static str| {
        wait_for_output(&pods, "files", "watcher", move |log| log.contains(text))
    };
    watched(before).await;
    let patch = json!({"metadata": {"labels": {"key1": null, "key3": "value3"},
                                    "annotations": {"builder": "foo"}}});
    pods.patch(
        "files",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .expect("patch");
    watched(after).await;
}

/// Upstream's "Subpath Atomic writer volumes" tests: a single key of a
/// configMap, secret, downwardAPI or projected volume mounted by
/// `subPath` (also over a file the image has); a Secret read from the
/// pod's own namespace when another has one of the same name; and a
/// RestartAlways container that exits 0 is restarted.
#[tokio::test(flavor = "multi_thread")]
async fn cri_sub_paths_into_api_volumes() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.53.0/24").await;
    c.cluster.kubectl_ok_with_input(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {configmap-key: configmap-value}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {secret-key: secret-value}
---
apiVersion: v1
kind: Secret
metadata: {name: sec, namespace: other}
stringData: {secret-key: other-namespace-value}
"#,
    );
    let pods = c.pods().await;
    let mut reader = busybox(
        "reader",
        "for f in /cm-file /etc/group /sec-file /down-file /proj-file; do echo $f:$(cat $f); done",
    );
    reader["volumeMounts"] = json!([
        {"name": "cm", "mountPath": "/cm-file", "subPath": "configmap-key"},
        {"name": "cm", "mountPath": "/etc/group", "subPath": "configmap-key"},
        {"name": "sec", "mountPath": "/sec-file", "subPath": "secret-key"},
        {"name": "down", "mountPath": "/down-file", "subPath": "downward/podname"},
        {"name": "proj", "mountPath": "/proj-file", "subPath": "projected-secret"}
    ]);
    let spec = json!({
        "restartPolicy": "Never",
        "containers": [reader],
        "volumes": [
            {"name": "cm", "configMap": {"name": "cm"}},
            {"name": "sec", "secret": {"secretName": "sec"}},
            {"name": "down", "downwardAPI": {"items": [
                {"path": "downward/podname", "fieldRef": {"fieldPath": "metadata.name"}}
            ]}},
            {"name": "proj", "projected": {"sources": [
                {"secret": {"name": "sec", "items": [{"key": "secret-key", "path": "projected-secret"}]}}
            ]}}
        ]
    });
    pods.create(&PostParams::default(), &pod("subpaths", spec))
        .await
        .expect("create");
    let spec = json!({
        "terminationGracePeriodSeconds": 1,
        "containers": [busybox("exits", "echo done")]
    });
    pods.create(&PostParams::default(), &pod("always", spec))
        .await
        .expect("create");
    let done = wait_phase(&pods, "subpaths", "Succeeded").await;
    assert_eq!(
        stdout_lines(&done, "reader"),
        [
            "/cm-file:configmap-value",
            "/etc/group:configmap-value",
            "/sec-file:secret-value",
            "/down-file:subpaths",
            "/proj-file:secret-value",
        ]
    );
    let p = wait_until("the exited container to be restarted", || async {
        let p = pod_json(&pods, "always").await?;
        (p["status"]["containerStatuses"][0]["restartCount"].as_i64()? >= 1).then_some(p)
    })
    .await;
    assert_eq!(p["status"]["phase"], "Running", "{}", p["status"]);
    let last = &p["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 0, "{last}");
    assert_eq!(last["reason"], "Completed", "{last}");
}

/// Container log rotation (`--container-log-max-size`,
/// `--container-log-max-files`): a chatty container's log is rotated,
/// older rotations gzipped, at most the set number of files kept, and
/// the runtime writes on into a fresh log that `kubectl logs` reads.
#[tokio::test(flavor = "multi_thread")]
async fn cri_container_logs_rotate() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up_with(
        "10.245.54.0/24",
        &[],
        &[
            "--container-log-max-size",
            "20Ki",
            "--container-log-max-files",
            "3",
        ],
    )
    .await;
    let pods = c.pods().await;
    let spec = json!({
        "terminationGracePeriodSeconds": 1,
        "containers": [busybox("chatty",
            "i=0; while true; do i=$((i+1)); echo line-$i-$(head -c 1000 /dev/zero | tr '\\0' x); sleep 0.02; done")]
    });
    pods.create(&PostParams::default(), &pod("chatty", spec))
        .await
        .expect("create");
    let p = wait_phase(&pods, "chatty", "Running").await;
    let dir = log_dir(&p).join("chatty");
    let deadline = Instant::now() + PATIENCE;
    let files = loop {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        if names.iter().any(|n| n.ends_with(".gz")) {
            break names;
        }
        assert!(
            Instant::now() < deadline,
            "no compressed rotation: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(files.len() <= 3, "{files:?}");
    assert!(files.contains(&"0.log".to_owned()), "{files:?}");
    assert!(
        files
            .iter()
            .any(|n| n.starts_with("0.log.") && !n.ends_with(".gz")),
        "{files:?}"
    );
    // The fresh log gets the container's output.
    let tail = c.cluster.kubectl_ok(&["logs", "chatty", "--tail=1"]);
    assert!(
        tail.starts_with("line-") && tail.trim_end().ends_with("xxx"),
        "{tail}"
    );
    let size = std::fs::metadata(dir.join("0.log"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(size > 0, "the reopened log is empty");
}

/// Upstream's [Slow] "failing subpath expansion can be modified during
/// the lifecycle of a container": a `subPathExpr` naming an annotation
/// the pod lacks keeps it from running, and adding the annotation lets
/// it start; then it is deleted gracefully.
#[tokio::test(flavor = "multi_thread")]
async fn cri_failing_sub_path_expansion_fixed_by_an_update() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.55.0/24").await;
    let pods = c.pods().await;
    let mut ctr = busybox("dapi-container", "sleep 600");
    ctr["env"] = json!([
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "ANNOTATION", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['mysubpath']"}}}
    ]);
    ctr["volumeMounts"] = json!([
        {"name": "workdir1", "mountPath": "/subpath_mount", "subPathExpr": "$(ANNOTATION)/$(POD_NAME)"},
        {"name": "workdir1", "mountPath": "/volume_mount"}
    ]);
    let spec = json!({
        "terminationGracePeriodSeconds": 1,
        "containers": [ctr],
        "volumes": [{"name": "workdir1", "emptyDir": {}}]
    });
    let mut p = pod("var-expansion", spec);
    p.metadata.annotations = Some([("notmysubpath".to_owned(), "mypath".to_owned())].into());
    pods.create(&PostParams::default(), &p)
        .await
        .expect("create");
    let waiting = wait_until("CreateContainerConfigError", || async {
        let p = pod_json(&pods, "var-expansion").await?;
        let w = &p["status"]["containerStatuses"][0]["state"]["waiting"];
        (w["reason"] == "CreateContainerConfigError").then(|| w.clone())
    })
    .await;
    assert!(
        waiting["message"]
            .as_str()
            .unwrap_or("")
            .contains("missing value for ANNOTATION"),
        "{waiting}"
    );
    let patch = json!({"metadata": {"annotations": {"mysubpath": "mypath"}}});
    pods.patch(
        "var-expansion",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .expect("patch");
    wait_phase(&pods, "var-expansion", "Running").await;
    // The expansion made the subpath in the volume.
    let ls = c
        .cluster
        .kubectl_ok(&["exec", "var-expansion", "--", "ls", "/volume_mount/mypath"]);
    assert_eq!(ls.trim(), "var-expansion");
    let (_, terminating) = delete_and_watch(&pods, "var-expansion", None).await;
    assert!(terminating, "graceful deletion");
}

/// Upstream's "EmptyDir wrapper volumes should not cause race condition
/// when used for configmaps": a ReplicationController of 5 pods on the
/// node, each mounting the same 50 ConfigMaps, all reach Running; and
/// they go when it is deleted.
#[tokio::test(flavor = "multi_thread")]
async fn cri_many_configmap_volumes_on_a_replication_controller() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up_full("10.245.56.0/24").await;
    let count = 50;
    let mut objects = String::new();
    for i in 0..count {
        objects.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: racey-configmap-{i}}}\ndata: {{data-1: value-1}}\n"
        ));
    }
    c.cluster
        .kubectl_ok_with_input(&["apply", "-f", "-"], &objects);
    let volumes: Vec<Value> = (0..count)
        .map(|i| json!({"name": format!("racey-configmap-{i}"), "configMap": {"name": format!("racey-configmap-{i}")}}))
        .collect();
    let mounts: Vec<Value> = (0..count)
        .map(|i| json!({"name": format!("racey-configmap-{i}"), "mountPath": format!("/etc/config-{i}")}))
        .collect();
    let rc = json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "wrapped-volume-race"},
        "spec": {
            "replicas": 5,
            "selector": {"name": "wrapped-volume-race"},
            "template": {
                "metadata": {"labels": {"name": "wrapped-volume-race"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "test-container",
                        "image": "docker.io/library/busybox:1.36",
                        "command": ["sh", "-c", "cat /etc/config-49/data-1; sleep 600"],
                        "volumeMounts": mounts
                    }],
                    "volumes": volumes
                }
            }
        }
    });
    c.cluster
        .kubectl_ok_with_input(&["apply", "-f", "-"], &rc.to_string());
    let pods = c.pods().await;
    let params = kube::api::ListParams::default().labels("name=wrapped-volume-race");
    wait_until("5 pods Running", || async {
        let list = pods.list(&params).await.ok()?;
        let running = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        (running == 5).then_some(())
    })
    .await;
    c.cluster.kubectl_ok(&[
        "delete",
        "rc",
        "wrapped-volume-race",
        "--wait=true",
        "--timeout=60s",
    ]);
    wait_until("the pods to go", || async {
        pods.list(&params)
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;
}

/// More of upstream's volume and env tests, as they set them up: mapped
/// items with the default mode (also read by a non-root user), projected
/// volumes with `defaultMode: 0400` over ConfigMap and Secret items, the
/// same Secret or ConfigMap in two volumes of one kind, one projected
/// volume with all three sources, optional sources that appear and go,
/// `envFrom` of a ConfigMap and a Secret without prefix, resources as env
/// with the default divisor, and `$(VAR)` in a command.
#[tokio::test(flavor = "multi_thread")]
async fn cri_volume_mappings_optional_sources_and_env() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.57.0/24").await;
    c.cluster.kubectl_ok_with_input(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {data-1: value-1, data-2: value-2}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {data-1: secret-1, data-2: secret-2}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: delete-me}
data: {data-1: doomed}
"#,
    );
    let pods = c.pods().await;
    let cm_item = json!([{"key": "data-2", "path": "path/to/data-2"}]);
    let sec_item = json!([{"key": "data-1", "path": "new-path-data-1"}]);
    let files = [
        "/cm-map/path/to/data-2",
        "/sec-map/new-path-data-1",
        "/proj-0400/path/to/data-2",
        "/proj-0400/new-path-data-1",
        "/proj-map/path/to/data-2",
        "/sec-a/data-1",
        "/sec-b/data-2",
        "/proj-a/data-1",
        "/proj-b/data-1",
        "/all/podname",
        "/all/cm",
        "/all/secret",
    ];
    let show = files
        .iter()
        .map(|f| format!("echo {f}:$(stat -L -c %A {f}):$(cat {f});"))
        .collect::<String>();
    let mounts: Vec<Value> = [
        "cm-map",
        "sec-map",
        "proj-0400",
        "proj-map",
        "sec-a",
        "sec-b",
        "proj-a",
        "proj-b",
        "all",
        "optional",
        "proj-optional",
    ]
    .iter()
    .map(|v| json!({"name": v, "mountPath": format!("/{v}")}))
    .collect();
    let mut reader = json!({
        "name": "reader",
        "image": "docker.io/library/busybox:1.36",
        "command": ["sh", "-c", ""],
        "resources": {"requests": {"cpu": "250m", "memory": "32Mi"}, "limits": {"cpu": "1250m", "memory": "64Mi"}},
        "envFrom": [{"configMapRef": {"name": "cm"}}, {"secretRef": {"name": "sec"}, "prefix": "X_"}],
        "env": [
            {"name": "DATA_2", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "data-2"}}},
            {"name": "CPU_REQUEST", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
            {"name": "MEMORY_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
            {"name": "MESSAGE", "value": "command-expanded"}
        ],
        "volumeMounts": mounts
    });
    // Upstream's secretRef env test reads the keys as they are; a prefix
    // shows they came from the Secret.
    reader["command"][2] = json!(format!(
        "{show} tr '\\0' '\\n' < /proc/1/environ | grep -E '^(X_)?data-[12]=' | sort; echo env:$DATA_2:$CPU_REQUEST:$MEMORY_LIMIT; echo $(MESSAGE)"
    ));
    let mut nonroot = busybox(
        "nonroot",
        "for f in /cm-map/path/to/data-2 /proj-map/path/to/data-2; do echo $f:$(cat $f); done",
    );
    nonroot["securityContext"] = json!({"runAsUser": 1000});
    nonroot["volumeMounts"] = json!([
        {"name": "cm-map", "mountPath": "/cm-map"},
        {"name": "proj-map", "mountPath": "/proj-map"}
    ]);
    let mut watcher = busybox(
        "watcher",
        "while true; do echo cm:$(ls /optional):$(cat /optional/data-1 2>/dev/null) secret:$(ls /proj-optional):$(cat /proj-optional/data-1 2>/dev/null); sleep 0.5; done",
    );
    watcher["volumeMounts"] = json!([
        {"name": "optional", "mountPath": "/optional"},
        {"name": "proj-optional", "mountPath": "/proj-optional"}
    ]);
    let spec = json!({
        "restartPolicy": "OnFailure",
        "terminationGracePeriodSeconds": 1,
        "containers": [reader, nonroot, watcher],
        "volumes": [
            {"name": "cm-map", "configMap": {"name": "cm", "items": cm_item}},
            {"name": "sec-map", "secret": {"secretName": "sec", "items": sec_item}},
            {"name": "proj-0400", "projected": {"defaultMode": 0o400, "sources": [
                {"configMap": {"name": "cm", "items": cm_item}},
                {"secret": {"name": "sec", "items": sec_item}}
            ]}},
            {"name": "proj-map", "projected": {"sources": [{"configMap": {"name": "cm", "items": cm_item}}]}},
            {"name": "sec-a", "secret": {"secretName": "sec"}},
            {"name": "sec-b", "secret": {"secretName": "sec"}},
            {"name": "proj-a", "projected": {"sources": [{"secret": {"name": "sec"}}]}},
            {"name": "proj-b", "projected": {"sources": [{"configMap": {"name": "cm"}}]}},
            {"name": "all", "projected": {"sources": [
                {"downwardAPI": {"items": [{"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                {"configMap": {"name": "cm", "items": [{"key": "data-1", "path": "cm"}]}},
                {"secret": {"name": "sec", "items": [{"key": "data-1", "path": "secret"}]}}
            ]}},
            {"name": "optional", "configMap": {"name": "delete-me", "optional": true}},
            {"name": "proj-optional", "projected": {"sources": [
                {"secret": {"name": "create-me", "optional": true}}
            ]}}
        ]
    });
    pods.create(&PostParams::default(), &pod("mapped", spec))
        .await
        .expect("create");
    let done = wait_all_exited_but(&pods, "mapped", "watcher").await;
    let (rw, r) = ("-rw-r--r--", "-r--------");
    let mut expected: Vec<String> = [
        ("/cm-map/path/to/data-2", rw, "value-2"),
        ("/sec-map/new-path-data-1", rw, "secret-1"),
        ("/proj-0400/path/to/data-2", r, "value-2"),
        ("/proj-0400/new-path-data-1", r, "secret-1"),
        ("/proj-map/path/to/data-2", rw, "value-2"),
        ("/sec-a/data-1", rw, "secret-1"),
        ("/sec-b/data-2", rw, "secret-2"),
        ("/proj-a/data-1", rw, "secret-1"),
        ("/proj-b/data-1", rw, "value-1"),
        ("/all/podname", rw, "mapped"),
        ("/all/cm", rw, "value-1"),
        ("/all/secret", rw, "secret-1"),
    ]
    .iter()
    .map(|(f, m, t)| format!("{f}:{m}:{t}"))
    .collect();
    // cpu 250m with divisor 1 rounds up to 1; 64Mi in bytes.
    for line in [
        "X_data-1=secret-1",
        "X_data-2=secret-2",
        "data-1=value-1",
        "data-2=value-2",
    ] {
        expected.push(line.to_owned());
    }
    expected.push("env:secret-2:1:67108864".to_owned());
    expected.push("command-expanded".to_owned());
    assert_eq!(stdout_lines(&done, "reader"), expected);
    assert_eq!(
        stdout_lines(&done, "nonroot"),
        [
            "/cm-map/path/to/data-2:value-2",
            "/proj-map/path/to/data-2:value-2"
        ]
    );
    // Optional sources: the deleted ConfigMap's file goes, the Secret
    // created later appears.
    // The last line printed, as the sources are now.
    let watched = |text: &'static str| {
        wait_for_output(&pods, "mapped", "watcher", move |log| {
            log.lines()
                .last()
                .and_then(|l| l.split_once(" stdout F "))
                .is_some_and(|(_, last)| last == text)
        })
    };
    watched("cm:data-1:doomed secret::").await;
    c.cluster.kubectl_ok(&["delete", "configmap", "delete-me"]);
    c.cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "create-me",
        "--from-literal=data-1=born",
    ]);
    watched("cm:: secret:data-1:born").await;
}
