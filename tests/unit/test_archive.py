from __future__ import annotations

import io
import json
import random
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerferry.archive.encoding import GzipEncoder, PlainEncoder, ZstdFrameEncoder
from layerferry.archive.ingest import ingest_docker_archive
from layerferry.archive.writer import ArchiveImage, iter_archive
from layerferry.copy.blobcache import BlobCache
from layerferry.errors import ArchiveError, IntegrityError
from layerferry.tario.compression import open_decompressed
from tests.imagegen import layer_tar, legacy_docker_archive, make_image, random_image


def _write(
    images: list[ArchiveImage], cache: BlobCache, encoder: str = "plain", include=None
) -> bytes:
    enc = {"plain": PlainEncoder, "gzip": GzipEncoder, "zstd": ZstdFrameEncoder}[encoder](cache)
    return b"".join(iter_archive(images, enc, include=include))


def _read(data: bytes, tmp_path: Path, name: str = "fresh") -> list[ArchiveImage]:
    plain, _ = open_decompressed(io.BytesIO(data))
    return ingest_docker_archive(plain, BlobCache(tmp_path / name))


@pytest.mark.parametrize("encoder", ["plain", "gzip", "zstd"])
def test_round_trip_keeps_digests_and_tags(cache: BlobCache, tmp_path: Path, encoder: str) -> None:
    base = random_image(cache, seed=1, n_layers=2, tags=["app:1"])
    images = [base, random_image(cache, seed=2, n_layers=3, tags=["app:2", "other/app:latest"])]
    data = _write(images, cache, encoder)
    read = _read(data, tmp_path)
    assert [str(i.config.digest) for i in read] == [str(i.config.digest) for i in images]
    assert [[str(t) for t in i.tags] for i in read] == [["app:1"], ["app:2", "other/app:latest"]]
    assert [[e.diff_id for e in i.layers] for i in read] == [i.config.diff_ids for i in images]


def test_both_views_name_the_same_blobs(cache: BlobCache) -> None:
    image = random_image(cache, seed=3, n_layers=2, tags=["app:1"])
    with tarfile.open(fileobj=io.BytesIO(_write([image], cache))) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        oci = json.load(tar.extractfile(f"blobs/sha256/{index['manifests'][0]['digest'][7:]}"))  # type: ignore[arg-type]
    assert names[:3] == ["oci-layout", "index.json", "manifest.json"]
    assert manifest[0]["Config"] == f"blobs/sha256/{image.config.digest.hex}"
    assert manifest[0]["Layers"] == [f"blobs/sha256/{d.hex}" for d in image.config.diff_ids]
    assert isinstance(index["manifests"], list) and len(index["manifests"]) == 1
    assert (
        index["manifests"][0]["annotations"]["io.containerd.image.name"]
        == "docker.io/library/app:1"
    )
    assert oci["config"]["digest"] == str(image.config.digest)
    assert [layer["digest"] for layer in oci["layers"]] == [str(d) for d in image.config.diff_ids]
    assert [layer["size"] for layer in oci["layers"]] == [e.size for e in image.layers]


def test_untagged_images_still_listed_in_index(cache: BlobCache) -> None:
    images = [random_image(cache, seed=4), random_image(cache, seed=5)]
    with tarfile.open(fileobj=io.BytesIO(_write(images, cache))) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert len(index["manifests"]) == 2
    assert [entry["RepoTags"] for entry in manifest] == [None, None]


def test_shared_layers_are_stored_once(cache: BlobCache) -> None:
    rng = random.Random(7)
    base = layer_tar({"base": rng.randbytes(5000)})
    a = make_image(cache, [base, layer_tar({"a": b"a"})], ["a:1"])
    b = make_image(cache, [base, layer_tar({"b": b"b"})], ["b:1"])
    with tarfile.open(fileobj=io.BytesIO(_write([a, b], cache))) as tar:
        names = tar.getnames()
    assert names.count(f"blobs/sha256/{a.config.diff_ids[0].hex}") == 1


def test_thin_archive_leaves_out_what_is_not_included(cache: BlobCache) -> None:
    image = random_image(cache, seed=8, n_layers=3, tags=["app:1"])
    keep = {image.config.diff_ids[2]}
    with tarfile.open(fileobj=io.BytesIO(_write([image], cache, include=keep))) as tar:
        names = set(tar.getnames())
    assert f"blobs/sha256/{image.config.diff_ids[2].hex}" in names
    assert f"blobs/sha256/{image.config.diff_ids[0].hex}" not in names


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    layers=st.lists(
        st.dictionaries(
            st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8})?", fullmatch=True),
            st.binary(max_size=3000),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=4,
    ),
    tag=st.from_regex(r"[a-z]{1,10}:[a-z0-9]{1,6}", fullmatch=True),
)
def test_property_write_read_same_digests_and_reproducible(
    tmp_path_factory: pytest.TempPathFactory, layers: list[dict[str, bytes]], tag: str
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    cache = BlobCache(tmp / "c")
    image = make_image(cache, [layer_tar(files) for files in layers], [tag])
    first = _write([image], cache, "zstd")
    assert _write([image], cache, "zstd") == first
    read = _read(first, tmp)
    assert read[0].config.raw == image.config.raw
    assert [e.diff_id for e in read[0].layers] == image.config.diff_ids


def test_legacy_docker_archive_is_read(tmp_path: Path, cache: BlobCache) -> None:
    layers = [layer_tar({"a": b"1"}), layer_tar({"b": b"2"})]
    config = legacy_docker_archive(tmp_path / "x.tar", layers, ["demo:1"])
    with (tmp_path / "x.tar").open("rb") as fh:
        images = ingest_docker_archive(fh, cache)  # type: ignore[arg-type]
    assert images[0].config.raw == config
    assert [str(t) for t in images[0].tags] == ["demo:1"]


@pytest.mark.parametrize("repo_tags", [None, [], "absent"])
def test_untagged_manifest_entries_do_not_crash(
    tmp_path: Path, cache: BlobCache, repo_tags: object
) -> None:
    """Case C08: RepoTags null, empty or absent is an untagged image."""
    legacy_docker_archive(
        tmp_path / "x.tar", [layer_tar({"a": b"1"})], None if repo_tags == "absent" else repo_tags
    )  # type: ignore[arg-type]
    with (tmp_path / "x.tar").open("rb") as fh:
        images = ingest_docker_archive(fh, cache)  # type: ignore[arg-type]
    assert images[0].tags == []


@pytest.mark.parametrize("content", [b"", b"\0" * 1024], ids=["zero-bytes", "empty-tar"])
def test_empty_archive(cache: BlobCache, content: bytes) -> None:
    """Case C02."""
    with pytest.raises(ArchiveError, match="empty"):
        ingest_docker_archive(io.BytesIO(content), cache)


def test_flipped_byte_in_layer_is_named(tmp_path: Path, cache: BlobCache) -> None:
    """Case C04: the error names the layer and both digests."""
    layers = [layer_tar({"a": b"A" * 100}), layer_tar({"b": b"B" * 100})]
    legacy_docker_archive(tmp_path / "x.tar", layers, ["demo:1"])
    data = bytearray((tmp_path / "x.tar").read_bytes())
    data[data.index(b"B" * 100) + 50] ^= 0x01
    with pytest.raises(
        IntegrityError, match=r"layer 2 .*diff ID sha256:[0-9a-f]{64}, config expects sha256:"
    ):
        ingest_docker_archive(io.BytesIO(bytes(data)), cache)


def test_layer_count_mismatch(tmp_path: Path, cache: BlobCache) -> None:
    """Case C05."""
    layers = [layer_tar({"a": b"1"}), layer_tar({"b": b"2"})]
    legacy_docker_archive(
        tmp_path / "x.tar",
        layers,
        ["demo:1"],
        {"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64] * 3}},
    )
    with pytest.raises(
        ArchiveError, match="manifest.json entry 1 lists 2 layers, config declares 3"
    ):
        ingest_docker_archive((tmp_path / "x.tar").open("rb"), cache)  # type: ignore[arg-type]


def test_truncated_archive(tmp_path: Path, cache: BlobCache) -> None:
    legacy_docker_archive(tmp_path / "x.tar", [layer_tar({"a": b"x" * 20000})], ["demo:1"])
    data = (tmp_path / "x.tar").read_bytes()
    with pytest.raises(ArchiveError):
        ingest_docker_archive(io.BytesIO(data[:5000]), cache)
