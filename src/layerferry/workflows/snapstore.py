"""Where snapshots live: the committed image in the engine, the rest in a local state directory.

A snapshot's writable layer is a committed image (``layerferry/<container>:snap-<id>``), so it
sits in the engine beside the container and shares its base layers. Its record (the spec, the
source's settings, data digests) and its volume data live under the state directory
(``$LAYERFERRY_STATE_DIR``, default ``~/.local/state/layerferry``), per engine::

    snapshots/<engine>/<container>/<id>/snapshot.json    0600: the record (env values inside)
    snapshots/<engine>/<container>/replaced.json         containers a rollback set aside
    snapshots/<engine>/_data/layers/<sha256>.tar.zst     volume data, zstd, by content

Volume data is kept by content, so an unchanged volume costs nothing in a second snapshot. It is
not an image on purpose: a volume's files would be read as a layer (``.wh.`` names as whiteouts)
and labels on the committed image would leak into every container made from it. ``<engine>`` is
a hash of the engine's ID, so two engines' snapshots never mix.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from pathlib import Path

from ..copy.blobcache import BlobCache
from ..errors import NotFoundError
from .record import ContainerRecord

RECORD = "snapshot.json"
_ID = re.compile(r"^\d{8}-\d{6}(-\d+)?$")


class SnapshotStore:
    def __init__(self, state_dir: Path, engine_id: str) -> None:
        key = hashlib.sha256(engine_id.encode()).hexdigest()[:16]
        self.root = state_dir / "snapshots" / key
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    def blobs(self) -> BlobCache:
        return BlobCache(self.root / "_data")  # "_" starts no container name

    def _container_dir(self, container: str) -> Path:
        return self.root / container

    def new_id(self, container: str) -> str:
        base = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        candidate, n = base, 1
        while (self._container_dir(container) / candidate).exists():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def save(self, record: ContainerRecord) -> Path:
        directory = self._container_dir(record.container) / record.id
        directory.mkdir(parents=True, mode=0o700)
        path = directory / RECORD
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(record.to_bytes())
        os.replace(path.with_suffix(".tmp"), path)
        return path

    def records(self, container: str | None = None) -> list[ContainerRecord]:
        """Snapshots, oldest first (of one container, or of all)."""
        dirs = [self._container_dir(container)] if container else sorted(self.root.iterdir())
        out = []
        for directory in dirs:
            if not directory.is_dir() or directory.name.startswith("_"):
                continue
            for snap in sorted(directory.iterdir()):
                path = snap / RECORD
                if _ID.match(snap.name) and path.is_file():
                    out.append(ContainerRecord.parse(path.read_bytes(), str(path)))
        return sorted(out, key=lambda r: (r.container, r.id))

    def find(self, container: str, ref: str | None) -> ContainerRecord:
        """The snapshot *ref* (its ID or label; the latest when None) of *container*."""
        records = self.records(container)
        if ref:
            records = [r for r in records if ref in (r.id, r.label)]
        if not records:
            what = f"snapshot {ref!r}" if ref else "snapshot"
            raise NotFoundError(
                f"no {what} of container {container!r}",
                hint=f"`layerferry snapshots {container}` lists them",
            )
        return records[-1]

    # -- containers a rollback set aside -------------------------------------------------------
    def replaced(self, container: str) -> list[str]:
        path = self._container_dir(container) / "replaced.json"
        try:
            return [str(n) for n in json.loads(path.read_text())]
        except (OSError, ValueError):
            return []

    def set_replaced(self, container: str, names: list[str]) -> None:
        directory = self._container_dir(container)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / "replaced.json"
        path.with_suffix(".tmp").write_text(json.dumps(names))
        os.replace(path.with_suffix(".tmp"), path)
