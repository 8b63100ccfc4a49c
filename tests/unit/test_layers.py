"""The layer library: tree diff and apply round-trip (property test), whiteouts, opaque
directories in both member orders (C21), hard links (C20), xattrs (C22), large ids (C23),
path safety."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerferry.errors import ArchiveError
from layerferry.layers import (
    Entry,
    Kind,
    UnsafePathError,
    apply_layer,
    canonical,
    iter_diff,
    normalize,
    resolve_in_root,
)
from layerferry.tario.reader import TarReader

MTIME = 1_700_000_000
ROOT = os.geteuid() == 0
CAP_NET_RAW_EP = bytes.fromhex("0100000200200000000000000000000000000000")

# -- building trees from a spec -----------------------------------------------------------------
Spec = dict[str, Any]

_content = st.sampled_from([b"", b"x", b"hello", b"hello\n" * 300, bytes(range(256))])
_leaf = st.one_of(
    st.tuples(
        st.just("file"),
        _content,
        st.sampled_from([0o644, 0o755, 0o600, 0o4755]),
        st.sampled_from([0, 1000, 88888888]),
    ),
    st.tuples(st.just("symlink"), st.sampled_from(["a", "../b", "/etc/passwd", "c/d"])),
    st.tuples(st.just("link"), st.integers(0, 7)),
)
_tree = st.recursive(
    _leaf,
    lambda inner: st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner, max_size=4),
    max_leaves=12,
)
trees = st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), _tree, max_size=5)


def build(root: Path, spec: Spec) -> None:
    root.mkdir(exist_ok=True)
    links: list[tuple[Path, int]] = []
    files: list[Path] = []

    def make(directory: Path, node: Spec) -> None:
        for name, child in sorted(node.items()):
            path = directory / name
            if isinstance(child, dict):
                path.mkdir()
                make(path, child)
                os.chmod(path, 0o750 if len(child) % 2 else 0o755)
            elif child[0] == "file":
                path.write_bytes(child[1])
                if ROOT:
                    os.chown(path, child[3], child[3])
                os.chmod(path, child[2])
                files.append(path)
            elif child[0] == "symlink":
                os.symlink(child[1], path)
            else:
                links.append((path, child[1]))

    make(root, spec)
    for path, n in links:
        if files:
            os.link(sorted(files)[n % len(files)], path)
        else:
            path.write_bytes(b"")
    for path in root.rglob("*"):
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)


def layer_bytes(lower: Path, upper: Path) -> bytes:
    return b"".join(iter_diff(lower, upper))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=trees, b=trees)
def test_applying_the_diff_of_a_and_b_to_a_gives_b(a: Spec, b: Spec) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for name, spec in (("a", a), ("b", b), ("c", a)):
            (base / name).mkdir()
            build(base / name, spec)
        layer = layer_bytes(base / "a", base / "b")
        apply_layer(io.BytesIO(layer), base / "c")
        assert canonical(base / "c") == canonical(base / "b")


# -- hand-made layers ---------------------------------------------------------------------------
def tar_of(members: list[tuple[str, str, bytes | str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, str(data)
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
                tar.addfile(info)
            else:
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def apply(root: Path, members: list[tuple[str, str, bytes | str]]) -> None:
    apply_layer(io.BytesIO(tar_of(members)), root)


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("marker_first", [False, True], ids=["marker-after", "marker-before"])
def test_c21_opaque_directory_in_both_orders(tmp_path: Path, marker_first: bool) -> None:
    apply(tmp_path, [("a", "dir", b""), ("a/old.txt", "file", b"old")])
    marker = ("a/.wh..wh..opq", "file", b"")
    new = ("a/new.txt", "file", b"new")
    apply(tmp_path, [("a", "dir", b""), *([marker, new] if marker_first else [new, marker])])
    assert listing(tmp_path) == ["a", "a/new.txt"]
    assert (tmp_path / "a/new.txt").read_bytes() == b"new"


def test_whiteouts_delete_files_and_directories(tmp_path: Path) -> None:
    apply(
        tmp_path,
        [
            ("d", "dir", b""),
            ("d/x", "file", b"1"),
            ("d/sub", "dir", b""),
            ("d/sub/y", "file", b"2"),
            ("keep", "file", b"k"),
        ],
    )
    apply(tmp_path, [("d", "dir", b""), ("d/.wh.x", "file", b""), ("d/.wh.sub", "file", b"")])
    assert listing(tmp_path) == ["d", "keep"]


def test_hard_link_to_a_file_the_same_layer_whites_out(tmp_path: Path) -> None:
    apply(tmp_path, [("f1", "file", b"lower content")])
    for order in (
        [("f4", "link", "f1"), (".wh.f1", "file", b"")],
        [(".wh.f1", "file", b""), ("f4", "link", "f1")],
    ):
        root = tmp_path / str(len(order[0][0]))
        root.mkdir()
        apply(root, [("f1", "file", b"lower content")])
        apply(root, order)
        assert listing(root) == ["f4"]
        assert (root / "f4").read_bytes() == b"lower content"


def test_c20_link_group_grows_in_a_lower_layer(tmp_path: Path) -> None:
    """Base: f1 (1 MiB) linked as f2, f3; the change: ln f1 f4. The layer holds f1's bytes
    once, f4 as a link to it; applied, every name has the content, f1 and f4 one inode."""
    lower, upper, target = tmp_path / "lower", tmp_path / "upper", tmp_path / "target"
    data = os.urandom(1024 * 1024)
    for root in (lower, upper, target):
        root.mkdir()
        (root / "f2").write_bytes(data)
        os.link(root / "f2", root / "f3")
        if root is not upper:
            os.link(root / "f2", root / "f1")
    # As overlayfs leaves it: f1 copied up (a new inode) and linked as f4; f2, f3 stay below.
    (upper / "f1").write_bytes(data)
    os.link(upper / "f1", upper / "f4")
    for root in (lower, upper, target):
        for name in os.listdir(root):
            os.utime(root / name, (MTIME, MTIME))
    layer = layer_bytes(lower, upper)
    assert 1024 * 1024 < len(layer) < 1024 * 1024 + 16 * 1024
    members = [(m.name, m.kind.value, m.linkname) for m in TarReader(io.BytesIO(layer))]
    assert members == [("f1", "file", ""), ("f4", "hardlink", "f1")]
    apply_layer(io.BytesIO(layer), target)
    for name in ("f1", "f2", "f3", "f4"):
        assert (target / name).read_bytes() == data
    assert os.stat(target / "f1").st_ino == os.stat(target / "f4").st_ino
    assert canonical(target) == canonical(upper)


def test_replaced_directory_is_written_opaque(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    build(lower, {"www": {"index.html": ("file", b"old", 0o644, 0)}})
    build(upper, {"www": {"new": ("file", b"new", 0o644, 0)}})
    names = [m.name for m in TarReader(io.BytesIO(layer_bytes(lower, upper)))]
    assert names == ["www/", "www/.wh..wh..opq", "www/new"]


@pytest.mark.skipif(not ROOT, reason="setting security.capability and uid 88888888 needs root")
def test_c22_c23_capability_and_large_ids_survive(tmp_path: Path) -> None:
    lower, upper, target = tmp_path / "lower", tmp_path / "upper", tmp_path / "target"
    for root in (lower, upper, target):
        root.mkdir()
    (upper / "usr/bin").mkdir(parents=True)
    ping = upper / "usr/bin/ping"
    ping.write_bytes(b"\x7fELF fake ping")
    os.setxattr(ping, "security.capability", CAP_NET_RAW_EP)
    big = upper / "owned"
    big.write_bytes(b"x")
    os.chown(big, 88888888, 88888888)
    layer = layer_bytes(lower, upper)
    by_name = {m.name: m.info for m in TarReader(io.BytesIO(layer))}
    assert by_name["usr/bin/ping"].pax["SCHILY.xattr.security.capability"] == CAP_NET_RAW_EP
    assert (by_name["owned"].uid, by_name["owned"].gid) == (88888888, 88888888)
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:  # another reader agrees
        assert tar.getmember("owned").uid == 88888888
        raw = tar.getmember("usr/bin/ping").pax_headers["SCHILY.xattr.security.capability"]
        assert raw.encode("utf-8", "surrogateescape") == CAP_NET_RAW_EP
    apply_layer(io.BytesIO(layer), target)
    assert os.getxattr(target / "usr/bin/ping", "security.capability") == CAP_NET_RAW_EP
    assert os.stat(target / "owned").st_uid == 88888888


def test_c22_hand_made_capability_layer_reads_byte_for_byte(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("usr/bin/ping")
        info.size = 4
        info.pax_headers = {
            "SCHILY.xattr.security.capability": CAP_NET_RAW_EP.decode("utf-8", "surrogateescape")
        }
        tar.addfile(info, io.BytesIO(b"ping"))
    member = next(iter(TarReader(io.BytesIO(buf.getvalue()))))
    entry = Entry.from_member(member)
    assert entry.xattrs == {"security.capability": CAP_NET_RAW_EP}
    again = next(iter(TarReader(io.BytesIO(entry.header() + b"ping".ljust(512, b"\0")))))
    assert again.info.xattrs == {"security.capability": CAP_NET_RAW_EP}


# -- path safety --------------------------------------------------------------------------------
def test_names_are_normalised_and_dotdot_refused() -> None:
    assert normalize("/etc/passwd") == "etc/passwd"
    assert normalize("./a//b/") == "a/b"
    assert normalize("./") == ""
    with pytest.raises(UnsafePathError):
        normalize("a/../../etc/passwd")


def test_symlinked_parents_resolve_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(str(outside), root / "abs")  # absolute: resolves against the root
    os.symlink("../../../..", root / "up")
    assert resolve_in_root(root, "abs/x") == root / str(outside).lstrip("/") / "x"
    assert resolve_in_root(root, "up/etc/passwd") == root / "etc/passwd"
    with pytest.raises(ArchiveError):  # parent absent inside the root: refused, not followed
        apply(root, [("abs/evil", "file", b"x")])
    assert list(outside.iterdir()) == []


def test_absolute_member_names_land_under_the_root(tmp_path: Path) -> None:
    apply(tmp_path, [("/etc", "dir", b""), ("/etc/passwd", "file", b"root")])
    assert (tmp_path / "etc/passwd").read_bytes() == b"root"


def test_dotdot_member_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError):
        apply(tmp_path / ".", [("../escape", "file", b"x")])
    assert not (tmp_path.parent / "escape").exists()


def test_entry_kinds_round_trip_through_headers() -> None:
    entry = Entry("dev/null", Kind.CHAR, 0o666, devmajor=1, devminor=3)
    member = next(iter(TarReader(io.BytesIO(entry.header()))))
    assert Entry.from_member(member) == entry
