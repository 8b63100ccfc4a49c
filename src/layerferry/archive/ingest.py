"""Read a docker-archive stream (``docker save`` of any engine version) into the blob cache.

One pass, front to back, so a pipe works: metadata members (small JSON) are kept in memory
under a size cap, everything else is compressed into the cache under the digest of its content.
At the end ``manifest.json`` ties names to images and every layer is checked against the diff ID
its config declares. Member names are only ever used as keys, never as paths on disk.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from dataclasses import dataclass, field
from typing import Any, cast

from ..copy.blobcache import BlobCache, LayerEntry
from ..errors import ArchiveError, IntegrityError
from ..oci.config import ImageConfig
from ..reference import ImageName
from ..tario.stream import Readable
from .writer import ArchiveImage

MAX_METADATA_BYTES = 4 * 1024 * 1024
MAX_MANIFEST_JSON = 1024 * 1024


@dataclass
class _Members:
    meta: dict[str, bytes] = field(default_factory=dict)
    layers: dict[str, LayerEntry] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    count: int = 0


def _normalise(name: str) -> str:
    return posixpath.normpath(name)


def _looks_like_json(head: bytes) -> bool:
    return head.lstrip()[:1] in (b"{", b"[")


def _read_members(stream: Readable, cache: BlobCache, what: str) -> _Members:
    members = _Members()
    try:
        with tarfile.open(fileobj=cast(Any, stream), mode="r|") as tar:
            for info in tar:
                members.count += 1
                name = _normalise(info.name)
                if info.issym() or info.islnk():
                    base = posixpath.dirname(name) if info.issym() else ""
                    members.links[name] = _normalise(posixpath.join(base, info.linkname))
                    continue
                if not info.isfile():
                    continue
                fh = tar.extractfile(info)
                assert fh is not None
                if info.size <= MAX_METADATA_BYTES:
                    data = fh.read()
                    if len(data) != info.size:
                        raise IntegrityError(f"{what}: member {name} is cut short")
                    if _looks_like_json(data[:64]):
                        members.meta[name] = data
                        continue
                    members.layers[name] = cache.put_layer(io.BytesIO(data))
                else:
                    members.layers[name] = cache.put_layer(fh)
    except tarfile.ReadError as exc:
        if members.count == 0:
            raise ArchiveError(f"{what}: archive is empty or not a tar archive ({exc})") from exc
        raise ArchiveError(
            f"{what}: archive truncated or damaged after {members.count} members ({exc})"
        ) from exc
    except (EOFError, OSError) as exc:
        if isinstance(exc, IntegrityError):
            raise
        raise ArchiveError(f"{what}: archive truncated ({exc})") from exc
    if members.count == 0:
        raise ArchiveError(f"{what}: archive is empty")
    return members


def _resolve(members: _Members, name: str, seen: int = 0) -> str:
    name = _normalise(name)
    while name in members.links and seen < 16:
        name = members.links[name]
        seen += 1
    return name


def _parse_manifest_json(members: _Members, what: str) -> list[dict[str, Any]]:
    raw = members.meta.get("manifest.json")
    if raw is None:
        raise ArchiveError(f"{what}: no manifest.json, not a docker-archive")
    if len(raw) > MAX_MANIFEST_JSON:
        raise ArchiveError(f"{what}: manifest.json is {len(raw)} bytes, over the limit")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ArchiveError(f"{what}: manifest.json is not valid JSON ({exc})") from exc
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ArchiveError(f"{what}: manifest.json is not a list of image entries")
    return data


def ingest_docker_archive(
    stream: Readable, cache: BlobCache, what: str = "archive"
) -> list[ArchiveImage]:
    """Cache every layer and config of the archive and return its images, verified."""
    members = _read_members(stream, cache, what)
    images: list[ArchiveImage] = []
    for number, entry in enumerate(_parse_manifest_json(members, what), start=1):
        config_name = _resolve(members, str(entry.get("Config", "")))
        raw_config = members.meta.get(config_name)
        if raw_config is None:
            raise ArchiveError(
                f"{what}: image {number}: config {config_name!r} is not in the archive"
            )
        config = ImageConfig.parse(raw_config, f"{what}: {config_name}")
        layer_names = entry.get("Layers") or []
        diff_ids = config.diff_ids
        if len(layer_names) != len(diff_ids):
            raise ArchiveError(
                f"{what}: image {number}: manifest lists {len(layer_names)} layers, "
                f"config declares {len(diff_ids)}"
            )
        layers: list[LayerEntry] = []
        for index, (layer_name, diff_id) in enumerate(zip(layer_names, diff_ids, strict=True)):
            resolved = _resolve(members, str(layer_name))
            layer = members.layers.get(resolved) or cache.layer(diff_id)
            if layer is None:
                raise ArchiveError(
                    f"{what}: image {number}: layer {index + 1} ({resolved}, {diff_id}) is not in the archive"
                )
            if layer.diff_id != diff_id:
                raise IntegrityError(
                    f"{what}: image {number}: layer {index + 1} ({resolved}) has diff ID "
                    f"{layer.diff_id}, config expects {diff_id}",
                    hint="the archive was damaged; transfer it again",
                )
            layers.append(layer)
        tags = [ImageName.parse(t) for t in (entry.get("RepoTags") or [])]
        cache.put_config(config.raw)
        images.append(ArchiveImage(config=config, layers=layers, tags=tags))
    return images
