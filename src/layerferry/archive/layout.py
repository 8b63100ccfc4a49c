"""The OCI view: ``index.json`` (or a skopeo dir's one manifest) walked down to image manifests.

Nested indexes are followed to a depth cap, cycles refused, attestation manifests skipped, and a
platform chosen (:mod:`.platforms`). Every manifest and index blob is checked (size, then
digest) before it is parsed; config and layer blobs are checked later, like the other view's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import ArchiveError, LimitExceeded
from ..oci import mediatypes as mt
from ..oci.descriptor import Descriptor, Platform
from ..oci.digest import Digest
from ..reference import ImageName
from .limits import Limits
from .model import Findings, PlatformEntry
from .platforms import Candidate, choose, is_attestation
from .scan import Blob, Contents, check_metadata
from .views import LayerRef, ViewImage, add_name, blob_key, is_index, is_manifest


@dataclass(frozen=True)
class WalkOptions:
    platform: Platform | None
    all_platforms: bool


class LayoutWalker:
    def __init__(
        self,
        contents: Contents,
        root: str,
        *,
        hex_only: bool,
        limits: Limits,
        findings: Findings,
        options: WalkOptions,
        what: str,
    ) -> None:
        self._contents = contents
        self._root = root
        self._hex_only = hex_only
        self._limits = limits
        self._findings = findings
        self._options = options
        self._what = what

    # -- entry points -------------------------------------------------------------------------
    def index_json(self) -> list[ViewImage] | None:
        """Images ``index.json`` reaches; None when its ``manifests`` is null (case C11)."""
        data = self._load_named(f"{self._root}index.json")
        if data is None:
            return []
        manifests = data.get("manifests")
        if manifests is None:
            return None
        if not isinstance(manifests, list):
            raise ArchiveError(f"{self._what}: index.json: manifests is not a list")
        images: list[ViewImage] = []
        for number, raw in enumerate(manifests, start=1):
            where = f"index.json entry {number}"
            desc = self._descriptor(raw, where)
            if desc is not None:
                tags, refs = _names(desc)
                images += self._entry(desc, None, where, tags, refs)
        return images

    def root_manifest(self, name: str) -> list[ViewImage]:
        """A skopeo ``dir:``: ``manifest.json`` is the image's registry manifest (or index)."""
        blob = self._contents.get(name)
        assert blob is not None
        data = self._load_named(name)
        if data is None:
            return []
        media_type = str(data.get("mediaType", ""))
        desc = Descriptor(media_type, blob.digest, blob.size)
        return self._entry(desc, data, name, [], [])

    # -- walking ------------------------------------------------------------------------------
    def _entry(
        self,
        desc: Descriptor,
        data: dict[str, Any] | None,
        where: str,
        tags: list[ImageName],
        refs: list[str],
    ) -> list[ViewImage]:
        if data is None:
            data = self._load_blob(desc, where, missing_ok=False)
        if data is None:
            return []
        if is_index(desc.media_type, data):
            candidates = self._flatten(data, where, 1, {desc.digest})
            chosen = choose(
                candidates,
                self._options.platform,
                all_platforms=self._options.all_platforms,
                where=f"{self._what}: {where}",
                findings=self._findings,
            )
            entries = [
                PlatformEntry(c.shown, c.descriptor.digest, c.complete, c.attestation, c in chosen)
                for c in candidates
            ]
            images = []
            for c in chosen:
                if c.data is None:
                    self._findings.problem(
                        ArchiveError(
                            f"{self._what}: {where}: {c.shown}: manifest {c.descriptor.digest} "
                            "is not in this archive"
                        )
                    )
                else:
                    images.append(self._image(c.descriptor, c.data, where, tags, refs, entries))
            return images
        if is_manifest(desc.media_type, data):
            return [self._image(desc, data, where, tags, refs, [])]
        self._findings.warn(
            f"{self._what}: {where}: {desc.media_type or 'unknown type'} is not an image; skipped"
        )
        return []

    def _flatten(
        self, data: dict[str, Any], where: str, depth: int, seen: set[Digest]
    ) -> list[Candidate]:
        if depth > self._limits.index_depth:
            raise LimitExceeded(
                f"{self._what}: {where}: indexes nested deeper than {self._limits.index_depth}; "
                "refused"
            )
        children = data.get("manifests")
        if not isinstance(children, list):
            self._findings.problem(ArchiveError(f"{self._what}: {where}: manifests is not a list"))
            return []
        out: list[Candidate] = []
        for number, raw in enumerate(children, start=1):
            child_where = f"{where} → manifest {number}"
            desc = self._descriptor(raw, child_where)
            if desc is None:
                continue
            if is_attestation(desc):
                out.append(Candidate(desc, None, desc.platform, True, False))
                continue
            if desc.digest in seen:
                raise ArchiveError(f"{self._what}: {child_where}: index cycle at {desc.digest}")
            child = self._load_blob(desc, child_where, missing_ok=True)
            if child is not None and is_index(desc.media_type, child):
                out += self._flatten(child, child_where, depth + 1, seen | {desc.digest})
                continue
            out.append(Candidate(desc, child, desc.platform, False, self._complete(child)))
        return out

    def _complete(self, data: dict[str, Any] | None) -> bool:
        if data is None:
            return False
        try:
            config = Descriptor.from_dict(data.get("config"), "config")
            layers = [Descriptor.from_dict(x, "layer") for x in data.get("layers") or []]
        except ArchiveError:
            return False
        return all(
            self._contents.get(blob_key(self._root, d.digest, self._hex_only)) is not None
            for d in [config, *layers]
        )

    def _image(
        self,
        desc: Descriptor,
        data: dict[str, Any] | None,
        where: str,
        tags: list[ImageName],
        refs: list[str],
        platforms: list[PlatformEntry],
    ) -> ViewImage:
        data = data or {}
        view = f"{where} (manifest {desc.digest.short})"
        config = self._descriptor(data.get("config"), f"{view} config")
        raw_layers = data.get("layers")
        if raw_layers is None:
            raw_layers = []
        if not isinstance(raw_layers, list):
            self._findings.problem(ArchiveError(f"{self._what}: {view}: layers is not a list"))
            raw_layers = []
        layers = []
        for number, raw in enumerate(raw_layers, start=1):
            layer = self._descriptor(raw, f"{view} layer {number}")
            if layer is not None:
                key = blob_key(self._root, layer.digest, self._hex_only)
                layers.append(LayerRef(key, key[len(self._root) :], layer))
        config_key = blob_key(self._root, config.digest, self._hex_only) if config else ""
        return ViewImage(
            view=view,
            config_member=config_key,
            layers=layers,
            config_descriptor=config,
            tags=list(tags),
            refs=list(refs),
            manifest_digest=desc.digest,
            platforms=platforms,
        )

    # -- blobs --------------------------------------------------------------------------------
    def _descriptor(self, raw: Any, where: str) -> Descriptor | None:
        try:
            return Descriptor.from_dict(raw, f"{self._what}: {where}")
        except ArchiveError as exc:
            self._findings.problem(exc)
            return None

    def _load_named(self, name: str) -> dict[str, Any] | None:
        blob = self._contents.get(name)
        if blob is None:
            return None
        return self._parse(blob, name)

    def _load_blob(
        self, desc: Descriptor, where: str, *, missing_ok: bool
    ) -> dict[str, Any] | None:
        key = blob_key(self._root, desc.digest, self._hex_only)
        blob = self._contents.get(key)
        if blob is None:
            if not missing_ok:
                self._findings.problem(
                    ArchiveError(f"{self._what}: {where}: blob {key} is not in the archive")
                )
            return None
        if blob.size != desc.size:
            self._findings.problem(
                ArchiveError(
                    f"{self._what}: {where}: descriptor {desc.digest} declares {desc.size} "
                    f"bytes, member {key} holds {blob.size}"
                )
            )
        if blob.digest != desc.digest:
            self._findings.problem(
                ArchiveError(
                    f"{self._what}: {where}: member {key} has digest {blob.digest}, "
                    f"descriptor expects {desc.digest}",
                    hint="the archive is damaged; copy it again",
                )
            )
            return None
        return self._parse(blob, key)

    def _parse(self, blob: Blob, name: str) -> dict[str, Any] | None:
        check_metadata(blob, self._limits.manifest_bytes, self._limits, self._what, name)
        if blob.data is None:
            self._findings.problem(ArchiveError(f"{self._what}: {name} is not JSON"))
            return None
        try:
            data = json.loads(blob.data)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            self._findings.problem(ArchiveError(f"{self._what}: {name} is not valid JSON ({exc})"))
            return None
        if not isinstance(data, dict):
            self._findings.problem(ArchiveError(f"{self._what}: {name} is not a JSON object"))
            return None
        return data


def _names(desc: Descriptor) -> tuple[list[Any], list[str]]:
    tags: list[ImageName] = []
    refs: list[str] = []
    full = desc.annotations.get(mt.ANNOTATION_DOCKER_NAME)
    if full:
        add_name(full, tags, refs)
    else:
        ref = desc.annotations.get(mt.ANNOTATION_REF_NAME)
        if ref:
            add_name(ref, tags, refs)
    return tags, refs
