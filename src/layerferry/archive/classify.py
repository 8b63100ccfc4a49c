"""What an input is, decided from the members one pass collected (never from file names).

An image archive is recognised by its metadata: ``manifest.json`` (a list: docker-archive; one
registry manifest: a tarred skopeo ``dir:``), ``index.json``/``oci-layout`` (OCI image layout),
or both (Docker >= 25, layerferry). Anything else is explained: empty, a root filesystem (use
``docker import``), an archive that wraps an image archive in a folder or as a nested tar, or
the ancient v1 layout.
"""

from __future__ import annotations

import enum
import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArchiveError
from .limits import Limits
from .scan import Contents, check_metadata

_ROOTFS_DIRS = {"bin", "boot", "etc", "home", "lib", "lib64", "opt", "root", "sbin", "usr", "var"}
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd", ".tar.xz", ".tar.bz2")
MAX_NESTED_TRIES = 4
"""Nested tars read to find image archives (the likeliest first)."""


class ArchiveFormat(enum.Enum):
    DOCKER = "docker-archive"
    COMBINED = "docker-archive + OCI image layout"
    OCI = "OCI image layout"
    SKOPEO_DIR = "skopeo dir (one registry manifest, hex-named blobs)"


@dataclass(frozen=True)
class Classification:
    format: ArchiveFormat | None
    """None: no image metadata here; see ``nested``."""
    root: str = ""
    """Where the metadata sits: "" or a folder such as ``pkg/`` (then ``found_under`` is set)."""
    manifest_json: Any = None
    nested: list[str] = field(default_factory=list)
    """Members that may be image archives themselves (likeliest first; the first
    ``MAX_NESTED_TRIES`` are tried)."""
    failure: str = ""
    """What to say if no nested member turns out to be an image archive."""

    @property
    def found_under(self) -> str | None:
        return self.root or None


def classify(contents: Contents, limits: Limits, what: str) -> Classification:
    if not contents.blobs and not contents.links:
        raise ArchiveError(f"{what}: archive is empty", hint="nothing was loaded or changed")
    for root in _metadata_roots(contents):
        if root == "" or _looks_like_image_root(contents, root):
            return _classify_at(contents, root, limits, what)
    return Classification(
        format=None, nested=_nested_candidates(contents), failure=_not_an_image(contents, what)
    )


def _metadata_roots(contents: Contents) -> list[str]:
    """ "" first when the top level holds metadata, else the shallowest folder that does."""
    roots = set()
    for name in [*contents.blobs, *contents.links]:
        base = posixpath.basename(name)
        if base in ("manifest.json", "index.json", "oci-layout", "repositories"):
            parent = posixpath.dirname(name)
            roots.add(f"{parent}/" if parent else "")
    return sorted(roots, key=lambda r: (r.count("/"), r))


def _looks_like_image_root(contents: Contents, root: str) -> bool:
    """Stronger evidence for a folder than for the top level (a rootfs has many index.json)."""
    if root.count("/") > 3:
        return False
    if contents.get(root + "oci-layout") is not None:
        return True
    blob = contents.get(root + "manifest.json")
    if blob is None or blob.data is None:
        return False
    try:
        data = json.loads(blob.data)
    except (ValueError, RecursionError):
        return False
    if isinstance(data, list):
        return bool(data) and all(isinstance(e, dict) and "Config" in e for e in data)
    return isinstance(data, dict) and "config" in data and "layers" in data


def _classify_at(contents: Contents, root: str, limits: Limits, what: str) -> Classification:
    names = ("manifest.json", "index.json", "oci-layout", "repositories")
    for name in names:
        _check_metadata_member(contents, root + name, what)
    present = {n for n in names if contents.get(root + n) is not None}
    manifest_json = (
        _manifest_json(contents, root, limits, what) if "manifest.json" in present else None
    )
    if "manifest.json" in present and not isinstance(manifest_json, list | dict):
        raise ArchiveError(
            f"{what}: {root}manifest.json holds {_json_kind(manifest_json)}, neither a "
            "docker-archive list nor a registry manifest"
        )
    if "index.json" in present or "oci-layout" in present:
        if isinstance(manifest_json, dict):
            raise ArchiveError(
                f"{what}: {root}manifest.json is an object next to index.json; a docker-archive's "
                "manifest.json is a list"
            )
        fmt = ArchiveFormat.COMBINED if manifest_json is not None else ArchiveFormat.OCI
        return Classification(fmt, root, manifest_json)
    if manifest_json is not None:
        if isinstance(manifest_json, list):
            return Classification(ArchiveFormat.DOCKER, root, manifest_json)
        if isinstance(manifest_json, dict) and manifest_json.get("schemaVersion") == 1:
            raise ArchiveError(
                f"{what}: manifest.json is a schema 1 registry manifest; not supported",
                hint="copy the image again with a current skopeo (schema 2 or OCI)",
            )
        if isinstance(manifest_json, dict) and (
            "config" in manifest_json or "manifests" in manifest_json
        ):
            return Classification(ArchiveFormat.SKOPEO_DIR, root, manifest_json)
        raise ArchiveError(
            f"{what}: manifest.json is neither a docker-archive list nor a registry manifest"
        )
    raise ArchiveError(
        f"{what}: legacy v1 image archive (a 'repositories' file, no manifest.json); not supported",
        hint="save the image again with Docker >= 1.10, podman or skopeo",
    )


def _check_metadata_member(contents: Contents, name: str, what: str) -> None:
    """Metadata read through a link that leaves the archive, or stored twice, is refused."""
    target = contents.outside(name)
    if target is not None:
        raise ArchiveError(
            f"{what}: {name} is a link to {target}, which points outside the archive; refused"
        )
    if contents.resolve(name) in contents.conflicts:
        raise ArchiveError(
            f"{what}: {name} appears twice with different content; refused",
            hint="which one a tool reads is arbitrary; write the archive again",
        )


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a string" if isinstance(value, str) else "a number"


def _manifest_json(contents: Contents, root: str, limits: Limits, what: str) -> Any:
    blob = contents.get(root + "manifest.json")
    assert blob is not None
    check_metadata(blob, limits.manifest_json_bytes, limits, what, f"{root}manifest.json")
    if blob.data is None:
        raise ArchiveError(f"{what}: {root}manifest.json is not JSON")
    try:
        return json.loads(blob.data)
    except (ValueError, RecursionError) as exc:
        raise ArchiveError(f"{what}: {root}manifest.json is not valid JSON ({exc})") from exc


def _nested_candidates(contents: Contents) -> list[str]:
    """Every tar member (plain or compressed), likeliest image archives first."""
    tars = [b.name for b in contents.blobs.values() if b.layer is not None]
    tars.sort(key=lambda n: (not n.endswith(_TAR_SUFFIXES), n.count("/"), n))
    return tars


STANDARD_INPUT = "standard input"
"""How a stream read from ``-`` is named in messages."""


def _import_argument(what: str) -> str:
    """What to pass ``docker import`` for this input: ``-`` for standard input."""
    return "-" if what == STANDARD_INPUT else what


def _not_an_image(contents: Contents, what: str) -> str:
    top = sorted({n.split("/", 1)[0] for n in contents.names()})
    rootfs = sorted(set(top) & _ROOTFS_DIRS)
    if len(rootfs) >= 2:
        shown = ", ".join(f"{d}/" for d in rootfs[:4])
        return (
            f"{what}: a root-filesystem tarball ({shown} at the top), not an image archive; "
            f"make an image of it with `docker import {_import_argument(what)} NAME:TAG`"
        )
    shown = ", ".join(top[:5]) + (", …" if len(top) > 5 else "")
    return (
        f"{what}: not an image archive: no manifest.json, index.json or oci-layout "
        f"(top level: {shown})"
    )
