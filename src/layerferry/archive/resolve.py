"""Checks every view's images against the blobs the pass found, and joins the two views.

For each image: the config is present, within its cap, and (OCI) has the size and digest its
descriptor declares; the view lists as many layers as the config has diff IDs; each layer blob
is present, has its descriptor's size and digest (OCI), is a tar once uncompressed, and hashes
to the config's diff ID. When an archive has both views they must name the same layers.
"""

from __future__ import annotations

import re

from ..copy.blobcache import BlobCache, LayerEntry
from ..errors import ArchiveError, IntegrityError
from ..oci.config import ImageConfig, config_problems
from ..oci.digest import Digest
from ..tario.compression import Compression
from .limits import Limits
from .model import Findings, ReadImage, ReadLayer
from .scan import Blob, Contents, check_metadata
from .views import LayerRef, ViewImage

_BLOB_NAME = re.compile(r"^blobs/(sha256|sha512)/([0-9a-f]{64}|[0-9a-f]{128})$")
_CONFIG_NAME = re.compile(r"^()([0-9a-f]{64})\.json$")
_BARE_NAME = re.compile(r"^()([0-9a-f]{64})$")
_DAMAGED = "the archive is damaged; copy it again"


class Resolver:
    def __init__(
        self,
        contents: Contents,
        findings: Findings,
        limits: Limits,
        cache: BlobCache | None,
        what: str,
        thin: bool = False,
        left_out: frozenset[Digest] = frozenset(),
    ) -> None:
        self._thin = thin
        self._left_out = left_out
        """Diff IDs the archive's delta record says it leaves out."""
        self._contents = contents
        self._findings = findings
        self._limits = limits
        self._cache = cache
        self._what = what
        self.used: set[str] = set()
        self._checked: set[str] = set()
        """Members already compared with a descriptor's digest."""

    def _problem(self, message: str, hint: str | None = None) -> None:
        self._findings.problem(ArchiveError(f"{self._what}: {message}", hint=hint))

    # -- images -------------------------------------------------------------------------------
    def image(self, view: ViewImage, source: str) -> ReadImage | None:
        config = self._config(view)
        if config is None:
            return None
        label = str(view.tags[0]) if view.tags else f"image {config.digest.short}"
        wrong = config_problems(config.data)
        for problem in wrong:
            self._problem(f"config of {label}: {problem}", "the image config is malformed")
        if wrong:
            return None
        try:
            diff_ids = config.diff_ids
        except ArchiveError as exc:
            self._problem(f"{label}: {exc}")
            return None
        if len(view.layers) != len(diff_ids):
            self._problem(
                f"{label}: {view.view} lists {len(view.layers)} layers, config declares "
                f"{len(diff_ids)}"
            )
        layers = [
            self._layer(label, number, ref, diff_id)
            for number, (ref, diff_id) in enumerate(
                zip(view.layers, diff_ids, strict=False), start=1
            )
        ]
        return ReadImage(
            config=config,
            config_member=self._contents.resolve(view.config_member),
            layers=layers,
            tags=list(view.tags),
            refs=list(view.refs),
            manifest_digest=view.manifest_digest,
            views=[source],
            platforms=list(view.platforms),
        )

    def _config(self, view: ViewImage) -> ImageConfig | None:
        if not view.config_member:
            return None
        blob = self._contents.get(view.config_member)
        named = view.config_member
        if self._escapes(f"{view.view}: config {named}", named):
            return None
        if blob is None:
            self._problem(f"{view.view}: config {named} is not in the archive")
            return None
        self.used.add(blob.name)
        if blob.name in self._contents.conflicts:
            self._problem(f"{view.view}: config {named} appears twice with different content")
            return None
        desc = view.config_descriptor
        if desc is not None and not self._blob_matches(blob, desc.digest, desc.size, view.view):
            return None
        check_metadata(
            blob,
            self._limits.manifest_bytes,
            self._limits,
            self._what,
            f"{view.view}: config {named}",
        )
        if blob.data is None:
            self._problem(f"{view.view}: config {named} is not JSON")
            return None
        try:
            return ImageConfig.parse(blob.data, f"{view.view}: config {named}")
        except ArchiveError as exc:
            self._problem(str(exc))
            return None

    def _layer(self, label: str, number: int, ref: LayerRef, diff_id: Digest) -> ReadLayer:
        where = f"{label}: layer {number}"
        blob = self._contents.get(ref.member) if ref.member else None
        desc = ref.descriptor
        media_type = desc.media_type if desc else ""
        if ref.member and self._escapes(f"{where} ({ref.named})", ref.member):
            return ReadLayer(
                number, "", diff_id, None, None, None, Compression.NONE, media_type, None
            )
        if blob is None:
            return self._absent(where, number, ref, diff_id, media_type)
        self.used.add(blob.name)
        member = blob.name
        if blob.name in self._contents.conflicts:
            self._problem(f"{where}: member {member} appears twice with different content")
        same_fault = False
        if desc is not None and not self._blob_matches(blob, desc.digest, desc.size, where):
            same_fault = desc.digest == diff_id  # a plain layer: its blob digest is its diff ID
        layer = blob.layer
        if blob.error:
            self._problem(f"{where} ({member}): {blob.error}", _DAMAGED)
        elif layer is None:
            self._problem(f"{where} ({member}) is not a tar archive, plain or compressed")
        elif layer.diff_id != diff_id and not same_fault:
            self._findings.problem(
                IntegrityError(
                    f"{self._what}: {where} ({member}) has diff ID {layer.diff_id}, "
                    f"config expects {diff_id}",
                    hint="the layer's bytes are damaged; transfer the archive again",
                )
            )
        return ReadLayer(
            index=number,
            member=member,
            diff_id=diff_id,
            size=layer.size if layer else None,
            stored_size=blob.size,
            stored_digest=blob.digest,
            compression=blob.compression,
            media_type=media_type,
            entry=layer.entry if layer and layer.diff_id == diff_id else None,
        )

    def _absent(
        self, where: str, number: int, ref: LayerRef, diff_id: Digest, media_type: str
    ) -> ReadLayer:
        entry = self._cache.layer(diff_id) if self._cache is not None and ref.member else None
        left_out = bool(ref.member) and diff_id in self._left_out
        if entry is not None:
            # Warned about only if this copy is sent (the receiver may hold the layer).
            return ReadLayer(
                number, "", diff_id, entry.size, None, None, Compression.NONE, media_type, entry,
                left_out=left_out, from_cache=True,
            )  # fmt: skip
        if ref.member and (self._thin or left_out):
            desc = ref.descriptor
            known = desc.size if desc is not None and desc.digest == diff_id else 0
            entry = LayerEntry.missing(diff_id, known) if self._thin else None
        elif ref.member:
            self._problem(
                f"{where} ({ref.named}, diff ID {diff_id}) is not in the archive",
                hint="a thin archive: load the image it was saved against (its base) first, "
                "or save it again in full",
            )
        size = entry.size if entry else None
        return ReadLayer(
            number, "", diff_id, size, None, None, Compression.NONE, media_type, entry,
            left_out=left_out,
        )  # fmt: skip

    def _escapes(self, where: str, member: str) -> bool:
        target = self._contents.outside(member)
        if target is not None:
            self._problem(
                f"{where} is a link to {target}, which points outside the archive; refused",
                "an archive's links stay inside it; this one is not read",
            )
        return target is not None

    def _blob_matches(self, blob: Blob, digest: Digest, size: int, where: str) -> bool:
        self._checked.add(blob.name)
        if blob.size != size:
            self._problem(
                f"{where}: descriptor {digest} declares {size} bytes, member {blob.name} holds "
                f"{blob.size}"
            )
        if blob.digest != digest:
            self._problem(
                f"{where}: member {blob.name} has digest {blob.digest}, descriptor expects "
                f"{digest}",
                _DAMAGED,
            )
            return False
        return True

    # -- the rest of the archive --------------------------------------------------------------
    def check_named_blobs(self, root: str, hex_only: bool) -> None:
        """Every member whose name states a digest must hold it (used or not, in every view).

        ``blobs/<alg>/<hex>`` and ``<hex>.json`` (a docker-archive's config) always; a bare
        ``<hex>`` only in a skopeo ``dir:``. Docker 20.10's ``<v1id>/layer.tar`` folders are v1
        IDs, not digests, and are left alone.
        """
        for name, blob in self._contents.blobs.items():
            if name in self._checked or not name.startswith(root):
                continue
            relative = name[len(root) :]
            match = _BLOB_NAME.match(relative) or _CONFIG_NAME.match(relative)
            if match is None and hex_only:
                match = _BARE_NAME.match(relative)
            if match is None:
                continue
            algorithm = match.group(1) or "sha256"
            if algorithm == blob.digest.algorithm and match.group(2) != blob.digest.hex:
                self._findings.problem(
                    IntegrityError(
                        f"{self._what}: member {name} has digest {blob.digest}, its name states "
                        f"{algorithm}:{match.group(2)}",
                        hint=_DAMAGED,
                    )
                )


def join_views(
    docker: list[ReadImage], oci: list[ReadImage], findings: Findings, what: str
) -> list[ReadImage]:
    """One list from both views; they must agree on every image both list."""
    by_config = {str(o.config.digest): o for o in oci}
    joined: list[ReadImage] = []
    for image in docker:
        other = by_config.pop(str(image.config.digest), None)
        if other is None:
            findings.warn(
                f"{what}: {image.label} is in manifest.json but index.json does not reach it; "
                "OCI tools will not see it"
            )
        else:
            _compare(image, other, findings, what)
            _merge_names(image, other)
        joined.append(image)
    for other in by_config.values():
        findings.warn(
            f"{what}: {other.label} is reachable from index.json but not in manifest.json; "
            "Docker before 25 will not load it"
        )
        joined.append(other)
    return joined


def _compare(image: ReadImage, other: ReadImage, findings: Findings, what: str) -> None:
    ours = [layer.stored_digest for layer in image.layers]
    theirs = [layer.stored_digest for layer in other.layers]
    if len(ours) != len(theirs):
        findings.problem(
            ArchiveError(
                f"{what}: {image.label}: manifest.json lists {len(ours)} layers, the OCI manifest "
                f"{other.manifest_digest} lists {len(theirs)}"
            )
        )
        return
    for number, (a, b) in enumerate(zip(ours, theirs, strict=True), start=1):
        if a is not None and b is not None and a != b:
            findings.problem(
                ArchiveError(
                    f"{what}: {image.label}: layer {number}: manifest.json names a blob with "
                    f"digest {a}, the OCI manifest names {b}"
                )
            )


def _merge_names(image: ReadImage, other: ReadImage) -> None:
    image.tags += [t for t in other.tags if t not in image.tags]
    image.refs += [r for r in other.refs if r not in image.refs]
    image.manifest_digest = other.manifest_digest or image.manifest_digest
    image.views += [v for v in other.views if v not in image.views]
    image.platforms = other.platforms or image.platforms


def merge_same_config(images: list[ReadImage]) -> list[ReadImage]:
    merged: dict[str, ReadImage] = {}
    for image in images:
        key = str(image.config.digest)
        if key in merged:
            _merge_names(merged[key], image)
        else:
            merged[key] = image
    return list(merged.values())


def check_unique_tags(images: list[ReadImage], findings: Findings, what: str) -> None:
    """One tag naming two different images: which one the engine ends up with is arbitrary."""
    owner: dict[str, str] = {}
    for image in images:
        for tag in image.tags:
            first = owner.setdefault(str(tag), str(image.config.digest))
            if first != str(image.config.digest):
                findings.problem(
                    ArchiveError(
                        f"{what}: tag {tag} names two different images "
                        f"({first[7:19]} and {image.config.digest.short})"
                    )
                )
