"""What the blob cache knows about compressed blobs it met in registries.

For each compressed layer blob seen (pulled, or pushed by us), one small record: the layer it
decompresses to (its diff ID), its size and media type, and the registry repositories known to
hold it. A pull skips a blob whose layer is cached; a push asks first whether the target has a
blob it already knows for the layer, and mounts it from a repository of the same registry
instead of uploading. Records are hints: every use is checked (HEAD, or the digest on pull).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..oci.digest import Digest

MAX_LOCATIONS = 16


@dataclass(frozen=True)
class CompressedBlob:
    digest: Digest
    size: int
    media_type: str
    diff_id: Digest
    locations: tuple[tuple[str, str], ...] = field(default=())
    """(registry, repository) pairs known to hold the blob, most recent first."""


class BlobIndex:
    def __init__(self, root: Path) -> None:
        self.root = root / "compressed"
        self._by_layer = self.root / "by-layer"
        self._by_layer.mkdir(parents=True, exist_ok=True)

    def _path(self, digest: Digest) -> Path:
        return self.root / f"{digest.hex}.json"

    def get(self, digest: Digest) -> CompressedBlob | None:
        try:
            data = json.loads(self._path(digest).read_text())
            return CompressedBlob(
                digest=digest,
                size=int(data["size"]),
                media_type=str(data["media_type"]),
                diff_id=Digest.parse(data["diff_id"]),
                locations=tuple((str(r), str(p)) for r, p in data.get("locations", [])),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def record(
        self,
        digest: Digest,
        size: int,
        media_type: str,
        diff_id: Digest,
        location: tuple[str, str] | None = None,
    ) -> CompressedBlob:
        known = self.get(digest)
        locations = list(known.locations) if known else []
        if location is not None:
            locations = [location] + [loc for loc in locations if loc != location]
        blob = CompressedBlob(digest, size, media_type, diff_id, tuple(locations[:MAX_LOCATIONS]))
        data = {
            "size": size,
            "media_type": media_type,
            "diff_id": str(diff_id),
            "locations": [list(loc) for loc in blob.locations],
        }
        path = self._path(digest)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
        self._link(diff_id, digest)
        return blob

    def _link(self, diff_id: Digest, digest: Digest) -> None:
        path = self._by_layer / f"{diff_id.hex}.json"
        digests = self._digests_of(diff_id)
        if str(digest) in digests:
            return
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps([*digests, str(digest)]))
        os.replace(tmp, path)

    def _digests_of(self, diff_id: Digest) -> list[str]:
        try:
            data = json.loads((self._by_layer / f"{diff_id.hex}.json").read_text())
        except (OSError, ValueError):
            return []
        return [str(d) for d in data] if isinstance(data, list) else []

    def for_layer(self, diff_id: Digest) -> list[CompressedBlob]:
        """Every compressed blob known to hold this layer."""
        out = []
        for text in self._digests_of(diff_id):
            try:
                blob = self.get(Digest.parse(text))
            except Exception:
                continue
            if blob is not None and blob.diff_id == diff_id:
                out.append(blob)
        return out
