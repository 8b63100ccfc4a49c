"""The layer that turns one directory tree into another.

Changed and new paths are written with their parents; deleted ones become whiteouts
(``.wh.NAME``, only the topmost of a deleted subtree); a directory none of whose old names
survive is written as *replaced*: an opaque marker (``.wh..wh..opq``) and its whole new
content. Each inode is stored once (case C20): the first name as a regular file, later
names as hard links to it, and a link group is rewritten whole when its membership changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..tario.tarstream import END_OF_ARCHIVE
from .entry import Entry, Kind, iter_member, whiteout_entry
from .paths import ancestors, is_within, opaque_name, parent_of, sort_key, whiteout_name
from .tree import Node, link_groups, same_content, scan


@dataclass(frozen=True)
class TreeDiff:
    lower: dict[str, Node]
    upper: dict[str, Node]
    changed: set[str]
    """Upper paths the layer writes in full."""
    deleted: list[str]
    """Lower paths the layer whites out (topmost only)."""
    opaque: set[str]
    """Directories the layer marks as replaced."""

    def emitted(self) -> list[str]:
        """Every upper path the layer holds: changes, their parents, opaque directories."""
        paths = set(self.changed) | self.opaque
        for path in list(paths) + self.deleted:
            paths.update(a for a in ancestors(path) if a in self.upper)
        return sorted(paths, key=sort_key)


def _differs(low: Node, up: Node) -> bool:
    a, b = low.entry, up.entry
    if (a.kind, a.mode, a.uid, a.gid, a.linkname, a.devmajor, a.devminor) != (
        b.kind,
        b.mode,
        b.uid,
        b.gid,
        b.linkname,
        b.devmajor,
        b.devminor,
    ):
        return True
    if dict(a.xattrs) != dict(b.xattrs):
        return True
    if a.kind is Kind.FILE:
        return a.size != b.size or a.mtime != b.mtime or not same_content(low.real, up.real)
    return a.kind is not Kind.DIR and a.mtime != b.mtime


def _children(nodes: dict[str, Node]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in nodes:
        out.setdefault(parent_of(path), set()).add(path)
    return out


def compare(lower_root: Path, upper_root: Path) -> TreeDiff:
    lower, upper = scan(lower_root), scan(upper_root)
    low_kids, up_kids = _children(lower), _children(upper)
    both_dirs = [
        p
        for p in upper
        if p in lower and upper[p].entry.kind is Kind.DIR and lower[p].entry.kind is Kind.DIR
    ]
    opaque = {
        d
        for d in both_dirs
        if low_kids.get(d) and not (low_kids.get(d, set()) & up_kids.get(d, set()))
    }
    changed = {
        p
        for p, node in upper.items()
        if p not in lower
        or _differs(lower[p], node)
        or any(is_within(p, d) for d in opaque if p != d)
    }
    gone = {
        p
        for p in lower
        if p not in upper
        or any(is_within(p, d) and p != d for d in opaque)
        or any(
            is_within(p, a) and p != a and a in changed and upper[a].entry.kind is not Kind.DIR
            for a in ancestors(p)
        )
    }
    changed = _close_link_groups(lower, upper, changed, gone)
    deleted = sorted(
        (p for p in lower if p not in upper and _whiteout_needed(p, upper, opaque)),
        key=sort_key,
    )
    return TreeDiff(lower, upper, changed, deleted, opaque)


def _whiteout_needed(path: str, upper: dict[str, Node], opaque: set[str]) -> bool:
    parent = parent_of(path)
    if parent in opaque:
        return False
    return parent == "" or (parent in upper and upper[parent].entry.kind is Kind.DIR)


def _close_link_groups(
    lower: dict[str, Node], upper: dict[str, Node], changed: set[str], gone: set[str]
) -> set[str]:
    """Grow *changed* until every unchanged name keeps exactly its upper link group.

    A name whose upper group is not part of its lower group must be rewritten, and a group is
    written whole (links in a layer point at names in the same layer). Then, one name at a
    time (so a name is not rewritten for a sibling that is rewritten anyway), a name stays only
    if the lower names it shares an inode with, minus those rewritten or gone, are its group.
    """
    up_groups, low_groups = link_groups(upper), link_groups(lower)
    changed = set(changed)
    candidates = sorted(p for p, n in upper.items() if n.entry.kind is not Kind.DIR)

    def want(path: str) -> frozenset[str]:
        return up_groups.get(path, frozenset({path}))

    def have(path: str) -> frozenset[str]:
        return low_groups.get(path, frozenset({path})) if path in lower else frozenset()

    def close() -> None:
        for path in list(changed):
            changed.update(up_groups.get(path, ()))

    close()
    for path in candidates:
        if path not in changed and not want(path) <= have(path):
            changed.update(want(path))
    while True:
        for path in candidates:
            if path in changed:
                continue
            survivors = {p for p in have(path) if p not in changed and p not in gone}
            if survivors != want(path) or want(path) & changed:
                changed.update(want(path))
                break
        else:
            return changed


def iter_diff(lower_root: Path, upper_root: Path) -> Iterator[bytes]:
    """The layer tar that turns *lower_root* into *upper_root*, streamed."""
    diff = compare(lower_root, upper_root)
    groups = link_groups(diff.upper)
    written: dict[str, str] = {}  # a link group's key → the first name written
    items: list[tuple[tuple[str, ...], str, str]] = [
        (sort_key(p), "path", p) for p in diff.emitted()
    ]
    items += [(sort_key(whiteout_name(p)), "whiteout", p) for p in diff.deleted]
    for _key, action, path in sorted(items):
        if action == "whiteout":
            yield from iter_member(whiteout_entry(whiteout_name(path)))
            continue
        node = diff.upper[path]
        entry = node.entry
        group = min(groups[path]) if path in groups else None
        if group is not None and group in written:
            yield from iter_member(
                Entry(
                    path,
                    Kind.HARDLINK,
                    entry.mode,
                    entry.uid,
                    entry.gid,
                    mtime=entry.mtime,
                    linkname=written[group],
                )
            )
            continue
        if group is not None:
            written[group] = path
        if entry.kind is Kind.FILE:
            with node.real.open("rb") as fh:
                yield from iter_member(entry, fh)
        else:
            yield from iter_member(entry)
        if path in diff.opaque:
            yield from iter_member(whiteout_entry(opaque_name(path), mode=0o755))
    yield END_OF_ARCHIVE
