"""Where images come from: a Docker engine, or an archive file/stream.

A source resolves references to :class:`ArchiveImage` records whose layers sit in the blob
cache. An engine is asked for a ``save`` only when the cache lacks something.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..archive.classify import STANDARD_INPUT
from ..archive.ingest import ingest_archive
from ..archive.model import ArchiveReading
from ..archive.read import ReadOptions, read_path, read_stream
from ..archive.scan import CachingSink, LayerFilter
from ..archive.writer import ArchiveImage
from ..daemon.engine import Engine, ImageRecord
from ..errors import IntegrityError
from ..oci.config import ImageConfig
from ..oci.digest import Digest
from ..reference import ImageName, check_image_ref
from ..remote.host import RemoteHost
from ..reporting import NullReporter, Reporter
from ..tario.stream import IterStream, Readable
from .blobcache import BlobCache, LayerEntry, LayerWatcher


class DaemonSource:
    def __init__(self, engine: Engine, cache: BlobCache) -> None:
        self.engine = engine
        self.cache = cache

    def record(self, ref: str) -> ImageRecord:
        """What the engine says of *ref* (ID, tags, diff IDs), without reading any layer."""
        check_image_ref(ref)
        return self.engine.image(ref)

    def image(
        self, ref: str, *, record: ImageRecord | None = None, keep: LayerFilter | None = None
    ) -> ArchiveImage:
        """The image *ref* names, with every layer in the cache (saved from the engine if not).

        With *keep*, only the layers it wants must be in the cache; the others are absent
        entries (``send`` to targets that hold them).
        """
        record = record or self.record(ref)
        tags = _tags_for(ref, record)
        cached = self._from_cache(record, tags, keep)
        if cached is not None:
            return cached
        try:
            images = self._ingest_save(record.id, ref, keep and _LegacyGuess(keep, record))
        except IntegrityError:
            if keep is None:
                raise
            # A guess from the legacy records was wrong (an unusual save): read it plainly.
            images = self._ingest_save(record.id, ref, keep)
        if len(images) != 1 or images[0].config.diff_ids != record.diff_ids:
            raise IntegrityError(f"{self.engine.where}: save of {ref} returned another image")
        return ArchiveImage(config=images[0].config, layers=images[0].layers, tags=tags)

    def _ingest_save(
        self, image_id: str, ref: str, keep: LayerFilter | None = None
    ) -> list[ArchiveImage]:
        chunks = self.engine.save(image_id, name=ref)
        what = _save_of(self.engine, ref)
        return ingest_archive(IterStream(chunks), self.cache, what=what, keep=keep)

    def _from_cache(
        self, record: ImageRecord, tags: list[ImageName], keep: LayerFilter | None
    ) -> ArchiveImage | None:
        digest = record.config_digest
        raw = self.cache.config(digest) if digest else None
        if raw is None:
            return None
        layers: list[LayerEntry] = []
        for diff_id in record.diff_ids:
            entry = self.cache.layer(diff_id)
            if entry is None and keep is not None and keep.selective() and not keep.wanted(diff_id):
                entry = LayerEntry.missing(diff_id, 0)
            if entry is None:
                return None
            layers.append(entry)
        return ArchiveImage(config=ImageConfig.parse(raw), layers=layers, tags=tags)


class _LegacyGuess:
    """A keep filter for one engine save that tells its layers apart before reading them.

    Docker 20.10 writes each layer as ``ID/layer.tar`` after ``ID/json``, a legacy record naming
    the layer's parent, in an order set by the IDs. The record without a parent is the first
    layer, the one carrying the image's ``config`` the last, and a parent already placed
    places its child, so a layer the targets hold can be skipped unread (not spooled) and a
    wanted one compressed as it streams. Guesses are checked (see ``LayerFilter.guess``).
    """

    def __init__(self, keep: LayerFilter, record: ImageRecord) -> None:
        self._keep = keep
        self._diff_ids = record.diff_ids
        self._placed: dict[str, int] = {}

    def selective(self) -> bool:
        return self._keep.selective()

    def wanted(self, diff_id: Digest) -> bool:
        return self._keep.wanted(diff_id)

    def watch(self, diff_id: Digest, size: int) -> LayerWatcher | None:
        return self._keep.watch(diff_id, size)

    def guess(self, hint: Mapping[str, Any]) -> Digest | None:
        index = self._index(hint)
        if index is None or not 0 <= index < len(self._diff_ids):
            return None
        layer_id = hint.get("id")
        if isinstance(layer_id, str):
            self._placed[layer_id] = index
        return self._diff_ids[index]

    def _index(self, hint: Mapping[str, Any]) -> int | None:
        parent = hint.get("parent")
        if not parent:
            return 0
        if isinstance(parent, str) and parent in self._placed:
            return self._placed[parent] + 1
        if len(self._diff_ids) == 2:
            return 1
        if "config" in hint:
            return len(self._diff_ids) - 1
        return None


def _save_of(engine: Engine, ref: str) -> str:
    return f"{engine.where}: save of {ref}"


def _tags_for(ref: str, record: ImageRecord) -> list[ImageName]:
    """The tag the user named; an ID or digest reference carries no tag (say so upstream)."""
    if ref.startswith("sha256:") or "@" in ref:
        return []
    # A bare hex word is an ID prefix only when no tag of that name exists ("cafe" may be a repo).
    is_id = re.fullmatch(r"[0-9a-f]{1,64}", ref) and record.id.startswith(f"sha256:{ref}")
    if is_id and f"{ref}:latest" not in record.tags:
        return []
    return [ImageName.parse(ref)]


class SshDaemonSource(DaemonSource):
    """A remote engine: ``docker save`` runs on the host and streams back over the SSH
    connection, compressed on the way (zstd or gzip when the host has them), into the reader,
    which verifies every layer as for any archive."""

    def __init__(self, host: RemoteHost, cache: BlobCache) -> None:
        super().__init__(host.engine, cache)
        self.host = host

    def _ingest_save(
        self, image_id: str, ref: str, keep: LayerFilter | None = None
    ) -> list[ArchiveImage]:
        what = _save_of(self.engine, ref)
        tools = self.host.probe.tools
        codec = "zstd -c" if "zstd" in tools else ("gzip -1 -c" if "gzip" in tools else "cat")
        script = _REMOTE_SAVE % {"encode": codec}
        with self.host.session.stream_out(["sh", "-c", script, "sh", image_id]) as stream:
            return ingest_archive(stream, self.cache, what=what, keep=keep)


_REMOTE_SAVE = """
s=$(mktemp) || exit 99
{ docker save "$1"; echo $? > "$s"; } | %(encode)s
rc=$?
z=$(cat "$s"); rm -f "$s"
[ "$z" = 0 ] || exit 97
exit $rc
"""


class ArchiveSource:
    """Images from an archive: a file, a directory (OCI layout, skopeo dir) or a stream.

    Every form :mod:`layerferry.archive.read` knows, any whole-file compression; everything is
    checked and cached before an image is returned.
    """

    def __init__(
        self,
        cache: BlobCache,
        options: ReadOptions | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.cache = cache
        self.options = options or ReadOptions()
        self.reporter = reporter or NullReporter()

    def read(self, source: Path | Readable, what: str = STANDARD_INPUT) -> ArchiveReading:
        sink = CachingSink(self.cache)
        if isinstance(source, Path):
            reading = read_path(source, sink, self.options)
        else:
            reading = read_stream(source, sink, what, self.options)
        for warning in reading.findings.warnings:
            self.reporter.warn(warning)
        return reading

    def read_stream(self, stream: Readable, what: str) -> list[ArchiveImage]:
        return self.read(stream, what).archive_images()

    def read_path(self, path: Path) -> list[ArchiveImage]:
        return self.read(path).archive_images()
