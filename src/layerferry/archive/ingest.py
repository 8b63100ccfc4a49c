"""Read an archive stream straight into the blob cache: what ``save`` and ``load`` need.

A thin front for :mod:`.read` with a caching sink and strict checks: the first problem raises.
"""

from __future__ import annotations

from ..copy.blobcache import BlobCache
from ..tario.stream import Readable
from .read import ReadOptions, read_stream
from .scan import CachingSink
from .writer import ArchiveImage


def ingest_archive(
    stream: Readable,
    cache: BlobCache,
    what: str = "archive",
    options: ReadOptions | None = None,
) -> list[ArchiveImage]:
    """Cache every layer and config of the archive and return its images, verified."""
    return read_stream(stream, CachingSink(cache), what, options).archive_images()


ingest_docker_archive = ingest_archive
