"""Image archives in every form people have, built with tarfile and json (no golden files).

``Img`` is an image's raw parts; the builders lay them out as Docker 20.10, Docker 25+, an OCI
layout (oci-archive), a skopeo ``dir:``, … in a :class:`Tar` whose member order tests control.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

from tests.imagegen import config_for, layer_tar

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hexof(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


@dataclass
class Img:
    layers: list[bytes]
    config: bytes
    tags: list[str] = field(default_factory=list)

    @property
    def config_digest(self) -> str:
        return sha(self.config)

    @property
    def diff_ids(self) -> list[str]:
        return [sha(layer) for layer in self.layers]


def make_img(seed: int, n_layers: int = 2, tags: list[str] | None = None, **config: Any) -> Img:
    rng = random.Random(seed)
    layers = [
        layer_tar({f"d{seed}/f{i}": rng.randbytes(rng.randrange(100, 3000))})
        for i in range(n_layers)
    ]
    return Img(layers, config_for(layers, config or None), list(tags or []))


class Tar:
    """Members in the order added: files, directories, symlinks, hard links."""

    def __init__(self) -> None:
        self._members: list[tuple[tarfile.TarInfo, bytes | None]] = []

    def file(self, name: str, data: bytes) -> Tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        self._members.append((info, data))
        return self

    def dir(self, name: str) -> Tar:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        self._members.append((info, None))
        return self

    def symlink(self, name: str, target: str) -> Tar:
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        self._members.append((info, None))
        return self

    def hardlink(self, name: str, target: str) -> Tar:
        info = tarfile.TarInfo(name)
        info.type = tarfile.LNKTYPE
        info.linkname = target
        self._members.append((info, None))
        return self

    def names(self) -> list[str]:
        return [info.name for info, _ in self._members]

    def move_to_end(self, name: str) -> Tar:
        """Metadata last, as some tools write it."""
        found = [m for m in self._members if m[0].name == name]
        self._members = [m for m in self._members if m[0].name != name] + found
        return self

    def replace(self, name: str, data: bytes) -> Tar:
        for i, (info, _) in enumerate(self._members):
            if info.name == name:
                info.size = len(data)
                self._members[i] = (info, data)
        return self

    def get(self, name: str) -> bytes:
        for info, data in self._members:
            if info.name == name and data is not None:
                return data
        raise KeyError(name)

    def bytes(self, fmt: int = tarfile.PAX_FORMAT) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
            for info, data in self._members:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()

    def write(self, path: Path) -> Path:
        path.write_bytes(self.bytes())
        return path


# -- Docker 20.10 ---------------------------------------------------------------------------------
def docker_legacy(tar: Tar, images: list[Img], *, gzip_layers: bool = False) -> Tar:
    """``<hex>.json`` configs, ``<v1id>/layer.tar`` layers (each once), ``manifest.json``."""
    entries = []
    written: dict[str, str] = {}
    for img in images:
        tar.file(f"{hexof(img.config)}.json", img.config)
        names = []
        for layer in img.layers:
            key = sha(layer)
            if key not in written:
                v1 = hexof(f"{len(written)}{key}".encode())
                data = gz(layer) if gzip_layers else layer
                tar.dir(f"{v1}/").file(f"{v1}/VERSION", b"1.0").file(f"{v1}/json", b"{}")
                tar.file(f"{v1}/layer.tar", data)
                written[key] = f"{v1}/layer.tar"
            names.append(written[key])
        entries.append(
            {"Config": f"{hexof(img.config)}.json", "RepoTags": img.tags or None, "Layers": names}
        )
    tar.file("manifest.json", json.dumps(entries).encode())
    return tar


# -- OCI layouts ------------------------------------------------------------------------------------
def oci_manifest(img: Img, layer_blobs: list[bytes], media: str = "tar+gzip") -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(img.config), "size": len(img.config)},
            "layers": [
                {
                    "mediaType": f"application/vnd.oci.image.layer.v1.{media}",
                    "digest": sha(b),
                    "size": len(b),
                }
                for b in layer_blobs
            ],
        }
    ).encode()


def encode_layer(layer: bytes, compression: str) -> tuple[bytes, str]:
    if compression == "gzip":
        return gz(layer), "tar+gzip"
    if compression == "zstd":
        return zst(layer), "tar+zstd"
    return layer, "tar"


def blob(tar: Tar, data: bytes, seen: set[str]) -> str:
    digest = sha(data)
    if digest not in seen:
        seen.add(digest)
        tar.file(f"blobs/sha256/{digest[7:]}", data)
    return digest


def oci_layout(
    tar: Tar,
    images: list[Img],
    *,
    compression: str = "gzip",
    manifest_json: bool = False,
    ref_style: str = "containerd",
) -> list[bytes]:
    """An OCI layout (``oci-layout``, ``index.json``, ``blobs/sha256``); with *manifest_json*, the
    Docker 25 combined form. Returns each image's manifest bytes."""
    tar.file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    seen: set[str] = set()
    index, legacy, manifests = [], [], []
    tar.dir("blobs/").dir("blobs/sha256/")
    for img in images:
        encoded = [encode_layer(layer, compression) for layer in img.layers]
        manifest = oci_manifest(img, [b for b, _ in encoded], encoded[0][1] if encoded else "tar")
        manifests.append(manifest)
        blob(tar, img.config, seen)
        for data, _ in encoded:
            blob(tar, data, seen)
        blob(tar, manifest, seen)
        desc = {"mediaType": OCI_MANIFEST, "digest": sha(manifest), "size": len(manifest)}
        for t in img.tags or [None]:
            entry = dict(desc)
            if t and ref_style == "containerd":
                entry["annotations"] = {
                    "io.containerd.image.name": f"docker.io/library/{t}",
                    "org.opencontainers.image.ref.name": t.split(":")[1],
                }
            elif t:
                entry["annotations"] = {"org.opencontainers.image.ref.name": t}
            index.append(entry)
        legacy.append(
            {
                "Config": f"blobs/sha256/{hexof(img.config)}",
                "RepoTags": img.tags or None,
                "Layers": [f"blobs/sha256/{hexof(b)}" for b, _ in encoded],
            }
        )
    tar.file(
        "index.json",
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}).encode(),
    )
    if manifest_json:
        tar.file("manifest.json", json.dumps(legacy).encode())
    return manifests


# -- skopeo dir: ------------------------------------------------------------------------------------
def skopeo_dir(tar: Tar, img: Img) -> Tar:
    """``manifest.json`` = one registry manifest; ``version``; blobs named by bare hex."""
    layers = [gz(layer) for layer in img.layers]
    manifest = json.loads(oci_manifest(img, layers))
    manifest["mediaType"] = DOCKER_MANIFEST
    manifest["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
    for layer in manifest["layers"]:
        layer["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    tar.file("version", b"Directory Transport Version: 1.1\n")
    tar.file("manifest.json", json.dumps(manifest).encode())
    tar.file(hexof(img.config), img.config)
    for data in layers:
        tar.file(hexof(data), data)
    return tar
