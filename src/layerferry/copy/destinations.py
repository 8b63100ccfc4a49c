"""Where images go. The contract, after containers/image's ``ImageDestination``:

1. ``inventory(images)`` answers, in one batch, which of the images' layers the destination
   already holds and whether it has each image already (an engine: by layer chains, see
   :mod:`.plan`; a registry: HEADs of the blobs; nothing when it cannot take a thin copy);
2. ``receive(images, include)`` takes the blobs of exactly the layers in *include*, blobs before
   manifests, and makes the images real (tags included) only when every byte checked out: its
   last step is the commit (a load, a rename, a manifest PUT, an index.json rename);
3. ``tag(image)`` names an image the destination had already;
4. ``confirm(images)`` re-reads what the destination now holds and fails if it differs.

Registries and OCI layouts (:mod:`layerferry.registry.push`, :mod:`.ocidir`) keep the same
contract.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from ..archive.encoding import PlainEncoder, encoder_for
from ..archive.writer import ArchiveImage, iter_archive, iter_tail, layers_to_write, stored_layers
from ..daemon.engine import Engine
from ..daemon.progress import LoadResult, parse_load_text
from ..errors import (
    EngineError,
    IntegrityError,
    Interrupted,
    LayerferryError,
    NotFoundError,
    RemoteError,
    UsageError,
)
from ..oci.digest import Digest
from ..remote.host import RemoteHost
from ..remote.session import CommandResult
from ..remote.staging import (
    ENGINE_SPACE_FACTOR,
    RemoteStaging,
    StagingState,
    state_from_listing,
)
from ..reporting import NullReporter, Reporter
from ..tario.compression import Compression
from ..units import human_bytes
from .blobcache import BlobCache
from .early import EarlyLoad
from .plan import Holding, holdings_by_chains
from .staged import stage_and_load
from .units import StagedUnit, Unit, unit_for

WRITE_CHUNK = 1024 * 1024


class Destination(Protocol):
    where: str

    def inventory(self, images: Sequence[ArchiveImage]) -> list[Holding]: ...

    def receive(
        self, images: Sequence[ArchiveImage], include: set[Digest], meter: list[int]
    ) -> None: ...

    def tag(self, image: ArchiveImage) -> None: ...

    def confirm(self, images: Sequence[ArchiveImage]) -> None: ...


class _EngineBacked:
    """What every daemon destination shares: inventory, tagging and confirmation via the API."""

    engine: Engine
    where: str

    def inventory(self, images: Sequence[ArchiveImage]) -> list[Holding]:
        present = [self.has_image(image) for image in images]
        return holdings_by_chains(images, self.layer_chains(), present)

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


_DIRECT_LOAD = """
s=$(mktemp) || exit 99
{ %(decode)s; echo $? > "$s"; } | docker load
rc=$?
z=$(cat "$s"); rm -f "$s"
if [ "$z" != 0 ]; then
  echo "layerferry: the archive stream broke on the host (decoder exit $z)" >&2; exit 98
fi
exit $rc
"""
_DECODE = {Compression.ZSTD: "zstd -dc", Compression.GZIP: "gzip -dc", Compression.NONE: "cat"}


class LoadRefused(RemoteError):
    """The host's ``docker load`` ran and failed (not the connection, not the staging)."""


class SshDaemonDestination(_EngineBacked):
    """A remote engine: layers are staged on the host (resumable, verified), then loaded there.

    Hosts without ``sha256sum`` get the archive streamed straight into ``docker load``.
    """

    def __init__(
        self,
        host: RemoteHost,
        cache: BlobCache,
        reporter: Reporter | None = None,
        cancel: threading.Event | None = None,
        chains: frozenset[Digest] | None = None,
        early: EarlyLoad | None = None,
    ) -> None:
        self._cancel = cancel
        self._chains = chains
        self._early = early
        self._probe_used = False
        self.host = host
        self.engine = host.engine
        self.where = str(host.target)
        self._cache = cache
        self._reporter = reporter or NullReporter()

    def layer_chains(self) -> set[Digest]:
        # A containerd-store engine reports its images' diff IDs like a classic one, but decides
        # presence by its content store; a thin load it refuses is retried whole (see receive).
        if self._chains is not None:
            chains, self._chains = set(self._chains), None  # asked already (send's survey): once
            return chains
        return super().layer_chains()

    @property
    def codec(self) -> Compression:
        tools = self.host.probe.tools
        if "zstd" in tools:
            return Compression.ZSTD
        return Compression.GZIP if "gzip" in tools else Compression.NONE

    def receive(
        self, images: Sequence[ArchiveImage], include: set[Digest], meter: list[int]
    ) -> None:
        everything = {layer.diff_id for image in images for layer in image.layers}
        try:
            self._receive(images, include, meter)
        except LoadRefused as exc:
            if not self.host.info.containerd_store or include >= everything:
                raise
            # Its content store lacked a layer its images list (e.g. pulled compressed): whole.
            self._reporter.warn(
                f"{self.where}: the engine refused the thin load ({exc}); sending whole images"
            )
            self._receive(images, everything, meter)

    def _receive(
        self, images: Sequence[ArchiveImage], include: set[Digest], meter: list[int]
    ) -> None:
        if "sha256sum" not in self.host.probe.tools:
            self._receive_direct(images, include, meter)
            return
        codec = self.codec
        early, self._early = self._early, None
        if early is not None and (codec is not Compression.ZSTD or not early.settle(self._cancel)):
            early = None  # it stopped (its error is the host's, met again below): without it
        units = [unit_for(self._cache, e, codec) for e in layers_to_write(images, include)]
        staging = early.staging if early is not None else self._new_staging()
        state = self._staging_state(staging, units)
        if early is None:
            free = None if state.free_staging_kib is None else state.free_staging_kib * 1024
            self._check_space(units, state, free=free)
        else:  # the streamed units took their room; the rest must fit in what is left
            try:
                rest = [u for u in units if u.entry.diff_id not in early.streamed]
                self._check_space(rest, state, free=early.staging_free, streamed=True)
            except RemoteError:
                early.abandon()
                raise
        need = ENGINE_SPACE_FACTOR * sum(u.entry.size for u in units)
        result = stage_and_load(
            staging,
            [StagedUnit(self._cache, u) for u in units],
            state,
            lambda: iter_tail(images, encoder_for(codec, self._cache)),
            self._reporter,
            meter,
            need_kib=need // 1024,
            engine_root=self.host.info.root_dir,
            codec=codec.value,
            cancel=self._cancel,
            early=early,
        )
        if early is not None:
            meter[0] += early.sent
        self._check_load(result, need)

    def _new_staging(self) -> RemoteStaging:
        return RemoteStaging(self.host.session, self.host.probe.staging_dir)

    def _staging_state(self, staging: RemoteStaging, units: Sequence[Unit]) -> StagingState:
        """What the host has staged: the probe listed it on connecting; asked again after."""
        if not self._probe_used:
            self._probe_used = True
            probe = self.host.probe
            return state_from_listing(probe.staged, probe.free_staging_kib)
        return staging.query([u.name for u in units])

    def _check_space(
        self,
        units: Sequence[Unit],
        state: StagingState,
        *,
        free: int | None,
        streamed: bool = False,
    ) -> None:
        """Refuse before sending *units* that do not fit in the *free* bytes (None: not known)
        of the host's staging directory; *streamed*: others went ahead of them. The engine's
        own room is checked by the host before the load (_SEND_LOAD)."""
        need = sum(u.size for u in units if u.name not in state.done)
        if free is not None and need > free:
            kept = "the layers sent so far stay staged, nothing was loaded"
            raise RemoteError(
                f"{self.where}: not enough disk space for staging ({self.host.probe.staging_dir}): "
                f"needs about {human_bytes(need)}{' more' if streamed else ''}, "
                f"{human_bytes(max(free, 0))} free",
                hint="free space on the host and run again; "
                + (kept if streamed else "nothing was changed there"),
            )

    def _check_load(self, result: CommandResult, need: int | None = None) -> None:
        if result.returncode != 0:
            message = _last_line(result.stderr) or _last_line(result.stdout)
            if "no space left on device" in message.lower():
                needs = f"; it needs about {human_bytes(need)} free" if need else ""
                raise EngineError(
                    f"{self.where}: the engine ran out of disk space during the load "
                    f"({self.host.info.root_dir}{needs}): {message}",
                    hint="free space there and run the same command again: staged layers are "
                    "kept, so only the load is repeated; nothing was tagged",
                )
            if not self._engine_answers():
                raise EngineError(
                    f"{self.where}: the engine stopped answering during the load ({message})",
                    hint="start it again and run the same command: staged layers are kept, "
                    "so only the load is repeated; nothing was tagged",
                )
            raise LoadRefused(f"{self.where}: docker load failed: {message}")
        loaded: LoadResult = parse_load_text(result.text)
        if not loaded.tags and not loaded.ids:
            raise EngineError(f"{self.where}: docker load reported no image loaded")

    def _engine_answers(self) -> bool:
        try:
            self.host.engine.info()
        except LayerferryError:
            return False
        return True

    def _receive_direct(
        self, images: Sequence[ArchiveImage], include: set[Digest], meter: list[int]
    ) -> None:
        codec = self.codec
        chunks = _metered(
            iter_archive(images, encoder_for(codec, self._cache), include=include), meter
        )
        script = _DIRECT_LOAD % {"decode": _DECODE[codec]}
        self._check_load(self.host.session.pipe_in(["sh", "-c", script], chunks))


class ArchiveFileDestination:
    """An archive file, written beside its final name and renamed only when complete.

    With *present_chains* (a recorded inventory of the receiving engine) it is a delta: layers
    whose chain the receiver holds are left out, and the archive names them
    (:data:`~layerferry.archive.writer.THIN_MEMBER`).
    """

    writes_file = True
    """The copy engine's progress lines say "writing" and "left out", not "sending"."""

    def __init__(
        self,
        path: Path,
        compression: Compression,
        cache: BlobCache,
        layer_compression: Compression = Compression.NONE,
        present_chains: set[Digest] | None = None,
    ) -> None:
        self.path = path
        self.where = str(path)
        self._compression = compression
        self._layer_compression = layer_compression
        self._cache = cache
        self._present = present_chains or set()

    def _chunks(self, images: Sequence[ArchiveImage], include: set[Digest]) -> Iterator[bytes]:
        layers = stored_layers(images, self._cache, self._layer_compression)
        encoder = encoder_for(self._compression, self._cache)
        return iter_archive(
            images, encoder, include=include, layers=layers, mark_thin=bool(self._present)
        )

    def inventory(self, images: Sequence[ArchiveImage]) -> list[Holding]:
        return holdings_by_chains(images, self._present, [False] * len(images))

    def layer_chains(self) -> set[Digest]:
        return self._present

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
        present_chains: set[Digest] | None = None,
    ) -> None:
        super().__init__(Path("-"), compression, cache, layer_compression, present_chains)
        self.where = "standard output"
        self._stream = stream

    def receive(
        self, images: Sequence[ArchiveImage], include: set[Digest], meter: list[int]
    ) -> None:
        for chunk in _metered(self._chunks(images, include), meter):
            self._stream.write(chunk)
        self._stream.flush()


def _is_special(path: Path) -> bool:
    """A pipe or a device (``-o /dev/null``, a FIFO): written to as it is, never replaced."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def check_writable(path: Path) -> None:
    """Fail before any work when *path* cannot be created (no such directory, no permission)."""
    path = Path(os.path.realpath(path))
    if _is_special(path):
        if not os.access(path, os.W_OK):
            raise LayerferryError(f"{path}: no permission to write")
        return
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"{path} is a directory; name the archive file to write")
    if not directory.is_dir():
        raise NotFoundError(f"{path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise LayerferryError(f"{path}: no permission to write in {directory}")


def write_atomically(path: Path, chunks: Iterator[bytes]) -> None:
    """Temp file in the target directory, fsync, rename; on any failure nothing has that name.

    A symlink is followed (the file it names is replaced, not the link); a pipe or device is
    written to directly.
    """
    path = Path(os.path.realpath(path))
    if _is_special(path):
        try:
            with path.open("wb") as out:
                for chunk in chunks:
                    out.write(chunk)
        except OSError as exc:
            raise LayerferryError(f"{path}: write failed ({exc.strerror})") from exc
        return
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


def _metered(
    chunks: Iterator[bytes], meter: list[int], cancel: threading.Event | None = None
) -> Iterator[bytes]:
    for chunk in chunks:
        if cancel is not None and cancel.is_set():
            raise Interrupted("interrupted; a transfer in flight was stopped")
        meter[0] += len(chunk)
        yield chunk


def _last_line(data: bytes) -> str:
    lines = [ln.strip() for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""
