"""An image as one view of an archive names it, before its blobs are checked.

A docker-archive's ``manifest.json`` names members by path (opaque keys: Docker 20.10 writes
``<id>/layer.tar``, Docker 25 ``blobs/sha256/<hex>``, podman ``<hex>.tar``); an OCI layout names
blobs by digest. Both become :class:`ViewImage` records, checked alike by :mod:`.resolve`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ArchiveError, LayerferryError
from ..oci import mediatypes as mt
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from ..reference import ImageName
from .members import safe_reference
from .model import Findings, PlatformEntry


@dataclass(frozen=True)
class LayerRef:
    member: str
    """The member key it names ("" when the name was refused)."""
    named: str
    """What the metadata said, for messages."""
    descriptor: Descriptor | None = None


@dataclass
class ViewImage:
    view: str
    config_member: str
    layers: list[LayerRef]
    config_descriptor: Descriptor | None = None
    tags: list[ImageName] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    manifest_digest: Digest | None = None
    platforms: list[PlatformEntry] = field(default_factory=list)


def member_key(root: str, path: Any, where: str, findings: Findings) -> str:
    """The member a metadata path names, under *root*; "" (and a problem) when it escapes."""
    if path is None:
        findings.problem(ArchiveError(f"{where} is missing"))
        return ""
    if not isinstance(path, str):
        findings.problem(ArchiveError(f"{where} is {json_type(path)}, not a path"))
        return ""
    safe = safe_reference(path)
    if safe is None:
        findings.problem(
            ArchiveError(f"{where} names {path!r}: not a path inside the archive; refused")
        )
        return ""
    return root + safe


def json_type(value: Any) -> str:
    """What a JSON value is, for messages (the value itself may be a secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def add_name(name: str, tags: list[ImageName], refs: list[str]) -> None:
    """A name from metadata: a tag when Docker would accept it, else kept as a plain ref."""
    shown = name
    for prefix in ("docker.io/library/", "docker.io/"):
        if shown.startswith(prefix) and shown.count("/") <= 2:
            shown = shown[len(prefix) :]
            break
    try:
        tag = ImageName.parse(shown) if ":" in shown.rsplit("/", 1)[-1] else None
    except LayerferryError:
        tag = None
    if tag is not None:
        if tag not in tags:
            tags.append(tag)
    elif name not in refs:
        refs.append(name)


def docker_view(entries: list[Any], root: str, findings: Findings, what: str) -> list[ViewImage]:
    """``manifest.json`` entries (Config, RepoTags, Layers) as view images."""
    images = []
    for number, entry in enumerate(entries, start=1):
        where = f"{what}: manifest.json entry {number}"
        if not isinstance(entry, dict):
            findings.problem(ArchiveError(f"{where} is not a JSON object"))
            continue
        layers_raw = entry.get("Layers")
        if layers_raw is None:
            layers_raw = []
        if not isinstance(layers_raw, list):
            findings.problem(ArchiveError(f"{where}: Layers is not a list"))
            layers_raw = []
        layers = [
            LayerRef(member_key(root, p, f"{where} layer {i}", findings), str(p))
            for i, p in enumerate(layers_raw, start=1)
        ]
        tags = repo_tags(entry.get("RepoTags"), where, findings)
        config = member_key(root, entry.get("Config"), f"{where} Config", findings)
        images.append(ViewImage(f"manifest.json entry {number}", config, layers, tags=tags))
    return images


def repo_tags(raw: Any, where: str, findings: Findings) -> list[ImageName]:
    """``RepoTags``: NAME:TAG each, as ``docker load`` requires; anything else is warned about
    and left out (the image is loaded without that name), as a RepoTags that is not a list is."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        findings.warn(f"{where}: RepoTags is not a list; the image is read as untagged")
        return []
    tags: list[ImageName] = []
    for number, name in enumerate(raw, start=1):
        tag = _repo_tag(name)
        if tag is None:
            shown = repr(name) if isinstance(name, str) else json_type(name)
            findings.warn(
                f"{where}: RepoTags entry {number} ({shown[:80]}) is not a NAME:TAG; ignored"
            )
        elif tag not in tags:
            tags.append(tag)
    return tags


def _repo_tag(name: Any) -> ImageName | None:
    if not isinstance(name, str):
        return None
    tags: list[ImageName] = []
    refs: list[str] = []
    add_name(name, tags, refs)
    return tags[0] if tags else None


def blob_key(root: str, digest: Digest, hex_only: bool) -> str:
    """Where an OCI layout (``blobs/<alg>/<hex>``) or a skopeo dir (``<hex>``) keeps a blob."""
    return f"{root}{digest.hex}" if hex_only else f"{root}blobs/{digest.algorithm}/{digest.hex}"


def is_index(media_type: str, data: dict[str, Any]) -> bool:
    if media_type in (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST):
        return True
    return not media_type and "manifests" in data and "config" not in data


def is_manifest(media_type: str, data: dict[str, Any]) -> bool:
    if media_type in (mt.OCI_MANIFEST, mt.DOCKER_MANIFEST):
        return True
    return not media_type and "config" in data and "layers" in data
