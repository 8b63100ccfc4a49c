"""What a destination lacks, per image: the layers it already holds, asked in one batch.

An engine holds a layer only with everything under it (a chain ID): the longest present prefix
of an image's chain counts. A registry or an OCI layout holds blobs one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..archive.writer import ArchiveImage
from ..copy.blobcache import LayerEntry
from ..oci.digest import Digest


@dataclass(frozen=True)
class Holding:
    """What a destination answers for one image."""

    present: bool
    """It has this exact image (same config) under the names asked for: nothing to send."""
    layers: frozenset[Digest] = frozenset()
    """Diff IDs of the image's layers it holds already."""


@dataclass(frozen=True)
class ImagePlan:
    image: ArchiveImage
    present: bool
    """The destination already has this exact image (same config); only tags are applied."""
    have: frozenset[Digest] = frozenset()
    """Diff IDs of the layers the destination already holds."""

    @property
    def missing(self) -> list[LayerEntry]:
        return [] if self.present else [e for e in self.image.layers if e.diff_id not in self.have]


@dataclass(frozen=True)
class Plan:
    images: list[ImagePlan]

    @property
    def to_load(self) -> list[ArchiveImage]:
        return [p.image for p in self.images if not p.present]

    @property
    def include(self) -> set[Digest]:
        return {layer.diff_id for p in self.images for layer in p.missing}

    @property
    def layers(self) -> list[LayerEntry]:
        """Missing layers, each once, in first-use order."""
        seen: dict[Digest, LayerEntry] = {}
        for p in self.images:
            for layer in p.missing:
                seen.setdefault(layer.diff_id, layer)
        return list(seen.values())

    @property
    def bytes_compressed(self) -> int:
        return sum(layer.zst_size for layer in self.layers)


def longest_present_prefix(chains: Sequence[Digest], present: set[Digest]) -> int:
    for count in range(len(chains), 0, -1):
        if chains[count - 1] in present:
            return count
    return 0


def holdings_by_chains(
    images: Sequence[ArchiveImage], chains: set[Digest], present: Sequence[bool]
) -> list[Holding]:
    """An engine's answer: per image, the layers of the longest chain prefix it holds."""
    out = []
    for image, is_present in zip(images, present, strict=True):
        count = longest_present_prefix(image.config.chain_ids, chains)
        out.append(Holding(is_present, frozenset(image.config.diff_ids[:count])))
    return out


def plan_copy(images: Sequence[ArchiveImage], holdings: Sequence[Holding]) -> Plan:
    return Plan(
        [
            ImagePlan(image=image, present=held.present, have=held.layers)
            for image, held in zip(images, holdings, strict=True)
        ]
    )
