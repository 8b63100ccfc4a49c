"""A host's stage-and-load started while the image is still being read from the engine.

A cold ``send`` reads the image with the engine's ``save`` and compresses each layer into the
cache. Sending a layer only once it is compressed puts the compression and the transfer one
after the other; here a layer the host lacks goes out while it is compressed (read back from
its growing cache file, :mod:`.growing`), inside the host's one-pass stage-and-load command
(``_SEND_LOAD``), which then also takes the rest: units from the cache, then the tail.

Nothing is weakened by starting early: each streamed unit is hashed and checked on the host
like any other, and the tail, all that names an image, is sent only by :meth:`EarlyLoad.finish`,
once the whole image was read and verified here.
"""

from __future__ import annotations

import hashlib
import itertools
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import Interrupted
from ..oci.digest import Digest
from ..remote.session import CommandResult
from ..remote.staging import (
    ENGINE_SPACE_FACTOR,
    LoadMarks,
    RemoteStaging,
    room_record,
    slices,
    stream_chunk,
    stream_end,
    stream_start,
)
from ..reporting import Meter, Reporter
from ..tario.compression import Compression
from ..units import human_bytes
from .blobcache import BlobCache
from .growing import GrowingLayer
from .units import iter_growing_unit, remember, stream_key


@dataclass(frozen=True)
class StreamedUnit:
    name: str
    size: int


class EarlyLoad:
    """One host's load command, running from before the image is read to the end of the load.

    :meth:`offer` hands it each layer the reader starts compressing; it streams those the
    host lacks, in that order (the command starts with the first). :meth:`finish` sends the
    rest and returns the host's answer. Offers come from one thread at a time.
    """

    def __init__(
        self,
        staging: RemoteStaging,
        cache: BlobCache,
        reporter: Reporter,
        *,
        lacking: set[Digest],
        engine_root: str,
        parts: dict[Digest, list[tuple[str, int]]],
        room: int | None,
    ) -> None:
        self.staging = staging
        self._cache = cache
        self._reporter = reporter
        self._lacking = set(lacking)
        self._parts = parts
        self._room = room
        """Bytes the host's staging directory has left for what this load streams (None: ?)."""
        self._room_at_start = room
        self._streamed_raw = 0
        """Uncompressed bytes of the layers streamed so far: the engine holds a copy of each
        until the load ends, and will unpack each once more."""
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue()
        self._offered: set[Digest] = set()
        self.streamed: dict[Digest, StreamedUnit] = {}
        """Layers whose unit went out whole, with its name and size."""
        self.sent = 0
        """Bytes of streamed units sent so far, with their records."""
        self._outcome: tuple[CommandResult, LoadMarks] | None = None
        self._error: BaseException | None = None
        self._engine_root = engine_root
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._cancel: threading.Event | None = None

    def _run(self) -> None:
        try:
            self._outcome = self.staging.send_and_load(
                Compression.ZSTD.value, 0, self._engine_root, self._records()
            )
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for it
            self._error = exc

    def offer(self, layer: GrowingLayer) -> None:
        """A layer the reader is compressing: streamed now if the host lacks it.

        Not if it might not fit in the host's staging directory (its size before compression
        is all that is known yet): the send made once it is read checks its real size first.
        """
        if layer.diff_id in self._lacking and layer.diff_id not in self._offered:
            if self._room is not None:
                if layer.size > self._room:
                    return
                self._room -= layer.size
            self._offered.add(layer.diff_id)
            self._queue.put(("layer", layer))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="early-load")
                self._thread.start()

    def settle(self, cancel: threading.Event | None = None) -> bool:
        """Wait until every offered layer is sent; False if none was, or the command stopped.
        From now on, setting *cancel* stops it."""
        self._cancel = cancel
        thread = self._thread
        if thread is None:
            return False
        done = threading.Event()
        self._queue.put(("sync", done))
        while not done.wait(0.05):
            if not thread.is_alive():
                return False
        return thread.is_alive()

    @property
    def staging_free(self) -> int | None:
        """Bytes the host's staging directory has left after the units streamed (None: ?)."""
        if self._room_at_start is None:
            return None
        return self._room_at_start - sum(unit.size for unit in self.streamed.values())

    def rest_need_kib(self, need_kib: int) -> int:
        """The engine room left to check for a load needing *need_kib* in all: the streamed
        layers' copies already take theirs."""
        return max(0, need_kib - self._streamed_raw // 1024)

    def finish(self, rest: Iterable[bytes], need_kib: int = 0) -> tuple[CommandResult, LoadMarks]:
        """Send *rest* (unit records, then the tail record and the tail); the host's answer.
        The host checks first that the engine has room for the rest of a load that needs
        *need_kib* in all. Only after :meth:`settle` said the command runs."""
        assert self._thread is not None
        room = room_record(self.rest_need_kib(need_kib))
        self.sent += len(room)
        self._queue.put(("rest", itertools.chain([room], rest)))
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return self._outcome

    def abandon(self) -> None:
        """End the command without a tail (the host loads nothing) and wait for it; a unit
        still on its way is cut (its part stays for the next run)."""
        self._stop.set()
        self._queue.put(("stop", None))
        if self._thread is not None:
            self._thread.join()

    def _records(self) -> Iterator[bytes]:
        while True:
            kind, item = self._queue.get()
            if kind == "layer":
                assert isinstance(item, GrowingLayer)
                yield from self._stream(item)
            elif kind == "sync":
                assert isinstance(item, threading.Event)
                item.set()
            elif kind == "rest":  # metered by whoever made it
                assert isinstance(item, Iterable)
                yield from item
                return
            else:
                return

    def _stream(self, layer: GrowingLayer) -> Iterator[bytes]:
        """One unit, as it is made; a part an earlier run left is continued when it matches."""
        digest = hashlib.sha256()
        pieces = iter_growing_unit(self._cache, layer)
        resumed = self._resumed(layer, digest, pieces)
        if resumed is None:  # the part did not match: from the start, freshly
            pieces.close()
            digest, pieces = hashlib.sha256(), iter_growing_unit(self._cache, layer)
        offset, carry = resumed or (0, b"")
        # Room for this layer's copy and its unpacking, and for unpacking those streamed before
        # (their copies already take their room).
        need_kib = (ENGINE_SPACE_FACTOR * layer.size + self._streamed_raw) // 1024
        self._streamed_raw += layer.size
        record = stream_start(stream_key(layer.diff_id), offset, need_kib)
        self.sent += len(record)
        yield record
        size = offset + len(carry)
        meter = self._reporter.meter(f"{self.staging.where} layer {layer.diff_id.short}", None)
        try:
            yield from self._chunk(carry, meter)
            for piece in pieces:
                digest.update(piece)
                size += len(piece)
                yield from self._chunk(piece, meter)
        finally:
            meter.close()
        want = Digest("sha256", digest.hexdigest())
        end = stream_end(f"{want.hex}.zst", want.hex, size)
        self.sent += len(end)
        yield end
        remember(self._cache, layer.diff_id, Compression.ZSTD, want, size)
        self.streamed[layer.diff_id] = StreamedUnit(f"{want.hex}.zst", size)

    def _chunk(self, piece: bytes, meter: Meter) -> Iterator[bytes]:
        for part in stream_chunk(piece):
            for out in slices(part):
                if self._stop.is_set() or (self._cancel is not None and self._cancel.is_set()):
                    raise Interrupted("interrupted; a transfer in flight was stopped")
                self.sent += len(out)
                yield out
        meter.advance(len(piece))

    def _claim(self, diff_id: Digest) -> tuple[int, str] | None:
        """Take over the longest part of the layer's stream an earlier run left, if any."""
        key = stream_key(diff_id)
        for old_run, size in sorted(self._parts.get(diff_id, []), key=lambda p: -p[1]):
            claimed = self.staging.claim(key, old_run) if size > 0 else None
            if claimed is not None and claimed[0] > 0:
                return claimed
        return None

    def _resumed(
        self, layer: GrowingLayer, digest: hashlib._Hash, pieces: Iterator[bytes]
    ) -> tuple[int, bytes] | None:
        """Whether the part an earlier run left (claimed by this run) holds our first bytes.

        Reads (and hashes into *digest*) that far into *pieces*, holding no more than one piece.
        Returns (its length, the rest of the last piece read) when it does, (0, b"") when there
        is no part, None when it does not match.
        """
        claimed = self._claim(layer.diff_id)
        if claimed is None:
            return 0, b""
        length, remote_hex = claimed
        prefix = hashlib.sha256()
        got = 0
        carry = b""
        for piece in pieces:
            head = piece[: length - got]
            prefix.update(head)
            digest.update(piece)
            got += len(piece)
            if got >= length:
                carry = piece[len(head) :]
                break
        if got >= length and prefix.hexdigest() == remote_hex:
            self._reporter.step(
                f"{self.staging.where}: resuming layer {layer.diff_id.short} at "
                f"{human_bytes(length)}"
            )
            return length, carry
        self._reporter.warn(
            f"{self.staging.where}: the part of layer {layer.diff_id.short} staged by an earlier "
            "run does not match it (damaged, or of other bytes); sending the layer whole"
        )
        return None
