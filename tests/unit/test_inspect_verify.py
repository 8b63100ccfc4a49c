"""``inspect`` and ``verify`` (library and command), and choosing/naming images at load time."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from layerferry.archive.writer import ArchiveImage
from layerferry.copy.blobcache import BlobCache
from layerferry.copy.destinations import ArchiveFileDestination
from layerferry.copy.engine import copy_images
from layerferry.errors import IntegrityError, NotFoundError, UsageError
from layerferry.reporting import RecordingReporter
from layerferry.tario.compression import Compression
from layerferry.workflows._common import choose_images, name_images
from layerferry.workflows.inspect import describe, inspect_archive, verify_archive
from tests.archivegen import Tar, docker_legacy, make_img, oci_layout
from tests.imagegen import config_for, random_image

SECRET = "hunter2-do-not-show"


def lf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "layerferry", "--cache-dir", str(cwd / "cache"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def archive(tmp_path: Path) -> Path:
    config = {
        "Entrypoint": ["/bin/httpd"],
        "Cmd": ["-f"],
        "Env": ["PATH=/bin", f"DB_PASSWORD={SECRET}"],
        "ExposedPorts": {"80/tcp": {}},
        "Volumes": {"/data": {}},
        "User": "www",
        "WorkingDir": "/srv",
    }
    img = make_img(1, n_layers=2, tags=["shop:1"], config=config)
    img.layers[1] = img.layers[1] + b"\0" * 40960  # the big one
    from tests.imagegen import config_for

    img.config = config_for(img.layers, {"config": config})
    tar = Tar()
    oci_layout(tar, [img], manifest_json=True)
    return tar.write(tmp_path / "shop.tar")


def test_inspect_describes_images_layers_and_config(tmp_path: Path) -> None:
    summary = describe(inspect_archive(archive(tmp_path)))
    (image,) = summary["images"]
    assert summary["format"] == "docker-archive + OCI image layout" and summary["ok"]
    assert image["tags"] == ["shop:1"]
    assert image["config"] == {
        "entrypoint": ["/bin/httpd"],
        "cmd": ["-f"],
        "env_names": ["PATH", "DB_PASSWORD"],
        "exposed_ports": ["80/tcp"],
        "volumes": ["/data"],
        "user": "www",
        "working_dir": "/srv",
        "labels": [],
    }
    assert [layer["created_by"] for layer in image["layers"]] == ["layer 0", "layer 1"]
    assert image["layers"][1]["size"] > image["layers"][0]["size"]
    assert all(layer["compression"] == "gzip" for layer in image["layers"])
    assert SECRET not in json.dumps(summary)


def test_inspect_command_text_and_json(tmp_path: Path) -> None:
    path = archive(tmp_path)
    out = lf("inspect", str(path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (
        "shop:1" in out.stdout and "env        PATH, DB_PASSWORD (values not shown)" in out.stdout
    )
    bars = [line for line in out.stdout.splitlines() if "█" in line or "·" * 5 in line]
    assert len(bars) == 2 and bars[1].count("█") == 24 and bars[0].count("█") < 24
    assert SECRET not in out.stdout + out.stderr
    as_json = lf("--json", "inspect", str(path), cwd=tmp_path)
    assert json.loads(as_json.stdout)["images"][0]["id"].startswith("sha256:")
    assert not (tmp_path / "cache" / "blobs" / "layers").exists() or not any(
        (tmp_path / "cache" / "blobs" / "layers").iterdir()
    ), "inspect keeps no layers"


def test_verify_passes_and_fails_with_the_right_exit_code(tmp_path: Path) -> None:
    path = archive(tmp_path)
    ok = lf("--json", "verify", str(path), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    data = bytearray(path.read_bytes())
    with tarfile.open(path) as tar:
        layer = max((m for m in tar if m.name.startswith("blobs/")), key=lambda m: m.size)
    data[layer.offset_data + layer.size // 2] ^= 0x55  # inside the big gzip layer
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    out = lf("--json", "verify", str(bad), cwd=tmp_path)
    assert out.returncode == 4
    report = json.loads(out.stdout)
    assert report["ok"] is False and report["problems"]
    assert out.stderr.count("layerferry: error: verification failed: ") == 1
    assert "shop:1: layer 2 (blobs/sha256/" in report["problems"][0]
    assert "gzip stream is damaged or ends early" in report["problems"][0]
    assert any("descriptor expects sha256:" in p for p in report["problems"])


def test_verify_library_collects_every_problem(tmp_path: Path) -> None:
    img = make_img(2, n_layers=2, tags=["app:1"])
    tar = docker_legacy(Tar(), [img])
    data = bytearray(tar.bytes())
    for layer in img.layers:
        at = data.index(layer[600:700])
        data[at] ^= 1
    path = tmp_path / "x.tar"
    path.write_bytes(bytes(data))
    result = verify_archive(path)
    assert not result.ok
    assert [p.split(": ", 2)[2].split(" (")[0] for p in result.problems] == ["layer 1", "layer 2"]
    with pytest.raises(IntegrityError, match=r"\(and 1 more problems\)"):
        result.raise_for_problems()


# -- choosing and naming at load time (C08, C14, C15) ----------------------------------------------
def two(cache: BlobCache) -> list[ArchiveImage]:
    return [random_image(cache, seed=3, tags=["t:1"]), random_image(cache, seed=4)]


def test_c15_choose_by_tag_position_or_id(cache: BlobCache) -> None:
    images = two(cache)
    assert choose_images(images, []) == images
    assert choose_images(images, ["t:1"]) == images[:1]
    assert choose_images(images, ["2"]) == images[1:]
    assert choose_images(images, [images[1].config.digest.hex[:12]]) == images[1:]
    with pytest.raises(NotFoundError, match=r"holds no image 'x:9' \(it holds 1: t:1, 2: image "):
        choose_images(images, ["x:9"])


def test_c08_c14_tag_at_load(cache: BlobCache) -> None:
    images = two(cache)
    named = name_images(images[1:], "restored:1")
    assert [str(t) for t in named[0].tags] == ["restored:1"]
    with pytest.raises(UsageError, match="--tag names one image, and 2 would be loaded"):
        name_images(images, "x:1")


def test_load_tag_with_two_images_fails_before_any_engine(tmp_path: Path) -> None:
    tar = docker_legacy(Tar(), [make_img(5, tags=["a:1"]), make_img(6, tags=["b:1"])])
    out = lf("load", str(tar.write(tmp_path / "two.tar")), "--tag", "x:1", cwd=tmp_path)
    assert out.returncode == 2
    assert "--tag names one image, and 2 would be loaded; choose one with --image" in out.stderr


def test_load_of_a_rootfs_says_import(tmp_path: Path) -> None:
    tar = Tar().dir("bin/").file("bin/sh", b"x" * 600).dir("etc/").file("etc/passwd", b"root\n")
    out = lf("load", str(tar.write(tmp_path / "root.tar")), cwd=tmp_path)
    assert out.returncode == 4
    assert "a root-filesystem tarball (bin/, etc/ at the top), not an image archive" in out.stderr
    assert "docker import" in out.stderr and "Traceback" not in out.stderr


# -- malformed image configs: refused when read, never printed ------------------------------------
def config_archive(tmp_path: Path, extra: dict[str, object]) -> Path:
    img = make_img(7, n_layers=1, tags=["bad:1"])
    img.config = config_for(img.layers, extra)
    return docker_legacy(Tar(), [img]).write(tmp_path / "bad.tar")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"config": {"Env": f"DB_PASSWORD={SECRET}"}}, "Env must be a list of strings"),
        ({"config": {"Env": [f"A={SECRET}", 5]}}, "Env must be a list of strings"),
        ({"config": {"Cmd": [1, 2]}}, "Cmd must be a list of strings or null"),
        ({"config": {"Entrypoint": {"a": 1}}}, "Entrypoint must be a list of strings or null"),
        ({"config": {"ExposedPorts": ["80/tcp"]}}, "ExposedPorts must be an object"),
        ({"config": {"Volumes": "/data"}}, "Volumes must be an object"),
        ({"config": {"Labels": {"a": 1}}}, "Labels must be an object of strings"),
        ({"config": {"User": 0}}, "User must be a string"),
        ({"created": "yesterday"}, "created must be an RFC 3339 timestamp (such as 2024-"),
        ({"created": 12}, "created must be an RFC 3339 timestamp string, not a number"),
        ({"created": "2024-02-30T10:00:00Z"}, "created must be an RFC 3339 timestamp"),
        ({"architecture": 5}, "architecture must be a string"),
        ({"os": ["linux"]}, "os must be a string"),
        ({"variant": 8}, "variant must be a string"),
        ({"rootfs": {"type": "layers", "diff_ids": ["md5:abc"]}}, "rootfs.diff_ids must be a list"),
        ({"history": "x"}, "history must be a list of objects"),
    ],
)
def test_malformed_config_fields_are_refused(
    tmp_path: Path, extra: dict[str, object], message: str
) -> None:
    path = config_archive(tmp_path, extra)
    result = verify_archive(path)
    assert not result.ok
    assert f"{path}: config of bad:1: {message}" in result.problems[0]
    assert SECRET not in " ".join(result.problems)
    assert describe(inspect_archive(path))["images"] == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"config": {"Env": f"DB_PASSWORD={SECRET}"}}, "Env must be a list of strings"),
        ({"created": "yesterday"}, "created must be an RFC 3339 timestamp"),
        ({"architecture": 5}, "architecture must be a string"),
    ],
)
def test_malformed_config_exit_codes(
    tmp_path: Path, extra: dict[str, object], message: str
) -> None:
    """verify and load exit 4 before any engine is asked; inspect shows the problem."""
    path = config_archive(tmp_path, extra)
    for verb in (["verify"], ["load"], ["inspect"]):
        out = lf(*verb, str(path), cwd=tmp_path)
        assert out.returncode == (0 if verb == ["inspect"] else 4), (verb, out.stderr)
        assert f"{path}: config of bad:1: {message}" in out.stdout + out.stderr
        assert SECRET not in out.stdout + out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "extra",
    [
        {"created": "2024-05-01T12:00:00.123456789Z", "config": {"Cmd": None, "Env": None}},
        {"created": "0001-01-01T00:00:00Z", "config": {"Cmd": "sh", "Labels": None}},
        {"created": "2024-05-01T12:00:00+02:00", "variant": None, "config": None},
    ],
)
def test_config_forms_docker_accepts_are_read(tmp_path: Path, extra: dict[str, object]) -> None:
    result = verify_archive(config_archive(tmp_path, extra))
    assert result.ok, result.problems


def test_inspect_never_prints_env_values(tmp_path: Path) -> None:
    path = config_archive(tmp_path, {"config": {"Env": f"DB_PASSWORD={SECRET}"}})
    for args in (["inspect"], ["--json", "inspect"]):
        out = lf(*args, str(path), cwd=tmp_path)
        text = out.stdout + out.stderr
        assert SECRET not in text and "D, B, _" not in text and "DB_PASSWORD" not in text
    summary = describe(inspect_archive(path))
    assert summary["images"] == [] and SECRET not in json.dumps(summary)


def test_verify_counts_distinct_layers(tmp_path: Path) -> None:
    base = make_img(8, n_layers=2, tags=["a:1"])
    top = make_img(9, n_layers=1, tags=["b:1"])
    top.layers = [base.layers[0], top.layers[0]]
    top.config = config_for(top.layers)
    path = docker_legacy(Tar(), [base, top]).write(tmp_path / "two.tar")
    out = lf("verify", str(path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "verified 2 image(s), 3 layer(s)" in out.stdout + out.stderr


def test_load_of_a_rootfs_from_standard_input_says_import_dash(tmp_path: Path) -> None:
    tar = Tar().dir("bin/").file("bin/sh", b"x" * 600).dir("etc/").file("etc/passwd", b"root\n")
    out = subprocess.run(
        [sys.executable, "-m", "layerferry", "--cache-dir", str(tmp_path / "c"), "load", "-"],
        input=tar.bytes(),
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 4
    assert (
        b"`docker import - NAME:TAG`" in out.stderr and b"import standard input" not in out.stderr
    )


# -- deltas written by `save --thin-for` ---------------------------------------------------------
def _delta(tmp_path: Path) -> tuple[ArchiveImage, Path]:
    cache = BlobCache(tmp_path / "writer-cache")
    image = random_image(cache, seed=21, n_layers=3, tags=["app:5"])
    target = tmp_path / "delta.tar"
    present = {image.config.chain_ids[1]}  # the receiver holds the first two layers
    destination = ArchiveFileDestination(target, Compression.NONE, cache, present_chains=present)
    copy_images([image], destination, thin=True)
    return image, target


def _rewrite(source: Path, target: Path, keep: Callable[[str], bool]) -> Path:
    with tarfile.open(source) as src, tarfile.open(target, "w") as out:
        for member in src:
            if keep(member.name):
                out.addfile(member, src.extractfile(member) if member.isfile() else None)
    return target


def test_verify_accepts_a_delta_and_names_what_it_leaves_out(tmp_path: Path) -> None:
    image, path = _delta(tmp_path)
    base = [str(d) for d in image.config.diff_ids[:2]]
    reporter = RecordingReporter()
    result = verify_archive(path, reporter=reporter)
    assert result.ok and result.problems == []
    assert reporter.steps == [
        f"{path}: verified 1 image(s), 1 layer(s): every digest, size and diff ID matches",
        f"{path}: left out: a delta for a receiver that holds them (2 layers)",
    ]
    out = lf("--json", "verify", str(path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] is True and report["delta"] is True and report["left_out"] == base
    assert report["images"][0]["layers"] == 3 and report["images"][0]["left_out"] == 2


def test_verify_still_checks_the_layers_a_delta_carries(tmp_path: Path) -> None:
    image, path = _delta(tmp_path)
    data = bytearray(path.read_bytes())
    with tarfile.open(path) as tar:
        layer = next(m for m in tar if m.name == f"blobs/sha256/{image.config.diff_ids[2].hex}")
    data[layer.offset_data + 10] ^= 0x55
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    out = lf("--json", "verify", str(bad), cwd=tmp_path)
    assert out.returncode == 4
    assert "app:5: layer 3" in json.loads(out.stdout)["problems"][0]


def test_a_missing_layer_is_an_error_unless_the_archive_says_it_left_it_out(
    tmp_path: Path,
) -> None:
    image, path = _delta(tmp_path)
    # Without its delta record, the same archive is one that lacks two layers: exit 4.
    unmarked = _rewrite(path, tmp_path / "unmarked.tar", lambda n: not n.startswith("layerferry"))
    out = lf("--json", "verify", str(unmarked), cwd=tmp_path)
    assert out.returncode == 4
    report = json.loads(out.stdout)
    assert report["delta"] is False
    assert "app:5: layer 1 (blobs/sha256/" in report["problems"][0]
    assert "is not in the archive" in report["problems"][0]
    # A layer the record does not name, missing too: still an error.
    change = image.config.diff_ids[2].hex
    cut = _rewrite(path, tmp_path / "cut.tar", lambda n: not n.endswith(change))
    result = verify_archive(cut)
    assert not result.ok
    assert result.problems == [
        f"{cut}: app:5: layer 3 (blobs/sha256/{change}, diff ID sha256:{change}) is not in the "
        "archive"
    ]


def test_inspect_shows_a_delta_and_its_left_out_layers(tmp_path: Path) -> None:
    image, path = _delta(tmp_path)
    base = [str(d) for d in image.config.diff_ids[:2]]
    summary = describe(inspect_archive(path))
    assert summary["ok"] and summary["delta"] is True and summary["left_out"] == base
    assert [layer["left_out"] for layer in summary["images"][0]["layers"]] == [True, True, False]
    out = lf("inspect", str(path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1] == "delta: left out: a delta for a receiver that holds them (2 layers)"
    assert lines[2:4] == [f"  {d}" for d in base]
    layer_lines = [line for line in lines if line.startswith("      ")]
    assert [line.split()[1:3] for line in layer_lines[:2]] == [["left", "out"]] * 2
    assert "problem" not in out.stderr
    plain = describe(inspect_archive(archive(tmp_path)))
    assert plain["delta"] is False and plain["left_out"] == []
