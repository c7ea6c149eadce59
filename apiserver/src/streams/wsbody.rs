//! A streamed response (a pod's log) sent as WebSocket messages when the
//! client asked for WebSocket, as upstream's `wsstream.Reader`: protocol
//! `binary.k8s.io` (or none) sends the bytes, `base64.binary.k8s.io` sends
//! them base64-encoded in text messages.

use base64::Engine;
use futures::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::normal_close;
use crate::http_util::Body;

/// Whether `req` asks for a WebSocket.
pub fn wanted(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && req.headers().contains_key(header::SEC_WEBSOCKET_KEY)
}

/// `resp` (a success) carried over the WebSocket `req` opens.
pub fn serve(mut req: Request<Incoming>, resp: Response<Body>) -> Response<Body> {
    if !resp.status().is_success() {
        return resp;
    }
    let offered: Vec<String> = super::websocket_protocols(&req);
    // Upstream prefers the client's order among those it knows.
    let chosen = offered
        .iter()
        .find(|p| matches!(p.as_str(), "binary.k8s.io" | "base64.binary.k8s.io"))
        .cloned();
    if !offered.is_empty() && chosen.is_none() {
        let mut refused = Response::new(http_body_util::Empty::new().boxed_unsync());
        *refused.status_mut() = StatusCode::BAD_REQUEST;
        return refused;
    }
    let base64 = chosen.as_deref() == Some("base64.binary.k8s.io");
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
        .unwrap_or_default();
    let mut reply = Response::new(http_body_util::Empty::new().boxed_unsync());
    *reply.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = reply.headers_mut();
    h.insert(
        header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(header::UPGRADE, http::HeaderValue::from_static("websocket"));
    if let Ok(v) = http::HeaderValue::from_str(&key) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = chosen.and_then(|p| http::HeaderValue::from_str(&p).ok()) {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    let client = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(client) = client.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
        let (mut tx, mut rx) = ws.split();
        let mut body = resp.into_body();
        let send = async {
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let msg = if base64 {
                    Message::Text(
                        base64::engine::general_purpose::STANDARD
                            .encode(&data)
                            .into(),
                    )
                } else {
                    Message::Binary(data)
                };
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(normal_close()).await;
        };
        // The client's close ends the stream early.
        let closed = async { while let Some(Ok(_)) = rx.next().await {} };
        tokio::select! {
            _ = send => {}
            _ = closed => {}
        }
    });
    reply
}
