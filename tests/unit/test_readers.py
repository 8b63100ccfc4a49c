"""Every archive form people have, and the field cases C01–C19 that concern reading them."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
from pathlib import Path

import pytest
import zstandard

from layerferry.archive.classify import ArchiveFormat
from layerferry.archive.model import ArchiveReading
from layerferry.archive.read import ReadOptions, read_path, read_stream
from layerferry.archive.scan import CachingSink, MeasuringSink
from layerferry.copy.blobcache import BlobCache
from layerferry.errors import ArchiveError, IntegrityError
from layerferry.oci.descriptor import Platform
from layerferry.oci.digest import Digest
from layerferry.tario.compression import Compression
from tests.archivegen import (
    OCI_INDEX,
    Img,
    Tar,
    docker_legacy,
    gz,
    hexof,
    make_img,
    oci_layout,
    sha,
    skopeo_dir,
    zst,
)
from tests.imagegen import layer_tar


def read(
    data: bytes | Tar,
    tmp_path: Path,
    *,
    name: str = "in.tar",
    cache: BlobCache | None = None,
    **options: object,
) -> ArchiveReading:
    path = tmp_path / name
    path.write_bytes(data.bytes() if isinstance(data, Tar) else data)
    sink = CachingSink(cache) if cache is not None else MeasuringSink()
    return read_path(path, sink, ReadOptions(**options))  # type: ignore[arg-type]


def problems(reading: ArchiveReading) -> list[str]:
    return [str(p) for p in reading.findings.problems]


def assert_same(reading: ArchiveReading, images: list[Img]) -> None:
    assert [str(i.config.digest) for i in reading.images] == [i.config_digest for i in images]
    assert [[str(t) for t in i.tags] for i in reading.images] == [i.tags for i in images]
    assert [[str(x.diff_id) for x in i.layers] for i in reading.images] == [
        i.diff_ids for i in images
    ]
    assert [[x.size for x in i.layers] for i in reading.images] == [
        [len(layer) for layer in i.layers] for i in images
    ]


# -- the forms -------------------------------------------------------------------------------------
def test_docker_20_10_archive(tmp_path: Path) -> None:
    img = make_img(1, tags=["app:1"])
    reading = read(docker_legacy(Tar(), [img]), tmp_path)
    assert reading.format is ArchiveFormat.DOCKER
    assert_same(reading, [img])
    assert reading.images[0].layers[0].member.endswith("/layer.tar")


def test_docker_archive_with_gzip_layers(tmp_path: Path) -> None:
    img = make_img(2, tags=["app:1"])
    reading = read(docker_legacy(Tar(), [img], gzip_layers=True), tmp_path)
    assert_same(reading, [img])
    layer = reading.images[0].layers[0]
    assert layer.compression is Compression.GZIP
    assert str(layer.stored_digest) == sha(gz(img.layers[0]))
    assert layer.stored_size == len(gz(img.layers[0]))


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_oci_archive(tmp_path: Path, compression: str) -> None:
    """skopeo/podman oci-archive: no manifest.json; blob digests are of the compressed bytes."""
    img = make_img(3, tags=["app:1"])
    tar = Tar()
    manifests = oci_layout(tar, [img], compression=compression)
    reading = read(tar, tmp_path)
    assert reading.format is ArchiveFormat.OCI
    assert_same(reading, [img])
    assert str(reading.images[0].manifest_digest) == sha(manifests[0])


def test_oci_ref_name_only(tmp_path: Path) -> None:
    """skopeo writes only org.opencontainers.image.ref.name: a full name is a tag."""
    img = make_img(4, tags=["localhost/app:2"])
    tar = Tar()
    oci_layout(tar, [img], ref_style="oci")
    assert [str(t) for t in read(tar, tmp_path).images[0].tags] == ["localhost/app:2"]


def test_bare_ref_name_is_kept_as_a_ref(tmp_path: Path) -> None:
    img = make_img(5)
    tar = Tar()
    oci_layout(tar, [img])
    index = json.loads(tar.get("index.json"))
    index["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    tar.replace("index.json", json.dumps(index).encode())
    image = read(tar, tmp_path).images[0]
    assert image.tags == [] and image.refs == ["latest"]


def test_oci_layout_directory(tmp_path: Path) -> None:
    """skopeo copy … oci:DIR: the same layout as a directory."""
    img = make_img(6, tags=["app:1"])
    tar = Tar()
    oci_layout(tar, [img])
    root = tmp_path / "layout"
    root.mkdir()
    with tarfile_open(tar.bytes()) as t:
        t.extractall(root, filter="data")
    reading = read_path(root, MeasuringSink())
    assert reading.format is ArchiveFormat.OCI
    assert_same(reading, [img])


def tarfile_open(data: bytes):  # type: ignore[no-untyped-def]
    import tarfile

    return tarfile.open(fileobj=io.BytesIO(data))


def test_metadata_last_and_members_in_any_order(tmp_path: Path) -> None:
    img = make_img(7, tags=["app:1"])
    tar = Tar()
    oci_layout(tar, [img], manifest_json=True)
    tar.move_to_end("index.json").move_to_end("manifest.json").move_to_end("oci-layout")
    reading = read(tar, tmp_path)
    assert reading.format is ArchiveFormat.COMBINED
    assert_same(reading, [img])


def test_layerferry_reads_what_it_writes_with_a_cache(tmp_path: Path, cache: BlobCache) -> None:
    img = make_img(8, tags=["app:1"])
    reading = read(docker_legacy(Tar(), [img]), tmp_path, cache=cache)
    images = reading.archive_images()
    assert images[0].layers[0].path.exists()
    assert cache.config(images[0].config.digest) == img.config


def test_member_links_between_layer_files(tmp_path: Path) -> None:
    """Old docker save: a layer's file is a symlink to another v1 directory's; hard links too."""
    img = make_img(9, n_layers=2, tags=["app:1"])
    tar = Tar().file(f"{hexof(img.config)}.json", img.config)
    tar.dir("aaa/").file("aaa/layer.tar", img.layers[0])
    tar.dir("bbb/").symlink("bbb/layer.tar", "../aaa/layer.tar")
    tar.file("ccc.tar", img.layers[1]).hardlink("ddd/layer.tar", "ccc.tar")
    entry = {"Config": f"{hexof(img.config)}.json", "RepoTags": ["app:1"]}
    entry["Layers"] = ["bbb/layer.tar", "ddd/layer.tar"]  # type: ignore[assignment]
    tar.file("manifest.json", json.dumps([entry]).encode())
    reading = read(tar, tmp_path)
    assert [x.member for x in reading.images[0].layers] == ["aaa/layer.tar", "ccc.tar"]
    assert_same(reading, [img])


# -- C01 -------------------------------------------------------------------------------------------
def test_c01a_rootfs_tarball(tmp_path: Path) -> None:
    tar = Tar().dir("bin/").file("bin/sh", b"\x7fELF" + b"x" * 2000).dir("etc/")
    tar.file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n").dir("usr/")
    with pytest.raises(ArchiveError) as info:
        read(tar, tmp_path, name="rootfs.tar")
    message = str(info.value)
    assert "root-filesystem tarball (bin/, etc/, usr/ at the top), not an image archive" in message
    assert f"docker import {tmp_path / 'rootfs.tar'} NAME:TAG" in message
    assert "json" not in message.replace("manifest.json", "").replace("index.json", "")


def test_c01b_nested_image_archive(tmp_path: Path, cache: BlobCache) -> None:
    img = make_img(10, tags=["app:1"])
    inner = docker_legacy(Tar(), [img]).bytes()
    tar = Tar().dir("pkg/").file("pkg/install.sh", b"#!/bin/sh\ndocker load -i images.tar\n")
    tar.file("pkg/images.tar", inner)
    for sink_cache in (None, cache):
        reading = read(tar, tmp_path, cache=sink_cache)
        assert reading.nested == "pkg/images.tar"
        assert_same(reading, [img])
        assert (
            f"{tmp_path / 'in.tar'}: no image metadata at the top level; found an image archive "
            "at pkg/images.tar" in reading.findings.warnings
        )
    # The wrapper's own tar was cached only to be read again; it is not left in the cache.
    assert cache.layer(Digest.parse(sha(inner))) is None


def test_c01b_nested_in_a_stream_says_how(tmp_path: Path) -> None:
    img = make_img(11, tags=["app:1"])
    tar = Tar().dir("pkg/").file("pkg/images.tar", docker_legacy(Tar(), [img]).bytes())
    tar.file("pkg/install.sh", b"#!/bin/sh\n")
    with pytest.raises(ArchiveError, match=r"pkg/images.tar may be one: extract it and pass"):
        read_stream(io.BytesIO(tar.bytes()), MeasuringSink(), "standard input")


def test_c01b_archive_members_under_a_folder(tmp_path: Path) -> None:
    img = make_img(12, tags=["app:1"])
    flat = docker_legacy(Tar(), [img])
    tar = Tar().dir("pkg/").file("pkg/install.sh", b"#!/bin/sh\n")
    for name in flat.names():
        if not name.endswith("/"):
            tar.file(f"pkg/{name}", flat.get(name))
    reading = read(tar, tmp_path)
    assert reading.nested == "pkg/"
    assert_same(reading, [img])
    assert any("found an image archive under pkg/" in w for w in reading.findings.warnings)


# -- C02, C03 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"\0" * 1024], ids=["0-bytes", "1024-nuls"])
def test_c02_empty(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(ArchiveError, match=r"in.tar: archive is empty$"):
        read(content, tmp_path)


@pytest.mark.parametrize(
    ("name", "wrap", "kind"),
    [
        ("x.tar.gz", lambda d: d, Compression.NONE),
        ("x.tar", gz, Compression.GZIP),
        ("x.tar", lambda d: gz(d[:3000]) + gz(d[3000:]), Compression.GZIP),
        ("x.tar", zst, Compression.ZSTD),
        ("x.tar", lzma.compress, Compression.XZ),
        ("x", bz2.compress, Compression.BZIP2),
    ],
    ids=["plain-named-gz", "gzip-named-tar", "gzip-2-members", "zstd", "xz", "bzip2"],
)
def test_c03_compression_from_magic_not_name(tmp_path: Path, name: str, wrap, kind) -> None:  # type: ignore[no-untyped-def]
    img = make_img(13, tags=["app:1"])
    reading = read(wrap(docker_legacy(Tar(), [img]).bytes()), tmp_path, name=name)
    assert reading.compression is kind
    assert_same(reading, [img])


# -- C04, C05, C06 ---------------------------------------------------------------------------------
def test_c04_flipped_byte_names_layer_member_and_digests(tmp_path: Path) -> None:
    img = Img([layer_tar({"a": b"A" * 100}), layer_tar({"b": b"B" * 100})], b"")
    img = make_img_from_layers(img.layers, ["demo:1"])
    data = bytearray(docker_legacy(Tar(), [img]).bytes())
    data[data.index(b"B" * 100) + 50] ^= 0x01
    with pytest.raises(IntegrityError) as info:
        read(bytes(data), tmp_path)
    damaged = bytearray(img.layers[1])
    damaged[damaged.index(b"B" * 100) + 50] ^= 0x01
    assert "demo:1: layer 2 (" in str(
        info.value
    ) and f"/layer.tar) has diff ID {sha(bytes(damaged))}, config expects {img.diff_ids[1]}" in str(
        info.value
    )
    assert info.value.hint and "transfer the archive again" in info.value.hint


def make_img_from_layers(layers: list[bytes], tags: list[str]) -> Img:
    from tests.imagegen import config_for

    return Img(layers, config_for(layers), tags)


def test_c04_oci_blob_digest_checked_against_compressed_bytes(tmp_path: Path) -> None:
    """Same layer content, other compressed bytes: the diff ID holds, the blob digest does not."""
    img = make_img(14, tags=["app:1"])
    tar = Tar()
    oci_layout(tar, [img], compression="zstd")
    name = f"blobs/sha256/{hexof(zst(img.layers[1]))}"
    other = zstandard.ZstdCompressor(level=19, write_checksum=True).compress(img.layers[1])
    tar.replace(name, other)
    reading = read(tar, tmp_path, strict=False)
    assert (
        f"{tmp_path / 'in.tar'}: app:1: layer 2: member {name} has digest {sha(other)}, "
        f"descriptor expects {sha(zst(img.layers[1]))}" in problems(reading)
    )
    assert [str(x.diff_id) for x in reading.images[0].layers] == img.diff_ids


def test_c05_counts_in_both_views(tmp_path: Path) -> None:
    img = make_img(15, n_layers=2, tags=["app:1"])
    three = make_img_from_layers([*img.layers, layer_tar({"c": b"3"})], ["app:1"])
    tar = Tar()
    oci_layout(tar, [Img(img.layers, three.config, ["app:1"])])
    reading = read(tar, tmp_path, strict=False)
    assert any("lists 2 layers, config declares 3" in p for p in problems(reading))


def test_c06_thin_archive_names_the_missing_member(tmp_path: Path) -> None:
    img = make_img(16, n_layers=2, tags=["app:1"])
    config_hex = hexof(img.config)
    tar = Tar().file(f"{config_hex}.json", img.config).file("b/layer.tar", img.layers[1])
    entry = {"Config": f"{config_hex}.json", "RepoTags": ["app:1"]}
    entry["Layers"] = ["a/layer.tar", "b/layer.tar"]  # type: ignore[assignment]
    tar.file("manifest.json", json.dumps([entry]).encode())
    with pytest.raises(ArchiveError) as info:
        read(tar, tmp_path)
    assert str(info.value).endswith(
        f"app:1: layer 1 (a/layer.tar, diff ID {img.diff_ids[0]}) is not in the archive"
    )
    assert (
        info.value.hint
        and "load the image it was saved against (its base) first" in info.value.hint
    )


def test_c06_thin_archive_completed_from_the_cache(tmp_path: Path, cache: BlobCache) -> None:
    img = make_img(17, n_layers=2, tags=["app:1"])
    cache.put_layer(io.BytesIO(img.layers[0]))
    config_hex = hexof(img.config)
    tar = Tar().file(f"{config_hex}.json", img.config).file("b/layer.tar", img.layers[1])
    entry = {"Config": f"{config_hex}.json", "RepoTags": ["app:1"]}
    entry["Layers"] = ["a/layer.tar", "b/layer.tar"]  # type: ignore[assignment]
    tar.file("manifest.json", json.dumps([entry]).encode())
    reading = read(tar, tmp_path, cache=cache)
    assert [str(e.diff_id) for e in reading.archive_images()[0].layers] == img.diff_ids
    # The warning waits for `load`'s plan: given only if the cache's copy is actually sent.
    assert not any("local cache" in w for w in reading.findings.warnings)
    fills = reading.cache_fills()
    assert [str(d) for d in fills] == [img.diff_ids[0]]
    assert fills[next(iter(fills))].endswith(
        f"app:1: layer 1 ({img.diff_ids[0]}) is not in the archive; using the copy in the local "
        "cache"
    )


# -- C07, C08 --------------------------------------------------------------------------------------
def test_c07_tarred_skopeo_dir(tmp_path: Path) -> None:
    img = make_img(18)
    reading = read(skopeo_dir(Tar(), img), tmp_path)
    assert reading.format is ArchiveFormat.SKOPEO_DIR
    assert_same(reading, [img])


def test_c07_skopeo_dir_as_directory(tmp_path: Path) -> None:
    img = make_img(19)
    root = tmp_path / "dir"
    root.mkdir()
    with tarfile_open(skopeo_dir(Tar(), img).bytes()) as t:
        t.extractall(root, filter="data")
    reading = read_path(root, MeasuringSink())
    assert reading.format is ArchiveFormat.SKOPEO_DIR
    assert_same(reading, [img])


@pytest.mark.parametrize("tags", [None, [], "absent"])
def test_c08_untagged(tmp_path: Path, tags: object) -> None:
    img = make_img(20)
    tar = docker_legacy(Tar(), [img])
    entries = json.loads(tar.get("manifest.json"))
    if tags == "absent":
        del entries[0]["RepoTags"]
    else:
        entries[0]["RepoTags"] = tags
    tar.replace("manifest.json", json.dumps(entries).encode())
    image = read(tar, tmp_path).images[0]
    assert image.tags == [] and str(image.config.digest) == img.config_digest


# -- C09 -------------------------------------------------------------------------------------------
def test_c09_docker_25_archive_both_views(tmp_path: Path) -> None:
    img = make_img(21, tags=["app:1"])
    tar = Tar()
    manifests = oci_layout(tar, [img], compression="none", manifest_json=True)
    reading = read(tar, tmp_path)
    assert reading.format is ArchiveFormat.COMBINED
    assert_same(reading, [img])
    image = reading.images[0]
    assert image.views == ["manifest.json", "index.json"]
    assert str(image.manifest_digest) == sha(manifests[0])
    assert image.config_member == f"blobs/sha256/{hexof(img.config)}"


def test_c09_views_that_disagree(tmp_path: Path) -> None:
    img = make_img(22, n_layers=2, tags=["app:1"])
    tar = Tar()
    oci_layout(tar, [img], compression="none", manifest_json=True)
    entries = json.loads(tar.get("manifest.json"))
    entries[0]["Layers"] = list(reversed(entries[0]["Layers"]))
    tar.replace("manifest.json", json.dumps(entries).encode())
    reading = read(tar, tmp_path, strict=False)
    assert any(
        f"layer 1: manifest.json names a blob with digest {img.diff_ids[1]}, the OCI manifest "
        f"names {img.diff_ids[0]}" in p
        for p in problems(reading)
    )


# -- C10 -------------------------------------------------------------------------------------------
def multi_platform(tmp_path: Path) -> tuple[Tar, Img]:
    amd = make_img(23, tags=["app:1"])
    tar = Tar()
    manifest = oci_layout(tar, [amd])[0]
    arm_manifest = json.dumps({"schemaVersion": 2, "mediaType": "x", "layers": []}).encode()
    child = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha(manifest),
                "size": len(manifest),
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha(arm_manifest),
                "size": len(arm_manifest),
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha(b"attestation"),
                "size": 11,
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
            },
        ],
    }
    child_raw = json.dumps(child).encode()
    tar.file(f"blobs/sha256/{hexof(child_raw)}", child_raw)
    index = json.loads(tar.get("index.json"))
    index["manifests"][0].update(mediaType=OCI_INDEX, digest=sha(child_raw), size=len(child_raw))
    tar.replace("index.json", json.dumps(index).encode())
    return tar, amd


def test_c10_default_platform_is_the_complete_host_one(tmp_path: Path) -> None:
    tar, amd = multi_platform(tmp_path)
    reading = read(tar, tmp_path)
    assert_same(reading, [amd])
    listed = [
        (p.platform, p.complete, p.attestation, p.chosen) for p in reading.images[0].platforms
    ]
    assert listed == [
        ("linux/amd64", True, False, True),
        ("linux/arm64/v8", False, False, False),
        ("unknown/unknown", False, True, False),
    ]


def test_c10_containerd_store_save_with_manifest_json(tmp_path: Path) -> None:
    """Docker 25+ (containerd store): manifest.json lists the local platform, index.json all."""
    tar, amd = multi_platform(tmp_path)
    legacy = [
        {
            "Config": f"blobs/sha256/{hexof(amd.config)}",
            "RepoTags": amd.tags,
            "Layers": [f"blobs/sha256/{hexof(gz(layer))}" for layer in amd.layers],
        }
    ]
    tar.file("manifest.json", json.dumps(legacy).encode())
    reading = read(tar, tmp_path)
    assert reading.format is ArchiveFormat.COMBINED
    assert_same(reading, [amd])
    assert reading.images[0].views == ["manifest.json", "index.json"]
    assert [p.chosen for p in reading.images[0].platforms] == [True, False, False]
    assert reading.findings.warnings == []


def test_c10_explicit_platform_without_blobs(tmp_path: Path) -> None:
    tar, _ = multi_platform(tmp_path)
    with pytest.raises(
        ArchiveError,
        match=r"index.json entry 1: linux/arm64 is listed in the index but its blobs are not "
        r"in this archive$",
    ):
        read(tar, tmp_path, platform=Platform("linux", "arm64"))


def test_an_explicit_platform_applies_to_plain_archives_too(tmp_path: Path) -> None:
    amd = make_img(61, tags=["app:amd"])
    arm = make_img(62, tags=["app:arm"], architecture="arm64", variant="v8")
    both = docker_legacy(Tar(), [amd, arm])
    reading = read(both, tmp_path, platform=Platform("linux", "arm64"))
    assert [str(t) for i in reading.images for t in i.tags] == ["app:arm"]
    only_amd = docker_legacy(Tar(), [amd])
    with pytest.raises(
        ArchiveError,
        match=r"in.tar: linux/arm64 is not in this archive \(it holds linux/amd64\)$",
    ):
        read(only_amd, tmp_path, platform=Platform("linux", "arm64"))


def test_c10_every_platform_for_verify(tmp_path: Path) -> None:
    tar, amd = multi_platform(tmp_path)
    reading = read(tar, tmp_path, all_platforms=True, strict=False)
    assert_same(reading, [amd])
    assert problems(reading) == []
    assert any(
        "linux/arm64/v8 is listed but its blobs are not" in w for w in reading.findings.warnings
    )


# -- C11, C12 --------------------------------------------------------------------------------------
def test_c11_manifests_null_falls_back_to_manifest_json(tmp_path: Path) -> None:
    img = make_img(24, tags=["app:1"])
    tar = Tar()
    oci_layout(tar, [img], manifest_json=True)
    tar.replace(
        "index.json",
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": None}).encode(),
    )
    reading = read(tar, tmp_path)
    assert_same(reading, [img])
    assert (
        f"{tmp_path / 'in.tar'}: index.json: manifests is null (invalid); using manifest.json"
        in reading.findings.warnings
    )


def test_c11_manifests_null_without_manifest_json(tmp_path: Path) -> None:
    img = make_img(25, tags=["app:1"])
    tar = Tar()
    oci_layout(tar, [img])
    tar.replace("index.json", b'{"schemaVersion":2,"manifests":null}')
    with pytest.raises(ArchiveError, match=r"index.json: manifests is null \(invalid\)"):
        read(tar, tmp_path)


def test_c12a_oci_manifest_without_layers(tmp_path: Path) -> None:
    img = make_img(26, n_layers=1, tags=["app:1"])
    tar = Tar()
    manifest = oci_layout(tar, [img], compression="none", manifest_json=True)[0]
    emptied = json.loads(manifest)
    emptied["layers"] = []
    raw = json.dumps(emptied).encode()
    tar.file(f"blobs/sha256/{hexof(raw)}", raw)
    index = json.loads(tar.get("index.json"))
    index["manifests"][0].update(digest=sha(raw), size=len(raw))
    tar.replace("index.json", json.dumps(index).encode())
    reading = read(tar, tmp_path, strict=False)
    assert (
        f"{tmp_path / 'in.tar'}: app:1: index.json entry 1 (manifest {hexof(raw)[:12]}) "
        "lists 0 layers, config declares 1" in problems(reading)
    )
    assert any("manifest.json lists 1 layers, the OCI manifest" in p for p in problems(reading))


def test_c12b_wrong_layer_size_names_the_descriptor(tmp_path: Path) -> None:
    img = make_img(27, n_layers=1, tags=["app:1"])
    tar = Tar()
    manifest = json.loads(oci_layout(tar, [img], compression="gzip")[0])
    manifest["layers"][0]["size"] += 1
    raw = json.dumps(manifest).encode()
    tar.file(f"blobs/sha256/{hexof(raw)}", raw)
    index = json.loads(tar.get("index.json"))
    index["manifests"][0].update(digest=sha(raw), size=len(raw))
    tar.replace("index.json", json.dumps(index).encode())
    with pytest.raises(ArchiveError) as info:
        read(tar, tmp_path)
    blob = gz(img.layers[0])
    assert str(info.value) == (
        f"{tmp_path / 'in.tar'}: app:1: layer 1: descriptor {sha(blob)} declares "
        f"{len(blob) + 1} bytes, member blobs/sha256/{hexof(blob)} holds {len(blob)}"
    )


# -- C15 -------------------------------------------------------------------------------------------
def test_c15_two_images_shared_base_stored_once(tmp_path: Path) -> None:
    base = layer_tar({"base": b"b" * 3000})
    one = make_img_from_layers([base, layer_tar({"one": b"1"})], ["t:1"])
    two = make_img_from_layers([base, layer_tar({"two": b"2"})], ["t:2"])
    tar = docker_legacy(Tar(), [one, two])
    assert sum(name.endswith("layer.tar") for name in tar.names()) == 3
    reading = read(tar, tmp_path)
    assert_same(reading, [one, two])
    assert reading.images[0].layers[0].member == reading.images[1].layers[0].member


# -- C17 -------------------------------------------------------------------------------------------
def _legacy_bytes() -> tuple[bytes, Img]:
    img = make_img_from_layers([layer_tar({"big": b"x" * 20000})], ["app:1"])
    return docker_legacy(Tar(), [img]).bytes(), img


def test_c17_cut_inside_a_header(tmp_path: Path) -> None:
    data, _ = _legacy_bytes()
    with tarfile_open(data) as t:
        third = t.getmembers()[2].offset
    with pytest.raises(
        ArchiveError,
        match=rf"archive truncated inside the header of member 3 \(100 of 512 bytes, "
        rf"offset {third}\)$",
    ):
        read(data[: third + 100], tmp_path)


def test_c17_cut_inside_layer_data(tmp_path: Path) -> None:
    data, img = _legacy_bytes()
    start = data.index(img.layers[0])
    with pytest.raises(ArchiveError) as info:
        read(data[: start + 5000], tmp_path)
    message = str(info.value)
    assert "archive truncated: member " in message
    assert f"/layer.tar declares {len(img.layers[0])} bytes, only 5000 present (offset " in message


def test_c17_missing_end_blocks_is_only_a_warning(tmp_path: Path) -> None:
    data, img = _legacy_bytes()
    end = len(data.rstrip(b"\0"))
    end += -end % 512
    reading = read(data[:end], tmp_path)
    assert_same(reading, [img])
    assert not reading.ended_cleanly
    assert any("ends without its end-of-archive blocks" in w for w in reading.findings.warnings)


def test_c17_gzip_without_trailer(tmp_path: Path) -> None:
    data, _ = _legacy_bytes()
    with pytest.raises(IntegrityError, match=r"gzip stream is damaged or ends early"):
        read(gzip.compress(data)[:-8], tmp_path)


# -- C19 -------------------------------------------------------------------------------------------
def test_c19_oci_only_archive_becomes_a_combined_one(tmp_path: Path, cache: BlobCache) -> None:
    """An OCI-only archive is read and written back with manifest.json (what 20.10 loads)."""
    from layerferry.archive.encoding import PlainEncoder
    from layerferry.archive.writer import iter_archive

    img = make_img(28, tags=["app:1"])
    tar = Tar()
    oci_layout(tar, [img])
    images = read(tar, tmp_path, cache=cache).archive_images()
    out = b"".join(iter_archive(images, PlainEncoder(cache)))
    with tarfile_open(out) as t:
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["app:1"]
    assert manifest[0]["Layers"] == [f"blobs/sha256/{d[7:]}" for d in img.diff_ids]


# -- several nested image archives (a wrapper tar or a directory of archives) -------------------
def _two_archives() -> tuple[bytes, bytes]:
    a = docker_legacy(Tar(), [make_img(40, tags=["pick:a"])]).bytes()
    b = docker_legacy(Tar(), [make_img(41, tags=["pick:b"])]).bytes()
    return a, b


@pytest.mark.parametrize("damaged", [False, True], ids=["both-intact", "second-damaged"])
def test_several_nested_image_archives_are_refused(
    tmp_path: Path, cache: BlobCache, damaged: bool
) -> None:
    a, b = _two_archives()
    if damaged:
        flipped = bytearray(b)
        flipped[len(b) // 2] ^= 0x10
        b = bytes(flipped)
    tar = Tar().file("a.tar", a).file("b.tar", b).file("README", b"two images\n")
    for sink_cache, strict in ((None, False), (None, True), (cache, True)):
        with pytest.raises(ArchiveError) as info:
            read(tar, tmp_path, cache=sink_cache, strict=strict)
        assert str(info.value) == (
            f"{tmp_path / 'in.tar'}: several image archives found: a.tar, b.tar; name one"
        )
        assert info.value.exit_code == 4


def test_a_directory_of_many_image_archives_is_refused(tmp_path: Path, cache: BlobCache) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    a, b = _two_archives()
    for number in range(30):
        (folder / f"img{number:02}.tar").write_bytes(a if number % 2 else b)
    with pytest.raises(ArchiveError) as info:
        read_path(folder, CachingSink(cache))
    assert str(info.value) == (
        f"{folder}: several image archives found: img00.tar, img01.tar, img02.tar, img03.tar "
        "(and 26 more tar files not looked into); name one"
    )
    assert info.value.hint and "pass one of them on its own" in info.value.hint


def test_one_nested_image_archive_beside_other_tars_is_read(tmp_path: Path) -> None:
    a, _ = _two_archives()
    other = layer_tar({"docs/index.html": b"<html></html>"})
    tar = Tar().file("a.tar", a).file("docs.tar", other)
    reading = read(tar, tmp_path)
    assert reading.nested == "a.tar" and [str(t) for t in reading.images[0].tags] == ["pick:a"]


# -- what manifest.json and its entries hold --------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "kind"), [("null", "null"), ('"x"', "a string"), ("5", "a number")]
)
def test_manifest_json_neither_list_nor_object(tmp_path: Path, content: str, kind: str) -> None:
    tar = docker_legacy(Tar(), [make_img(42, tags=["app:1"])])
    tar.replace("manifest.json", content.encode())
    with pytest.raises(ArchiveError) as info:
        read(tar, tmp_path)
    assert str(info.value).endswith(
        f"in.tar: manifest.json holds {kind}, neither a docker-archive list nor a registry manifest"
    )
    assert "legacy" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("absent", "manifest.json entry 1 Config is missing"),
        (5, "manifest.json entry 1 Config is a number, not a path"),
        (["a.json"], "manifest.json entry 1 Config is a list, not a path"),
    ],
)
def test_manifest_config_missing_or_not_a_string(
    tmp_path: Path, value: object, message: str
) -> None:
    tar = docker_legacy(Tar(), [make_img(43, tags=["app:1"])])
    entries = json.loads(tar.get("manifest.json"))
    if value == "absent":
        del entries[0]["Config"]
    else:
        entries[0]["Config"] = value
    tar.replace("manifest.json", json.dumps(entries).encode())
    with pytest.raises(ArchiveError) as info:
        read(tar, tmp_path)
    assert str(info.value) == f"{tmp_path / 'in.tar'}: {message}"
    assert "''" not in str(info.value)


def test_manifest_layer_entry_not_a_string(tmp_path: Path) -> None:
    tar = docker_legacy(Tar(), [make_img(44, n_layers=1, tags=["app:1"])])
    entries = json.loads(tar.get("manifest.json"))
    entries[0]["Layers"] = [None]
    tar.replace("manifest.json", json.dumps(entries).encode())
    with pytest.raises(ArchiveError, match=r"in.tar: manifest.json entry 1 layer 1 is missing$"):
        read(tar, tmp_path)


@pytest.mark.parametrize(
    ("repo_tags", "kept", "warned"),
    [
        ([1], [], ["RepoTags entry 1 (a number)"]),
        (["UPPER:1", "bad tag"], [], ["RepoTags entry 1 ('UPPER:1')", "entry 2 ('bad tag')"]),
        (["m@sha256:" + "a" * 64], [], ["RepoTags entry 1 ('m@sha256:aaaa"]),
        (["app:1", None, "app"], ["app:1"], ["entry 2 (null)", "entry 3 ('app')"]),
        ("app:1", [], ["RepoTags is not a list; the image is read as untagged"]),
    ],
)
def test_bad_repo_tags_are_warned_about_one_by_one(
    tmp_path: Path, repo_tags: object, kept: list[str], warned: list[str]
) -> None:
    tar = docker_legacy(Tar(), [make_img(45, tags=["x:1"])])
    entries = json.loads(tar.get("manifest.json"))
    entries[0]["RepoTags"] = repo_tags
    tar.replace("manifest.json", json.dumps(entries).encode())
    reading = read(tar, tmp_path)
    assert [str(t) for t in reading.images[0].tags] == kept and reading.images[0].refs == []
    warnings = reading.findings.warnings
    assert len(warnings) == len(warned)
    for expected, warning in zip(warned, warnings, strict=True):
        assert warning.startswith(f"{tmp_path / 'in.tar'}: manifest.json entry 1: ")
        assert expected in warning


def test_c10_warning_names_the_file(tmp_path: Path) -> None:
    tar, _ = multi_platform(tmp_path)
    reading = read(tar, tmp_path, all_platforms=True, strict=False)
    (warning,) = [w for w in reading.findings.warnings if "is listed but its blobs" in w]
    assert warning.startswith(f"{tmp_path / 'in.tar'}: index.json entry 1: linux/arm64/v8")


# -- reading only what a send needs ------------------------------------------------------------
class _Keep:
    def __init__(self, wanted: set[str] | None) -> None:
        self._wanted = wanted

    def selective(self) -> bool:
        return self._wanted is not None

    def wanted(self, diff_id: Digest) -> bool:
        return self._wanted is None or str(diff_id) in self._wanted

    def guess(self, hint: object) -> Digest | None:
        return None

    def watch(self, diff_id: Digest, size: int) -> None:
        return None


def _legacy_save(img: Img, top_config: bool = True) -> bytes:
    """A ``docker save`` (20.10) of *img*: ``ID/json`` legacy records naming each parent,
    directories in ID order (so not in layer order), manifest last."""
    ids = [hexof(f"v1-{i}-{img.diff_ids[i]}".encode()) for i in range(len(img.layers))]
    tar = Tar().file(f"{hexof(img.config)}.json", img.config)
    for v1 in sorted(ids):
        i = ids.index(v1)
        record: dict[str, object] = {"id": v1, "created": "1970-01-01T00:00:00Z"}
        if i:
            record["parent"] = ids[i - 1]
        if top_config and i == len(ids) - 1:
            record["config"] = {"Cmd": ["sh"]}
        tar.dir(f"{v1}/").file(f"{v1}/VERSION", b"1.0").file(
            f"{v1}/json", json.dumps(record).encode()
        )
        tar.file(f"{v1}/layer.tar", img.layers[i])
    manifest = [
        {
            "Config": f"{hexof(img.config)}.json",
            "RepoTags": img.tags,
            "Layers": [f"{v}/layer.tar" for v in ids],
        }
    ]
    return tar.file("manifest.json", json.dumps(manifest).encode()).bytes()


def test_layers_of_a_docker_save_are_told_apart_before_they_are_read(tmp_path: Path) -> None:
    from layerferry.copy.sources import _LegacyGuess
    from layerferry.daemon.engine import ImageRecord

    cache = BlobCache(tmp_path / "cache")
    spooled: list[object] = []
    original = cache.spooled

    def spy(stream: object):  # type: ignore[no-untyped-def]
        spooled.append(stream)
        return original(stream)  # type: ignore[arg-type]

    cache.spooled = spy  # type: ignore[method-assign]

    def send_top(img: Img, top_config: bool = True) -> list[bool]:
        diff_ids = [Digest.parse(d) for d in img.diff_ids]
        record = ImageRecord("sha256:" + hexof(img.config), ["app:1"], diff_ids)
        keep = _LegacyGuess(_Keep({img.diff_ids[-1]}), record)
        save = _legacy_save(img, top_config)
        [image] = read_stream(io.BytesIO(save), CachingSink(cache, keep), "save").archive_images()
        assert cache.layer(diff_ids[-1]) is not None
        return [e.absent for e in image.layers]

    # Two layers: the one without a parent is the base, the other the top.
    assert send_top(make_img(8, n_layers=2, tags=["app:1"]), top_config=False) == [True, False]
    assert spooled == [], "both layers were placed by their legacy records: none was spooled"
    # Deeper: the base, the top (it carries the image's config) and any layer whose parent
    # came first are placed; one whose parent comes later is spooled. The result is the same.
    deep = make_img(10, n_layers=5, tags=["app:1"])
    assert send_top(deep) == [True, True, True, True, False]
    assert len(spooled) <= 3
    assert send_top(make_img(11, n_layers=5, tags=["app:1"]), top_config=False) == [True] * 4 + [
        False
    ]


def test_a_wrong_guess_cannot_pass(tmp_path: Path) -> None:
    img = make_img(9, n_layers=2, tags=["app:1"])

    class AlwaysFirst(_Keep):
        def guess(self, hint: object) -> Digest | None:
            return Digest.parse(img.diff_ids[0])

    archive = docker_legacy(Tar(), [img]).bytes()
    # Dropping a layer on a wrong guess: the manifest puts it elsewhere, and that is found.
    with pytest.raises(IntegrityError):
        read_stream(
            io.BytesIO(archive),
            CachingSink(BlobCache(tmp_path / "c1"), AlwaysFirst({img.diff_ids[1]})),
            "save",
        ).archive_images()
    # Keeping a layer on a wrong guess: its bytes do not hash to the guess.
    with pytest.raises(IntegrityError):
        read_stream(
            io.BytesIO(archive),
            CachingSink(BlobCache(tmp_path / "c2"), AlwaysFirst({img.diff_ids[0]})),
            "save",
        ).archive_images()


def test_a_layer_filter_keeps_only_the_wanted_layers(tmp_path: Path) -> None:
    img = make_img(7, n_layers=3, tags=["app:1"])
    archive = tmp_path / "in.tar"
    archive.write_bytes(docker_legacy(Tar(), [img]).bytes())
    cache = BlobCache(tmp_path / "cache")
    top = img.diff_ids[2]
    with archive.open("rb") as fh:
        reading = read_stream(fh, CachingSink(cache, _Keep({top})), "in.tar")
    [image] = reading.archive_images()
    assert [str(e.diff_id) for e in image.layers] == img.diff_ids
    assert [e.absent for e in image.layers] == [True, True, False]
    assert [e.size for e in image.layers] == [len(layer) for layer in img.layers]
    # Only the wanted layer was compressed into the cache; nothing spooled is left behind.
    assert cache.layer(Digest.parse(top)) is not None
    assert cache.layer(Digest.parse(img.diff_ids[0])) is None
    assert not list((tmp_path / "cache" / "layers").glob(".incoming-*"))
    # A filter that wants everything reads as a plain caching sink.
    with archive.open("rb") as fh:
        reading = read_stream(fh, CachingSink(cache, _Keep(None)), "in.tar")
    assert [e.absent for e in reading.archive_images()[0].layers] == [False, False, False]
