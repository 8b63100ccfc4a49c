"""Seed archives for fuzzing the reader: every form layerferry reads, small, built in memory."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import zstandard

from layerferry.oci.digest import Digest


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _layer(text: bytes) -> bytes:
    return _tar({"etc/hello": text, "bin/tool": text * 3})


def _config(layers: list[bytes]) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [str(Digest.of(la)) for la in layers]},
        }
    ).encode()


def legacy() -> bytes:
    layers = [_layer(b"one"), _layer(b"two")]
    config = _config(layers)
    hexid = Digest.of(config).hex
    members = {f"{hexid}.json": config}
    names = []
    for i, layer in enumerate(layers):
        members[f"{i:064x}/layer.tar"] = layer
        names.append(f"{i:064x}/layer.tar")
    members["manifest.json"] = json.dumps(
        [{"Config": f"{hexid}.json", "RepoTags": ["a:1"], "Layers": names}]
    ).encode()
    return _tar(members)


def oci_layout() -> bytes:
    layer = _layer(b"oci")
    config = _config([layer])
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(Digest.of(config)),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": str(Digest.of(layer)),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": str(Digest.of(manifest)),
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": "1"},
                }
            ],
        }
    ).encode()
    return _tar(
        {
            "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
            "index.json": index,
            f"blobs/sha256/{Digest.of(manifest).hex}": manifest,
            f"blobs/sha256/{Digest.of(config).hex}": config,
            f"blobs/sha256/{Digest.of(layer).hex}": layer,
        }
    )


def seeds() -> list[bytes]:
    plain = [legacy(), oci_layout()]
    return plain + [gzip.compress(plain[0]), zstandard.ZstdCompressor().compress(plain[1])]
