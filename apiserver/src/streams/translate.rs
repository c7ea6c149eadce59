//! Streams whose WebSocket side ends here: exec/attach over
//! `v5.channel.k8s.io` spoken to the kubelet as SPDY (upstream's
//! `StreamTranslatorHandler`), and port-forward's SPDY carried inside
//! WebSocket messages unwrapped for the kubelet (upstream's tunneling
//! handler).

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::forward::{Backend, upgrade};
use super::normal_close;
use super::spdy::{self, Frame};
use crate::http_util::Body;
use crate::status::ApiError;

/// The streams an exec or attach asked for.
#[derive(Clone, Copy)]
pub struct ExecStreams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

// Client-opened SPDY streams have odd ids.
const ERROR: u32 = 1;
const STDIN: u32 = 3;
const STDOUT: u32 = 5;
const STDERR: u32 = 7;
const RESIZE: u32 = 9;
/// v5's channel for closing a stream (its payload names the channel).
const CLOSE: u8 = 255;

/// The SPDY upgrade request for `path` at the kubelet.
fn spdy_request(path: String, protocol: &str) -> Result<Request<Body>, ApiError> {
    Request::post(path)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header("X-Stream-Protocol-Version", protocol)
        .body(http_body_util::Empty::new().boxed_unsync())
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The 101 answer to the client's WebSocket handshake, choosing `protocol`.
fn accept(req: &Request<Incoming>, protocol: &str) -> Result<Response<Body>, ApiError> {
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key header"))?;
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .header(header::SEC_WEBSOCKET_PROTOCOL, protocol)
        .body(http_body_util::Empty::new().boxed_unsync())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// exec/attach for a `v5.channel.k8s.io` client.
pub async fn exec_v5(
    backend: Backend,
    mut req: Request<Incoming>,
    path: String,
    streams: ExecStreams,
) -> Result<Response<Body>, ApiError> {
    let reply = accept(&req, super::V5_CHANNEL)?;
    let kubelet = match upgrade(&backend, spdy_request(path, "v4.channel.k8s.io")?).await? {
        Ok(upgraded) => upgraded,
        Err(refusal) => return Ok(refusal),
    };
    let client = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(client) = client.await {
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
            pump_exec(ws, kubelet, streams).await;
        }
    });
    Ok(reply)
}

async fn pump_exec(
    ws: WebSocketStream<TokioIo<Upgraded>>,
    kubelet: Upgraded,
    streams: ExecStreams,
) {
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (kubelet_rx, mut kubelet_tx) = tokio::io::split(TokioIo::new(kubelet));
    let mut opener = spdy::Opener::default();
    let mut hello = opener.syn_stream(ERROR, &[("streamtype", "error")]);
    // What the kubelet answers on, to know when it is done.
    let mut readable = 1;
    if streams.stdin {
        hello.extend(opener.syn_stream(STDIN, &[("streamtype", "stdin")]));
    }
    if streams.stdout {
        hello.extend(opener.syn_stream(STDOUT, &[("streamtype", "stdout")]));
        readable += 1;
    }
    // With a tty, stderr is merged into stdout and a resize stream exists.
    if streams.stderr && !streams.tty {
        hello.extend(opener.syn_stream(STDERR, &[("streamtype", "stderr")]));
        readable += 1;
    }
    if streams.tty {
        hello.extend(opener.syn_stream(RESIZE, &[("streamtype", "resize")]));
    }
    if kubelet_tx.write_all(&hello).await.is_err() {
        return;
    }
    // One writer towards the kubelet: client input and PING answers.
    let (to_kubelet, mut outgoing) = mpsc::channel::<Vec<u8>>(64);
    let writer = async move {
        while let Some(frame) = outgoing.recv().await {
            if kubelet_tx.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = kubelet_tx.shutdown().await;
    };
    let pongs = to_kubelet.clone();
    let down = async move {
        let mut kubelet_rx = BufReader::new(kubelet_rx);
        while let Ok(Some(frame)) = spdy::read_frame(&mut kubelet_rx).await {
            match frame {
                Frame::Data { stream, fin, data } => {
                    let channel = match stream {
                        STDOUT => 1u8,
                        STDERR => 2,
                        ERROR => 3,
                        _ => continue,
                    };
                    if !data.is_empty() {
                        let mut msg = Vec::with_capacity(data.len() + 1);
                        msg.push(channel);
                        msg.extend_from_slice(&data);
                        if ws_tx.send(Message::Binary(msg.into())).await.is_err() {
                            return;
                        }
                    }
                    if fin {
                        readable -= 1;
                        if readable == 0 {
                            break;
                        }
                    }
                }
                Frame::Control { kind, body, .. } if kind == spdy::PING => {
                    let _ = pongs.send(spdy::pong(&body)).await;
                }
                Frame::Control { .. } => {}
            }
        }
        let _ = ws_tx.send(normal_close()).await;
        let _ = ws_tx.close().await;
    };
    let up = async move {
        while let Some(Ok(msg)) = ws_rx.next().await {
            let data: Bytes = match msg {
                Message::Binary(b) => b,
                Message::Text(t) => Bytes::copy_from_slice(t.as_bytes()),
                Message::Close(_) => break,
                _ => continue,
            };
            let Some((&channel, payload)) = data.split_first() else {
                continue;
            };
            let frame = match channel {
                0 if streams.stdin => spdy::data(STDIN, payload, false),
                4 if streams.tty => spdy::data(RESIZE, payload, false),
                CLOSE if payload.first() == Some(&0) && streams.stdin => {
                    spdy::data(STDIN, &[], true)
                }
                _ => continue,
            };
            if to_kubelet.send(frame).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = down => {}
        _ = up => {}
        _ = writer => {}
    }
}

/// port-forward for a client tunnelling SPDY through WebSocket.
pub async fn port_forward_tunnel(
    backend: Backend,
    mut req: Request<Incoming>,
    path: String,
) -> Result<Response<Body>, ApiError> {
    let reply = accept(&req, super::PORT_FORWARD_TUNNEL)?;
    let kubelet = match upgrade(&backend, spdy_request(path, "portforward.k8s.io")?).await? {
        Ok(upgraded) => upgraded,
        Err(refusal) => return Ok(refusal),
    };
    let client = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(client) = client.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
        let (mut ws_tx, mut ws_rx) = ws.split();
        let (mut kubelet_rx, mut kubelet_tx) = tokio::io::split(TokioIo::new(kubelet));
        let up = async move {
            while let Some(Ok(msg)) = ws_rx.next().await {
                let data = match msg {
                    Message::Binary(b) => b,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if kubelet_tx.write_all(&data).await.is_err() {
                    break;
                }
            }
            let _ = kubelet_tx.shutdown().await;
        };
        let down = async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = kubelet_rx.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let msg = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
                if ws_tx.send(msg).await.is_err() {
                    return;
                }
            }
            let _ = ws_tx.send(normal_close()).await;
            let _ = ws_tx.close().await;
        };
        tokio::select! {
            _ = up => {}
            _ = down => {}
        }
    });
    Ok(reply)
}
