"""Where images go. The contract, after containers/image's ``ImageDestination``:

1. ``layer_chains()`` answers, in one batch, which layer chains the destination already holds
   (empty when it cannot take a thin archive);
2. ``receive(images, include)`` takes one archive holding exactly the layers in *include* and
   makes the images real (tags included) only when every byte checked out;
3. ``confirm(images)`` re-reads what the destination now holds and fails if it differs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from ..archive.encoding import Encoder, PlainEncoder, ZstdFrameEncoder, encoder_for
from ..archive.writer import ArchiveImage, iter_archive, stored_layers
from ..daemon.engine import Engine
from ..daemon.progress import LoadResult, parse_load_text
from ..errors import EngineError, IntegrityError, LayerferryError, RemoteError
from ..oci.digest import Digest
from ..remote.host import RemoteHost
from ..tario.compression import Compression
from .blobcache import BlobCache

WRITE_CHUNK = 1024 * 1024


class Destination(Protocol):
    where: str

    def layer_chains(self) -> set[Digest]: ...

    def has_image(self, image: ArchiveImage) -> bool: ...

    def receive(
        self, images: Sequence[ArchiveImage], include: set[Digest], meter: list[int]
    ) -> None: ...

    def tag(self, image: ArchiveImage) -> None: ...

    def confirm(self, images: Sequence[ArchiveImage]) -> None: ...


class _EngineBacked:
    """What every daemon destination shares: inventory, tagging and confirmation via the API."""

    engine: Engine
    where: str

    def layer_chains(self) -> set[Digest]:
        return self.engine.layer_chains()

    def has_image(self, image: ArchiveImage) -> bool:
        record = self.engine.find_image(str(image.config.digest))
        return record is not None and record.diff_ids == image.config.diff_ids

    def tag(self, image: ArchiveImage) -> None:
        for name in image.tags:
            self.engine.tag(str(image.config.digest), str(name))

    def confirm(self, images: Sequence[ArchiveImage]) -> None:
        for image in images:
            refs = [str(t) for t in image.tags] or [str(image.config.digest)]
            for ref in refs:
                record = self.engine.find_image(ref)
                if record is None:
                    raise EngineError(f"{self.where}: {ref} is missing after the load")
                if record.diff_ids != image.config.diff_ids:
                    raise IntegrityError(
                        f"{self.where}: {ref} has other layers than the image sent "
                        f"({len(record.diff_ids)} vs {len(image.config.diff_ids)})"
                    )


class DaemonDestination(_EngineBacked):
    """The local engine, fed through ``POST /images/load``."""

    def __init__(self, engine: Engine, cache: BlobCache) -> None:
        self.engine = engine
        self.where = engine.where
        self._cache = cache

    def receive(
        self, images: Sequence[ArchiveImage], include: set[Digest], meter: list[int]
    ) -> None:
        chunks = _metered(iter_archive(images, PlainEncoder(self._cache), include=include), meter)
        self.engine.load(chunks)


_LOAD_SCRIPT = """
s=$(mktemp) || exit 99
{ %(decode)s; echo $? > "$s"; } | docker load
rc=$?
z=$(cat "$s"); rm -f "$s"
if [ "$z" != 0 ]; then
  echo "layerferry: the archive stream broke on the host (decoder exit $z)" >&2; exit 98
fi
exit $rc
"""


class SshDaemonDestination(_EngineBacked):
    """A remote engine: the archive travels compressed over SSH into the host's ``docker load``."""

    def __init__(self, host: RemoteHost, cache: BlobCache) -> None:
        self.host = host
        self.engine = host.engine
        self.where = str(host.target)
        self._cache = cache

    def layer_chains(self) -> set[Digest]:
        if self.host.info.containerd_store:
            # The containerd store decides presence by its content store, not by chain IDs;
            # until that inventory is read, send whole images there.
            return set()
        return super().layer_chains()

    def _wire(self) -> tuple[Encoder, str]:
        if "zstd" in self.host.probe.tools:
            return ZstdFrameEncoder(self._cache), "zstd -dc"
        if "gzip" in self.host.probe.tools:
            return encoder_for(Compression.GZIP, self._cache), "gzip -dc"
        return PlainEncoder(self._cache), "cat"

    def receive(
        self, images: Sequence[ArchiveImage], include: set[Digest], meter: list[int]
    ) -> None:
        encoder, decode = self._wire()
        chunks = _metered(iter_archive(images, encoder, include=include), meter)
        result = self.host.session.pipe_in(["sh", "-c", _LOAD_SCRIPT % {"decode": decode}], chunks)
        if result.returncode != 0:
            message = _last_line(result.stderr) or _last_line(result.stdout)
            raise RemoteError(f"{self.where}: docker load failed: {message}")
        loaded: LoadResult = parse_load_text(result.text)
        if not loaded.tags and not loaded.ids:
            raise EngineError(f"{self.where}: docker load reported no image loaded")


class ArchiveFileDestination:
    """An archive file, written beside its final name and renamed only when complete."""

    def __init__(
        self,
        path: Path,
        compression: Compression,
        cache: BlobCache,
        layer_compression: Compression = Compression.NONE,
    ) -> None:
        self.path = path
        self.where = str(path)
        self._compression = compression
        self._layer_compression = layer_compression
        self._cache = cache

    def _chunks(self, images: Sequence[ArchiveImage], include: set[Digest]) -> Iterator[bytes]:
        layers = stored_layers(images, self._cache, self._layer_compression)
        encoder = encoder_for(self._compression, self._cache)
        return iter_archive(images, encoder, include=include, layers=layers)

    def layer_chains(self) -> set[Digest]:
        return set()

    def has_image(self, image: ArchiveImage) -> bool:
        return False

    def tag(self, image: ArchiveImage) -> None:
        pass

    def confirm(self, images: Sequence[ArchiveImage]) -> None:
        pass

    def receive(
        self, images: Sequence[ArchiveImage], include: set[Digest], meter: list[int]
    ) -> None:
        write_atomically(self.path, _metered(self._chunks(images, include), meter))


class StreamDestination(ArchiveFileDestination):
    """An archive written to an open binary stream (``-o -``)."""

    def __init__(
        self,
        stream: BinaryIO,
        compression: Compression,
        cache: BlobCache,
        layer_compression: Compression = Compression.NONE,
    ) -> None:
        super().__init__(Path("-"), compression, cache, layer_compression)
        self.where = "standard output"
        self._stream = stream

    def receive(
        self, images: Sequence[ArchiveImage], include: set[Digest], meter: list[int]
    ) -> None:
        for chunk in _metered(self._chunks(images, include), meter):
            self._stream.write(chunk)
        self._stream.flush()


def write_atomically(path: Path, chunks: Iterator[bytes]) -> None:
    """Temp file in the target directory, fsync, rename; on any failure nothing has that name."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".partial")
    except OSError as exc:
        raise LayerferryError(f"{path}: cannot write here ({exc.strerror})") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise LayerferryError(
            f"{path}: write failed ({exc.strerror}); nothing was written"
        ) from exc
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _metered(chunks: Iterator[bytes], meter: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        meter[0] += len(chunk)
        yield chunk


def _last_line(data: bytes) -> str:
    lines = [ln.strip() for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""
