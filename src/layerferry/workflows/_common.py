"""Small pieces every workflow needs: opening ends, merging images by config."""

from __future__ import annotations

from collections.abc import Sequence

from ..archive.writer import ArchiveImage
from ..daemon.engine import EngineInfo
from ..errors import NotFoundError, UsageError
from ..reference import ImageName
from ..reporting import Reporter


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


def _label(image: ArchiveImage) -> str:
    return str(image.tags[0]) if image.tags else f"image {image.config.digest.short}"


def _matches(image: ArchiveImage, position: int, selector: str) -> bool:
    if selector.isdigit() and len(selector) < 6:
        return int(selector) == position
    digest = str(image.config.digest)
    hexpart = selector.removeprefix("sha256:")
    if len(hexpart) >= 6 and all(c in "0123456789abcdef" for c in hexpart):
        return image.config.digest.hex.startswith(hexpart) or digest == selector
    try:
        wanted = ImageName.parse(selector)
    except UsageError:
        return False
    return wanted in image.tags


def choose_images(images: Sequence[ArchiveImage], selectors: Sequence[str]) -> list[ArchiveImage]:
    """The images *selectors* name (a tag, a 1-based position, an ID prefix); all if none."""
    if not selectors:
        return list(images)
    chosen: list[ArchiveImage] = []
    for selector in selectors:
        found = [i for n, i in enumerate(images, start=1) if _matches(i, n, selector)]
        if not found:
            held = ", ".join(f"{n}: {_label(i)}" for n, i in enumerate(images, start=1))
            raise NotFoundError(f"the archive holds no image {selector!r} (it holds {held})")
        chosen += [i for i in found if i not in chosen]
    return chosen


def name_images(images: list[ArchiveImage], tag: str | None) -> list[ArchiveImage]:
    """Add *tag* to the one image being loaded (cases C08, C14: untagged archives)."""
    if tag is None:
        return images
    if len(images) != 1:
        raise UsageError(
            f"--tag names one image, and {len(images)} would be loaded; choose one with --image"
        )
    name = ImageName.parse(tag)
    image = images[0]
    tags = list(image.tags) + ([name] if name not in image.tags else [])
    return [ArchiveImage(config=image.config, layers=image.layers, tags=tags)]


def warn_platform(
    images: Sequence[ArchiveImage], info: EngineInfo, where: str, reporter: Reporter
) -> None:
    """Case C18: an image for another OS or CPU loads fine and then fails to start."""
    for image in images:
        platform = image.config.platform
        if not platform.os or not platform.architecture:
            continue
        if (platform.os, platform.architecture) != (info.os, info.architecture):
            reporter.warn(
                f"{_label(image)} is built for {platform}, but {where} runs "
                f"{info.os}/{info.architecture}: its containers will fail with "
                "'exec format error' unless the host emulates that CPU"
            )
