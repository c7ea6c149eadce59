//! kubectl's streaming commands (exec, cp, attach, port-forward, proxy)
//! through the API server and the kubelet to pods on a real containerd,
//! with today's kubectl (WebSocket) and kubectl 1.27 (SPDY), and the
//! official Python client's `stream()` and `portforward()`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::kubelet_cri::{CriCluster, busybox, can_run, pod, wait_phase};

/// A kubectl that speaks SPDY only (before 1.29's WebSocket executor):
/// the 1.27 binary beside the `kubectl` dispatcher.
fn kubectl_spdy() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| Some(p.parent()?.join("kubectl.1.27")))
        .filter(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
        .expect("kubectl.1.27 beside kubectl")
}

/// A busybox pod that serves `hello` on 8080 and otherwise waits.
async fn web_pod(pods: &Api<Pod>, name: &str) {
    let mut c = busybox(
        "web",
        "echo serving; mkdir -p /www /www2 && echo hello > /www/index.html \
         && echo second > /www2/index.html && httpd -p 8081 -h /www2 \
         && exec httpd -f -p 8080 -h /www",
    );
    c["ports"] = json!([{"containerPort": 8080}]);
    let spec = json!({"containers": [c], "terminationGracePeriodSeconds": 1});
    pods.create(&PostParams::default(), &pod(name, spec))
        .await
        .expect("create pod");
    wait_phase(pods, name, "Running").await;
}

fn kubectl_at(c: &CriCluster, binary: &str, args: &[&str], input: Option<&[u8]>) -> Output {
    let mut child = Command::new(binary)
        .args(args)
        .env("KUBECONFIG", c.cluster.kubeconfig())
        .env("HOME", c.cluster.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let Some(mut stdin) = child.stdin.take()
        && let Some(input) = input
    {
        let _ = stdin.write_all(input);
    }
    child.wait_with_output().expect("kubectl ran")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn spawn_kubectl(c: &CriCluster, binary: &str, args: &[&str]) -> Child {
    Command::new(binary)
        .args(args)
        .env("KUBECONFIG", c.cluster.kubeconfig())
        .env("HOME", c.cluster.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs")
}

/// The first `count` stdout lines of `child` that contain `marker`.
fn lines_with(child: &mut Child, marker: &str, count: usize) -> Vec<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = marker.to_owned();
    std::thread::spawn(move || {
        // Reads on after the lines: kubectl dies writing to a closed pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(&wanted) {
                let _ = tx.send(line);
            }
        }
    });
    let mut got = Vec::new();
    while got.len() < count {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => got.push(line),
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("no line with {marker:?}: {err}")
            }
        }
    }
    got
}

fn line_with(child: &mut Child, marker: &str) -> String {
    lines_with(child, marker, 1).remove(0)
}

/// GET `path` from `127.0.0.1:port` with HTTP/1.0: the body.
fn http_get(port: u16, path: &str) -> String {
    http_request(port, "GET", path).1
}

/// `method path` to `127.0.0.1:port` with HTTP/1.0: status line and body.
fn http_request(port: u16, method: &str, path: &str) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            write!(
                s,
                "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
            )?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match attempt {
            Ok(out) if out.starts_with("HTTP/1.") => {
                let status = out.lines().next().unwrap_or_default().to_owned();
                let body = out
                    .split_once("\r\n\r\n")
                    .map(|(_, b)| b.to_owned())
                    .unwrap_or_default();
                return (status, body);
            }
            other => assert!(
                Instant::now() < deadline,
                "{method} {path} on {port}: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_kubectl_exec_cp_and_attach() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.40.0/24").await;
    let pods = c.pods().await;
    web_pod(&pods, "web").await;
    for kubectl in ["kubectl", &kubectl_spdy()] {
        let out = kubectl_at(&c, kubectl, &["exec", "web", "--", "echo", "hi"], None);
        assert_eq!(text(&out), "hi\n", "{kubectl}: {out:?}");
        // The exit code comes back through the error stream.
        let out = kubectl_at(
            &c,
            kubectl,
            &["exec", "web", "--", "sh", "-c", "exit 3"],
            None,
        );
        assert_eq!(out.status.code(), Some(3), "{kubectl}: {out:?}");
        // stdin reaches the process and its end closes it.
        let out = kubectl_at(
            &c,
            kubectl,
            &["exec", "-i", "web", "--", "wc", "-c"],
            Some(b"abcd"),
        );
        assert_eq!(text(&out).trim(), "4", "{kubectl}: {out:?}");
        let out = kubectl_at(
            &c,
            kubectl,
            &["exec", "web", "--", "sh", "-c", "echo out; echo err >&2"],
            None,
        );
        assert_eq!(text(&out), "out\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    }
    // A terminal: kubectl needs one of its own, which `script` gives it.
    let cmd = format!(
        "KUBECONFIG={} kubectl exec -it web -- sh -c 'tty; stty size'",
        c.cluster.kubeconfig().display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("COLUMNS", "100")
        .env("LINES", "30")
        .stdin(Stdio::piped())
        .output()
        .expect("script runs");
    let shown = text(&out);
    assert!(shown.contains("/dev/pts/"), "{shown:?} {out:?}");

    // kubectl cp both ways (tar through exec, stdin closed at the end).
    let dir = tempfile::tempdir().expect("tempdir");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let src = dir.path().join("in.bin");
    std::fs::write(&src, &data).expect("write");
    let src_arg = src.to_string_lossy().into_owned();
    let back = dir.path().join("back.bin");
    let back_arg = back.to_string_lossy().into_owned();
    c.cluster
        .kubectl_ok(&["cp", &src_arg, "default/web:/tmp/in.bin", "-c", "web"]);
    c.cluster
        .kubectl_ok(&["cp", "default/web:/tmp/in.bin", &back_arg, "-c", "web"]);
    assert!(std::fs::read(&back).expect("copied back") == data);

    // attach: what the container writes from now on.
    let spec = json!({
        "containers": [busybox("talk", "while true; do echo tick; sleep 1; done")],
        "terminationGracePeriodSeconds": 1,
    });
    pods.create(&PostParams::default(), &pod("talk", spec))
        .await
        .expect("create pod");
    wait_phase(&pods, "talk", "Running").await;
    for kubectl in ["kubectl", &kubectl_spdy()] {
        let mut attach = spawn_kubectl(&c, kubectl, &["attach", "talk"]);
        let line = line_with(&mut attach, "tick");
        assert_eq!(line, "tick");
        let _ = attach.kill();
        let _ = attach.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_port_forward_and_proxy() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.245.41.0/24").await;
    let pods = c.pods().await;
    web_pod(&pods, "web").await;
    // pods/proxy, at a named port and at the pod's first declared one.
    for path in [
        "/api/v1/namespaces/default/pods/web:8080/proxy/index.html",
        "/api/v1/namespaces/default/pods/http:web:8080/proxy/index.html",
        "/api/v1/namespaces/default/pods/web/proxy/index.html",
    ] {
        assert_eq!(c.cluster.kubectl_ok(&["get", "--raw", path]), "hello\n");
    }
    // services/proxy through the service's endpoints.
    c.cluster.kubectl_ok_with_input(
        &["apply", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
             "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}},
            {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
             "subsets": [{"addresses": [{"ip": wait_phase(&pods, "web", "Running").await["status"]["podIP"]}],
                          "ports": [{"name": "http", "port": 8080}]}]},
        ]})
        .to_string(),
    );
    for id in ["web:http", "web:80", "http:web:http"] {
        let path = format!("/api/v1/namespaces/default/services/{id}/proxy/index.html");
        assert_eq!(c.cluster.kubectl_ok(&["get", "--raw", &path]), "hello\n");
    }
    let out = c.cluster.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/web:81/proxy/",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ServiceUnavailable")
            || String::from_utf8_lossy(&out.stderr).contains("no service port 81"),
        "{out:?}"
    );
    // kubectl proxy, then a pod's proxy path through it.
    let mut proxy = spawn_kubectl(&c, "kubectl", &["proxy", "--port=0"]);
    let line = line_with(&mut proxy, "Starting to serve on 127.0.0.1:");
    let port: u16 = line
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(
        http_get(
            port,
            "/api/v1/namespaces/default/pods/web:8080/proxy/index.html"
        ),
        "hello\n"
    );
    // Every method reaches the pod (busybox httpd answers what it does
    // not serve itself: never the API server's 405 or a Status).
    for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"] {
        for path in [
            "/api/v1/namespaces/default/pods/web:8080/proxy/index.html",
            "/api/v1/namespaces/default/services/web:http/proxy/index.html",
        ] {
            let (status, body) = http_request(port, method, path);
            assert!(
                !status.contains(" 405 ") && !body.contains("\"kind\":\"Status\""),
                "{method} {path}: {status} {body}"
            );
        }
    }
    let _ = proxy.kill();
    let _ = proxy.wait();
    // kubectl proxy --unix-socket: the API's versions through the socket.
    let socket = c.cluster.dir.path().join("proxy.sock");
    let arg = format!("--unix-socket={}", socket.display());
    let mut proxy = spawn_kubectl(&c, "kubectl", &["proxy", &arg]);
    line_with(&mut proxy, "Starting to serve on");
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).expect("proxy socket");
    stream
        .write_all(b"GET /api HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    // The JSON body, whether or not it came chunked.
    let body = answer
        .find('{')
        .zip(answer.rfind('}'))
        .map(|(a, b)| &answer[a..=b])
        .unwrap_or("");
    let versions: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    assert_eq!(versions["versions"], json!(["v1"]), "{answer}");
    let _ = proxy.kill();
    let _ = proxy.wait();
    // nodes/proxy reaches the kubelet.
    let path = format!("/api/v1/nodes/{}/proxy/healthz", c.node);
    assert_eq!(c.cluster.kubectl_ok(&["get", "--raw", &path]).trim(), "ok");

    for kubectl in ["kubectl", &kubectl_spdy()] {
        // Two ports at once: each gets its own pair of streams.
        let mut pf = spawn_kubectl(&c, kubectl, &["port-forward", "pod/web", ":8080", ":8081"]);
        let lines = lines_with(&mut pf, "Forwarding from 127.0.0.1:", 2);
        for line in &lines {
            let served = if line.ends_with("-> 8081") {
                "second\n"
            } else {
                "hello\n"
            };
            let port: u16 = line
                .trim_start_matches("Forwarding from 127.0.0.1:")
                .split(' ')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("{line}"));
            // Twice: each connection is a new stream pair.
            for _ in 0..2 {
                assert_eq!(http_get(port, "/index.html"), served, "{kubectl} {line}");
            }
        }
        let _ = pf.kill();
        let _ = pf.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_python_client_and_websockets() {
    if !can_run() {
        return;
    }
    let has_client = Command::new("python3")
        .args(["-c", "import kubernetes"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_client {
        assert!(
            std::env::var("CI").is_err(),
            "the Python kubernetes client is missing: run hack/install-deps.sh"
        );
        return;
    }
    let c = CriCluster::up("10.245.42.0/24").await;
    let pods = c.pods().await;
    web_pod(&pods, "web").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/clients/python_streams.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(c.cluster.kubeconfig())
        .output()
        .expect("python3 ran");
    assert!(
        out.status.success() && text(&out).trim() == "ok",
        "stdout: {}\nstderr: {}",
        text(&out),
        String::from_utf8_lossy(&out.stderr)
    );
}
