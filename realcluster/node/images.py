"""Build small OCI image archives without a registry, for `ctr images import`.

No container registry is reachable from these machines, so the real node's images are
made here from files already on the machine: busybox from Debian's busybox-static, pause
from the static Go binary in ./pause. Each archive is an OCI image layout (oci-layout,
index.json, blobs/sha256/...) with one uncompressed layer; the index names the image with
`io.containerd.image.name`, which `ctr images import` uses as the image's name.

    python realcluster/node/images.py OUTDIR [--pause PATH] [--busybox PATH]

Archives are reproducible: every tar entry has mtime 0 and owner root, so the same
inputs give the same digests.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

# examples/hello.yaml asks for busybox:1.36; the local image answers to that name too,
# so the example runs as written (the binary inside is Debian's busybox, 1.35).
BUSYBOX_NAMES = ("docker.io/library/busybox:1.36", "docker.io/taskrun/busybox:local")
PAUSE_NAME = "docker.io/taskrun/pause:local"

_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = "root:x:0:\nnogroup:x:65534:\n"


def _entry(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = link
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


class _Layer:
    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(  # noqa: SIM115 (closed by done())
            fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT
        )

    def dir(self, name: str, mode: int = 0o755) -> None:
        self.tar.addfile(_entry(name, tarfile.DIRTYPE, mode))

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.tar.addfile(_entry(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))

    def symlink(self, name: str, target: str) -> None:
        self.tar.addfile(_entry(name, tarfile.SYMTYPE, 0o777, link=target))

    def done(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def _blob(blobs: dict[str, bytes], data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest, len(data)


def write_image(out: Path, names: tuple[str, ...], layer: bytes, config: dict[str, object]) -> Path:
    """Write one OCI layout tar at `out` holding one image under every name in `names`."""
    blobs: dict[str, bytes] = {}
    layer_digest, layer_size = _blob(blobs, layer)
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "realcluster/node/images.py"}],
    }
    config_digest, config_size = _blob(blobs, json.dumps(image_config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": layer_size,
            }
        ],
    }
    manifest_digest, manifest_size = _blob(blobs, json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
                },
            }
            for name in names
        ],
    }
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_entry("blobs", tarfile.DIRTYPE, 0o755))
        tar.addfile(_entry("blobs/sha256", tarfile.DIRTYPE, 0o755))
        for digest, data in sorted(blobs.items()):
            name = "blobs/sha256/" + digest.split(":", 1)[1]
            tar.addfile(_entry(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
        for name, doc in (
            ("oci-layout", {"imageLayoutVersion": "1.0.0"}),
            ("index.json", index),
        ):
            data = json.dumps(doc, sort_keys=True).encode()
            tar.addfile(_entry(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    return out


def busybox_image(out: Path, busybox: Path) -> Path:
    applets = subprocess.run(
        [str(busybox), "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    layer = _Layer()
    for d in ("bin", "etc", "root", "proc", "sys", "dev", "var"):
        layer.dir(d)
    layer.dir("tmp", 0o1777)
    layer.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in sorted(set(applets) - {"busybox"}):
        layer.symlink(f"bin/{applet}", "busybox")
    layer.file("etc/passwd", _PASSWD.encode())
    layer.file("etc/group", _GROUP.encode())
    config: dict[str, object] = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
    }
    return write_image(out, BUSYBOX_NAMES, layer.done(), config)


def pause_image(out: Path, pause: Path) -> Path:
    layer = _Layer()
    layer.file("pause", pause.read_bytes(), 0o755)
    config: dict[str, object] = {"Entrypoint": ["/pause"], "User": "65535:65535"}
    return write_image(out, (PAUSE_NAME,), layer.done(), config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--pause", type=Path, required=True, help="static pause binary")
    parser.add_argument("--busybox", type=Path, default=None, help="static busybox binary")
    args = parser.parse_args(argv)
    busybox = args.busybox or Path(shutil.which("busybox") or "/bin/busybox")
    args.outdir.mkdir(parents=True, exist_ok=True)
    for path in (
        busybox_image(args.outdir / "busybox.tar", busybox),
        pause_image(args.outdir / "pause.tar", args.pause),
    ):
        print(f"{path} {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
