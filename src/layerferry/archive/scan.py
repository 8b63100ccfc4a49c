"""One pass over an archive's members: hash every blob, keep metadata, hand layers to a sink.

Member order varies between tools (metadata may come last), so nothing is decided by position.
Each regular member is hashed as stored (its OCI blob digest). One that is a tar, or a compressed
tar, is a layer candidate and goes to the sink, which measures its diff ID (and, when loading,
keeps it in the blob cache). Small JSON is kept in memory under the caps of :class:`Limits`;
everything else is only hashed. Names are keys; nothing here touches the filesystem by name.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..copy.blobcache import BlobCache, LayerEntry, LayerWatcher, watch_complete
from ..errors import ArchiveError, IntegrityError, LimitExceeded
from ..oci.digest import Digest
from ..tario.compression import Compression, ExpansionBudget, detect, open_decompressed
from ..tario.reader import BLOCK, MemberKind, looks_like_tar
from ..tario.stream import Readable
from ..tario.verify import VerifyingReader
from .limits import Limits
from .members import Member, normalise_name

CHUNK = 1024 * 1024
SMALL_RAW = 4096
_MAX_LINK_HOPS = 16


@dataclass(frozen=True)
class LayerBlob:
    """What a layer candidate holds once uncompressed."""

    diff_id: Digest
    size: int
    entry: LayerEntry | None
    created: bool = False


class LayerSink(Protocol):
    @property
    def cache(self) -> BlobCache | None:
        """Where layers are kept (None: measured only)."""

    def put(
        self, stream: Readable, hint: Mapping[str, Any] | None = None, size: int | None = None
    ) -> LayerBlob:
        """Take one layer. *hint* is the legacy per-layer ``json`` that a ``docker save``
        writes beside ``layer.tar`` (read just before it), when there is one; *size* the
        layer's size when its member says it (a plain tar)."""


class MeasuringSink:
    """Hashes layers and keeps nothing (``verify``, ``inspect``)."""

    @property
    def cache(self) -> BlobCache | None:
        return None

    def put(
        self, stream: Readable, hint: Mapping[str, Any] | None = None, size: int | None = None
    ) -> LayerBlob:
        reader = VerifyingReader(stream, what="layer")
        while reader.read(CHUNK):
            pass
        return LayerBlob(reader.digest, reader.count, None)


class LayerFilter(Protocol):
    """Which layers a reader must keep (the others only need to be measured)."""

    def selective(self) -> bool:
        """False: keep every layer (then nothing is spooled). Asked before each layer."""

    def wanted(self, diff_id: Digest) -> bool: ...

    def guess(self, hint: Mapping[str, Any]) -> Digest | None:
        """The diff ID of the layer a ``docker save`` describes with *hint*, when that can be
        told before reading it (None: read it to know). A wrong guess cannot pass: a kept layer
        is checked against it, and the archive's own manifest must place every layer where its
        guessed diff ID belongs."""

    def watch(self, diff_id: Digest, size: int) -> LayerWatcher | None:
        """Someone to follow the wanted layer *diff_id* (guessed) while it is compressed into
        the cache (``send`` streams it to hosts as it is made), or None."""


class CachingSink:
    """Compresses layers into the blob cache as they stream by (``load``, ``save``).

    With a *keep* filter, a layer it does not want is measured and dropped, and recorded as
    absent (:meth:`LayerEntry.missing`): ``send`` reads a whole image from an engine that can
    only save whole images, though its targets lack only some layers.
    """

    def __init__(self, cache: BlobCache, keep: LayerFilter | None = None) -> None:
        self._cache = cache
        self._keep = keep

    @property
    def cache(self) -> BlobCache | None:
        return self._cache

    def put(
        self, stream: Readable, hint: Mapping[str, Any] | None = None, size: int | None = None
    ) -> LayerBlob:
        keep = self._keep
        # A guessed diff ID is checked as the layer is read; it also lets the layer be
        # followed while it is compressed, which needs its name before its end.
        guess = keep.guess(hint) if keep is not None and hint is not None else None
        if keep is None or not keep.selective() or (guess is not None and keep.wanted(guess)):
            return self._kept(stream, guess, size)
        if guess is not None:
            size = _drain(stream)  # not wanted: nobody reads these bytes, so no hash either
            return LayerBlob(guess, size, LayerEntry.missing(guess, size))
        with self._cache.spooled(stream) as spooled:
            if not keep.wanted(spooled.diff_id):
                missing = LayerEntry.missing(spooled.diff_id, spooled.size)
                return LayerBlob(spooled.diff_id, spooled.size, missing)
            watcher = keep.watch(spooled.diff_id, spooled.size)
            try:
                entry, created = self._cache.put_spooled(spooled, watcher=watcher)
            except BaseException:
                if watcher is not None:
                    watcher.fail()
                raise
        return LayerBlob(entry.diff_id, entry.size, entry, created)

    def _kept(self, stream: Readable, guess: Digest | None, size: int | None) -> LayerBlob:
        watcher = None
        if self._keep is not None and guess is not None and size is not None:
            watcher = self._keep.watch(guess, size)
        try:
            entry, created = self._cache.put_layer_tracked(stream, expected=guess, watcher=watcher)
        except BaseException:
            if watcher is not None:
                watcher.fail()
            raise
        if self._keep is not None and watcher is None:
            # Its name was known only at its end: it can be followed from now on, whole.
            late = self._keep.watch(entry.diff_id, entry.size)
            if late is not None:
                watch_complete(late, entry)
        return LayerBlob(entry.diff_id, entry.size, entry, created)


@dataclass
class Blob:
    """A regular member: its bytes as stored, and what they turned out to be."""

    name: str
    size: int
    digest: Digest
    compression: Compression = Compression.NONE
    layer: LayerBlob | None = None
    data: bytes | None = None
    """Kept in memory: small JSON or a tiny file."""
    oversized: bool = False
    """JSON over the per-document cap, so not kept."""
    over_budget: bool = False
    """JSON not kept because the archive's metadata budget was spent."""
    error: str | None = None
    """Why a compressed member could not be read (damaged stream)."""


@dataclass
class Contents:
    blobs: dict[str, Blob] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    conflicts: set[str] = field(default_factory=set)
    members: int = 0
    kept: int = 0

    def resolve(self, name: str) -> str:
        """Follow link records (at most 16 hops) to the member a name stands for."""
        for _ in range(_MAX_LINK_HOPS):
            if name not in self.links:
                break
            name = self.links[name]
        return name

    def outside(self, name: str) -> str | None:
        """Where a link points when that is outside the archive (absolute, or up with ..)."""
        if name not in self.links:
            return None
        target = self.resolve(name)
        if target.startswith("/") or target == ".." or target.startswith("../"):
            return target
        return None

    def get(self, name: str) -> Blob | None:
        return self.blobs.get(self.resolve(name))

    def names(self) -> set[str]:
        return set(self.blobs) | set(self.links) | self.dirs


def scan(
    members: Iterable[Member],
    sink: LayerSink,
    limits: Limits,
    budget: ExpansionBudget | None,
    what: str,
) -> Contents:
    contents = Contents()
    for member in members:
        contents.members += 1
        if contents.members > limits.members:
            raise LimitExceeded(f"{what}: more than {limits.members} members; refused")
        name = normalise_name(member.name, what)
        if not name:
            continue
        if member.kind is MemberKind.DIRECTORY:
            contents.dirs.add(name)
        elif member.kind in (MemberKind.SYMLINK, MemberKind.HARDLINK):
            contents.links[name] = _link_target(name, member)
        elif member.kind is MemberKind.FILE:
            blob = _take_file(member, name, contents, sink, limits, budget, what)
            old = contents.blobs.get(name)
            if old is not None and old.digest != blob.digest:
                contents.conflicts.add(name)
            contents.blobs[name] = blob
    return contents


def _link_target(name: str, member: Member) -> str:
    if member.kind is MemberKind.SYMLINK:
        target = posixpath.join(posixpath.dirname(name), member.linkname)
    else:
        target = member.linkname
    return posixpath.normpath(target) if target else ""


class _Prefixed:
    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1, /) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._rest.read(n)


class _Outer:
    """A member's own bytes; remembers when the archive around it failed (not the member)."""

    def __init__(self, member: Readable) -> None:
        self._member = member
        self.failed = False

    def read(self, n: int = -1, /) -> bytes:
        try:
            return self._member.read(n)
        except BaseException:
            self.failed = True
            raise


def _read_up_to(stream: Readable, n: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < n:
        data = stream.read(n - got)
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def _take_file(
    member: Member,
    name: str,
    contents: Contents,
    sink: LayerSink,
    limits: Limits,
    budget: ExpansionBudget | None,
    what: str,
) -> Blob:
    head = _read_up_to(member, BLOCK)
    if detect(head) is Compression.NONE and looks_like_tar(head):
        # A plain tar: its blob digest is its diff ID, so it is hashed once, by the sink.
        layer = sink.put(_Prefixed(head, member), _legacy_json(name, contents), member.size)
        return Blob(name, layer.size, layer.diff_id, Compression.NONE, layer=layer)
    label = f"{what}: member {name}"
    outer = _Outer(_Prefixed(head, member))
    raw = VerifyingReader(outer, what=label)
    plain, kind = open_decompressed(raw, label, budget)
    blob = Blob(name, member.size, Digest.of(b""), kind)
    try:
        if kind is Compression.NONE:
            _keep_small(blob, head, plain, member.size, contents, limits)
        else:
            inner = _read_up_to(plain, BLOCK)
            if looks_like_tar(inner):
                blob.layer = sink.put(_Prefixed(inner, plain))
    except LimitExceeded:
        raise
    except IntegrityError as exc:
        if kind is Compression.NONE or outer.failed:
            raise
        blob.error = str(exc).removeprefix(f"{label}: ")
    while raw.read(CHUNK):
        pass
    blob.size, blob.digest = raw.count, raw.digest
    return blob


def _legacy_json(name: str, contents: Contents) -> dict[str, Any] | None:
    """The ``json`` beside a ``docker save``'s ``ID/layer.tar``, if it came first and parses."""
    if not name.endswith("/layer.tar"):
        return None
    sibling = contents.blobs.get(name[: -len("layer.tar")] + "json")
    if sibling is None or sibling.data is None:
        return None
    try:
        data = json.loads(sibling.data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _drain(stream: Readable) -> int:
    count = 0
    while chunk := stream.read(CHUNK):
        count += len(chunk)
    return count


def _keep_small(
    blob: Blob, head: bytes, plain: Readable, size: int, contents: Contents, limits: Limits
) -> None:
    """Keep small JSON (and tiny files) in memory; *plain* still starts with *head*."""
    is_json = head.lstrip()[:1] in (b"{", b"[")
    if size > (limits.manifest_bytes if is_json else SMALL_RAW):
        blob.oversized = is_json
    elif contents.kept + size > limits.metadata_total:
        blob.over_budget = is_json
    else:
        blob.data = _read_up_to(plain, size)
        contents.kept += len(blob.data)


def check_metadata(blob: Blob, cap: int, limits: Limits, what: str, name: str) -> None:
    """Refuse metadata that was (or would have been) over a cap."""
    if blob.oversized or blob.size > cap:
        raise LimitExceeded(
            f"{what}: {name} is {blob.size} bytes, over the {cap}-byte limit for metadata; refused"
        )
    if blob.over_budget:
        raise LimitExceeded(
            f"{what}: {name}: the archive holds more than {limits.metadata_total} bytes of JSON "
            "metadata; refused"
        )


def check_links(contents: Contents, what: str) -> None:
    """Refuse link loops (a name that never resolves to a member)."""
    for name in contents.links:
        target = contents.resolve(name)
        if target in contents.links:
            raise ArchiveError(f"{what}: member {name} is a link loop; refused")
