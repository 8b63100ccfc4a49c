"""Image configuration: kept as the raw bytes read, since the image ID is their digest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArchiveError
from .descriptor import Platform
from .digest import Digest, chain_ids

MAX_CONFIG_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ImageConfig:
    raw: bytes
    data: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, raw: bytes, where: str = "image config") -> ImageConfig:
        if len(raw) > MAX_CONFIG_BYTES:
            raise ArchiveError(f"{where}: {len(raw)} bytes, over the {MAX_CONFIG_BYTES} limit")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ArchiveError(f"{where}: not valid JSON ({str(exc)[:200]})") from exc
        if not isinstance(data, dict):
            raise ArchiveError(f"{where}: not a JSON object")
        rootfs = data.get("rootfs")
        if rootfs is not None and not (
            isinstance(rootfs, dict) and isinstance(rootfs.get("diff_ids") or [], list)
        ):
            raise ArchiveError(f"{where}: rootfs must be an object with a diff_ids list")
        if not isinstance(data.get("config") or {}, dict):
            raise ArchiveError(f"{where}: config must be an object")
        return cls(raw, data)

    @property
    def digest(self) -> Digest:
        return Digest.of(self.raw)

    @property
    def diff_ids(self) -> list[Digest]:
        rootfs = self.data.get("rootfs") or {}
        raw_ids = rootfs.get("diff_ids") or []
        try:
            return [Digest.parse(d) for d in raw_ids]
        except Exception as exc:
            raise ArchiveError(f"image config {self.digest.short}: bad diff_id ({exc})") from exc

    @property
    def chain_ids(self) -> list[Digest]:
        return chain_ids(self.diff_ids)

    @property
    def platform(self) -> Platform:
        return Platform(
            os=str(self.data.get("os", "")),
            architecture=str(self.data.get("architecture", "")),
            variant=self.data.get("variant"),
        )

    @property
    def container_config(self) -> dict[str, Any]:
        cfg = self.data.get("config")
        return cfg if isinstance(cfg, dict) else {}
