"""OCI image manifests and indexes, serialised deterministically."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import mediatypes as mt
from .descriptor import Descriptor
from .digest import Digest


def canonical_json(data: Any) -> bytes:
    """The one serialisation layerferry writes: sorted keys, no spaces, so bytes are reproducible."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Manifest:
    config: Descriptor
    layers: list[Descriptor]
    media_type: str = mt.OCI_MANIFEST
    annotations: dict[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        data: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        }
        if self.annotations:
            data["annotations"] = self.annotations
        return canonical_json(data)

    @property
    def digest(self) -> Digest:
        return Digest.of(self.to_bytes())


@dataclass(frozen=True)
class Index:
    manifests: list[Descriptor]
    media_type: str = mt.OCI_INDEX

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": self.media_type,
                "manifests": [m.to_dict() for m in self.manifests],
            }
        )


@dataclass(frozen=True)
class RawManifest:
    """A manifest or index exactly as a registry (or layout) holds it: the digest is of these
    bytes, so they are kept and passed on unchanged whenever possible."""

    media_type: str
    data: bytes

    @property
    def digest(self) -> Digest:
        return Digest.of(self.data)

    @property
    def is_index(self) -> bool:
        return self.media_type in (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST)
