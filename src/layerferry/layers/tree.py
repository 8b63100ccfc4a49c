"""A directory tree read as layer entries (lstat, never following links), and its canonical
listing: what two trees must agree on to be "the same filesystem"."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .entry import Entry, Kind
from .paths import join

_SKIPPED_XATTRS = ("security.selinux", "trusted.overlay.")


@dataclass(frozen=True)
class Node:
    entry: Entry
    inode: tuple[int, int] | None
    """(st_dev, st_ino) of a multiply-linked non-directory; None otherwise."""
    real: Path


def _kind(mode: int) -> Kind | None:
    if stat.S_ISREG(mode):
        return Kind.FILE
    if stat.S_ISDIR(mode):
        return Kind.DIR
    if stat.S_ISLNK(mode):
        return Kind.SYMLINK
    if stat.S_ISCHR(mode):
        return Kind.CHAR
    if stat.S_ISBLK(mode):
        return Kind.BLOCK
    if stat.S_ISFIFO(mode):
        return Kind.FIFO
    return None  # sockets: not carried by layers


def read_xattrs(path: Path) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in names:
        if name.startswith(_SKIPPED_XATTRS):
            continue
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return out


def node_of(root: Path, path: str) -> Node | None:
    real = root / path if path else root
    st = os.lstat(real)
    kind = _kind(st.st_mode)
    if kind is None:
        return None
    entry = Entry(
        path=path,
        kind=kind,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        mtime=int(st.st_mtime),
        size=st.st_size if kind is Kind.FILE else 0,
        linkname=os.readlink(real) if kind is Kind.SYMLINK else "",
        devmajor=os.major(st.st_rdev) if kind in (Kind.CHAR, Kind.BLOCK) else 0,
        devminor=os.minor(st.st_rdev) if kind in (Kind.CHAR, Kind.BLOCK) else 0,
        xattrs=read_xattrs(real),
    )
    linked = kind is not Kind.DIR and st.st_nlink > 1
    return Node(entry, (st.st_dev, st.st_ino) if linked else None, real)


def scan(root: Path) -> dict[str, Node]:
    """Every path under *root* (not *root* itself), relative, mapped to its node."""
    out: dict[str, Node] = {}
    stack = [""]
    while stack:
        directory = stack.pop()
        with os.scandir(root / directory if directory else root) as listing:
            names = sorted(e.name for e in listing)
        for name in names:
            path = join(directory, name)
            node = node_of(root, path)
            if node is None:
                continue
            out[path] = node
            if node.entry.kind is Kind.DIR:
                stack.append(path)
    return out


def link_groups(nodes: dict[str, Node]) -> dict[str, frozenset[str]]:
    """Per multiply-linked path, every path of the tree sharing its inode (itself included)."""
    by_inode: dict[tuple[int, int], set[str]] = {}
    for path, node in nodes.items():
        if node.inode is not None:
            by_inode.setdefault(node.inode, set()).add(path)
    return {p: frozenset(group) for group in by_inode.values() for p in group}


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def same_content(a: Path, b: Path) -> bool:
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            ca, cb = fa.read(1024 * 1024), fb.read(1024 * 1024)
            if ca != cb:
                return False
            if not ca:
                return True


def canonical(root: Path, *, owners: bool = True) -> list[tuple[object, ...]]:
    """Path, type, mode, (owner), size, content hash, link target, xattrs and inode grouping
    (the first path of each link group), sorted: equal listings mean equal filesystems."""
    nodes = scan(root)
    groups = link_groups(nodes)
    rows: list[tuple[object, ...]] = []
    for path in sorted(nodes):
        e = nodes[path].entry
        digest = file_digest(nodes[path].real) if e.kind is Kind.FILE else ""
        group = min(groups[path]) if path in groups else path
        owner = (e.uid, e.gid) if owners else ()
        rows.append(
            (
                path,
                e.kind.value,
                oct(e.mode),
                *owner,
                e.size,
                digest,
                e.linkname,
                group,
                tuple(sorted(e.xattrs.items())),
                (e.devmajor, e.devminor),
            )
        )
    return rows


def iter_tree(root: Path) -> Iterator[Node]:
    nodes = scan(root)
    for path in sorted(nodes, key=lambda p: tuple(p.split("/"))):
        yield nodes[path]
