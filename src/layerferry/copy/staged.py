"""Putting blobs into a host's staging directory: resumable, verified, damaged copies replaced.

Anything with a content digest and a way to stream its bytes from an offset can be staged: a
layer unit (:mod:`.units`) on its way to ``docker load``, or a volume's data (a cached tar) on
its way into a container. The host checks each blob with ``sha256sum`` before it is used.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import IntegrityError, Interrupted, RemoteError
from ..oci.digest import Digest
from ..remote.session import CommandResult
from ..remote.staging import (
    TAIL,
    RemoteStaging,
    StagingState,
    UnitPlan,
    last_line,
    slices,
    unit_record,
)
from ..reporting import Meter, Reporter
from ..tario.compression import Compression
from ..units import human_bytes, plural
from .blobcache import BlobCache, LayerEntry
from .early import EarlyLoad


class Stageable(Protocol):
    @property
    def name(self) -> str:
        """The file name on the host (``<hex>.zst|gz|tar``)."""

    @property
    def digest(self) -> Digest: ...

    @property
    def size(self) -> int: ...

    @property
    def label(self) -> str:
        """What the user calls it ("layer 1a2b3c…", "volume data")."""

    def chunks_from(self, offset: int) -> Iterator[bytes]: ...

    def prefix_digest(self, length: int) -> Digest: ...

    @property
    def other_part_names(self) -> tuple[str, ...]:
        """Other names a part of these very bytes may have on the host (a streamed unit's)."""


@dataclass(frozen=True)
class CachedBlob:
    """A blob-cache entry staged as it is cached (zstd) or as the plain tar (hosts without zstd)."""

    cache: BlobCache
    entry: LayerEntry
    codec: Compression
    label: str

    @property
    def name(self) -> str:
        return f"{self.digest.hex}.{'zst' if self.codec is Compression.ZSTD else 'tar'}"

    @property
    def digest(self) -> Digest:
        return self.entry.zst_digest if self.codec is Compression.ZSTD else self.entry.diff_id

    @property
    def size(self) -> int:
        return self.entry.zst_size if self.codec is Compression.ZSTD else self.entry.size

    @property
    def other_part_names(self) -> tuple[str, ...]:
        return ()

    def _chunks(self) -> Iterator[bytes]:
        if self.codec is Compression.ZSTD:
            return self.cache.iter_compressed(self.entry)
        return self.cache.iter_uncompressed(self.entry)

    def chunks_from(self, offset: int) -> Iterator[bytes]:
        skip = offset
        for chunk in self._chunks():
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            yield chunk[skip:] if skip else chunk
            skip = 0

    def prefix_digest(self, length: int) -> Digest:
        digest = hashlib.sha256()
        remaining = length
        for chunk in self._chunks():
            if remaining <= 0:
                break
            digest.update(chunk[:remaining])
            remaining -= len(chunk[:remaining])
        return Digest("sha256", digest.hexdigest())


def stage_all(
    staging: RemoteStaging,
    items: Sequence[Stageable],
    state: StagingState,
    reporter: Reporter,
    meter: list[int],
    *,
    cancel: threading.Event | None = None,
) -> None:
    """Stage every item the host lacks (or holds damaged), resuming earlier partial copies."""
    damaged = _damaged(staging, [i for i in items if i.name in state.done], reporter)
    for item in items:
        if item.name not in state.done or item.name in damaged:
            _stage(staging, item, state, reporter, meter, cancel)


# A staging disk with less room than this after a unit stopped short is taken as full.
FULL_DISK_KIB = 1024


def stage_and_load(
    staging: RemoteStaging,
    items: Sequence[Stageable],
    state: StagingState,
    tail: Callable[[], Iterator[bytes]],
    reporter: Reporter,
    meter: list[int],
    *,
    need_kib: int,
    engine_root: str,
    codec: str,
    cancel: threading.Event | None = None,
    early: EarlyLoad | None = None,
) -> CommandResult:
    """Stage the items the host lacks and load the archive they make, in one pass.

    Units staged and checked by earlier runs are used as they are (after a hash check); half-
    sent ones resume. A unit that arrives damaged is sent once more; nothing is tagged until
    every unit checked out. Returns the host's ``docker load`` result.

    With *early* (the host's load, running since before the image was read) the units it
    streamed are left out and the rest goes through it.
    """
    streamed = {unit.name for unit in early.streamed.values()} if early is not None else set()
    earlier = [i for i in items if i.name in state.done and i.name not in streamed]
    damaged = _damaged(staging, earlier, reporter)
    offsets: dict[str, int | None] = {}
    for item in items:
        if item.name in streamed:
            offsets[item.name] = 0  # on its way already; whole if it must go again
        elif item.name in state.done and item.name not in damaged:
            offsets[item.name] = None
        else:
            offsets[item.name] = _resume_offset(staging, item, state, reporter)
    reused = [i for i in items if offsets[i.name] is None]
    if reused:
        reporter.step(
            f"{staging.where}: {plural(len(reused), 'layer')} staged there by an earlier run "
            f"used as staged ({human_bytes(sum(i.size for i in reused))} not sent again)"
        )
    for attempt in (1, 2):
        ahead = streamed if attempt == 1 else set()
        records = _sent(
            staging.where, [i for i in items if i.name not in ahead], offsets, tail, reporter,
            meter, cancel,
        )  # fmt: skip
        checked = need_kib  # what the host compared with the engine's free space
        if attempt == 1 and early is not None:
            checked = early.rest_need_kib(need_kib)
            result, marks = early.finish(records, need_kib)
        else:
            result, marks = staging.send_and_load(codec, need_kib, engine_root, records)
        if marks.free_kib is not None:
            raise RemoteError(
                f"{staging.where}: not enough disk space for the engine ({engine_root}): needs "
                f"about {human_bytes(checked * 1024)}, {human_bytes(marks.free_kib * 1024)} free",
                hint="free space on the host and run again; nothing was loaded (layers staged "
                "there are kept for the next run)",
            )
        if marks.short:
            name, have = next(iter(marks.short.items()))
            if marks.staging_free_kib is not None and marks.staging_free_kib < FULL_DISK_KIB:
                raise RemoteError(
                    f"{staging.where}: not enough disk space for staging ({staging.directory}): "
                    f"it filled up at {human_bytes(have)} of layer {name[:12]}",
                    hint="free space on the host and run the same command again: it resumes",
                )
            raise RemoteError(
                f"{staging.where}: staging {name[:12]} stopped early ({have} bytes arrived)",
                hint="run the same command again: it resumes where it stopped",
            )
        failed = marks.bad | marks.gone
        if result.returncode in (90, 95) and not failed:
            raise RemoteError(
                f"{staging.where}: staging in {staging.directory} failed: "
                f"{last_line(result.stderr)}",
                hint="check that directory on the host (space, permissions) and run again",
            )
        if result.returncode != 90:
            return result
        if attempt == 2:
            break
        for name in marks.bad:
            label = next(i.label for i in items if i.name == name)
            reporter.warn(f"{staging.where}: {label} arrived damaged; sending it again")
        for name in marks.gone:
            reporter.warn(f"{staging.where}: staged {name[:12]} was removed meanwhile; sending it")
        offsets = _retry_offsets(offsets, marks.ok, failed)
    if not marks.bad:
        raise RemoteError(
            f"{staging.where}: {len(marks.gone)} staged layer(s) were removed while this send "
            "used them (another send to the host at the same time?)",
            hint="run the same command again",
        )
    raise IntegrityError(
        f"{staging.where}: {len(failed)} layer(s) arrived damaged twice",
        hint="the link or the host's disk corrupts data; check it before trying again",
    )


def _retry_offsets(
    offsets: dict[str, int | None], ok: set[str], failed: set[str]
) -> dict[str, int | None]:
    """Where each unit starts in the second attempt: a failed one from zero, a checked one
    staged; one the first attempt never reached (it stops at a unit gone) where it would have."""
    return {
        name: 0 if name in failed else None if name in ok else offset
        for name, offset in offsets.items()
    }


def _sent(
    where: str,
    items: Sequence[Stageable],
    offsets: dict[str, int | None],
    tail: Callable[[], Iterator[bytes]],
    reporter: Reporter,
    meter: list[int],
    cancel: threading.Event | None,
) -> Iterator[bytes]:
    """The input of a one-pass stage-and-load: each unit's record and its bytes from its
    offset, then the tail."""
    for item in items:
        offset = offsets[item.name]
        record = unit_record(UnitPlan(item.name, item.digest.hex, item.size, offset))
        meter[0] += len(record)
        yield record
        if offset is None or offset >= item.size:  # staged, or a whole part found staged
            continue
        progress = reporter.meter(f"{where} {item.label}", item.size - offset)
        try:
            yield from _progressed(_metered(item.chunks_from(offset), meter, cancel), progress)
        finally:
            progress.close()
    meter[0] += len(TAIL)
    yield TAIL
    yield from _metered(tail(), meter, cancel)


def _damaged(staging: RemoteStaging, staged: Sequence[Stageable], reporter: Reporter) -> set[str]:
    """Items staged by an earlier run whose bytes no longer hash right: discard, send again."""
    if not staged:
        return set()
    hashes = staging.hashes([i.name for i in staged])
    bad = {i.name for i in staged if hashes.get(i.name) != i.digest.hex}
    if bad:
        reporter.warn(
            f"{staging.where}: {len(bad)} staged blob(s) were damaged; sending them again"
        )
        staging.discard(sorted(bad))
    return bad


def _stage(
    staging: RemoteStaging,
    item: Stageable,
    state: StagingState,
    reporter: Reporter,
    meter: list[int],
    cancel: threading.Event | None,
) -> None:
    offset = _resume_offset(staging, item, state, reporter)
    for _attempt in (1, 2):
        progress = reporter.meter(f"{staging.where} {item.label}", item.size - offset)
        try:
            chunks = _progressed(_metered(item.chunks_from(offset), meter, cancel), progress)
            ok = staging.upload(item.name, item.digest.hex, item.size, chunks)
        finally:
            progress.close()
        if ok:
            return
        reporter.warn(f"{staging.where}: {item.label} arrived damaged; sending it again")
        offset = 0
    raise IntegrityError(
        f"{staging.where}: {item.label} arrived damaged twice",
        hint="the link or the host's disk corrupts data; check it before trying again",
    )


def _resume_offset(
    staging: RemoteStaging, item: Stageable, state: StagingState, reporter: Reporter
) -> int:
    """Continue the longest earlier part whose bytes match ours; otherwise start at zero.

    A part may hold the whole unit: a cut can come after its last byte and before its end
    record (a streamed unit is named only there). Its offset is then the unit's size: nothing
    is sent, and the host checks and names it as it would a finished upload."""
    parts = [
        (name, old_run, size)
        for name in (item.name, *item.other_part_names)
        for old_run, size in state.parts.get(name, [])
    ]
    for name, old_run, _ in sorted(parts, key=lambda p: -p[2]):
        claimed = staging.claim(name, old_run, None if name == item.name else item.name)
        if claimed is None:  # gone, or still written by another run
            continue
        size, remote_hex = claimed
        if not 0 < size <= item.size:  # of no use (empty, or longer than the unit: damaged)
            staging.discard_part(item.name)
            continue
        if item.prefix_digest(size).hex == remote_hex:
            reporter.step(
                f"{staging.where}: resuming {item.label} at "
                f"{human_bytes(size)} of {human_bytes(item.size)}"
            )
            return size
        staging.discard_part(item.name)
        reporter.warn(
            f"{staging.where}: the part of {item.label} staged by an earlier run does not match "
            "it (damaged, or of other bytes); sending the layer whole"
        )
    return 0


def _metered(
    chunks: Iterator[bytes], meter: list[int], cancel: threading.Event | None
) -> Iterator[bytes]:
    for chunk in chunks:
        for piece in slices(chunk):
            if cancel is not None and cancel.is_set():
                raise Interrupted("interrupted; a transfer in flight was stopped")
            meter[0] += len(piece)
            yield piece


def _progressed(chunks: Iterator[bytes], meter: Meter) -> Iterator[bytes]:
    for chunk in chunks:
        meter.advance(len(chunk))
        yield chunk
