//! `/containerLogs/{namespace}/{pod}/{container}`: CRI log files read as
//! upstream's `kuberuntime/logs` does. A file line is `<RFC3339Nano time>
//! <stream> <tag> <text>`; tag `P` is a partial line joined with the next
//! one. `tailLines` counts file lines, `sinceTime`/`sinceSeconds` drop
//! older lines, `limitBytes` cuts the output (timestamp prefixes included).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use k8s_cri::v1 as cri;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::{Body, Server, text};
use crate::runtime::{ContainerRecord, ContainerState};

/// How often a followed file is checked for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// How often a followed container is asked whether it still runs.
const RUNNING_CHECK: Duration = Duration::from_secs(1);

/// The PodLogOptions of the query, as upstream decodes them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<u64>,
    pub since: Option<DateTime<Utc>>,
    /// `stream=Stdout|Stderr` (upstream's split streams): only that one;
    /// None is both, interleaved.
    pub stream: Option<&'static str>,
}

/// Go's strconv.ParseBool, which the parameter codec uses.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Why a query is refused: 400 when it does not decode, 422 when it is
/// invalid (upstream's bodies, JSON-looking text).
#[derive(Debug, PartialEq)]
pub enum QueryError {
    Decode,
    Invalid,
}

impl LogOptions {
    pub fn from_query(pairs: &[(String, String)], now: DateTime<Utc>) -> Result<Self, QueryError> {
        let mut o = LogOptions::default();
        let mut since_seconds = None;
        let mut since_time = None;
        let mut tail = None;
        let mut limit = None;
        for (k, v) in pairs {
            let int = || v.parse::<i64>().map_err(|_| QueryError::Decode);
            let flag = || parse_bool(v).ok_or(QueryError::Decode);
            match k.as_str() {
                "follow" => o.follow = flag()?,
                "previous" => o.previous = flag()?,
                "timestamps" => o.timestamps = flag()?,
                "tailLines" => tail = Some(int()?),
                // The old name; "all" means no limit.
                "tail" if v == "all" => tail = None,
                "tail" => tail = Some(int()?),
                "limitBytes" => limit = Some(int()?),
                "sinceSeconds" => since_seconds = Some(int()?),
                "stream" => {
                    o.stream = match v.as_str() {
                        "All" => None,
                        "Stdout" => Some("stdout"),
                        "Stderr" => Some("stderr"),
                        _ => return Err(QueryError::Invalid),
                    }
                }
                "sinceTime" => {
                    since_time = Some(
                        DateTime::parse_from_rfc3339(v)
                            .map_err(|_| QueryError::Decode)?
                            .with_timezone(&Utc),
                    )
                }
                _ => {}
            }
        }
        // upstream's ValidatePodLogOptions
        if tail.is_some_and(|t| t < 0)
            || limit.is_some_and(|l| l < 1)
            || since_seconds.is_some_and(|s| s < 1)
            || (since_seconds.is_some() && since_time.is_some())
            // One stream and a tail can't be served from one file.
            || (o.stream.is_some() && tail.is_some())
        {
            return Err(QueryError::Invalid);
        }
        o.tail_lines = tail.map(|t| t as usize);
        o.limit_bytes = limit.map(|l| l as u64);
        o.since = since_time.or_else(|| since_seconds.map(|s| now - chrono::Duration::seconds(s)));
        Ok(o)
    }
}

/// One parsed line of a CRI log file.
#[derive(Debug, PartialEq)]
pub struct CriLine<'a> {
    pub time: DateTime<Utc>,
    pub stream: &'a str,
    pub partial: bool,
    /// The text, with its newline unless the line is partial.
    pub content: &'a [u8],
}

/// Parses one file line (with or without its trailing newline).
pub fn parse_cri_line(line: &[u8]) -> Option<CriLine<'_>> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(fields.next()?).ok()?;
    let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    let stream = std::str::from_utf8(fields.next()?).ok()?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let tag = fields.next()?;
    let partial = tag.split(|b| *b == b':').next() == Some(b"P");
    let mut content = fields.next().unwrap_or_default();
    if partial && content.last() == Some(&b'\n') {
        content = &content[..content.len() - 1];
    }
    Some(CriLine {
        time,
        stream,
        partial,
        content,
    })
}

/// The offset of the first of the last `n` lines of `data` (a trailing
/// line without its newline counts as a line).
pub fn tail_offset(data: &[u8], n: usize) -> usize {
    if n == 0 {
        return data.len();
    }
    let mut end = data.len();
    if data.last() == Some(&b'\n') {
        end -= 1;
    }
    let mut seen = 0;
    for i in (0..end).rev() {
        if data[i] == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

/// Turns parsed lines into output as upstream's logWriter: `since`
/// filtering, one timestamp prefix per joined line, the byte limit.
#[derive(Debug)]
pub struct LogWriter {
    since: Option<DateTime<Utc>>,
    timestamps: bool,
    stream: Option<&'static str>,
    remain: Option<u64>,
    /// Whether the next line starts a new output line (no partial before).
    at_line_start: bool,
}

impl LogWriter {
    pub fn new(opts: &LogOptions) -> Self {
        LogWriter {
            since: opts.since,
            timestamps: opts.timestamps,
            stream: opts.stream,
            remain: opts.limit_bytes,
            at_line_start: true,
        }
    }

    /// Whether the byte limit is used up.
    pub fn done(&self) -> bool {
        self.remain == Some(0)
    }

    /// Appends the output of one file line to `out`.
    pub fn write(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        if self.done() {
            return;
        }
        let Some(line) = parse_cri_line(raw) else {
            return;
        };
        if self.stream.is_some_and(|s| s != line.stream) {
            return;
        }
        let add_prefix = self.at_line_start;
        self.at_line_start = !line.partial;
        if self.since.is_some_and(|s| line.time < s) {
            return;
        }
        let mut chunk = Vec::with_capacity(line.content.len() + 31);
        if self.timestamps && add_prefix {
            chunk.extend_from_slice(
                line.time
                    .to_rfc3339_opts(SecondsFormat::Nanos, true)
                    .as_bytes(),
            );
            chunk.push(b' ');
        }
        chunk.extend_from_slice(line.content);
        if let Some(remain) = &mut self.remain {
            chunk.truncate((*remain).min(usize::MAX as u64) as usize);
            *remain -= chunk.len() as u64;
        }
        out.extend_from_slice(&chunk);
    }

    /// The output of every complete line in `data`; the length consumed
    /// (an unfinished last line is left for later).
    pub fn write_lines(&mut self, data: &[u8], out: &mut Vec<u8>) -> usize {
        let mut used = 0;
        while let Some(nl) = data[used..].iter().position(|b| *b == b'\n') {
            self.write(&data[used..used + nl + 1], out);
            used += nl + 1;
        }
        used
    }
}

/// Which container's log a request reads, as upstream's
/// validateContainerLogStatus decides; Err is its 400 message.
pub fn pick_container_id(
    record: &ContainerRecord,
    pod: &str,
    previous: bool,
) -> Result<String, String> {
    let name = &record.name;
    let terminated_last = matches!(record.last_state, Some(ContainerState::Exited { .. }))
        && !record.last_container_id.is_empty();
    if previous {
        if !terminated_last {
            return Err(format!(
                "previous terminated container \"{name}\" in pod \"{pod}\" not found"
            ));
        }
        return Ok(record.last_container_id.clone());
    }
    match &record.state {
        ContainerState::Running { .. } | ContainerState::Exited { .. }
            if !record.container_id.is_empty() =>
        {
            Ok(record.container_id.clone())
        }
        _ if terminated_last => Ok(record.last_container_id.clone()),
        ContainerState::Exited { .. } => Err(format!(
            "container \"{name}\" in pod \"{pod}\" is terminated"
        )),
        ContainerState::Waiting { reason, .. } => Err(match reason.as_str() {
            "ErrImagePull" => {
                format!(
                    "container \"{name}\" in pod \"{pod}\" is waiting to start: image can't be pulled"
                )
            }
            "ImagePullBackOff" => format!(
                "container \"{name}\" in pod \"{pod}\" is waiting to start: trying and failing to pull image"
            ),
            _ => format!("container \"{name}\" in pod \"{pod}\" is waiting to start: {reason}"),
        }),
        ContainerState::Running { .. } => Err(format!(
            "container \"{name}\" in pod \"{pod}\" is waiting to start - no logs yet"
        )),
    }
}

fn bad_request(msg: &str) -> Response<Body> {
    text(StatusCode::BAD_REQUEST, msg)
}

impl Server {
    /// Where the container's log is: the path recorded when it was
    /// created, else the one the runtime reports.
    async fn log_path(&self, container_id: &str) -> Option<PathBuf> {
        let id = container_id.rsplit("://").next().unwrap_or(container_id);
        if let Some(p) = self.runtime.log_path(id) {
            return Some(p);
        }
        let status = self
            .runtime
            .cri()
            .runtime
            .clone()
            .container_status(cri::ContainerStatusRequest {
                container_id: id.to_owned(),
                verbose: false,
            })
            .await
            .ok()?
            .into_inner()
            .status?;
        (!status.log_path.is_empty()).then(|| PathBuf::from(status.log_path))
    }

    pub(super) async fn container_logs(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        query: &[(String, String)],
    ) -> Response<Body> {
        if pod.is_empty() {
            return bad_request(r#"{"message": "Missing podID."}"#);
        }
        if container.is_empty() {
            return bad_request(r#"{"message": "Missing container name."}"#);
        }
        if ns.is_empty() {
            return bad_request(r#"{"message": "Missing podNamespace."}"#);
        }
        let opts = match LogOptions::from_query(query, Utc::now()) {
            Ok(o) => o,
            Err(QueryError::Decode) => {
                return bad_request(r#"{"message": "Unable to decode query."}"#);
            }
            Err(QueryError::Invalid) => {
                return text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    r#"{"message": "Invalid request."}"#,
                );
            }
        };
        let Some(view) = self.runtime.find_pod(ns, pod) else {
            return text(
                StatusCode::NOT_FOUND,
                &format!("pod {pod:?} does not exist"),
            );
        };
        let record = view.status.all().find(|c| c.name == container);
        let Some(record) = record else {
            return text(
                StatusCode::NOT_FOUND,
                &format!("container {container:?} not found in pod {pod:?}"),
            );
        };
        let id = match pick_container_id(record, pod, opts.previous) {
            Ok(id) => id,
            Err(msg) => return bad_request(&msg),
        };
        let Some(path) = self.log_path(&id).await else {
            return bad_request(&format!(
                "failed to get container status {:?}: container not found",
                id.rsplit("://").next().unwrap_or(&id)
            ));
        };
        let data = match tokio::fs::read(&path).await {
            Ok(d) => d,
            Err(e) => {
                return bad_request(&format!(
                    "failed to open log file {:?}: {e}",
                    path.display()
                ));
            }
        };
        // Only complete lines: a line being written is read when done.
        let complete = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let start = opts
            .tail_lines
            .map_or(0, |n| tail_offset(&data[..complete], n));
        let mut writer = LogWriter::new(&opts);
        let mut out = Vec::new();
        writer.write_lines(&data[start..complete], &mut out);
        let running =
            matches!(record.state, ContainerState::Running { .. }) && id == record.container_id;
        if !opts.follow || writer.done() || !running {
            return plain(
                Full::new(Bytes::from(out))
                    .map_err(|e| match e {})
                    .boxed_unsync(),
            );
        }
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
        let runtime = self.runtime.clone();
        let raw_id = id.rsplit("://").next().unwrap_or(&id).to_owned();
        tokio::spawn(async move {
            if !out.is_empty() && tx.send(Ok(Frame::data(Bytes::from(out)))).await.is_err() {
                return;
            }
            follow(path, complete as u64, writer, tx, runtime, raw_id).await;
        });
        plain(StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed_unsync())
    }
}

fn plain(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    resp
}

/// Whether the runtime still runs the container.
async fn still_running(runtime: &crate::cri::CriRuntime, id: &str) -> bool {
    let status = runtime
        .cri()
        .runtime
        .clone()
        .container_status(cri::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: false,
        })
        .await;
    match status {
        Ok(r) => r.into_inner().status.is_some_and(|s| {
            s.state == cri::ContainerState::ContainerRunning as i32
                || s.state == cri::ContainerState::ContainerCreated as i32
        }),
        Err(_) => false,
    }
}

/// Streams lines appended to `path` from `pos` until the container ends,
/// the byte limit is reached or the client goes away.
async fn follow(
    path: PathBuf,
    mut pos: u64,
    mut writer: LogWriter,
    tx: mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
    runtime: std::sync::Arc<crate::cri::CriRuntime>,
    id: String,
) {
    let mut pending = Vec::new();
    let mut last_check = tokio::time::Instant::now();
    loop {
        let mut ended = false;
        if last_check.elapsed() >= RUNNING_CHECK {
            last_check = tokio::time::Instant::now();
            // Read once more after the exit: its last lines are there.
            ended = !still_running(&runtime, &id).await;
        }
        match read_from(&path, pos).await {
            Ok(new) if !new.is_empty() => {
                pos += new.len() as u64;
                pending.extend_from_slice(&new);
                let mut out = Vec::new();
                let used = writer.write_lines(&pending, &mut out);
                pending.drain(..used);
                if !out.is_empty() && tx.send(Ok(Frame::data(Bytes::from(out)))).await.is_err() {
                    return;
                }
                if writer.done() {
                    return;
                }
            }
            Ok(_) => {}
            // Removed with its pod: nothing more will come.
            Err(_) => return,
        }
        if ended || tx.is_closed() {
            return;
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

async fn read_from(path: &Path, pos: u64) -> std::io::Result<Vec<u8>> {
    let mut f = tokio::fs::File::open(path).await?;
    f.seek(std::io::SeekFrom::Start(pos)).await?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).await?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2024-01-01T00:00:01.000000001Z stdout F one\n\
2024-01-01T00:00:02.5Z stderr F two\n\
2024-01-01T00:00:03Z stdout P thr\n\
2024-01-01T00:00:04Z stdout F ee\n\
2024-01-01T00:00:05Z stdout F four\n";

    fn render(opts: &LogOptions, data: &str) -> String {
        let start = opts
            .tail_lines
            .map_or(0, |n| tail_offset(data.as_bytes(), n));
        let mut w = LogWriter::new(opts);
        let mut out = Vec::new();
        w.write_lines(&data.as_bytes()[start..], &mut out);
        String::from_utf8(out).unwrap()
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_cri_lines() {
        let l = parse_cri_line(b"2024-01-01T00:00:03Z stdout P thr\n").unwrap();
        assert!(l.partial);
        assert_eq!(l.content, b"thr");
        assert_eq!(l.stream, "stdout");
        let l = parse_cri_line(b"2024-01-01T00:00:03.25Z stderr F a b c\n").unwrap();
        assert!(!l.partial);
        assert_eq!(l.content, b"a b c\n");
        assert_eq!(l.time.timestamp_subsec_nanos(), 250_000_000);
        // An empty line is still a line.
        let l = parse_cri_line(b"2024-01-01T00:00:03Z stdout F \n").unwrap();
        assert_eq!(l.content, b"\n");
        assert!(parse_cri_line(b"garbage\n").is_none());
        assert!(parse_cri_line(b"2024-01-01T00:00:03Z other F x\n").is_none());
    }

    #[test]
    fn joins_partial_lines() {
        assert_eq!(
            render(&LogOptions::default(), LOG),
            "one\ntwo\nthree\nfour\n"
        );
    }

    #[test]
    fn timestamps_once_per_joined_line() {
        let opts = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            render(&opts, LOG),
            "2024-01-01T00:00:01.000000001Z one\n\
             2024-01-01T00:00:02.500000000Z two\n\
             2024-01-01T00:00:03.000000000Z three\n\
             2024-01-01T00:00:05.000000000Z four\n"
        );
    }

    #[test]
    fn tail_counts_file_lines() {
        let tail = |n| LogOptions {
            tail_lines: Some(n),
            ..Default::default()
        };
        assert_eq!(render(&tail(1), LOG), "four\n");
        assert_eq!(render(&tail(2), LOG), "ee\nfour\n");
        assert_eq!(render(&tail(0), LOG), "");
        assert_eq!(render(&tail(100), LOG), "one\ntwo\nthree\nfour\n");
        assert_eq!(tail_offset(b"a\nb", 1), 2);
        assert_eq!(tail_offset(b"", 3), 0);
    }

    #[test]
    fn one_stream_only() {
        let opts = LogOptions {
            stream: Some("stderr"),
            ..Default::default()
        };
        assert_eq!(render(&opts, LOG), "two\n");
        let opts = LogOptions {
            stream: Some("stdout"),
            ..Default::default()
        };
        assert_eq!(render(&opts, LOG), "one\nthree\nfour\n");
    }

    #[test]
    fn since_drops_older_lines() {
        let opts = LogOptions {
            since: Some("2024-01-01T00:00:02.5Z".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(render(&opts, LOG), "two\nthree\nfour\n");
    }

    #[test]
    fn limit_bytes_cuts_output() {
        let opts = LogOptions {
            limit_bytes: Some(6),
            ..Default::default()
        };
        assert_eq!(render(&opts, LOG), "one\ntw");
        let opts = LogOptions {
            limit_bytes: Some(35),
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(render(&opts, LOG), "2024-01-01T00:00:01.000000001Z one\n");
    }

    #[test]
    fn unfinished_lines_wait() {
        let mut w = LogWriter::new(&LogOptions::default());
        let mut out = Vec::new();
        let data = b"2024-01-01T00:00:01Z stdout F one\n2024-01-01T00:00:02Z std";
        assert_eq!(w.write_lines(data, &mut out), 34);
        assert_eq!(out, b"one\n");
    }

    #[test]
    fn decodes_and_validates_the_query() {
        let now: DateTime<Utc> = "2024-01-01T00:01:00Z".parse().unwrap();
        let o = LogOptions::from_query(
            &q(&[
                ("follow", "true"),
                ("tailLines", "2"),
                ("timestamps", "1"),
                ("limitBytes", "10"),
                ("sinceSeconds", "30"),
            ]),
            now,
        )
        .unwrap();
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!(o.tail_lines, Some(2));
        assert_eq!(o.limit_bytes, Some(10));
        assert_eq!(o.since, Some("2024-01-01T00:00:30Z".parse().unwrap()));
        let o = LogOptions::from_query(&q(&[("sinceTime", "2024-01-01T00:00:10Z")]), now).unwrap();
        assert_eq!(o.since, Some("2024-01-01T00:00:10Z".parse().unwrap()));
        assert_eq!(
            LogOptions::from_query(&q(&[("tail", "all"), ("stream", "All")]), now).unwrap(),
            LogOptions::default()
        );
        let o = LogOptions::from_query(&q(&[("stream", "Stdout")]), now).unwrap();
        assert_eq!(o.stream, Some("stdout"));
        assert_eq!(
            LogOptions::from_query(&q(&[("tailLines", "x")]), now),
            Err(QueryError::Decode)
        );
        assert_eq!(
            LogOptions::from_query(&q(&[("follow", "yes")]), now),
            Err(QueryError::Decode)
        );
        for bad in [
            &[("tailLines", "-1")][..],
            &[("limitBytes", "0")],
            &[("sinceSeconds", "0")],
            &[("sinceSeconds", "5"), ("sinceTime", "2024-01-01T00:00:10Z")],
            &[("stream", "Both")],
            &[("stream", "Stderr"), ("tailLines", "1")],
        ] {
            assert_eq!(
                LogOptions::from_query(&q(bad), now),
                Err(QueryError::Invalid),
                "{bad:?}"
            );
        }
    }

    fn record(state: ContainerState, last: Option<ContainerState>) -> ContainerRecord {
        ContainerRecord {
            name: "c".into(),
            container_id: "containerd://cur".into(),
            image: String::new(),
            image_id: String::new(),
            state,
            last_container_id: if last.is_some() {
                "containerd://old".into()
            } else {
                String::new()
            },
            last_state: last,
            ready: None,
            started: None,
            restart_count: 0,
        }
    }

    #[test]
    fn picks_the_container_as_upstream() {
        let now = Utc::now();
        let running = ContainerState::Running { started_at: now };
        let exited = ContainerState::Exited {
            exit_code: 1,
            reason: "Error".into(),
            message: String::new(),
            started_at: now,
            finished_at: now,
        };
        let waiting = |r: &str| ContainerState::Waiting {
            reason: r.into(),
            message: String::new(),
        };
        let r = record(running.clone(), None);
        assert_eq!(
            pick_container_id(&r, "p", false).unwrap(),
            "containerd://cur"
        );
        assert_eq!(
            pick_container_id(&r, "p", true).unwrap_err(),
            "previous terminated container \"c\" in pod \"p\" not found"
        );
        let r = record(running, Some(exited.clone()));
        assert_eq!(
            pick_container_id(&r, "p", true).unwrap(),
            "containerd://old"
        );
        let r = record(waiting("CrashLoopBackOff"), Some(exited));
        assert_eq!(
            pick_container_id(&r, "p", false).unwrap(),
            "containerd://old"
        );
        let mut r = record(waiting("ContainerCreating"), None);
        r.container_id.clear();
        assert_eq!(
            pick_container_id(&r, "p", false).unwrap_err(),
            "container \"c\" in pod \"p\" is waiting to start: ContainerCreating"
        );
    }
}
