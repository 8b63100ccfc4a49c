"""Seeded random images for tests (after go-containerregistry's ``random.Image``)."""

from __future__ import annotations

import io
import json
import random
import tarfile
from pathlib import Path

from layerferry.archive.writer import ArchiveImage
from layerferry.copy.blobcache import BlobCache
from layerferry.oci.config import ImageConfig
from layerferry.oci.digest import Digest
from layerferry.reference import ImageName


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def random_layer(rng: random.Random, files: int = 3, max_size: int = 4096) -> bytes:
    return layer_tar(
        {
            f"dir{rng.randrange(3)}/file{i}-{rng.randrange(1 << 30)}": rng.randbytes(
                rng.randrange(max_size)
            )
            for i in range(files)
        }
    )


def config_for(layers: list[bytes], extra: dict[str, object] | None = None) -> bytes:
    data: dict[str, object] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [str(Digest.of(layer)) for layer in layers]},
        "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
    }
    data.update(extra or {})
    return json.dumps(data).encode()


def make_image(
    cache: BlobCache,
    layers: list[bytes],
    tags: list[str] | None = None,
    extra: dict[str, object] | None = None,
) -> ArchiveImage:
    entries = [cache.put_layer(io.BytesIO(layer)) for layer in layers]
    config = ImageConfig.parse(config_for(layers, extra))
    return ArchiveImage(
        config=config, layers=entries, tags=[ImageName.parse(t) for t in tags or []]
    )


def random_image(
    cache: BlobCache, seed: int, n_layers: int = 2, tags: list[str] | None = None
) -> ArchiveImage:
    rng = random.Random(seed)
    return make_image(cache, [random_layer(rng) for _ in range(n_layers)], tags)


def legacy_docker_archive(
    path: Path,
    layers: list[bytes],
    tags: list[str] | None,
    config_extra: dict[str, object] | None = None,
) -> bytes:
    """A docker-archive in Docker 20.10's own layout: ``<id>/layer.tar``, ``<hex>.json``."""
    config = config_for(layers, config_extra)
    config_hex = Digest.of(config).hex
    members: dict[str, bytes] = {f"{config_hex}.json": config}
    names = []
    for i, layer in enumerate(layers):
        layer_dir = f"{i:064x}"
        members[f"{layer_dir}/VERSION"] = b"1.0"
        members[f"{layer_dir}/json"] = b"{}"
        members[f"{layer_dir}/layer.tar"] = layer
        names.append(f"{layer_dir}/layer.tar")
    entry: dict[str, object] = {"Config": f"{config_hex}.json", "Layers": names}
    if tags is not None:
        entry["RepoTags"] = tags
    members["manifest.json"] = json.dumps([entry]).encode()
    data = layer_tar(members)
    path.write_bytes(data)
    return config
