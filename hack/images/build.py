#!/usr/bin/env python3
"""Builds the OCI image archives rkube's tests use, from Debian packages and
without a registry: `pause` (a tiny static program) and `busybox` (from
busybox-static, with its applet links). Each archive is an OCI image layout
in a tar, with the image names as annotations so that
`ctr -n k8s.io images import` (and the kubelet's --image-archive-dir) tag
them as upstream tests name them.

An `etcd` image (Debian's etcd-server and the libraries it links, for gRPC
health probes, as upstream's probe tests use) and an `entrypoint-tester`
(busybox with both an ENTRYPOINT and a CMD) are built when asked for.

usage: build.py OUTDIR [IMAGE...]   (IMAGE: pause, busybox, entrypoint-tester, etcd; default
pause and busybox)
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
# Fixed timestamps keep the digests stable between builds.
EPOCH = 0
CREATED = "1970-01-01T00:00:00Z"


def add_file(tar, path, data, mode=0o755):
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mode = mode
    info.mtime = EPOCH
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar, path, mode=0o755):
    info = tarfile.TarInfo(path)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.mtime = EPOCH
    tar.addfile(info)


def add_link(tar, path, target):
    info = tarfile.TarInfo(path)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mtime = EPOCH
    tar.addfile(info)


def blob(content):
    return hashlib.sha256(content).hexdigest(), content


def image_archive(out, names, layer, config):
    """Writes an OCI layout tar holding one image with one layer."""
    layer_digest, layer = blob(layer)
    config = dict(config)
    config.update(
        {
            "created": CREATED,
            "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                os.uname().machine, os.uname().machine
            ),
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
            "history": [{"created": CREATED, "created_by": "rkube hack/images/build.py"}],
        }
    )
    config_digest, config_bytes = blob(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + config_digest,
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": "sha256:" + layer_digest,
                "size": len(layer),
            }
        ],
    }
    manifest_digest, manifest_bytes = blob(json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + manifest_digest,
                "size": len(manifest_bytes),
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
                },
            }
            for name in names
        ],
    }
    tmp = out + ".tmp"
    with tarfile.open(tmp, "w") as tar:
        add_file(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), 0o644)
        add_file(tar, "index.json", json.dumps(index).encode(), 0o644)
        add_dir(tar, "blobs")
        add_dir(tar, "blobs/sha256")
        for digest, content in (
            (layer_digest, layer),
            (config_digest, config_bytes),
            (manifest_digest, manifest_bytes),
        ):
            add_file(tar, "blobs/sha256/" + digest, content, 0o644)
    os.replace(tmp, out)
    print(f"{out}: {', '.join(names)} sha256:{manifest_digest}")


def layer_tar(fill):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        fill(tar)
    return buf.getvalue()


def pause(outdir):
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "pause")
        cc = os.environ.get("CC", "cc")
        subprocess.run(
            [cc, "-static", "-Os", "-s", "-o", binary, os.path.join(HERE, "pause.c")],
            check=True,
        )
        with open(binary, "rb") as f:
            program = f.read()
    layer = layer_tar(lambda tar: add_file(tar, "pause", program))
    image_archive(
        os.path.join(outdir, "pause.tar"),
        ["registry.k8s.io/pause:3.10"],
        layer,
        {"config": {"Entrypoint": ["/pause"], "User": "65535:65535"}},
    )


def busybox_layer():
    path = "/bin/busybox"
    with open(path, "rb") as f:
        program = f.read()
    if b"ld-linux" in program[:4096] or subprocess.run(
        ["ldd", path], capture_output=True, text=True
    ).stdout.strip() not in ("", "not a dynamic executable", "\tnot a dynamic executable"):
        sys.exit(f"{path} is not static: install busybox-static (hack/install-deps.sh)")
    applets = subprocess.run(
        [path, "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()

    def fill(tar):
        dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "var", "var/www"}
        for d in sorted(dirs):
            add_dir(tar, d)
        add_dir(tar, "tmp", 0o1777)
        add_file(tar, "bin/busybox", program)
        for applet in applets:
            if applet == "bin/busybox":
                continue
            if os.path.dirname(applet) not in dirs:
                continue
            depth = applet.count("/")
            add_link(tar, applet, "../" * depth + "bin/busybox")
        add_file(
            tar,
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
            0o644,
        )
        add_file(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644)

    return layer_tar(fill)


PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def busybox(outdir):
    image_archive(
        os.path.join(outdir, "busybox.tar"),
        ["docker.io/library/busybox:latest", "docker.io/library/busybox:1.36"],
        busybox_layer(),
        {"config": {"Cmd": ["sh"], "Env": [PATH]}},
    )


def entrypoint_tester(outdir):
    """Busybox with both an ENTRYPOINT and a CMD (upstream's agnhost
    entrypoint-tester plays this part): it echoes what it was started with."""
    image_archive(
        os.path.join(outdir, "entrypoint-tester.tar"),
        ["rkube.local/entrypoint-tester:1.0"],
        busybox_layer(),
        {
            "config": {
                "Entrypoint": ["/bin/echo", "entrypoint"],
                "Cmd": ["default", "arguments"],
                "Env": [PATH],
            }
        },
    )


def etcd(outdir):
    path = "/usr/bin/etcd"
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: install etcd-server (hack/install-deps.sh)")
    version = subprocess.run(
        [path, "--version"], check=True, capture_output=True, text=True
    ).stdout.split("\n")[0].split()[-1]
    # The shared libraries it links, at the paths ldd resolves them to.
    libs = []
    for line in subprocess.run(["ldd", path], capture_output=True, text=True).stdout.splitlines():
        parts = line.split()
        lib = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if lib.startswith("/"):
            libs.append(lib)

    def fill(tar):
        dirs = set()
        for target in ["usr/local/bin/etcd"] + [lib.lstrip("/") for lib in libs]:
            d = os.path.dirname(target)
            while d and d not in dirs:
                dirs.add(d)
                d = os.path.dirname(d)
        for d in sorted(dirs):
            add_dir(tar, d)
        add_dir(tar, "tmp", 0o1777)
        add_dir(tar, "var/etcd", 0o700)
        with open(path, "rb") as f:
            add_file(tar, "usr/local/bin/etcd", f.read())
        for lib in libs:
            with open(os.path.realpath(lib), "rb") as f:
                add_file(tar, lib.lstrip("/"), f.read())

    image_archive(
        os.path.join(outdir, "etcd.tar"),
        [f"registry.k8s.io/etcd:{version}", "registry.k8s.io/etcd:latest"],
        layer_tar(fill),
        {
            "config": {
                "Entrypoint": ["/usr/local/bin/etcd"],
                "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "ETCD_DATA_DIR=/var/etcd/data"],
            }
        },
    )


IMAGES = {
    "pause": pause,
    "busybox": busybox,
    "entrypoint-tester": entrypoint_tester,
    "etcd": etcd,
}


def main():
    if len(sys.argv) < 2 or any(a not in IMAGES for a in sys.argv[2:]):
        sys.exit(__doc__)
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    for name in sys.argv[2:] or ["pause", "busybox"]:
        IMAGES[name](outdir)


if __name__ == "__main__":
    main()
