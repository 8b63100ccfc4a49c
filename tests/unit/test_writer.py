"""The archive writer: gzip layers, its self-check, atomic files, and write → read for every form."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerferry.archive.classify import ArchiveFormat
from layerferry.archive.encoding import GzipEncoder, PlainEncoder, ZstdFrameEncoder
from layerferry.archive.read import ReadOptions, read_path, read_stream
from layerferry.archive.scan import CachingSink, MeasuringSink
from layerferry.archive.writer import (
    THIN_MEMBER,
    ArchiveImage,
    StoredLayer,
    iter_archive,
    stored_layers,
)
from layerferry.copy.blobcache import BlobCache
from layerferry.copy.destinations import ArchiveFileDestination
from layerferry.copy.engine import copy_images
from layerferry.errors import IntegrityError, UsageError
from layerferry.oci import mediatypes as mt
from layerferry.oci.descriptor import Descriptor
from layerferry.reporting import RecordingReporter
from layerferry.tario.compression import Compression
from tests.archivegen import Img, Tar, docker_legacy, oci_layout, sha, skopeo_dir
from tests.imagegen import layer_tar, make_image, random_image

ENCODERS = {"none": PlainEncoder, "gzip": GzipEncoder, "zstd": ZstdFrameEncoder}


def write(
    images: list[ArchiveImage], cache: BlobCache, whole: str = "none", layers: str = "none"
) -> bytes:
    stored = stored_layers(images, cache, Compression(layers))
    return b"".join(iter_archive(images, ENCODERS[whole](cache), layers=stored))


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def test_gzip_layers_in_both_views(cache: BlobCache) -> None:
    image = random_image(cache, seed=1, n_layers=2, tags=["app:1"])
    data = write([image], cache, layers="gzip")
    files = members(data)
    index = json.loads(files["index.json"])
    manifest = json.loads(files[f"blobs/sha256/{index['manifests'][0]['digest'][7:]}"])
    legacy = json.loads(files["manifest.json"])
    assert [layer["mediaType"] for layer in manifest["layers"]] == [mt.OCI_LAYER_GZIP] * 2
    assert legacy[0]["Layers"] == [
        f"blobs/sha256/{layer['digest'][7:]}" for layer in manifest["layers"]
    ]
    for layer in manifest["layers"]:
        blob = files[f"blobs/sha256/{layer['digest'][7:]}"]
        assert (
            blob[:2] == b"\x1f\x8b" and sha(blob) == layer["digest"] and len(blob) == layer["size"]
        )
    reading = read_stream(io.BytesIO(data), MeasuringSink(), "x")
    assert reading.format is ArchiveFormat.COMBINED
    assert [x.diff_id for x in reading.images[0].layers] == image.config.diff_ids
    assert {x.compression for x in reading.images[0].layers} == {Compression.GZIP}
    assert write([image], cache, layers="gzip") == data


def test_zstd_layers_are_refused(cache: BlobCache) -> None:
    image = random_image(cache, seed=2)
    with pytest.raises(UsageError, match="Docker 20.10 cannot load zstd layers"):
        stored_layers([image], cache, Compression.ZSTD)


def test_self_check_refuses_a_descriptor_that_is_not_the_layer(cache: BlobCache) -> None:
    """Case C12 (b) on the writer's side: a layer descriptor one byte too long."""
    image = random_image(cache, seed=3, n_layers=1, tags=["app:1"])
    entry = image.layers[0]
    wrong = {entry.diff_id: StoredLayer(Descriptor(mt.OCI_LAYER, entry.diff_id, entry.size + 1))}
    with pytest.raises(IntegrityError, match=r"writer self-check: .* layer 1: descriptor sha256:"):
        b"".join(iter_archive([image], PlainEncoder(cache), layers=wrong))


@pytest.mark.parametrize("layers", ["none", "gzip"])
def test_damaged_cache_stops_the_archive_and_leaves_no_file(
    cache: BlobCache, tmp_path: Path, layers: str
) -> None:
    """Cases C12/C16: blobs are verified while written; a failure leaves nothing behind."""
    image = random_image(cache, seed=4, n_layers=1, tags=["app:1"])
    stored_layers([image], cache, Compression(layers))
    entry = image.layers[0]
    victim = entry.path if layers == "none" else entry.path.with_name(f"{entry.diff_id.hex}.tar.gz")
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0xFF
    victim.write_bytes(bytes(data))
    target = tmp_path / "out" / "app.tar"
    target.parent.mkdir()
    destination = ArchiveFileDestination(target, Compression.NONE, cache, Compression(layers))
    with pytest.raises(IntegrityError):
        destination.receive([image], {entry.diff_id}, [0])
    assert list(target.parent.iterdir()) == []


def test_c13_untagged_images_each_in_both_views(cache: BlobCache, tmp_path: Path) -> None:
    images = [random_image(cache, seed=5), random_image(cache, seed=6)]
    files = members(write(images, cache))
    index = json.loads(files["index.json"])
    assert len(index["manifests"]) == 2 and all("annotations" not in d for d in index["manifests"])
    assert [e["RepoTags"] for e in json.loads(files["manifest.json"])] == [None, None]
    reading = read_stream(
        io.BytesIO(write(images, cache)), CachingSink(BlobCache(tmp_path / "c")), "x"
    )
    assert [i.config.digest for i in reading.images] == [i.config.digest for i in images]
    assert [i.views for i in reading.images] == [["manifest.json", "index.json"]] * 2


def test_c22_c23_layer_bytes_survive_byte_for_byte(cache: BlobCache, tmp_path: Path) -> None:
    """Capabilities (PAX xattr) and uids over 2,097,151 live inside layers: never re-packed."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("usr/bin/ping")
        info.size, info.uid, info.gid = 4, 88888888, 88888888
        info.pax_headers = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02" + "\x00" * 16}
        tar.addfile(info, io.BytesIO(b"ping"))
    layer = buf.getvalue()
    image = make_image(cache, [layer], ["caps:1"])
    for layers in ("none", "gzip"):
        fresh = BlobCache(tmp_path / layers)
        reading = read_stream(
            io.BytesIO(write([image], cache, "zstd", layers)), CachingSink(fresh), "x"
        )
        entry = reading.archive_images()[0].layers[0]
        assert b"".join(fresh.iter_uncompressed(entry)) == layer
        with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
            member = tar.getmember("usr/bin/ping")
        assert member.uid == 88888888
        assert member.pax_headers["SCHILY.xattr.security.capability"].startswith("\x01\x00\x00\x02")


# -- property tests: every form, write → read → the same digests ------------------------------------
FORMS = [
    "layerferry",
    "layerferry-gzip-layers",
    "docker-20.10",
    "docker-25",
    "oci-gzip",
    "oci-zstd",
    "skopeo-dir",
]
WHOLE = ["none", "gzip", "zstd"]

layer_files = st.dictionaries(
    st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8})?", fullmatch=True),
    st.binary(max_size=2000),
    min_size=1,
    max_size=3,
)


def build(form: str, img: Img, cache: BlobCache) -> bytes:
    if form.startswith("layerferry"):
        image = make_image(cache, img.layers, img.tags)
        return write([image], cache, layers="gzip" if form.endswith("gzip-layers") else "none")
    tar = Tar()
    if form == "docker-20.10":
        docker_legacy(tar, [img])
    elif form == "docker-25":
        oci_layout(tar, [img], compression="none", manifest_json=True)
    elif form == "skopeo-dir":
        skopeo_dir(tar, Img(img.layers, img.config, []))
    else:
        oci_layout(tar, [img], compression=form.split("-")[1])
    return tar.bytes()


def compress(data: bytes, whole: str) -> bytes:
    import gzip

    import zstandard

    return {"none": data, "gzip": gzip.compress(data, mtime=0), "zstd": zstandard.compress(data)}[
        whole
    ]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    layers=st.lists(layer_files, min_size=1, max_size=3),
    form=st.sampled_from(FORMS),
    whole=st.sampled_from(WHOLE),
)
def test_property_every_form_reads_back_the_same_digests(
    tmp_path_factory: pytest.TempPathFactory, layers: list[dict[str, bytes]], form: str, whole: str
) -> None:
    tmp = tmp_path_factory.mktemp("forms")
    cache = BlobCache(tmp / "c")
    tars = [layer_tar(files) for files in layers]
    from tests.imagegen import config_for

    img = Img(tars, config_for(tars), [] if form == "skopeo-dir" else ["prop:1"])
    data = build(form, img, cache)
    assert build(form, img, cache) == data  # writing twice gives the same bytes
    reading = read_stream(io.BytesIO(compress(data, whole)), CachingSink(BlobCache(tmp / "r")), "x")
    (image,) = reading.archive_images()
    assert str(image.config.digest) == img.config_digest
    assert [str(e.diff_id) for e in image.layers] == img.diff_ids
    assert [str(t) for t in image.tags] == img.tags


def _delta(cache: BlobCache, tmp_path: Path) -> tuple[ArchiveImage, Path, RecordingReporter]:
    """What `save --thin-for` writes for a receiver holding the image's first layer."""
    image = random_image(cache, seed=11, n_layers=2, tags=["app:2"])
    target = tmp_path / "delta.tar"
    present = {image.config.chain_ids[0]}
    reporter = RecordingReporter()
    destination = ArchiveFileDestination(target, Compression.NONE, cache, present_chains=present)
    copy_images([image], destination, reporter=reporter, thin=True)
    return image, target, reporter


def test_a_delta_names_the_layers_it_leaves_out(cache: BlobCache, tmp_path: Path) -> None:
    image, target, reporter = _delta(cache, tmp_path)
    files = members(target.read_bytes())
    base, change = image.config.diff_ids
    assert f"blobs/sha256/{base.hex}" not in files and f"blobs/sha256/{change.hex}" in files
    record = json.loads(files[THIN_MEMBER])
    assert record["format"] == "layerferry-thin" and record["left_out"] == [str(base)]
    # Both views still list both layers: plain `docker load` takes it where the base is.
    assert len(json.loads(files["manifest.json"])[0]["Layers"]) == 2
    assert reporter.steps[0] == (
        f"{target}: writing 1 of 2 layers (the rest is left out: the receiver holds it)"
    )


def test_a_full_archive_has_no_delta_record_and_says_writing(
    cache: BlobCache, tmp_path: Path
) -> None:
    image = random_image(cache, seed=12, n_layers=2, tags=["app:3"])
    target = tmp_path / "full.tar"
    reporter = RecordingReporter()
    destination = ArchiveFileDestination(target, Compression.NONE, cache, present_chains=set())
    copy_images([image], destination, reporter=reporter, thin=True)
    assert THIN_MEMBER not in members(target.read_bytes())
    assert reporter.steps[0] == f"{target}: writing 2 layers"


def test_a_delta_whose_receiver_holds_every_layer_writes_only_metadata(
    cache: BlobCache, tmp_path: Path
) -> None:
    image = random_image(cache, seed=13, n_layers=2, tags=["app:4"])
    target = tmp_path / "meta.tar"
    reporter = RecordingReporter()
    present = set(image.config.chain_ids)
    destination = ArchiveFileDestination(target, Compression.NONE, cache, present_chains=present)
    copy_images([image], destination, reporter=reporter, thin=True)
    assert reporter.steps[0] == (
        f"{target}: writing the image metadata only (all 2 layers left out: the receiver holds them)"
    )
    record = json.loads(members(target.read_bytes())[THIN_MEMBER])
    assert record["left_out"] == [str(d) for d in image.config.diff_ids]


def test_a_left_out_layer_in_the_local_cache_is_only_a_candidate(
    cache: BlobCache, tmp_path: Path
) -> None:
    """Reading a delta where the cache holds the left-out layer warns nothing by itself: `load`
    warns only if that copy is sent (the receiver may hold it)."""
    image, target, _ = _delta(cache, tmp_path)
    base = image.config.diff_ids[0]
    reading = read_path(target, CachingSink(cache), ReadOptions(thin=True))
    assert reading.findings.warnings == []
    assert reading.is_delta and reading.left_out == [base]
    assert list(reading.cache_fills()) == [base]
    assert "layer 1" in reading.cache_fills()[base]
    elsewhere = read_path(
        target, CachingSink(BlobCache(tmp_path / "other")), ReadOptions(thin=True)
    )
    assert elsewhere.cache_fills() == {}
    assert [layer.left_out for layer in elsewhere.images[0].layers] == [True, False]
