"""Apply a layer (a tar stream) to a directory, as an engine unpacks it onto lower layers.

Whiteouts delete lower names, opaque markers hide a directory's lower content (wherever the
marker sits among the directory's members, case C21), hard links may point at a lower file
that the same layer whites out (its removal is deferred to the end, so member order does
not matter), and no member writes outside the root: names are normalised, ``..`` refused,
symlinked parents resolved as if the root were ``/``.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ArchiveError
from ..tario.reader import TarReader
from ..tario.stream import Readable
from .entry import CHUNK, Entry, Kind
from .paths import Marker, UnsafePathError, ancestors, is_within, marker, resolve_in_root


@dataclass
class ApplyResult:
    entries: int = 0
    whiteouts: int = 0
    opaque: list[str] = field(default_factory=list)
    skipped_xattrs: list[str] = field(default_factory=list)
    """``path: name`` of xattrs this filesystem or user could not set."""


class _Applier:
    def __init__(self, root: Path, owners: bool, what: str) -> None:
        self.root = root
        self.owners = owners
        self.what = what
        self.written: set[str] = set()
        self.dir_times: list[tuple[Path, float]] = []
        self.result = ApplyResult()
        self.graveyard = Path(tempfile.mkdtemp(prefix=".lf-removed-", dir=root))
        self.buried: dict[str, Path] = {}
        self._grave_count = 0

    # -- removal (deferred into a graveyard, so hard links to lower names still resolve) --------
    def bury(self, path: str) -> None:
        target = self._target(path)
        if not os.path.lexists(target):
            return
        self._grave_count += 1
        grave = self.graveyard / str(self._grave_count)
        os.rename(target, grave)
        self.buried[path] = grave
        for old in [p for p in self.buried if is_within(p, path) and p != path]:
            del self.buried[old]

    def _target(self, path: str) -> Path:
        where = resolve_in_root(self.root, path)
        if where == self.graveyard or is_within(str(where), str(self.graveyard)):
            raise UnsafePathError(f"{self.what}: member {path!r} names layerferry's work dir")
        return where

    # -- members --------------------------------------------------------------------------------
    def whiteout(self, path: str) -> None:
        self.result.whiteouts += 1
        if path not in self.written:
            self.bury(path)

    def opaque(self, directory: str) -> None:
        self.result.opaque.append(directory)
        target = self._target(directory) if directory else self.root
        if not target.is_dir() or target.is_symlink():
            return
        self._clear(directory, target)

    def _clear(self, directory: str, target: Path) -> None:
        for name in sorted(os.listdir(target)):
            child = f"{directory}/{name}" if directory else name
            if target / name == self.graveyard:
                continue
            if child not in self.written:
                self.bury(child)
            elif (target / name).is_dir() and not (target / name).is_symlink():
                self._clear(child, target / name)

    def entry(self, entry: Entry, payload: Readable) -> None:
        self.result.entries += 1
        if entry.path == "":
            return  # the root itself: keep the target's own
        target = self._target(entry.path)
        if not target.parent.is_dir():
            raise ArchiveError(
                f"{self.what}: {entry.path}: parent directory is missing or not a directory"
            )
        self._make_room(target, entry.kind)
        if entry.kind is Kind.FILE:
            with open(target, "xb") as out:
                left = entry.size
                while left > 0:
                    chunk = payload.read(min(CHUNK, left))
                    if not chunk:
                        raise ArchiveError(f"{self.what}: {entry.path}: content cut short")
                    out.write(chunk)
                    left -= len(chunk)
        elif entry.kind is Kind.DIR:
            if not target.is_dir():
                target.mkdir()
        elif entry.kind is Kind.SYMLINK:
            os.symlink(entry.linkname, target)
        elif entry.kind is Kind.HARDLINK:
            os.link(self._link_source(entry), target, follow_symlinks=False)
        elif entry.kind is Kind.FIFO:
            os.mkfifo(target)
        else:
            kind = stat.S_IFCHR if entry.kind is Kind.CHAR else stat.S_IFBLK
            os.mknod(target, kind | 0o600, os.makedev(entry.devmajor, entry.devminor))
        self.written.add(entry.path)
        self.written.update(ancestors(entry.path))
        if entry.kind is not Kind.HARDLINK:
            self._metadata(target, entry)

    def _make_room(self, target: Path, kind: Kind) -> None:
        if not os.path.lexists(target):
            return
        if kind is Kind.DIR and target.is_dir() and not target.is_symlink():
            return
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()

    def _link_source(self, entry: Entry) -> Path:
        if entry.linkname in self.buried:
            return self.buried[entry.linkname]
        source = self._target(entry.linkname)
        if not os.path.lexists(source) or source.is_dir():
            raise ArchiveError(
                f"{self.what}: hard link {entry.path} points at {entry.linkname}, "
                "which is not a file here"
            )
        return source

    def _metadata(self, target: Path, entry: Entry) -> None:
        if self.owners:
            os.chown(target, entry.uid, entry.gid, follow_symlinks=False)
        for name, value in entry.xattrs.items():
            try:
                os.setxattr(target, name, value, follow_symlinks=False)
            except OSError:
                self.result.skipped_xattrs.append(f"{entry.path}: {name}")
        if entry.kind is not Kind.SYMLINK:
            os.chmod(target, entry.mode)  # after chown, which clears set-id bits
        if entry.kind is Kind.DIR:
            self.dir_times.append((target, entry.mtime))
        else:
            os.utime(target, (entry.mtime, entry.mtime), follow_symlinks=False)

    def finish(self) -> None:
        shutil.rmtree(self.graveyard, ignore_errors=True)
        for target, mtime in reversed(self.dir_times):
            if target.is_dir():
                os.utime(target, (mtime, mtime))


def apply_layer(
    stream: Readable, root: Path, *, owners: bool | None = None, what: str = "layer"
) -> ApplyResult:
    """Unpack the layer tar *stream* onto *root*. Owners are set when running as root
    (or as *owners* says)."""
    applier = _Applier(root, os.geteuid() == 0 if owners is None else owners, what)
    try:
        for member in TarReader(stream, what):
            entry = Entry.from_member(member, what)
            kind, path = marker(entry.path)
            if kind is Marker.OPAQUE:
                applier.opaque(path)
            elif kind is Marker.WHITEOUT:
                applier.whiteout(path)
            elif kind is Marker.NONE:
                applier.entry(entry, member)
    finally:
        applier.finish()
    return applier.result
