"""What a destination lacks: per image, the longest layer-chain prefix it already holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..archive.writer import ArchiveImage
from ..copy.blobcache import LayerEntry
from ..oci.digest import Digest


@dataclass(frozen=True)
class ImagePlan:
    image: ArchiveImage
    present: bool
    """The destination already has this exact image (same config); only tags are applied."""
    have_layers: int
    """How many leading layers the destination already holds."""

    @property
    def missing(self) -> list[LayerEntry]:
        return [] if self.present else self.image.layers[self.have_layers :]


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


def plan_copy(images: Sequence[ArchiveImage], chains: set[Digest], present: Sequence[bool]) -> Plan:
    return Plan(
        [
            ImagePlan(
                image=image,
                present=is_present,
                have_layers=longest_present_prefix(image.config.chain_ids, chains),
            )
            for image, is_present in zip(images, present, strict=True)
        ]
    )
