"""A local, content-addressed cache of layers (zstd-compressed) and image configs.

Every layer read from a source is compressed once and kept here under its diff ID, so a second
send, a fan-out to many hosts or a save after a send never asks the engine for it again. The
compressed form is a complete zstd frame: a wire stream is assembled by concatenating cached
frames with small frames for tar headers, and the receiver's ``zstd -d`` sees one tar.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import zstandard

from ..errors import IntegrityError, LayerferryError
from ..oci.digest import Digest
from ..tario.stream import Readable
from ..tario.verify import VerifyingReader

CHUNK = 1024 * 1024
ZSTD_LEVEL = 3
# Multi-threaded zstd keeps several jobs' input and output buffers in flight; at level 3 its
# default 8 MiB jobs cost ~100 MB of RSS on incompressible layers (a 1 GB image peaked at
# 165 MB). 4 MiB jobs halve that for ~1 % larger output (measured on a Debian minbase layer).
ZSTD_JOB_SIZE = 4 * 1024 * 1024
STALE_INCOMING_SECONDS = 3600
GZIP_LAYER_LEVEL = 6


@dataclass(frozen=True)
class GzipBlob:
    digest: Digest
    size: int
    path: Path


@dataclass(frozen=True)
class LayerEntry:
    diff_id: Digest
    size: int
    zst_digest: Digest
    zst_size: int
    path: Path
    absent: bool = False
    """Not in the cache: a thin archive left it out, and its receiver must already hold it."""

    @classmethod
    def missing(cls, diff_id: Digest, size: int) -> LayerEntry:
        return cls(diff_id, size, diff_id, 0, Path("/nonexistent"), absent=True)


@dataclass(frozen=True)
class SpooledLayer:
    """A layer read to a temp file, not yet compressed: see :meth:`BlobCache.spooled`."""

    diff_id: Digest
    size: int
    path: Path


class LayerWatcher(Protocol):
    """Follows a layer while :meth:`BlobCache.put_layer_tracked` compresses it into a file."""

    def opened(self, path: Path) -> None:
        """The file the compressed bytes go to (renamed once complete; keep a descriptor)."""

    def grew(self, written: int) -> None:
        """That many compressed bytes are in the file now."""

    def complete(self) -> None:
        """Every byte is written and the layer matched its expected diff ID."""

    def fail(self) -> None:
        """The layer will not be completed (called by whoever drives the put)."""


def watch_complete(watcher: LayerWatcher, entry: LayerEntry) -> None:
    """Show *watcher* a layer that is in the cache already, whole."""
    watcher.opened(entry.path)
    watcher.grew(entry.zst_size)
    watcher.complete()


class _HashingWriter:
    def __init__(self, inner: IO[bytes], watcher: LayerWatcher | None = None) -> None:
        self._inner = inner
        self._watcher = watcher
        self.hash = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        written = self._inner.write(data)
        if written != len(data):  # an unbuffered file writes all of it but on a full disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.count += len(data)
        if self._watcher is not None:
            self._watcher.grew(self.count)
        return written

    def flush(self) -> None:
        self._inner.flush()


class BlobCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._layers = root / "layers"
        self._configs = root / "configs"
        try:
            self._layers.mkdir(parents=True, exist_ok=True)
            self._configs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LayerferryError(
                f"layer cache {root}: cannot create it ({exc.strerror})",
                hint="pass --cache-dir (or LAYERFERRY_CACHE_DIR) naming a writable directory",
            ) from exc
        self._sweep_incoming()

    def _sweep_incoming(self) -> None:
        """Remove what runs that were killed mid-write left behind (older than an hour)."""
        horizon = time.time() - STALE_INCOMING_SECONDS
        for directory in (self._layers, self._configs):
            for leftover in directory.glob(".incoming-*"):
                with contextlib.suppress(OSError):
                    if leftover.stat().st_mtime < horizon:
                        leftover.unlink()

    def _no_space(self, exc: OSError) -> LayerferryError:
        return LayerferryError(
            f"layer cache {self.root}: {exc.strerror}",
            hint="free space there, or point --cache-dir (LAYERFERRY_CACHE_DIR) at a larger disk",
        )

    def _damaged(self, entry: LayerEntry, detail: str) -> IntegrityError:
        """A cache entry that no longer matches its digest is dropped, so the next run re-reads it."""
        self.discard_layer(entry.diff_id)
        return IntegrityError(
            f"cached layer {entry.diff_id.short} was damaged ({detail}); it has been removed",
            hint="run the same command again: the layer is read from its source once more",
        )

    # -- layers -------------------------------------------------------------------------------
    def layer(self, diff_id: Digest) -> LayerEntry | None:
        meta = self._layers / f"{diff_id.hex}.json"
        blob = self._layers / f"{diff_id.hex}.tar.zst"
        try:
            record = json.loads(meta.read_text())
            entry = LayerEntry(
                diff_id=diff_id,
                size=int(record["size"]),
                zst_digest=Digest.parse(record["zst_digest"]),
                zst_size=int(record["zst_size"]),
                path=blob,
            )
        except (OSError, ValueError, KeyError):
            return None
        try:
            if blob.stat().st_size != entry.zst_size:
                return None
        except OSError:
            return None
        return entry

    def put_layer(self, stream: Readable, *, expected: Digest | None = None) -> LayerEntry:
        """Compress *stream* (an uncompressed layer tar) into the cache; returns its entry."""
        return self.put_layer_tracked(stream, expected=expected)[0]

    def put_layer_tracked(
        self,
        stream: Readable,
        *,
        expected: Digest | None = None,
        watcher: LayerWatcher | None = None,
    ) -> tuple[LayerEntry, bool]:
        """As :meth:`put_layer`, and whether the entry is new (False: the cache had it already).

        A *watcher* can read the compressed bytes while they are written (``send`` streams a
        layer to its hosts as it is compressed).
        """
        fd, tmp_name = tempfile.mkstemp(dir=self._layers, prefix=".incoming-")
        tmp = Path(tmp_name)
        try:
            # Unbuffered: what the compressor has written is in the file for a watcher to read.
            with os.fdopen(fd, "wb", buffering=0) as raw_out:
                if watcher is not None:
                    watcher.opened(tmp)
                hashed_out = _HashingWriter(raw_out, watcher)
                source = VerifyingReader(stream, expected=expected, what="layer")
                params = zstandard.ZstdCompressionParameters.from_level(
                    ZSTD_LEVEL, threads=-1, job_size=ZSTD_JOB_SIZE, write_checksum=True
                )
                cctx = zstandard.ZstdCompressor(compression_params=params)
                with cctx.stream_writer(hashed_out, closefd=False) as writer:  # type: ignore[arg-type]
                    while chunk := source.read(CHUNK):
                        writer.write(chunk)
                if watcher is not None:
                    watcher.complete()
                os.fsync(raw_out.fileno())
            diff_id = source.digest
            entry = LayerEntry(
                diff_id=diff_id,
                size=source.count,
                zst_digest=Digest("sha256", hashed_out.hash.hexdigest()),
                zst_size=hashed_out.count,
                path=self._layers / f"{diff_id.hex}.tar.zst",
            )
            created = self.layer(diff_id) is None
            os.replace(tmp, entry.path)
            self._write_meta(entry)
            return entry, created
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
                raise self._no_space(exc) from exc
            raise
        finally:
            tmp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def spooled(self, stream: Readable) -> Iterator[SpooledLayer]:
        """Copy *stream* (an uncompressed layer tar) to a temp file in the cache, measuring it.

        Used when only some of an archive's layers are wanted: a layer's diff ID is known only
        once it is read, and writing it raw costs far less than compressing one nobody needs.
        The file is removed when the block ends.
        """
        tmp = self.incoming()
        try:
            try:
                with tmp.open("wb") as out:
                    source = VerifyingReader(stream, what="layer")
                    while chunk := source.read(CHUNK):
                        out.write(chunk)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
                    raise self._no_space(exc) from exc
                raise
            yield SpooledLayer(source.digest, source.count, tmp)
        finally:
            tmp.unlink(missing_ok=True)

    def put_spooled(
        self, spooled: SpooledLayer, *, watcher: LayerWatcher | None = None
    ) -> tuple[LayerEntry, bool]:
        """Compress a spooled layer into the cache (unless it is there already)."""
        kept = self.layer(spooled.diff_id)
        if kept is not None:
            if watcher is not None:
                watch_complete(watcher, kept)
            return kept, False
        with spooled.path.open("rb") as fh:
            return self.put_layer_tracked(fh, expected=spooled.diff_id, watcher=watcher)

    def _write_meta(self, entry: LayerEntry) -> None:
        record = {
            "diff_id": str(entry.diff_id),
            "size": entry.size,
            "zst_digest": str(entry.zst_digest),
            "zst_size": entry.zst_size,
        }
        meta = self._layers / f"{entry.diff_id.hex}.json"
        _write_small(meta, json.dumps(record).encode())

    def iter_compressed(self, entry: LayerEntry) -> Iterator[bytes]:
        """The cached zstd frame(s), verified against the recorded digest while read."""
        with entry.path.open("rb") as fh:
            reader = VerifyingReader(
                fh,
                expected=entry.zst_digest,
                size=entry.zst_size,
                what=f"cached layer {entry.diff_id.short}",
            )
            try:
                while chunk := reader.read(CHUNK):
                    yield chunk
                reader.check()
            except IntegrityError as exc:
                raise self._damaged(entry, str(exc)) from exc

    def iter_uncompressed(self, entry: LayerEntry) -> Iterator[bytes]:
        """The layer tar itself, verified against its diff ID while read."""
        with entry.path.open("rb") as fh:
            dctx = zstandard.ZstdDecompressor()
            with dctx.stream_reader(fh, read_across_frames=True) as plain:
                reader = VerifyingReader(
                    plain,
                    expected=entry.diff_id,
                    size=entry.size,
                    what=f"cached layer {entry.diff_id.short}",
                )
                try:
                    while chunk := reader.read(CHUNK):
                        yield chunk
                    reader.check()
                except zstandard.ZstdError as exc:
                    raise self._damaged(entry, str(exc)) from exc
                except IntegrityError as exc:
                    raise self._damaged(entry, str(exc)) from exc

    def discard_layer(self, diff_id: Digest) -> None:
        for suffix in (".json", ".tar.zst", ".gz.json", ".tar.gz"):
            (self._layers / f"{diff_id.hex}{suffix}").unlink(missing_ok=True)

    # -- gzip forms of layers (for archives that store gzip layers) -----------------------------
    def gzip_layer(self, entry: LayerEntry) -> GzipBlob:
        """The layer as a gzip blob, made once (deterministically: no name, mtime 0) and kept."""
        meta = self._layers / f"{entry.diff_id.hex}.gz.json"
        path = self._layers / f"{entry.diff_id.hex}.tar.gz"
        kept = self.gzip_form(entry.diff_id)
        if kept is not None:
            return kept
        fd, tmp_name = tempfile.mkstemp(dir=self._layers, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as raw_out:
                out = _HashingWriter(raw_out)
                z = zlib.compressobj(GZIP_LAYER_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
                for chunk in self.iter_uncompressed(entry):
                    out.write(z.compress(chunk))
                out.write(z.flush())
                raw_out.flush()
                os.fsync(raw_out.fileno())
            blob = GzipBlob(Digest("sha256", out.hash.hexdigest()), out.count, path)
            os.replace(tmp_name, path)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        _write_small(meta, json.dumps({"digest": str(blob.digest), "size": blob.size}).encode())
        return blob

    def gzip_form(self, diff_id: Digest) -> GzipBlob | None:
        """The layer's gzip blob when one is kept (made here, or adopted from a registry)."""
        meta = self._layers / f"{diff_id.hex}.gz.json"
        path = self._layers / f"{diff_id.hex}.tar.gz"
        try:
            record = json.loads(meta.read_text())
            blob = GzipBlob(Digest.parse(record["digest"]), int(record["size"]), path)
            if path.stat().st_size == blob.size:
                return blob
        except (OSError, ValueError, KeyError):
            pass
        return None

    def adopt_gzip(self, entry: LayerEntry, path: Path, digest: Digest, size: int) -> GzipBlob:
        """Keep *path* (a verified gzip blob of *entry*, as a registry serves it) as the layer's
        gzip form, unless one is kept already: pushing it again then reproduces its digest."""
        kept = self.gzip_form(entry.diff_id)
        if kept is not None:
            path.unlink(missing_ok=True)
            return kept
        target = self._layers / f"{entry.diff_id.hex}.tar.gz"
        os.replace(path, target)
        meta = self._layers / f"{entry.diff_id.hex}.gz.json"
        tmp_meta = meta.with_suffix(f".tmp{os.getpid()}")
        tmp_meta.write_text(json.dumps({"digest": str(digest), "size": size}))
        os.replace(tmp_meta, meta)
        return GzipBlob(digest, size, target)

    def incoming(self) -> Path:
        """A fresh temp file name inside the cache (same file system as its entries)."""
        fd, name = tempfile.mkstemp(dir=self._layers, prefix=".incoming-")
        os.close(fd)
        return Path(name)

    def iter_gzip(self, blob: GzipBlob) -> Iterator[bytes]:
        """A gzip layer blob, verified against its recorded digest and size while read."""
        with blob.path.open("rb") as fh:
            reader = VerifyingReader(
                fh,
                expected=blob.digest,
                size=blob.size,
                what=f"cached gzip layer {blob.digest.short}",
            )
            while chunk := reader.read(CHUNK):
                yield chunk
            reader.check()

    # -- configs ------------------------------------------------------------------------------
    def config(self, digest: Digest) -> bytes | None:
        try:
            raw = (self._configs / digest.hex).read_bytes()
        except OSError:
            return None
        if Digest.of(raw) != digest:
            # Damaged since it was written: forget it; the caller reads it from its source again.
            (self._configs / digest.hex).unlink(missing_ok=True)
            return None
        return raw

    def put_config(self, raw: bytes) -> Digest:
        digest = Digest.of(raw)
        if self.config(digest) is None:
            try:
                _write_small(self._configs / digest.hex, raw)
            except OSError as exc:
                raise self._no_space(exc) from exc
        return digest


def _write_small(path: Path, data: bytes) -> None:
    """Write-then-rename with a name of its own, so concurrent writers never collide."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
