"""A layer being compressed into the blob cache, readable while it grows.

``send`` streams a layer a host lacks while the reader is still compressing it, instead of
after: the compressed bytes are read back from the cache file as they land there. The reader
(:meth:`BlobCache.put_layer_tracked`) reports progress through :class:`LayerWatcher`; any number
of followers (one per host) read with ``pread``, each at its own pace.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import LayerferryError
from ..oci.digest import Digest

# Followers take what is there in pieces of at least STEP bytes (or the rest, at the end):
# each piece is one chunk on the wire, and a host pays a process start per chunk.
STEP = 2 * 1024 * 1024
CHUNK = 4 * 1024 * 1024


class LayerAbandoned(LayerferryError):
    """The layer being followed was not completed (its read failed or was stopped)."""


class GrowingLayer:
    """One layer's compressed bytes as they are written; a :class:`LayerWatcher`."""

    def __init__(self, diff_id: Digest, size: int) -> None:
        self.diff_id = diff_id
        self.size = size
        """Its uncompressed size, from the archive member that holds it."""
        self._cond = threading.Condition()
        self._fd: int | None = None
        self._written = 0
        self._complete = False
        self._failed = False

    # -- the writer's side (LayerWatcher) ---------------------------------------------------------
    def opened(self, path: Path) -> None:
        with self._cond:
            self._fd = os.open(path, os.O_RDONLY)

    def grew(self, written: int) -> None:
        with self._cond:
            self._written = written
            self._cond.notify_all()

    def complete(self) -> None:
        with self._cond:
            self._complete = True
            self._cond.notify_all()

    def fail(self) -> None:
        """The read stopped before the layer was complete (or it did not match its diff ID)."""
        with self._cond:
            if not self._complete:
                self._failed = True
            self._cond.notify_all()

    # -- a follower's side ------------------------------------------------------------------------
    def follow(self, offset: int = 0) -> Iterator[bytes]:
        """The compressed bytes from *offset*, waiting for more until the layer is complete.

        Raises :class:`LayerAbandoned` if it never completes."""
        while True:
            with self._cond:
                while not (self._failed or self._complete or self._written >= offset + STEP):
                    self._cond.wait()
                if self._failed:
                    raise LayerAbandoned(f"layer {self.diff_id.short} was not read to its end")
                end, complete, fd = self._written, self._complete, self._fd
            assert fd is not None  # opened before the first byte is written
            while offset < end:
                data = os.pread(fd, min(CHUNK, end - offset), offset)
                if not data:
                    raise LayerAbandoned(f"layer {self.diff_id.short}: its cache file shrank")
                offset += len(data)
                yield data
            if complete and offset >= end:
                return

    def close(self) -> None:
        with self._cond:
            fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
