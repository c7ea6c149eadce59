//! Load generator for `hack/bench/apiserver.sh`.
//!
//! Starts `rkube up` itself (so it can time start-up and read the process's
//! RSS), then drives it over HTTPS/HTTP2 with the admin client certificate
//! from `<data-dir>/admin.conf`, using a raw hyper client to keep the
//! client's share of the CPU small. Prints a table of figures on stdout and
//! progress on stderr; the server is killed on every exit path (and by the
//! kernel if this process dies: PR_SET_PDEATHSIG).
//!
//! Usage: rkube-bench-apiserver --rkube <path> --data-dir <empty dir>
//!
//! Environment (defaults in brackets):
//!   BENCH_LARGE=1          grow the store to 100,000 configmaps [10,000]
//!   BENCH_OBJECTS          objects in the growth phase, overrides BENCH_LARGE
//!   BENCH_GROWTH_CLIENTS   concurrent clients while growing [64]
//!   BENCH_CLIENTS          concurrency sweep [1,16,64]
//!   BENCH_SWEEP_SECS       seconds per sweep step [3]
//!   BENCH_PAYLOAD          bytes of data per configmap [900, ~1 KiB stored]
//!   BENCH_LIST_RUNS        timed LISTs per mode [5]
//!   BENCH_WATCHERS         concurrent watchers [1000]
//!   BENCH_WATCH_RATE       changes per second while watching [100]
//!   BENCH_WATCH_SECS       seconds of changes [10]
//!   BENCH_WATCH_PAYLOAD    extra bytes in each watched object [0]
//!   BENCH_TIMEOUT          hard limit for the whole run, seconds [240; 1200 large]

use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

type Sender = SendRequest<Full<Bytes>>;

// ---------------------------------------------------------------- settings

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: not a number")),
        _ => default,
    }
}

struct Settings {
    large: bool,
    objects: u64,
    growth_clients: usize,
    clients: Vec<usize>,
    sweep_secs: u64,
    payload: usize,
    list_runs: usize,
    watchers: usize,
    watch_rate: u64,
    watch_secs: u64,
    watch_payload: usize,
    timeout: u64,
}

impl Settings {
    fn from_env() -> Settings {
        let large = std::env::var("BENCH_LARGE").is_ok_and(|v| !v.is_empty() && v != "0");
        let clients = std::env::var("BENCH_CLIENTS")
            .unwrap_or_else(|_| "1,16,64".into())
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("BENCH_CLIENTS: numbers, comma separated")
            })
            .collect();
        Settings {
            large,
            objects: env_u64("BENCH_OBJECTS", if large { 100_000 } else { 10_000 }),
            growth_clients: env_u64("BENCH_GROWTH_CLIENTS", 64) as usize,
            clients,
            sweep_secs: env_u64("BENCH_SWEEP_SECS", 3),
            payload: env_u64("BENCH_PAYLOAD", 900) as usize,
            list_runs: env_u64("BENCH_LIST_RUNS", 5) as usize,
            watchers: env_u64("BENCH_WATCHERS", 1000) as usize,
            watch_rate: env_u64("BENCH_WATCH_RATE", 100),
            watch_secs: env_u64("BENCH_WATCH_SECS", 10),
            watch_payload: env_u64("BENCH_WATCH_PAYLOAD", 0) as usize,
            timeout: env_u64("BENCH_TIMEOUT", if large { 1200 } else { 240 }),
        }
    }
}

// ------------------------------------------------------------------ output

/// The final table: section headings and (label, value) rows.
#[derive(Default)]
struct Report {
    rows: Vec<(String, String)>,
}

impl Report {
    fn section(&mut self, title: &str) {
        eprintln!("--- {title}");
        self.rows.push((String::new(), title.to_owned()));
    }
    fn row(&mut self, label: impl Into<String>, value: impl Into<String>) {
        let (label, value) = (label.into(), value.into());
        eprintln!("    {label}: {value}");
        self.rows.push((label, value));
    }
    fn print(&self) {
        let width = self.rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (label, value) in &self.rows {
            if label.is_empty() {
                let _ = writeln!(out, "\n{value}");
            } else {
                let _ = writeln!(out, "  {label:<width$}  {value}");
            }
        }
        print!("{out}");
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Percentile of sorted microseconds, in milliseconds.
fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx] as f64 / 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    if v.is_empty() {
        Duration::ZERO
    } else {
        v[v.len() / 2]
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ------------------------------------------------------------------ server

/// The `rkube up` process; killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// VmRSS of the server, in bytes.
    fn rss(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .ok_or_else(|| anyhow!("no VmRSS"))?;
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| anyhow!("bad VmRSS line"))?
            .parse()?;
        Ok(kib * 1024)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Must run on the main thread: PR_SET_PDEATHSIG fires when the thread that
/// forked exits, and the main thread lives as long as this process.
fn spawn_server(rkube: &Path, dir: &Path) -> Result<Server> {
    let port = free_port()?;
    std::fs::create_dir_all(dir)?;
    let log = File::options()
        .create(true)
        .append(true)
        .open(dir.join("rkube.log"))?;
    let mut cmd = Command::new(rkube);
    cmd.arg("up")
        .arg("--data-dir")
        .arg(dir)
        .arg("--secure-port")
        .arg(port.to_string())
        .arg("--bind-address")
        .arg("127.0.0.1")
        // The API server's figures: without the controllers' and the
        // scheduler's watches and memory (their own benches measure them).
        .args(["--no-controllers", "--no-scheduler"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", rkube.display()))?;
    Ok(Server { child, port })
}

/// user+system CPU seconds of a process ("self" or a pid).
fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after "(comm)": state is 0, utime 11, stime 12.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks / hz
}

/// CPU used by the server and by this load generator over a stretch of time.
struct CpuMark {
    server_pid: String,
    server: f64,
    client: f64,
    t: Instant,
}

impl CpuMark {
    fn new(server_pid: u32) -> CpuMark {
        let server_pid = server_pid.to_string();
        CpuMark {
            server: cpu_secs(&server_pid),
            client: cpu_secs("self"),
            server_pid,
            t: Instant::now(),
        }
    }
    /// "server 1.2 cores, client 0.4 cores" since `new`.
    fn cores(&self) -> String {
        let secs = self.t.elapsed().as_secs_f64().max(1e-9);
        format!(
            "server {:.2} cores, load generator {:.2} cores",
            (cpu_secs(&self.server_pid) - self.server) / secs,
            (cpu_secs("self") - self.client) / secs
        )
    }
}

// ------------------------------------------------------------------ client

#[derive(Clone)]
struct Api {
    addr: SocketAddr,
    base: Arc<str>,
    tls: Arc<rustls::ClientConfig>,
}

fn b64(v: &serde_yaml::Value, what: &str) -> Result<Vec<u8>> {
    let s = v.as_str().ok_or_else(|| anyhow!("kubeconfig: no {what}"))?;
    Ok(base64::engine::general_purpose::STANDARD.decode(s.trim())?)
}

impl Api {
    fn from_kubeconfig(path: &Path, port: u16) -> Result<Api> {
        let text = std::fs::read_to_string(path)?;
        let v: serde_yaml::Value = serde_yaml::from_str(&text)?;
        let cluster = &v["clusters"][0]["cluster"];
        let user = &v["users"][0]["user"];
        let ca = b64(
            &cluster["certificate-authority-data"],
            "certificate-authority-data",
        )?;
        let cert = b64(&user["client-certificate-data"], "client-certificate-data")?;
        let key = b64(&user["client-key-data"], "client-key-data")?;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&ca) {
            roots.add(c?)?;
        }
        let certs = CertificateDer::pem_slice_iter(&cert).collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            bail!("kubeconfig: empty client certificate");
        }
        let key = PrivateKeyDer::from_pem_slice(&key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)?;
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Ok(Api {
            addr,
            base: format!("https://127.0.0.1:{port}").into(),
            tls: Arc::new(tls),
        })
    }

    /// One HTTP/2 connection. Windows as large as Go's client uses, so a
    /// big LIST is not throttled by flow control.
    async fn connect(&self) -> Result<Sender> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            bail!("the server did not negotiate h2");
        }
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(16 << 20)
            .handshake(TokioIo::new(tls))
            .await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn uri(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

async fn call(
    s: &mut Sender,
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<(StatusCode, Bytes)> {
    s.ready().await?;
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::ACCEPT, "application/json");
    if let Some(ct) = content_type {
        req = req.header(http::header::CONTENT_TYPE, ct);
    }
    let resp = s.send_request(req.body(Full::new(body))?).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

async fn create_namespace(api: &Api, s: &mut Sender, name: &str) -> Result<()> {
    let body =
        format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#);
    let (st, b) = call(
        s,
        Method::POST,
        &api.uri("/api/v1/namespaces"),
        Some("application/json"),
        body.into(),
    )
    .await?;
    if st != StatusCode::CREATED && st != StatusCode::CONFLICT {
        bail!(
            "creating namespace {name}: {st}: {}",
            String::from_utf8_lossy(&b)
        );
    }
    Ok(())
}

// -------------------------------------------------------------- start-up

struct Startup {
    listening: Duration,
    ready: Duration,
    api: Api,
}

/// Polls /readyz as fast as it can (200µs between tries) from `t0`, the
/// moment the process was spawned. The kubeconfig is written before the
/// server binds, so it is read as soon as it parses.
async fn wait_ready(server: &mut Server, kubeconfig: &Path, t0: Instant) -> Result<Startup> {
    let mut api: Option<Api> = None;
    let mut listening = None;
    loop {
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("rkube did not answer /readyz within 60s");
        }
        if let Some(status) = server.child.try_wait()? {
            bail!("rkube exited during start-up: {status}");
        }
        if api.is_none() {
            api = Api::from_kubeconfig(kubeconfig, server.port).ok();
        }
        if let Some(a) = &api
            && let Ok(tcp) = tokio::net::TcpStream::connect(a.addr).await
        {
            listening.get_or_insert_with(|| t0.elapsed());
            drop(tcp);
            if let Ok(mut s) = a.connect().await
                && let Ok((StatusCode::OK, _)) =
                    call(&mut s, Method::GET, &a.uri("/readyz"), None, Bytes::new()).await
            {
                let ready = t0.elapsed();
                return Ok(Startup {
                    listening: listening.unwrap_or(ready),
                    ready,
                    api: a.clone(),
                });
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

// ----------------------------------------------------------------- creates

struct Progress {
    next: AtomicU64,
    done: AtomicU64,
    block: u64,
    marks: Mutex<Vec<(u64, Instant)>>,
}

#[derive(Default)]
struct CreateOut {
    lat_us: Vec<u32>,
    bytes: u64,
    errors: u64,
    elapsed: Duration,
    marks: Vec<(u64, Instant)>,
}

impl CreateOut {
    fn merge(&mut self, o: CreateOut) {
        self.lat_us.extend(o.lat_us);
        self.bytes += o.bytes;
        self.errors += o.errors;
    }
    fn rate(&self) -> f64 {
        self.lat_us.len() as f64 / self.elapsed.as_secs_f64()
    }
}

struct CreateJob {
    ns: String,
    prefix: String,
    /// Names run from `start` up to `limit` (exclusive).
    start: u64,
    limit: u64,
    duration: Option<Duration>,
    clients: usize,
    block: u64,
}

#[allow(clippy::too_many_arguments)]
async fn create_worker(
    mut s: Sender,
    uri: Arc<str>,
    ns: Arc<str>,
    prefix: Arc<str>,
    payload: Arc<str>,
    limit: u64,
    deadline: Option<Instant>,
    progress: Arc<Progress>,
) -> CreateOut {
    let mut out = CreateOut::default();
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let i = progress.next.fetch_add(1, Ordering::Relaxed);
        if i >= limit {
            break;
        }
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{prefix}{i}","namespace":"{ns}"}},"data":{{"payload":"{payload}"}}}}"#
        );
        let t = Instant::now();
        match call(
            &mut s,
            Method::POST,
            &uri,
            Some("application/json"),
            body.into(),
        )
        .await
        {
            Ok((StatusCode::CREATED, b)) => {
                out.lat_us
                    .push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                out.bytes += b.len() as u64;
                let done = progress.done.fetch_add(1, Ordering::Relaxed) + 1;
                if progress.block > 0 && done.is_multiple_of(progress.block) {
                    progress.marks.lock().unwrap().push((done, Instant::now()));
                }
            }
            Ok((st, b)) => {
                out.errors += 1;
                if out.errors <= 3 {
                    eprintln!("create {prefix}{i}: {st}: {}", String::from_utf8_lossy(&b));
                }
            }
            Err(e) => {
                out.errors += 1;
                if out.errors <= 3 {
                    eprintln!("create {prefix}{i}: {e:#}");
                }
            }
        }
        if out.errors > 100 {
            eprintln!("too many errors; client stops");
            break;
        }
    }
    out
}

/// `clients` concurrent clients, each on its own HTTP/2 connection, each
/// with one request in flight.
async fn run_creates(api: &Api, payload: &Arc<str>, job: &CreateJob) -> Result<CreateOut> {
    let mut senders = Vec::with_capacity(job.clients);
    for _ in 0..job.clients {
        senders.push(api.connect().await?);
    }
    let progress = Arc::new(Progress {
        next: AtomicU64::new(job.start),
        done: AtomicU64::new(job.start),
        block: job.block,
        marks: Mutex::new(Vec::new()),
    });
    let uri: Arc<str> = api
        .uri(&format!("/api/v1/namespaces/{}/configmaps", job.ns))
        .into();
    let ns: Arc<str> = job.ns.as_str().into();
    let prefix: Arc<str> = job.prefix.as_str().into();
    let t0 = Instant::now();
    progress.marks.lock().unwrap().push((job.start, t0));
    let deadline = job.duration.map(|d| t0 + d);
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|s| {
            tokio::spawn(create_worker(
                s,
                uri.clone(),
                ns.clone(),
                prefix.clone(),
                payload.clone(),
                job.limit,
                deadline,
                progress.clone(),
            ))
        })
        .collect();
    let mut out = CreateOut::default();
    for t in tasks {
        out.merge(t.await?);
    }
    out.elapsed = t0.elapsed();
    let mut marks = std::mem::take(&mut *progress.marks.lock().unwrap());
    marks.sort();
    // A failed create leaves the last block short: close it at the end.
    let done = progress.done.load(Ordering::Relaxed);
    if job.block > 0 && marks.last().is_some_and(|&(n, _)| n < done) {
        marks.push((done, t0 + out.elapsed));
    }
    out.marks = marks;
    out.lat_us.sort_unstable();
    Ok(out)
}

// -------------------------------------------------------------------- list

struct ListRun {
    total: Duration,
    first_byte: Duration,
    bytes: usize,
    items: usize,
}

/// Send to fully parsed (serde_json::Value) response.
async fn list_once(s: &mut Sender, uri: &str) -> Result<ListRun> {
    s.ready().await?;
    let req = Request::get(uri)
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()))?;
    let t0 = Instant::now();
    let resp = s.send_request(req).await?;
    let first_byte = t0.elapsed();
    if resp.status() != StatusCode::OK {
        let st = resp.status();
        let b = resp.into_body().collect().await?.to_bytes();
        bail!("list: {st}: {}", String::from_utf8_lossy(&b));
    }
    let body = resp.into_body().collect().await?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let items = v["items"].as_array().map_or(0, Vec::len);
    let total = t0.elapsed();
    Ok(ListRun {
        total,
        first_byte,
        bytes: body.len(),
        items,
    })
}

/// A GET whose body is counted and dropped as it arrives.
async fn list_drain(s: &mut Sender, uri: &str) -> Result<u64> {
    s.ready().await?;
    let req = Request::get(uri)
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()))?;
    let resp = s.send_request(req).await?;
    if resp.status() != StatusCode::OK {
        bail!("list: {}", resp.status());
    }
    let mut body = resp.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(d) = frame?.into_data() {
            n += d.len() as u64;
        }
    }
    Ok(n)
}

// ------------------------------------------------------------------- watch

const SENT_AT: &[u8] = br#""sentAt":""#;

/// The latency of one watch event line, from the `sentAt` stamp (ns since
/// `base`) that the writer put into the object.
fn event_latency(line: &[u8], now_ns: u64) -> Option<u32> {
    let at = line.windows(SENT_AT.len()).position(|w| w == SENT_AT)? + SENT_AT.len();
    let digits = &line[at..];
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    let sent: u64 = std::str::from_utf8(&digits[..end]).ok()?.parse().ok()?;
    Some((now_ns.saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32)
}

/// One watcher. `stop` holds the number of events to expect (u64::MAX while
/// the writer runs; 0 to give up).
async fn watcher(
    mut s: Sender,
    uri: String,
    base: Instant,
    ready: tokio::sync::mpsc::UnboundedSender<()>,
    mut stop: tokio::sync::watch::Receiver<u64>,
) -> Result<(Vec<u32>, u64)> {
    s.ready().await?;
    let req = Request::get(uri)
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()))?;
    let resp = s.send_request(req).await?;
    if resp.status() != StatusCode::OK {
        bail!("watch: {}", resp.status());
    }
    let _ = ready.send(());
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut lat = Vec::new();
    let mut n = 0u64;
    loop {
        if n >= *stop.borrow() {
            break;
        }
        tokio::select! {
            frame = body.frame() => match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    let now = base.elapsed().as_nanos() as u64;
                    // Usually a frame holds whole events: no copy then.
                    let whole = buf.is_empty();
                    if !whole {
                        buf.extend_from_slice(&data);
                    }
                    let chunk: &[u8] = if whole { &data } else { &buf };
                    let mut start = 0;
                    while let Some(pos) = chunk[start..].iter().position(|&b| b == b'\n') {
                        if let Some(l) = event_latency(&chunk[start..start + pos], now) {
                            lat.push(l);
                            n += 1;
                        }
                        start += pos + 1;
                    }
                    if whole {
                        buf.extend_from_slice(&data[start..]);
                    } else {
                        buf.drain(..start);
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    Ok((lat, n))
}

struct WatchOut {
    setup: Duration,
    changes: u64,
    creates: u64,
    cpu: String,
    change_errors: u64,
    write_secs: f64,
    delivered: u64,
    failed_watchers: usize,
    lat_us: Vec<u32>,
}

async fn run_watch(api: &Api, set: &Settings, ns: &str, server_pid: u32) -> Result<WatchOut> {
    let base = Instant::now();
    let per_conn = 100; // hyper's server allows 200 streams per connection
    let t0 = Instant::now();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(u64::MAX);
    let uri = api.uri(&format!(
        "/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion=0&timeoutSeconds=600"
    ));
    let mut tasks = Vec::with_capacity(set.watchers);
    let mut sender = None;
    for i in 0..set.watchers {
        if i % per_conn == 0 {
            sender = Some(api.connect().await?);
        }
        tasks.push(tokio::spawn(watcher(
            sender.clone().unwrap(),
            uri.clone(),
            base,
            ready_tx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(ready_tx);
    let mut ready = 0;
    let wait_all = async {
        while ready < set.watchers && ready_rx.recv().await.is_some() {
            ready += 1;
        }
    };
    if tokio::time::timeout(Duration::from_secs(60), wait_all)
        .await
        .is_err()
    {
        eprintln!(
            "only {ready} of {} watchers started within 60s",
            set.watchers
        );
    }
    let setup = t0.elapsed();
    eprintln!("    {ready} watchers established in {}", ms(setup));

    // The writer: half creates, then merge patches of those objects, paced
    // on a fixed schedule (late ticks catch up, so the average rate holds).
    let total = (set.watch_rate * set.watch_secs).max(2);
    let creates = total / 2;
    let filler = "w".repeat(set.watch_payload);
    let w = api.connect().await?;
    let mut iv = tokio::time::interval(Duration::from_secs_f64(1.0 / set.watch_rate as f64));
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut writes = Vec::with_capacity(total as usize);
    let tw = Instant::now();
    let cpu = CpuMark::new(server_pid);
    for k in 0..total {
        iv.tick().await;
        let mut s = w.clone();
        let (method, path, ct, body) = if k < creates {
            (
                Method::POST,
                format!("/api/v1/namespaces/{ns}/configmaps"),
                "application/json",
                format!(
                    r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"w-{k}"}},"data":{{"filler":"{filler}","sentAt":"{}"}}}}"#,
                    base.elapsed().as_nanos()
                ),
            )
        } else {
            (
                Method::PATCH,
                format!(
                    "/api/v1/namespaces/{ns}/configmaps/w-{}",
                    (k - creates) % creates
                ),
                "application/merge-patch+json",
                format!(r#"{{"data":{{"sentAt":"{}"}}}}"#, base.elapsed().as_nanos()),
            )
        };
        let uri = api.uri(&path);
        writes.push(tokio::spawn(async move {
            match call(&mut s, method, &uri, Some(ct), body.into()).await {
                Ok((st, _)) if st.is_success() => true,
                Ok((st, b)) => {
                    eprintln!("watch writer: {st}: {}", String::from_utf8_lossy(&b));
                    false
                }
                Err(e) => {
                    eprintln!("watch writer: {e:#}");
                    false
                }
            }
        }));
    }
    let mut changes = 0;
    let mut change_errors = 0;
    for t in writes {
        if t.await? {
            changes += 1;
        } else {
            change_errors += 1;
        }
    }
    let write_secs = tw.elapsed().as_secs_f64();
    let cpu = cpu.cores();
    stop_tx.send_replace(changes);
    // Let the stragglers catch up, then give up.
    let giveup = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(20)).await;
        stop_tx.send_replace(0);
        // Keep the channel open until the watchers notice.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut lat_us = Vec::with_capacity((changes as usize) * set.watchers);
    let mut delivered = 0;
    let mut failed_watchers = 0;
    for t in tasks {
        match t.await? {
            Ok((l, n)) => {
                lat_us.extend(l);
                delivered += n;
            }
            Err(e) => {
                failed_watchers += 1;
                if failed_watchers <= 3 {
                    eprintln!("watcher: {e:#}");
                }
            }
        }
    }
    giveup.abort();
    lat_us.sort_unstable();
    Ok(WatchOut {
        setup,
        changes,
        creates,
        cpu,
        change_errors,
        write_secs,
        delivered,
        failed_watchers,
        lat_us,
    })
}

// -------------------------------------------------------------------- main

struct Args {
    rkube: PathBuf,
    data_dir: PathBuf,
}

fn parse_args() -> Result<Args> {
    let mut rkube = None;
    let mut data_dir = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rkube" => rkube = it.next().map(PathBuf::from),
            "--data-dir" => data_dir = it.next().map(PathBuf::from),
            "-h" | "--help" => {
                eprintln!("usage: rkube-bench-apiserver --rkube <path> --data-dir <empty dir>");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(Args {
        rkube: rkube.ok_or_else(|| anyhow!("--rkube is required"))?,
        data_dir: data_dir.ok_or_else(|| anyhow!("--data-dir is required"))?,
    })
}

fn rss_row(report: &mut Report, label: &str, rss: u64, stored: u64) {
    let limit = 2.5 * stored as f64 + 30.0 * 1024.0 * 1024.0;
    report.row(
        format!("RSS {label}"),
        format!(
            "{:.1} MiB; stored JSON {:.1} MiB; 2.5x stored + 30 MiB = {:.1} MiB ({})",
            mib(rss),
            mib(stored),
            limit / (1024.0 * 1024.0),
            if (rss as f64) <= limit {
                "within"
            } else {
                "OVER"
            }
        ),
    );
}

fn create_row(report: &mut Report, label: &str, o: &CreateOut) {
    report.row(
        label,
        format!(
            "{:>7.0} creates/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  ({} in {:.1}s{})",
            o.rate(),
            pct(&o.lat_us, 0.50),
            pct(&o.lat_us, 0.99),
            pct(&o.lat_us, 1.0),
            thousands(o.lat_us.len() as u64),
            o.elapsed.as_secs_f64(),
            if o.errors > 0 {
                format!(", {} errors", o.errors)
            } else {
                String::new()
            }
        ),
    );
}

async fn settle() {
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn run(args: Args, set: Settings, report: &mut Report) -> Result<()> {
    let dir = &args.data_dir;
    let kubeconfig = dir.join("admin.conf");
    let payload: Arc<str> = "x".repeat(set.payload).into();

    // 5. Start-up to /readyz (a fresh data dir: includes making the PKI).
    report.section("Start-up (process spawn to /readyz 200, polled every 200us)");
    let t0 = Instant::now();
    let mut server = spawn_server(&args.rkube, dir)?;
    let st = wait_ready(&mut server, &kubeconfig, t0).await?;
    report.row(
        "fresh data dir",
        format!(
            "{}  (port open after {}; includes generating the PKI)",
            ms(st.ready),
            ms(st.listening)
        ),
    );
    let api = st.api;
    settle().await;
    let rss_idle = server.rss()?;

    let mut s = api.connect().await?;
    for ns in ["bench-list", "bench-fill", "bench-sweep", "bench-watch"] {
        create_namespace(&api, &mut s, ns).await?;
    }

    // 1b. Growth: creates/s per block while the store fills.
    let block = (set.objects / 10).max(1);
    let list_objects = set.objects.min(10_000);
    eprintln!(
        "--- growing the store to {} configmaps ({} clients)",
        thousands(set.objects),
        set.growth_clients
    );
    let growth_cpu = CpuMark::new(server.pid());
    let first = run_creates(
        &api,
        &payload,
        &CreateJob {
            ns: "bench-list".into(),
            prefix: "cm-".into(),
            start: 0,
            limit: list_objects,
            duration: None,
            clients: set.growth_clients,
            block,
        },
    )
    .await?;
    let growth_cpu_first = growth_cpu.cores();
    let mut stored = first.bytes;
    let mut stored_n = first.lat_us.len() as u64;
    settle().await;
    let rss_10k = server.rss()?;
    let rss_10k_stored = stored;
    let rss_10k_n = stored_n;

    // 2. LIST of the 10,000 in bench-list.
    let mut list_rows = Vec::new();
    {
        let mut s = api.connect().await?;
        let base = api.uri("/api/v1/namespaces/bench-list/configmaps");
        let warm = list_once(&mut s, &format!("{base}?resourceVersion=0")).await?;
        list_rows.push((
            "first LIST (rv=0; fills the watch cache)".to_owned(),
            format!(
                "{}  ({} items, {:.1} MiB)",
                ms(warm.total),
                warm.items,
                mib(warm.bytes as u64)
            ),
        ));
        for (label, uri) in [
            (
                "LIST resourceVersion=0 (watch cache)",
                format!("{base}?resourceVersion=0"),
            ),
            (
                "LIST no resourceVersion, no limit (consistent)",
                base.clone(),
            ),
        ] {
            let mut totals = Vec::new();
            let mut firsts = Vec::new();
            let mut last = None;
            for _ in 0..set.list_runs {
                let r = list_once(&mut s, &uri).await?;
                totals.push(r.total);
                firsts.push(r.first_byte);
                last = Some(r);
            }
            let last = last.ok_or_else(|| anyhow!("BENCH_LIST_RUNS=0"))?;
            let (lo, hi) = (
                totals.iter().min().copied().unwrap_or_default(),
                totals.iter().max().copied().unwrap_or_default(),
            );
            list_rows.push((
                label.to_owned(),
                format!(
                    "median {} of {} (min {}, max {}; headers after {}; {} items, {:.1} MiB)",
                    ms(median(totals)),
                    set.list_runs,
                    ms(lo),
                    ms(hi),
                    ms(median(firsts)),
                    last.items,
                    mib(last.bytes as u64)
                ),
            ));
        }
    }
    let rss_after_list = server.rss()?;

    // The rest of the growth, into another namespace.
    let mut growth = vec![first];
    if set.objects > list_objects {
        let more = run_creates(
            &api,
            &payload,
            &CreateJob {
                ns: "bench-fill".into(),
                prefix: "cm-".into(),
                start: list_objects,
                limit: set.objects,
                duration: None,
                clients: set.growth_clients,
                block,
            },
        )
        .await?;
        stored += more.bytes;
        stored_n += more.lat_us.len() as u64;
        growth.push(more);
    }
    settle().await;
    let rss_full = server.rss()?;

    report.section(&format!(
        "Creates while the store grows ({} clients, configmaps of ~{} B stored JSON)",
        set.growth_clients,
        stored.checked_div(stored_n).unwrap_or(0)
    ));
    let mut block_rates = Vec::new();
    for g in &growth {
        for pair in g.marks.windows(2) {
            let ((a, ta), (b, tb)) = (pair[0], pair[1]);
            let rate = (b - a) as f64 / (tb - ta).as_secs_f64();
            block_rates.push(rate);
            report.row(
                format!("objects {:>7} - {:>7}", thousands(a), thousands(b)),
                format!("{rate:>7.0} creates/s"),
            );
        }
    }
    let mut all = CreateOut::default();
    for g in &growth {
        all.elapsed += g.elapsed;
        all.lat_us.extend(&g.lat_us);
        all.errors += g.errors;
    }
    all.lat_us.sort_unstable();
    create_row(report, "whole growth", &all);
    report.row(
        format!("CPU (first {})", thousands(list_objects)),
        growth_cpu_first,
    );
    if let (Some(f), Some(l)) = (block_rates.first(), block_rates.last()) {
        let min = block_rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = block_rates.iter().copied().fold(0.0, f64::max);
        report.row(
            "flatness",
            format!(
                "last block / first block = {:.2}; slowest / fastest = {:.2}",
                l / f,
                min / max
            ),
        );
    }

    // 1a. Concurrency sweep, on the grown store.
    report.section(&format!(
        "Creates by concurrency (each client: own HTTP/2 connection, 1 request in flight; {}s each, store holds {} configmaps)",
        set.sweep_secs,
        thousands(stored_n)
    ));
    let mut sweep_n = 0;
    for &c in &set.clients {
        let cpu = CpuMark::new(server.pid());
        let o = run_creates(
            &api,
            &payload,
            &CreateJob {
                ns: "bench-sweep".into(),
                prefix: format!("c{c}-"),
                start: 0,
                limit: u64::MAX,
                duration: Some(Duration::from_secs(set.sweep_secs)),
                clients: c,
                block: 0,
            },
        )
        .await?;
        sweep_n += o.lat_us.len() as u64;
        stored += o.bytes;
        create_row(report, &format!("{c:>3} clients"), &o);
        report.row("    CPU", cpu.cores());
    }
    stored_n += sweep_n;

    report.section("LIST 10,000 configmaps of one namespace (send to parsed serde_json::Value)");
    if list_objects < 10_000 {
        report.row(
            "note",
            format!("only {list_objects} objects (BENCH_OBJECTS)"),
        );
    }
    for (l, v) in list_rows {
        report.row(l, v);
    }

    // 3. Watch delivery.
    report.section(&format!(
        "Watch: {} watchers on one namespace, ~{}/s changes for {}s (half creates, half merge patches)",
        set.watchers, set.watch_rate, set.watch_secs
    ));
    let w = run_watch(&api, &set, "bench-watch", server.pid()).await?;
    let expected = w.changes * set.watchers as u64;
    report.row("watchers established in", ms(w.setup));
    report.row(
        "changes",
        format!(
            "{} in {:.1}s = {:.0}/s{}",
            w.changes,
            w.write_secs,
            w.changes as f64 / w.write_secs,
            if w.change_errors > 0 {
                format!(", {} failed", w.change_errors)
            } else {
                String::new()
            }
        ),
    );
    report.row("CPU while writing", w.cpu.clone());
    report.row(
        "delivery latency (write sent to event parsed)",
        format!(
            "p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            pct(&w.lat_us, 0.50),
            pct(&w.lat_us, 0.99),
            pct(&w.lat_us, 1.0)
        ),
    );
    report.row(
        "events delivered",
        format!(
            "{} of {} expected{}",
            thousands(w.delivered),
            thousands(expected),
            if w.failed_watchers > 0 {
                format!(" ({} watchers failed)", w.failed_watchers)
            } else {
                String::new()
            }
        ),
    );
    let rss_end = server.rss()?;

    // 4. Memory.
    report.section("Memory (VmRSS of the rkube process; stored JSON = sum of create responses)");
    report.row("RSS idle after start", format!("{:.1} MiB", mib(rss_idle)));
    rss_row(
        report,
        &format!("with {} configmaps", thousands(rss_10k_n)),
        rss_10k,
        rss_10k_stored,
    );
    rss_row(
        report,
        &format!("with {} configmaps, after the LISTs", thousands(rss_10k_n)),
        rss_after_list,
        rss_10k_stored,
    );
    if growth.len() > 1 {
        let n = stored_n - sweep_n;
        let bytes: u64 = growth.iter().map(|g| g.bytes).sum();
        rss_row(
            report,
            &format!("with {} configmaps", thousands(n)),
            rss_full,
            bytes,
        );
    }
    rss_row(
        report,
        &format!(
            "at the end ({} configmaps, after the watches)",
            thousands(stored_n + w.creates)
        ),
        rss_end,
        stored,
    );

    // 5b. Restart on the filled store, then fill the watch cache with a
    // cluster-wide LIST and look at the memory again.
    report.section("Restart on the filled store");
    let total_n = stored_n + w.creates;
    drop(server);
    let t0 = Instant::now();
    let mut server = spawn_server(&args.rkube, dir)?;
    let st = wait_ready(&mut server, &kubeconfig, t0).await?;
    report.row(
        "spawn to /readyz",
        format!(
            "{} with {} configmaps stored (port open after {})",
            ms(st.ready),
            thousands(total_n),
            ms(st.listening)
        ),
    );
    settle().await;
    rss_row(report, "idle after the restart", server.rss()?, stored);
    let mut s = st.api.connect().await?;
    let t = Instant::now();
    let bytes = list_drain(&mut s, &st.api.uri("/api/v1/configmaps?resourceVersion=0")).await?;
    report.row(
        "first cluster-wide LIST rv=0 (fills the cache)",
        format!(
            "{}  ({:.1} MiB, body not parsed)",
            ms(t.elapsed()),
            mib(bytes)
        ),
    );
    drop(s);
    settle().await;
    rss_row(report, "after that LIST, idle", server.rss()?, stored);
    drop(server);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rkube-bench-apiserver: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let set = Settings::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut report = Report::default();
    let header = format!(
        "rkube API server benchmark: {} configmaps{}, {} cores, load {}",
        thousands(set.objects),
        if set.large { " (BENCH_LARGE)" } else { "" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_default()
    );
    let limit = Duration::from_secs(set.timeout);
    // block_on polls on this (the main) thread, so the server is spawned
    // from the main thread (see spawn_server).
    let result = rt.block_on(async {
        match tokio::time::timeout(limit, run(args, set, &mut report)).await {
            Ok(r) => r,
            Err(_) => Err(anyhow!("stopped after BENCH_TIMEOUT={}s", limit.as_secs())),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    println!("{header}");
    report.print();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rkube-bench-apiserver: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
