//! The kubelet's HTTPS server on a real containerd: stock `kubectl logs`
//! through the API server's `pods/log`, and the kubelet's own endpoints
//! (`/healthz`, `/pods`, `/stats/summary`, `/exec` over WebSocket) called
//! directly with the API server's kubelet-client certificate. Same
//! prerequisites as kubelet_cri.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::kubelet_cri::{CriCluster, can_run, wait_phase, wait_until};

async fn create(pods: &Api<Pod>, pod: Value) {
    let pod: Pod = serde_json::from_value(pod).expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
}

/// The port the node advertises for its kubelet.
async fn kubelet_port(c: &CriCluster) -> u16 {
    let nodes: Api<Node> = Api::all(c.cluster.client().await);
    let node = nodes.get(&c.node).await.expect("node");
    let port = node
        .status
        .and_then(|s| s.daemon_endpoints)
        .and_then(|d| d.kubelet_endpoint)
        .map(|e| e.port)
        .expect("kubeletEndpoint");
    u16::try_from(port).expect("port")
}

fn pki_file(c: &CriCluster, name: &str) -> String {
    let path = c.cluster.dir.path().join("pki").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// TLS towards the kubelet, checking its serving certificate against the
/// cluster CA, presenting the API server's kubelet-client certificate
/// unless `anonymous`.
fn tls(c: &CriCluster, anonymous: bool) -> Arc<rustls::ClientConfig> {
    let ca = pki_file(c, "ca.crt");
    let identity = rkube_pki::CertAndKey {
        cert_pem: pki_file(c, "apiserver-kubelet-client.crt"),
        key_pem: pki_file(c, "apiserver-kubelet-client.key"),
    };
    rkube_pki::client_config(&ca, (!anonymous).then_some(&identity)).expect("client config")
}

async fn connect(
    port: u16,
    tls: Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the kubelet");
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .expect("TLS with the kubelet (serving certificate from the cluster CA)")
}

/// A GET over HTTP/1.1; the status and body (the server closes).
async fn get(port: u16, tls: Arc<rustls::ClientConfig>, path: &str) -> (u16, String) {
    let mut s = connect(port, tls).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(n) = s.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, body.to_owned())
}

/// A WebSocket client of the Kubernetes channel protocols: each binary
/// message is a channel byte and data.
struct Ws {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    buf: Vec<u8>,
}

impl Ws {
    async fn open(port: u16, tls: Arc<rustls::ClientConfig>, path: &str) -> Ws {
        let mut stream = connect(port, tls).await;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.expect("write");
        let mut ws = Ws {
            stream,
            buf: Vec::new(),
        };
        let head_end = loop {
            if let Some(i) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(ws.fill().await, "closed before the upgrade answer");
        };
        let head = String::from_utf8_lossy(&ws.buf[..head_end]).to_lowercase();
        assert!(head.starts_with("http/1.1 101"), "no upgrade: {head}");
        assert!(
            head.contains("sec-websocket-protocol: v4.channel.k8s.io"),
            "{head}"
        );
        ws.buf.drain(..head_end);
        ws
    }

    /// Reads more; false at the end of the stream (or after 30 s idle).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(Duration::from_secs(30), self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    /// The next data message as (channel, data); None once closed.
    async fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            // FIN/opcode, then a 7, 16 or 64 bit length; servers don't mask.
            let buf = &self.buf;
            let frame = (|| {
                let b1 = *buf.get(1)?;
                let (len, off) = match b1 & 127 {
                    126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
                    127 => (
                        u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
                        10,
                    ),
                    n => (n as usize, 2),
                };
                Some((buf[0] & 15, buf.get(off..off + len)?.to_vec(), off + len))
            })();
            let Some((opcode, payload, used)) = frame else {
                if !self.fill().await {
                    return None;
                }
                continue;
            };
            self.buf.drain(..used);
            match opcode {
                8 => return None,
                1 | 2 if !payload.is_empty() => return Some((payload[0], payload[1..].to_vec())),
                _ => {}
            }
        }
    }

    /// Sends `data` on `channel` (a masked binary frame, as clients must).
    async fn send(&mut self, channel: u8, data: &[u8]) {
        let payload: Vec<u8> = std::iter::once(channel)
            .chain(data.iter().copied())
            .collect();
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut frame = vec![0x82u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await.expect("send");
    }
}

/// What an exec gave: stdout, stderr and the status of channel 3.
struct Exec {
    stdout: String,
    stderr: String,
    status: Value,
}

async fn ws_exec(port: u16, tls: Arc<rustls::ClientConfig>, path: &str) -> Exec {
    let mut ws = Ws::open(port, tls, path).await;
    let mut out = Exec {
        stdout: String::new(),
        stderr: String::new(),
        status: Value::Null,
    };
    while let Some((channel, data)) = ws.next().await {
        let data = String::from_utf8_lossy(&data);
        match channel {
            1 => out.stdout.push_str(&data),
            2 => out.stderr.push_str(&data),
            3 => out.status = serde_json::from_str(&data).expect("status JSON"),
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn kubelet_server_serves_logs_to_kubectl() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.246.1.0/24").await;
    let pods = c.pods().await;
    create(
        &pods,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "counter"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {"name": "numbers", "image": "busybox:1.36",
                     "command": ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; sleep 3600"]},
                    {"name": "ticker", "image": "busybox:1.36",
                     "command": ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.3; done"]},
                ],
            },
        }),
    )
    .await;
    wait_phase(&pods, "counter", "Running").await;
    let expected = "line 1\nline 2\nline 3\nline 4\nline 5\n";
    wait_until("the numbers to be logged", || async {
        let out = c.cluster.kubectl(&["logs", "counter", "-c", "numbers"]);
        (String::from_utf8_lossy(&out.stdout) == expected).then_some(())
    })
    .await;
    assert_eq!(
        c.cluster
            .kubectl_ok(&["logs", "counter", "-c", "numbers", "--tail=2"]),
        "line 4\nline 5\n"
    );
    assert_eq!(
        c.cluster
            .kubectl_ok(&["logs", "counter", "-c", "numbers", "--limit-bytes=9"]),
        "line 1\nli"
    );
    assert_eq!(
        c.cluster
            .kubectl_ok(&["logs", "counter", "-c", "numbers", "--limit-bytes=1"]),
        "l"
    );
    let last = c.cluster.kubectl_ok(&[
        "logs",
        "counter",
        "-c",
        "numbers",
        "--tail=1",
        "--timestamps",
    ]);
    assert!(
        last.ends_with("Z line 5\n") && last.lines().count() == 1,
        "{last}"
    );
    assert_eq!(
        c.cluster
            .kubectl_ok(&["logs", "counter", "-c", "numbers", "--since=1h"]),
        expected
    );
    assert_eq!(
        c.cluster.kubectl_ok(&[
            "logs",
            "counter",
            "-c",
            "numbers",
            "--since-time=2099-01-01T00:00:00Z"
        ]),
        ""
    );
    let stamped = c
        .cluster
        .kubectl_ok(&["logs", "counter", "-c", "numbers", "--timestamps"]);
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 5, "{stamped}");
    for (i, line) in lines.iter().enumerate() {
        let (ts, text) = line.split_once(' ').expect("timestamp prefix");
        // RFC3339 with nine fraction digits, as upstream's RFC3339NanoFixed.
        assert!(
            ts.len() == 30 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
            "{line}"
        );
        assert_eq!(text, format!("line {}", i + 1));
    }
    // No earlier run: upstream's 400.
    let out = c
        .cluster
        .kubectl(&["logs", "counter", "-c", "numbers", "--previous"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("previous terminated container \"numbers\" in pod \"counter\" not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A container the pod does not have.
    let out = c.cluster.kubectl(&["logs", "counter", "-c", "nope"]);
    assert!(!out.status.success());

    // -f streams new lines as they are written.
    let mut follow = Command::new("kubectl")
        .args(["logs", "-f", "counter", "-c", "ticker"])
        .env("KUBECONFIG", c.cluster.kubeconfig())
        .env("HOME", c.cluster.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl");
    let stdout = follow.stdout.take().expect("stdout");
    let read = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take(12)
            .collect::<Vec<String>>()
    });
    let lines = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("12 lines within 30 s")
        .expect("reader");
    let _ = follow.kill();
    let _ = follow.wait();
    let numbers: Vec<u32> = lines
        .iter()
        .map(|l| {
            l.strip_prefix("tick ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {l:?}"))
        })
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "followed lines in order: {numbers:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubelet_server_serves_previous_logs_after_a_restart() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.246.2.0/24").await;
    let pods = c.pods().await;
    // The first run fails; the second keeps running. An emptyDir counts.
    create(
        &pods,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "restarter"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "volumes": [{"name": "state", "emptyDir": {}}],
                "containers": [{
                    "name": "main", "image": "busybox:1.36",
                    "volumeMounts": [{"name": "state", "mountPath": "/state"}],
                    "command": ["sh", "-c",
                        "n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /state/n; \
                         echo attempt $n; [ $n -gt 1 ] || exit 1; sleep 3600"],
                }],
            },
        }),
    )
    .await;
    wait_until("the container to run again", || async {
        let p = pods.get("restarter").await.ok()?;
        let s = p.status?.container_statuses?.into_iter().next()?;
        (s.restart_count >= 1 && s.state?.running.is_some()).then_some(())
    })
    .await;
    wait_until("the second run's log", || async {
        let out = c.cluster.kubectl(&["logs", "restarter"]);
        (String::from_utf8_lossy(&out.stdout) == "attempt 2\n").then_some(())
    })
    .await;
    assert_eq!(
        c.cluster.kubectl_ok(&["logs", "restarter", "--previous"]),
        "attempt 1\n"
    );
    assert_eq!(
        c.cluster
            .kubectl_ok(&["logs", "restarter", "-p", "--timestamps=false"]),
        "attempt 1\n"
    );

    // -f on a container that exits ends with it, its last lines included.
    create(
        &pods,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "finite"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox:1.36",
                    "command": ["sh", "-c", "echo first; sleep 3; echo last"]}],
            },
        }),
    )
    .await;
    wait_until("the first line", || async {
        let out = c.cluster.kubectl(&["logs", "finite"]);
        String::from_utf8_lossy(&out.stdout)
            .starts_with("first")
            .then_some(())
    })
    .await;
    let kubeconfig = c.cluster.kubeconfig();
    let home = c.cluster.dir.path().to_path_buf();
    let followed = tokio::task::spawn_blocking(move || {
        Command::new("kubectl")
            .args(["logs", "-f", "finite"])
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", home)
            .output()
            .expect("kubectl")
    });
    let out = tokio::time::timeout(Duration::from_secs(30), followed)
        .await
        .expect("kubectl logs -f ends when the container does")
        .expect("kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\nlast\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubelet_server_endpoints_and_exec_over_websocket() {
    if !can_run() {
        return;
    }
    let healthz_port = rkube_storage::testing::free_port();
    let c = CriCluster::up_with(
        "10.246.3.0/24",
        &[],
        &["--kubelet-healthz-port", &healthz_port.to_string()],
    )
    .await;
    let pods = c.pods().await;
    create(
        &pods,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "shell"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {"name": "sh", "image": "busybox:1.36", "command": ["sleep", "3600"]},
                    {"name": "ticker", "image": "busybox:1.36", "command": ["sh", "-c",
                        "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]},
                    {"name": "web", "image": "busybox:1.36", "command": ["sh", "-c",
                        "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www"]},
                ],
            },
        }),
    )
    .await;
    wait_phase(&pods, "shell", "Running").await;
    let port = kubelet_port(&c).await;
    let admin = tls(&c, false);

    // Without a client certificate: 401, as upstream.
    let (status, body) = get(port, tls(&c, true), "/healthz").await;
    assert_eq!((status, body.trim()), (401, "Unauthorized"));
    let (status, body) = get(port, admin.clone(), "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let (status, body) = get(port, admin.clone(), "/pods").await;
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("PodList");
    assert_eq!(list["kind"], "PodList");
    assert!(
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|p| p["metadata"]["name"] == "shell"),
        "{body}"
    );

    // The runtime's view: name, namespace, uid and running containers.
    let (status, body) = get(port, admin.clone(), "/runningpods/").await;
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("PodList");
    let shell = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|p| p["metadata"]["name"] == "shell"))
        .unwrap_or_else(|| panic!("no shell pod in {body}"));
    let names: Vec<&str> = shell["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["sh", "ticker", "web"], "{body}");
    assert!(shell["metadata"]["uid"].is_string(), "{body}");

    // Upstream's plain-HTTP healthz on the loopback (--healthz-port).
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", healthz_port))
        .await
        .expect("healthz port");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok\n"), "{answer}");

    let (status, body) = get(port, admin.clone(), "/stats/summary").await;
    assert_eq!(status, 200, "{body}");
    let summary: Value = serde_json::from_str(&body).expect("Summary");
    assert_eq!(summary["node"]["nodeName"], c.node.as_str());
    assert!(summary["node"]["memory"]["workingSetBytes"].as_u64() > Some(0));
    let pod = summary["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .find(|p| p["podRef"]["name"] == "shell")
        .unwrap_or_else(|| panic!("no pod in {body}"));
    assert_eq!(pod["podRef"]["namespace"], "default");
    assert_eq!(pod["containers"][0]["name"], "sh");

    // What metrics-server scrapes.
    let (status, body) = get(port, admin.clone(), "/metrics/resource").await;
    assert_eq!(status, 200, "{body}");
    for metric in [
        "container_cpu_usage_seconds_total{container=\"sh\",namespace=\"default\",pod=\"shell\"} ",
        "pod_memory_working_set_bytes{namespace=\"default\",pod=\"shell\"} ",
        "node_memory_working_set_bytes ",
    ] {
        assert!(
            body.lines().any(|l| l.starts_with(metric)),
            "{metric} in {body}"
        );
    }

    let (status, body) = get(port, admin.clone(), "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.lines().any(|l| l == "kubelet_running_pods 1"),
        "{body}"
    );

    // Upstream's errors for what is not here.
    let (status, body) = get(port, admin.clone(), "/containerLogs/default/nope/c").await;
    assert_eq!((status, body.trim()), (404, "pod \"nope\" does not exist"));
    let (status, body) = get(port, admin.clone(), "/containerLogs/default/shell/nope").await;
    assert_eq!(
        (status, body.trim()),
        (404, "container \"nope\" not found in pod \"shell\"")
    );
    let (status, _) = get(
        port,
        admin.clone(),
        "/exec/default/nope/sh?command=ls&output=1",
    )
    .await;
    assert_eq!(status, 404);

    // Exec: the CRI stream proxied, WebSocket both ways.
    let hi = ws_exec(
        port,
        admin.clone(),
        "/exec/default/shell/sh?command=echo&command=hi&output=1&error=1",
    )
    .await;
    assert_eq!(hi.stdout, "hi\n");
    assert_eq!(hi.status["status"], "Success", "{}", hi.status);
    let failed = ws_exec(
        port,
        admin.clone(),
        "/exec/default/shell/sh?command=sh&command=-c&command=echo+oops+%3E%262%3B+exit+3&stdout=true&stderr=true",
    )
    .await;
    assert_eq!(failed.stderr, "oops\n");
    assert_eq!(failed.status["status"], "Failure", "{}", failed.status);
    assert_eq!(failed.status["reason"], "NonZeroExitCode");
    assert_eq!(failed.status["details"]["causes"][0]["message"], "3");

    // SPDY/3.1 (what kubectl speaks through the API server): the
    // runtime's 101 and its protocol choice come back unchanged.
    let mut spdy = connect(port, admin.clone()).await;
    spdy.write_all(
        b"POST /exec/default/shell/sh?command=true&output=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
          X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .expect("write");
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = spdy.read(&mut chunk).await.expect("read");
        assert!(n > 0, "closed before the upgrade answer");
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: spdy/3.1"), "{head}");
    assert!(
        head.contains("x-stream-protocol-version: v4.channel.k8s.io"),
        "{head}"
    );
    drop(spdy);

    // Attach: the running container's output as it comes.
    let mut attach = Ws::open(port, admin.clone(), "/attach/default/shell/ticker?output=1").await;
    let (channel, data) = attach.next().await.expect("attached output");
    let data = if data.is_empty() {
        // The first message may be an empty one per channel.
        attach.next().await.expect("attached output").1
    } else {
        data
    };
    assert_eq!(channel, 1);
    assert!(
        String::from_utf8_lossy(&data).starts_with("tick "),
        "{data:?}"
    );
    drop(attach);

    // Port-forward: an HTTP exchange with the pod's port 8080. Each
    // channel first carries its port number (2 bytes, little-endian).
    let mut forward = Ws::open(port, admin.clone(), "/portForward/default/shell?port=8080").await;
    let mut reply = Vec::new();
    let mut sent = false;
    let mut announced = 0;
    while let Some((channel, data)) = forward.next().await {
        if announced < 2 {
            assert_eq!(data, 8080u16.to_le_bytes(), "channel {channel} port prefix");
            announced += 1;
        } else {
            assert_eq!(
                channel,
                0,
                "error channel: {}",
                String::from_utf8_lossy(&data)
            );
            reply.extend_from_slice(&data);
        }
        if announced == 2 && !sent {
            sent = true;
            forward
                .send(0, b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .await;
        }
        if String::from_utf8_lossy(&reply).contains("hello\n") {
            break;
        }
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with("HTTP/1.") && reply.ends_with("hello\n"),
        "{reply}"
    );
}

/// `kubectl exec` end to end. The API server's `pods/exec` (the proxy to
/// this kubelet endpoint) lands separately; until then this cannot pass.
#[tokio::test(flavor = "multi_thread")]
async fn kubelet_server_kubectl_exec() {
    if !can_run() {
        return;
    }
    let c = CriCluster::up("10.246.4.0/24").await;
    let pods = c.pods().await;
    create(
        &pods,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "shell"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "sh", "image": "busybox:1.36",
                                "command": ["sleep", "3600"]}],
            },
        }),
    )
    .await;
    wait_phase(&pods, "shell", "Running").await;
    assert_eq!(
        c.cluster.kubectl_ok(&["exec", "shell", "--", "echo", "hi"]),
        "hi\n"
    );
    let out = c
        .cluster
        .kubectl(&["exec", "shell", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
}
