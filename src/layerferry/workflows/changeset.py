"""What a commit of a container would capture, read from its engine without a commit.

The change list (``GET /containers/{id}/changes``) names every added, changed and deleted
path; the archive endpoint (``GET /containers/{id}/archive``) gives their content with mode,
owner, times and xattrs. A new directory whose whole subtree is kept is read in one request;
a changed directory gives only its own header (the stream is closed after it); other paths
are read one by one. Nothing excluded is read. Deletions become whiteouts. Hard links between
separately read files are found by their equal stat and confirmed by reading the headers of
their common directory (the engine marks links within one stream).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..daemon.engine import Engine, PathStat
from ..layers.entry import Entry, Kind
from ..layers.paths import is_within, normalize, parent_of, sort_key
from ..layers.rules import SNIFF_BYTES, Excludes
from ..tario.reader import TarReader
from ..tario.stream import IterStream, Readable

ADDED, CHANGED, DELETED = "A", "C", "D"
_KIND_NAMES = {0: CHANGED, 1: ADDED, 2: DELETED}
LINK_CHECK_MIN_BUDGET = 64 * 1024 * 1024


@dataclass
class _Node:
    path: str  # normalised ("etc/passwd")
    change: str = CHANGED
    children: dict[str, _Node] = field(default_factory=dict)
    stat: PathStat | None = None


@dataclass(frozen=True)
class Event:
    """One thing the commit would carry: an entry with its content, or a whiteout
    (``entry`` None). ``excluded`` says why it is left out (None: it is kept)."""

    path: str
    change: str
    entry: Entry | None
    payload: Readable | None = None
    excluded: str | None = None
    head: bytes = b""

    @property
    def absolute(self) -> str:
        return "/" + self.path


def _tree(changes: list[tuple[str, int]]) -> _Node:
    root = _Node("")
    for raw, kind in sorted(changes, key=lambda c: sort_key(normalize(c[0]))):
        path = normalize(raw, "change list")
        if not path:
            continue
        node = root
        for part in path.split("/"):
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Node(f"{node.path}/{part}".lstrip("/"))
            node = child
        node.change = _KIND_NAMES.get(kind, CHANGED)
    return root


def _walk(node: _Node) -> Iterator[_Node]:
    for name in sorted(node.children):
        child = node.children[name]
        yield child
        yield from _walk(child)


@dataclass
class ChangePlan:
    """The container's change list, typed by stat where needed, with link groups found."""

    engine: Engine
    container: str
    root: _Node
    excludes: Excludes
    mounts: list[str]
    links: dict[str, str] = field(default_factory=dict)
    """Separately read files that are hard links: later name → first name."""
    unverified_links: list[str] = field(default_factory=list)

    @classmethod
    def make(
        cls, engine: Engine, container: str, info: dict[str, Any], excludes: Excludes
    ) -> ChangePlan:
        mounts = sorted(normalize(str(m.get("Destination", ""))) for m in info.get("Mounts") or [])
        plan = cls(engine, container, _tree(engine.changes(container)), excludes, mounts)
        for node in _walk(plan.root):
            if node.change != DELETED and not node.children and not plan._inside_whole(node):
                node.stat = engine.path_stat(container, "/" + node.path)
        plan._find_links()
        return plan

    # -- classification -------------------------------------------------------------------------
    def is_dir(self, node: _Node) -> bool:
        return bool(node.children) or bool(node.stat and node.stat.is_dir)

    def mount_of(self, path: str) -> str | None:
        return next((m for m in self.mounts if is_within(path, m)), None)

    def path_excluded(self, node: _Node) -> str | None:
        return self.excludes.reason("/" + node.path, self.is_dir(node))

    def _clean(self, node: _Node) -> bool:
        """Nothing below *node* is excluded by path or lies on a mount."""
        if self.mount_of(node.path) is not None or self.path_excluded(node) is not None:
            return False
        return all(self._clean(c) for c in node.children.values() if c.change != DELETED)

    def _inside_whole(self, node: _Node) -> bool:
        """*node* lies in a new directory read whole (no stat of its own needed)."""
        parent = self._node(parent_of(node.path))
        while parent is not None and parent.path:
            if parent.change == ADDED and self._clean(parent):
                return True
            parent = self._node(parent_of(parent.path))
        return False

    def _node(self, path: str) -> _Node | None:
        node = self.root
        for part in path.split("/") if path else []:
            found = node.children.get(part)
            if found is None:
                return None
            node = found
        return node

    # -- hard links between separately read files -------------------------------------------------
    def _find_links(self) -> None:
        """Files read one by one carry no link marks. An added file may share its inode with
        a name the change list does not show (overlayfs copied it up when ``ln`` ran, case
        C20), and equal-sized files may be links of each other: read the headers of their
        directory, where the engine marks links, and capture the partners too."""
        singles = {
            n.path: n
            for n in _walk(self.root)
            if n.stat is not None
            and n.stat.is_regular
            and n.stat.size > 0
            and n.change != DELETED
            and self.path_excluded(n) is None
        }
        dirs = {parent_of(p) for p, n in singles.items() if n.change == ADDED}
        groups: dict[tuple[int, int], list[str]] = {}
        for path, node in singles.items():
            assert node.stat is not None
            groups.setdefault((node.stat.size, node.stat.mode), []).append(path)
        for paths in (g for g in groups.values() if len(g) > 1):
            common = paths[0]
            while not all(is_within(p, common) for p in paths):
                common = parent_of(common)
            dirs.add(common)
        for directory in sorted(dirs, key=sort_key):
            if not any(is_within(directory, d) and d != directory for d in dirs):
                self._scan_links(directory, singles)

    def _scan_links(self, directory: str, singles: dict[str, _Node]) -> None:
        inside = [p for p in singles if is_within(p, directory)]
        wanted = sum(n.stat.size for p in inside if (n := singles[p]).stat is not None)
        budget = max(LINK_CHECK_MIN_BUDGET, 4 * wanted)
        prefix = parent_of(directory)
        seen = 0
        with self.engine.archive(self.container, "/" + directory) as chunks:
            reader = TarReader(IterStream(chunks), f"container {self.container}: /{directory}")
            for member in reader:
                seen += member.size + 512
                if seen > budget:
                    self.unverified_links += sorted(p for p in inside if p not in self.links)
                    return
                if member.info.typeflag != b"1":
                    continue
                path, target = _rebase(prefix, member.name), _rebase(prefix, member.linkname)
                if path in singles or target in singles:
                    self.links[path] = self.links.get(target, target)
                    for name in (target, path):
                        if name not in singles:
                            self._capture(name)

    def _capture(self, path: str) -> None:
        """Add a path the change list left out (a copied-up link partner) as changed."""
        node = self.root
        for part in path.split("/"):
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Node(f"{node.path}/{part}".lstrip("/"))
            node = child
        node.stat = self.engine.path_stat(self.container, "/" + path)


def _rebase(prefix: str, name: str) -> str:
    rel = normalize(name)
    return f"{prefix}/{rel}".strip("/") if prefix else rel


def _rebased(entry: Entry, prefix: str) -> Entry:
    linkname = _rebase(prefix, entry.linkname) if entry.kind is Kind.HARDLINK else None
    return entry.moved(_rebase(prefix, entry.path), linkname)


class _Replay:
    """A payload whose first bytes were read ahead (to look at them) and are given back."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._rest.read(n)


def _peek(entry: Entry, payload: Readable) -> tuple[bytes, Readable]:
    if entry.kind is not Kind.FILE or entry.size == 0:
        return b"", payload
    want = entry.size if entry.size <= SNIFF_BYTES else 64
    parts = []
    got = 0
    while got < want:
        chunk = payload.read(want - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    head = b"".join(parts)
    return head, _Replay(head, payload)


class ChangeReader:
    """Iterates a plan's events in layer order (parents first), streaming content.

    Regular files carry ``head``: their whole content up to :data:`SNIFF_BYTES`, else their
    first 64 bytes (what the content rules look at); the payload still yields every byte.
    """

    def __init__(self, plan: ChangePlan) -> None:
        self.plan = plan
        self.engine = plan.engine
        self.container = plan.container
        self._first: dict[str, Entry] = {}

    def events(self) -> Iterator[Event]:
        yield from self._children(self.plan.root)

    def _children(self, node: _Node) -> Iterator[Event]:
        for name in sorted(node.children):
            yield from self._node(node.children[name])

    def _node(self, node: _Node) -> Iterator[Event]:
        plan = self.plan
        if node.change == DELETED:
            yield Event(node.path, DELETED, None)
            return
        excluded = plan.path_excluded(node)
        if excluded is not None:
            yield from self._excluded(node, excluded)
            return
        if plan.mount_of(node.path) is not None:
            yield from self._mount_point(node)
        elif plan.is_dir(node):
            if node.change == ADDED and plan._clean(node):
                yield from self._whole(node)
                return
            yield from self._dir_header(node)
            yield from self._children(node)
        else:
            yield from self._single(node)

    def _excluded(self, node: _Node, reason: str) -> Iterator[Event]:
        for each in [node, *_walk(node)]:
            if each.change == DELETED:
                yield Event(each.path, DELETED, None)
                continue
            st = each.stat
            kind = Kind.DIR if self.plan.is_dir(each) else Kind.FILE
            size = st.size if st is not None and st.is_regular else 0
            yield Event(each.path, each.change, Entry(each.path, kind, size=size), None, reason)

    def _mount_point(self, node: _Node) -> Iterator[Event]:
        """A volume's mount point: its directory (or empty file) only, never its content."""
        if self.plan.is_dir(node):
            yield from self._dir_header(node)
        else:
            st = node.stat
            mode = st.mode & 0o7777 if st else 0o644
            yield Event(node.path, node.change, Entry(node.path, Kind.FILE, mode=mode))

    @contextlib.contextmanager
    def _stream(self, path: str) -> Iterator[Iterator[tuple[Entry, Readable]]]:
        prefix = parent_of(path)
        what = f"container {self.container}: /{path}"
        with self.engine.archive(self.container, "/" + path) as chunks:
            reader = TarReader(IterStream(chunks), what)
            yield ((_rebased(Entry.from_member(m, what), prefix), m) for m in reader)

    def _content(self, entry: Entry, change: str, payload: Readable) -> Event:
        head, replay = _peek(entry, payload)
        excluded = None
        if entry.kind is Kind.FILE:
            excluded = self.plan.excludes.reason("/" + entry.path, False, head)
        return Event(entry.path, change, entry, replay, excluded, head)

    def _dir_header(self, node: _Node) -> Iterator[Event]:
        with self._stream(node.path) as members:
            for entry, _payload in members:
                yield Event(node.path, node.change, entry.moved(node.path))
                break

    def _whole(self, node: _Node) -> Iterator[Event]:
        orphans: list[str] = []
        dropped: set[str] = set()
        with self._stream(node.path) as members:
            for entry, payload in members:
                if not is_within(entry.path, node.path):
                    continue
                if entry.kind is Kind.HARDLINK and entry.linkname in dropped:
                    orphans.append(entry.path)
                    continue
                event = self._content(entry, ADDED, payload)
                if event.excluded is not None:
                    dropped.add(entry.path)
                yield event
        for path in orphans:  # their first name was left out: read them on their own
            yield from self._single(_Node(path, ADDED))

    def _single(self, node: _Node) -> Iterator[Event]:
        first = self.plan.links.get(node.path)
        if first is not None and first in self._first:
            base = self._first[first]
            link = Entry(
                node.path,
                Kind.HARDLINK,
                base.mode,
                base.uid,
                base.gid,
                base.uname,
                base.gname,
                base.mtime,
                linkname=first,
            )
            yield Event(node.path, node.change, link)
            return
        with self._stream(node.path) as members:
            for entry, payload in members:
                if entry.path != node.path or entry.kind is Kind.HARDLINK:
                    continue
                event = self._content(entry, node.change, payload)
                if event.excluded is None:
                    self._first[node.path] = entry
                yield event
                break
