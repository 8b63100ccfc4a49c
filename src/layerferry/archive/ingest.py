"""Read an archive stream straight into the blob cache: what ``save`` and ``load`` need.

A thin front for :mod:`.read` with a caching sink and strict checks: the first problem raises.
"""

from __future__ import annotations

from ..copy.blobcache import BlobCache
from ..tario.stream import Readable
from .read import ReadOptions, read_stream
from .scan import CachingSink, LayerFilter
from .writer import ArchiveImage


def ingest_archive(
    stream: Readable,
    cache: BlobCache,
    what: str = "archive",
    options: ReadOptions | None = None,
    keep: LayerFilter | None = None,
) -> list[ArchiveImage]:
    """Cache every layer (or those *keep* wants) and config of the archive and return its
    images, verified; a layer not kept is an absent entry."""
    return read_stream(stream, CachingSink(cache, keep), what, options).archive_images()


ingest_docker_archive = ingest_archive
