"""Exec, port-forward and raw WebSocket streams against the `web` pod (busybox
httpd on 8080 serving "hello") with the official Python client.

Usage: python_streams.py KUBECONFIG. Prints "ok" on success; any failure raises.
"""

import sys
import time

import websocket
from kubernetes import client, config
from kubernetes.stream import portforward, stream


def channels(ws, deadline):
    """Reads a channel.k8s.io stream to its end: channel -> bytes."""
    got = {}
    while time.time() < deadline:
        try:
            opcode, data = ws.recv_data()
        except websocket.WebSocketConnectionClosedException:
            break
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
        if data:
            got[data[0]] = got.get(data[0], b"") + data[1:]
    return got


def main(kubeconfig: str) -> None:
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()

    out = stream(core.connect_get_namespaced_pod_exec, "web", "default",
                 command=["sh", "-c", "echo py"], stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "py\n", repr(out)

    # Interactive: stdin in, stdout back, and the exit code.
    resp = stream(core.connect_get_namespaced_pod_exec, "web", "default",
                  command=["sh", "-c", "read line; echo got $line; exit 5"],
                  stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    resp.write_stdin("abc\n")
    resp.run_forever(timeout=20)
    # The exit code first: reading everything clears the error channel too.
    assert resp.returncode == 5, resp.returncode
    assert resp.read_stdout() == "got abc\n", "no echo"

    pf = portforward(core.connect_get_namespaced_pod_portforward, "web", "default", ports="8080")
    sock = pf.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET /index.html HTTP/1.0\r\nHost: web\r\n\r\n")
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    assert data.startswith(b"HTTP/1.") and data.endswith(b"hello\n"), data

    # Raw WebSockets as upstream's conformance tests open them.
    cfg = client.Configuration.get_default_copy()
    base = cfg.host.replace("https://", "wss://")
    ssl = {"certfile": cfg.cert_file, "keyfile": cfg.key_file, "ca_certs": cfg.ssl_ca_cert}
    ws = websocket.create_connection(
        base + "/api/v1/namespaces/default/pods/web/exec?command=echo&command=remote&stdout=true&stderr=true",
        subprotocols=["channel.k8s.io"], sslopt=ssl)
    got = channels(ws, time.time() + 20)
    assert got.get(1) == b"remote\n", got

    ws = websocket.create_connection(
        base + "/api/v1/namespaces/default/pods/web/log?container=web",
        subprotocols=["binary.k8s.io"], sslopt=ssl)
    text = b""
    deadline = time.time() + 20
    while b"serving" not in text and time.time() < deadline:
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
        text += data
    assert b"serving" in text, text
    ws.close()
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
