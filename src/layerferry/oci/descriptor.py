"""Descriptors: the (media type, digest, size) triple that points at a blob."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ArchiveError
from .digest import Digest


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        if self.platform is not None:
            out["platform"] = self.platform.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Descriptor:
        if not isinstance(data, dict):
            raise ArchiveError(f"{where}: descriptor is not a JSON object")
        try:
            size = data["size"]
            digest = Digest.parse(data["digest"])
            media_type = data.get("mediaType", "")
        except (KeyError, TypeError) as exc:
            raise ArchiveError(f"{where}: descriptor lacks {exc}") from exc
        except Exception as exc:
            raise ArchiveError(f"{where}: {exc}") from exc
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ArchiveError(f"{where}: descriptor size {size!r} is not a non-negative integer")
        platform = None
        raw_platform = data.get("platform")
        if isinstance(raw_platform, dict):
            platform = Platform(
                os=str(raw_platform.get("os", "")),
                architecture=str(raw_platform.get("architecture", "")),
                variant=raw_platform.get("variant"),
            )
        annotations = data.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise ArchiveError(f"{where}: annotations is not a JSON object")
        kept = {str(k): str(v) for k, v in annotations.items()}
        return cls(str(media_type), digest, size, kept, platform)
