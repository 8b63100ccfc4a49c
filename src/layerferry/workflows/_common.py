"""Small pieces every workflow needs: opening ends, merging images by config."""

from __future__ import annotations

from collections.abc import Sequence

from ..archive.writer import ArchiveImage
from ..reference import ImageName


def merge_by_config(images: Sequence[ArchiveImage]) -> list[ArchiveImage]:
    """One entry per distinct image, carrying every tag asked for (shared layers stored once)."""
    merged: dict[str, ArchiveImage] = {}
    for image in images:
        key = str(image.config.digest)
        if key in merged:
            tags: list[ImageName] = list(merged[key].tags)
            tags += [t for t in image.tags if t not in tags]
            merged[key] = ArchiveImage(config=image.config, layers=image.layers, tags=tags)
        else:
            merged[key] = image
    return list(merged.values())
