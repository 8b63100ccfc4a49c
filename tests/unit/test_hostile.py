"""Hostile archives: names that escape, nesting without end, metadata and decompression bombs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zstandard

from layerferry.archive.limits import Limits
from layerferry.archive.model import ArchiveReading
from layerferry.archive.read import ReadOptions, read_path
from layerferry.archive.scan import MeasuringSink
from layerferry.errors import ArchiveError, IntegrityError, LimitExceeded
from tests.archivegen import (
    OCI_INDEX,
    Tar,
    docker_legacy,
    hexof,
    make_img,
    oci_layout,
    sha,
    skopeo_dir,
)


def read(tar: Tar | bytes, tmp_path: Path, **options: object) -> ArchiveReading:
    path = tmp_path / "in.tar"
    path.write_bytes(tar.bytes() if isinstance(tar, Tar) else tar)
    return read_path(path, MeasuringSink(), ReadOptions(**options))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("/etc/passwd", "member '/etc/passwd' has an absolute path; refused"),
        ("../escape.json", "member '../escape.json' climbs out of the archive with '..'; refused"),
        ("a/../../x", "member 'a/../../x' climbs out of the archive with '..'; refused"),
    ],
)
def test_member_names_that_escape_are_refused(tmp_path: Path, name: str, message: str) -> None:
    tar = docker_legacy(Tar(), [make_img(1, tags=["app:1"])]).file(name, b"{}")
    with pytest.raises(ArchiveError, match=message.replace("(", r"\(").replace(".", r"\.")):
        read(tar, tmp_path)


@pytest.mark.parametrize("field", ["Config", "Layers"])
def test_manifest_paths_that_escape_are_refused(tmp_path: Path, field: str) -> None:
    tar = docker_legacy(Tar(), [make_img(2, tags=["app:1"])])
    entries = json.loads(tar.get("manifest.json"))
    entries[0][field] = "../../etc/shadow" if field == "Config" else ["/etc/shadow"]
    tar.replace("manifest.json", json.dumps(entries).encode())
    with pytest.raises(ArchiveError) as info:
        read(tar, tmp_path)
    shown = "'../../etc/shadow'" if field == "Config" else "'/etc/shadow'"
    assert f"names {shown}: not a path inside the archive; refused" in str(info.value)


def _index_chain(tar: Tar, manifest: bytes, depth: int) -> tuple[bytes, int]:
    """*depth* indexes, each listing the next; the last lists the image manifest."""
    target = {"mediaType": "application/vnd.oci.image.manifest.v1+json"}
    target.update(digest=sha(manifest), size=len(manifest))  # type: ignore[arg-type]
    raw = b""
    for _ in range(depth):
        raw = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [target]}
        ).encode()
        tar.file(f"blobs/sha256/{hexof(raw)}", raw)
        target = {"mediaType": OCI_INDEX, "digest": sha(raw), "size": len(raw)}  # type: ignore[dict-item]
    return raw, len(raw)


def test_deep_index_nesting_is_refused(tmp_path: Path) -> None:
    tar = Tar()
    manifest = oci_layout(tar, [make_img(3, tags=["app:1"])])[0]
    top, size = _index_chain(tar, manifest, 10)
    index = json.loads(tar.get("index.json"))
    index["manifests"][0].update(mediaType=OCI_INDEX, digest=sha(top), size=size)
    tar.replace("index.json", json.dumps(index).encode())
    with pytest.raises(LimitExceeded, match="indexes nested deeper than 8; refused"):
        read(tar, tmp_path)
    index["manifests"][0].update(mediaType=OCI_INDEX)
    shallow = Tar()
    manifest = oci_layout(shallow, [make_img(3, tags=["app:1"])])[0]
    top, size = _index_chain(shallow, manifest, 3)
    index = json.loads(shallow.get("index.json"))
    index["manifests"][0].update(mediaType=OCI_INDEX, digest=sha(top), size=size)
    shallow.replace("index.json", json.dumps(index).encode())
    assert len(read(shallow, tmp_path).images) == 1


def test_an_index_cycle_ends(tmp_path: Path) -> None:
    """Digests make a true cycle impossible; blobs named for another digest are caught first."""
    tar = Tar()
    oci_layout(tar, [make_img(4, tags=["app:1"])])
    a, b = "a" * 64, "b" * 64
    for this, other in ((a, b), (b, a)):
        raw = {"schemaVersion": 2, "mediaType": OCI_INDEX}
        raw["manifests"] = [{"mediaType": OCI_INDEX, "digest": f"sha256:{other}", "size": 10}]  # type: ignore[assignment]
        tar.file(f"blobs/sha256/{this}", json.dumps(raw).encode())
    index = json.loads(tar.get("index.json"))
    index["manifests"] = [{"mediaType": OCI_INDEX, "digest": f"sha256:{a}", "size": 10}]
    tar.replace("index.json", json.dumps(index).encode())
    reading = read(tar, tmp_path, strict=False)
    assert any(
        "has digest" in str(p) and f"descriptor expects sha256:{a}" in str(p)
        for p in reading.findings.problems
    )


def test_link_loop_is_refused(tmp_path: Path) -> None:
    tar = docker_legacy(Tar(), [make_img(5, tags=["app:1"])])
    tar.symlink("x/layer.tar", "../y/layer.tar").symlink("y/layer.tar", "../x/layer.tar")
    with pytest.raises(ArchiveError, match="is a link loop; refused"):
        read(tar, tmp_path)


def test_manifest_json_over_its_cap(tmp_path: Path) -> None:
    tar = docker_legacy(Tar(), [make_img(6, tags=["app:1"])])
    padded = b"[" + b" " * 6000 + tar.get("manifest.json")[1:]
    tar.replace("manifest.json", padded)
    with pytest.raises(
        LimitExceeded,
        match=rf"manifest.json is {len(padded)} bytes, over the 5000-byte limit for metadata; refused",
    ):
        read(tar, tmp_path, limits=Limits(manifest_json_bytes=5000))


def test_config_over_its_cap(tmp_path: Path) -> None:
    img = make_img(7, tags=["app:1"], padding="p" * 20_000)
    with pytest.raises(
        LimitExceeded,
        match=r"config .* is \d+ bytes, over the 10000-byte limit for metadata; refused",
    ):
        read(docker_legacy(Tar(), [img]), tmp_path, limits=Limits(manifest_bytes=10_000))


def test_metadata_total_is_bounded(tmp_path: Path) -> None:
    """JSON beyond the in-memory budget is not kept; needing it is a clear limit error."""
    tar = Tar()
    for i in range(20):
        tar.file(f"junk/{i}.json", b"{" + b" " * 998 + b"}")
    docker_legacy(tar, [make_img(8, tags=["app:1"])])
    with pytest.raises(
        LimitExceeded, match="the archive holds more than 10000 bytes of JSON metadata; refused"
    ):
        read(tar, tmp_path, limits=Limits(metadata_total=10_000))


def test_layer_decompression_bomb_is_bounded(tmp_path: Path) -> None:
    img = make_img(9, n_layers=1, tags=["app:1"])
    tar = Tar()
    oci_layout(tar, [img], compression="zstd")
    bomb = zstandard.ZstdCompressor().compress(img.layers[0] + b"\0" * (20 * 1024 * 1024))
    tar.file("blobs/sha256/" + hexof(bomb), bomb)
    with pytest.raises(LimitExceeded) as info:
        read(tar, tmp_path, limits=Limits(expansion_ratio=100, expansion_floor=1024 * 1024))
    assert "refused as a likely decompression bomb" in str(info.value)
    assert f"member blobs/sha256/{hexof(bomb)}" in str(info.value)
    assert info.value.hint and "--max-expansion" in info.value.hint


def test_whole_file_decompression_bomb_is_bounded(tmp_path: Path) -> None:
    tar = docker_legacy(Tar(), [make_img(10, tags=["app:1"])])
    data = zstandard.ZstdCompressor().compress(tar.bytes() + b"\0" * (20 * 1024 * 1024))
    with pytest.raises(LimitExceeded, match="decompresses to more than 1048576 bytes"):
        read(data, tmp_path, limits=Limits(expansion_ratio=100, expansion_floor=1024 * 1024))


def test_member_count_is_bounded(tmp_path: Path) -> None:
    tar = docker_legacy(Tar(), [make_img(11, tags=["app:1"])])
    with pytest.raises(LimitExceeded, match="more than 3 members; refused"):
        read(tar, tmp_path, limits=Limits(members=3))


def test_a_member_twice_with_other_content(tmp_path: Path) -> None:
    img = make_img(12, n_layers=1, tags=["app:1"])
    tar = docker_legacy(Tar(), [img])
    layer_name = next(n for n in tar.names() if n.endswith("layer.tar"))
    tar.file(layer_name, img.layers[0][:-1024] + b"\1" * 1024)
    reading = read(tar, tmp_path, strict=False)
    assert any(
        f"member {layer_name} appears twice with different content" in str(p)
        for p in reading.findings.problems
    )


# -- links that point outside the archive ------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("symlink", "/tmp/outside/layer.tar"),
        ("symlink", "../../../tmp/outside/layer.tar"),
        ("hardlink", "/tmp/outside/layer.tar"),
    ],
)
@pytest.mark.parametrize("thin", [False, True])
def test_layer_link_out_of_the_archive(tmp_path: Path, kind: str, target: str, thin: bool) -> None:
    img = make_img(20, n_layers=1, tags=["app:1"])
    tar = Tar().file(f"{hexof(img.config)}.json", img.config).dir("a/")
    getattr(tar, kind)("a/layer.tar", target)
    entries = [{"Config": f"{hexof(img.config)}.json", "RepoTags": ["app:1"]}]
    entries[0]["Layers"] = ["a/layer.tar"]  # type: ignore[assignment]
    tar.file("manifest.json", json.dumps(entries).encode())
    with pytest.raises(ArchiveError) as info:
        read(tar, tmp_path, thin=thin)
    shown = target if target.startswith("/") else "../../tmp/outside/layer.tar"
    assert str(info.value) == (
        f"{tmp_path / 'in.tar'}: app:1: layer 1 (a/layer.tar) is a link to {shown}, which points "
        "outside the archive; refused"
    )
    assert "thin" not in str(info.value) + str(info.value.hint)


def test_config_and_manifest_links_out_of_the_archive(tmp_path: Path) -> None:
    img = make_img(21, n_layers=1, tags=["app:1"])
    tar = docker_legacy(Tar(), [img])
    config = f"{hexof(img.config)}.json"
    entries = json.loads(tar.get("manifest.json"))
    entries[0]["Config"] = "c.json"
    tar.replace("manifest.json", json.dumps(entries).encode()).symlink("c.json", "/etc/passwd")
    with pytest.raises(ArchiveError, match=r"config c.json is a link to /etc/passwd, which points"):
        read(tar, tmp_path)
    outside = Tar().file(config, img.config).symlink("manifest.json", "/etc/manifest.json")
    with pytest.raises(ArchiveError) as info:
        read(outside, tmp_path)
    assert str(info.value) == (
        f"{tmp_path / 'in.tar'}: manifest.json is a link to /etc/manifest.json, which points "
        "outside the archive; refused"
    )


def test_manifest_json_as_a_link_inside_the_archive_is_read(tmp_path: Path) -> None:
    img = make_img(22, n_layers=1, tags=["app:1"])
    tar = Tar()
    flat = docker_legacy(Tar(), [img])
    for name in flat.names():
        if name != "manifest.json" and not name.endswith("/"):
            tar.file(name, flat.get(name))
    tar.file("real.json", flat.get("manifest.json")).symlink("manifest.json", "real.json")
    reading = read(tar, tmp_path)
    assert [str(t) for t in reading.images[0].tags] == ["app:1"]


@pytest.mark.parametrize("name", ["manifest.json", "index.json"])
def test_metadata_twice_with_other_content_is_refused(tmp_path: Path, name: str) -> None:
    tar = Tar()
    oci_layout(tar, [make_img(23, tags=["app:1"])], manifest_json=True)
    changed = json.loads(tar.get(name))
    if name == "manifest.json":
        changed[0]["RepoTags"] = ["evil:1"]
    else:
        changed["manifests"] = changed["manifests"][:0]
    tar.file(name, json.dumps(changed).encode())
    with pytest.raises(ArchiveError) as info:
        read(tar, tmp_path, strict=False)
    assert str(info.value) == (
        f"{tmp_path / 'in.tar'}: {name} appears twice with different content; refused"
    )
    same = Tar()
    oci_layout(same, [make_img(23, tags=["app:1"])], manifest_json=True)
    same.file(name, same.get(name))  # the same bytes twice: harmless
    assert read(same, tmp_path).images


# -- members whose names state a digest -------------------------------------------------------------
def _flip_config(tar: Tar, name: str) -> tuple[bytes, bytes]:
    before = tar.get(name)
    after = before.replace(b'"/bin/sh"', b'"/bin/sx"')
    assert after != before
    tar.replace(name, after)
    return before, after


def test_docker_archive_config_named_by_digest_is_checked(tmp_path: Path) -> None:
    img = make_img(24, n_layers=1, tags=["app:1"])
    tar = docker_legacy(Tar(), [img])
    name = f"{hexof(img.config)}.json"
    _, after = _flip_config(tar, name)
    for strict in (True, False):
        with pytest.raises(IntegrityError) as info:
            reading = read(tar, tmp_path, strict=strict)
            raise reading.findings.problems[0]
        assert str(info.value) == (
            f"{tmp_path / 'in.tar'}: member {name} has digest {sha(after)}, its name states "
            f"{img.config_digest}"
        )
        assert info.value.exit_code == 4


def test_blob_named_by_digest_in_a_docker_archive_is_checked(tmp_path: Path) -> None:
    """manifest.json (no index.json) naming blobs/sha256/<hex>: the config is checked too."""
    img = make_img(25, n_layers=1, tags=["app:1"])
    tar = Tar().file(f"blobs/sha256/{hexof(img.config)}", img.config)
    tar.file(f"blobs/sha256/{hexof(img.layers[0])}", img.layers[0])
    entry = {"Config": f"blobs/sha256/{hexof(img.config)}", "RepoTags": ["app:1"]}
    entry["Layers"] = [f"blobs/sha256/{hexof(img.layers[0])}"]  # type: ignore[assignment]
    tar.file("manifest.json", json.dumps([entry]).encode())
    assert read(tar, tmp_path).images
    _flip_config(tar, f"blobs/sha256/{hexof(img.config)}")
    with pytest.raises(IntegrityError, match=rf"member blobs/sha256/{hexof(img.config)} has dig"):
        read(tar, tmp_path)


def test_skopeo_dir_blob_names_are_checked(tmp_path: Path) -> None:
    img = make_img(26, n_layers=1, tags=["app:1"])
    tar = skopeo_dir(Tar(), img)
    tar.file("0" * 64, b"not what the name says")
    with pytest.raises(IntegrityError, match=rf"member {'0' * 64} has digest sha256:"):
        read(tar, tmp_path)


def test_v1_ids_are_not_digests(tmp_path: Path) -> None:
    """Docker 20.10's <v1id>/layer.tar folders and <v1id>/json are not checked as digests."""
    img = make_img(27, n_layers=2, tags=["app:1"])
    reading = read(docker_legacy(Tar(), [img]), tmp_path, strict=False)
    assert reading.ok and len(reading.images[0].layers) == 2
