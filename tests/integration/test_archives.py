"""Archives from real tools (docker save, skopeo, podman), plain, gzip and zstd: inspect, verify
and load them into host a's Docker 20.10; and real tools read what layerferry writes."""

from __future__ import annotations

import gzip
import io
import json
import secrets
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

import layerferry
from layerferry.archive.classify import ArchiveFormat
from layerferry.workflows.inspect import inspect_archive, verify_archive

from .conftest import World

DOCKER_FORMS = {
    "docker-save",
    "docker-save-two",
    "docker-save-id",
    "skopeo-docker-archive",
    "podman-docker-archive",
}
OCI_FORMS = {"skopeo-oci-archive", "skopeo-oci-dir", "podman-oci-archive"}
FORMS = sorted(DOCKER_FORMS | OCI_FORMS)


@dataclass
class Interop:
    tag: str
    image_id: str
    diff_ids: list[str]
    archives: dict[str, Path]
    dir: Path

    def path(self, form: str, compression: str) -> Path:
        plain = self.archives[form]
        if compression == "none" or plain.is_dir():
            return plain
        packed = plain.with_name(f"{plain.name}.{compression}")
        if not packed.exists():
            data = plain.read_bytes()
            packed.write_bytes(
                gzip.compress(data, 1) if compression == "gz" else zstandard.compress(data)
            )
        return packed


def run(*argv: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, f"{argv[0]} failed: {out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def interop(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Interop]:
    work = tmp_path_factory.mktemp("interop")
    tag = f"ia-{secrets.token_hex(3)}:1"
    name = f"c-{secrets.token_hex(3)}"
    world.docker("a", "run", "--name", name, "bb:local", "sh", "-c", "echo interop > /i.txt")
    world.docker("a", "commit", "-c", "ENV SECRET_TOKEN=abc", "-c", "EXPOSE 8080", name, tag)
    world.docker("a", "rm", name)
    image_id = world.docker("a", "image", "inspect", "--format", "{{.Id}}", tag)
    diff_ids = json.loads(
        world.docker("a", "image", "inspect", "--format", "{{json .RootFS.Layers}}", tag)
    )
    archives = {
        "docker-save": work / "ds1.tar",
        "docker-save-two": work / "ds2.tar",
        "docker-save-id": work / "dsid.tar",
    }
    world.docker("a", "save", "-o", str(archives["docker-save"]), tag)
    world.docker("a", "save", "-o", str(archives["docker-save-two"]), tag, "bb:local")
    world.docker("a", "save", "-o", str(archives["docker-save-id"]), image_id)
    daemon = ["--src-daemon-host", world.sb.host("a").docker_host, f"docker-daemon:{tag}"]
    for form, dest in (
        ("skopeo-docker-archive", f"docker-archive:{work}/sk-da.tar:{tag}"),
        ("skopeo-oci-archive", f"oci-archive:{work}/sk-oa.tar:{tag}"),
        ("skopeo-oci-dir", f"oci:{work}/sk-oci:{tag}"),
    ):
        run("skopeo", "copy", "-q", *daemon, dest)
        archives[form] = Path(dest.split(":")[1])
    podman = [
        "podman",
        *("--root", str(work / "podman/root"), "--runroot", str(work / "podman/run")),
        *("--tmpdir", str(work / "podman/tmp"), "--network-config-dir", str(work / "podman/net")),
        *("--volumepath", str(work / "podman/vol"), "--storage-driver", "vfs"),
        *("--cgroup-manager", "cgroupfs", "--events-backend", "file"),
    ]
    run(*podman, "load", "-q", "-i", str(archives["docker-save"]))
    for form, fmt in (
        ("podman-docker-archive", "docker-archive"),
        ("podman-oci-archive", "oci-archive"),
    ):
        archives[form] = work / f"{form}.tar"
        run(*podman, "save", "-q", "--format", fmt, "-o", str(archives[form]), f"localhost/{tag}")
    try:
        yield Interop(tag, image_id, diff_ids, archives, work)
    finally:
        subprocess.run([*podman, "rmi", "-a", "-f"], capture_output=True, timeout=60)
        shutil.rmtree(work / "podman", ignore_errors=True)


def expected_tags(interop: Interop, form: str) -> list[str]:
    if form == "docker-save-id":
        return []
    return [f"localhost/{interop.tag}"] if form.startswith("podman") else [interop.tag]


CASES = [
    (f, c) for f in FORMS for c in ("none", "gz", "zst") if f != "skopeo-oci-dir" or c == "none"
]


@pytest.mark.parametrize(("form", "compression"), CASES)
def test_inspect_verify_and_load(
    world: World, interop: Interop, form: str, compression: str
) -> None:
    """A directory (oci:) has no whole-file compression; every other form comes in three."""
    path = interop.path(form, compression)
    result = verify_archive(path)
    assert result.ok, result.problems
    reading = inspect_archive(path)
    mine = [
        i for i in reading.images if i.layers and str(i.layers[-1].diff_id) == interop.diff_ids[-1]
    ]
    assert len(mine) == 1
    image = mine[0]
    assert [str(x.diff_id) for x in image.layers] == interop.diff_ids
    assert [str(t) for t in image.tags] == expected_tags(interop, form)
    assert reading.format is (ArchiveFormat.DOCKER if form in DOCKER_FORMS else ArchiveFormat.OCI)
    if form in DOCKER_FORMS:
        assert str(image.config.digest) == interop.image_id
    config_id = str(image.config.digest)
    world.docker("a", "rmi", "-f", config_id, check=False)
    tag = f"loaded-{secrets.token_hex(3)}:1"
    loaded = layerferry.load(
        path,
        tag=tag,
        select=[config_id[7:19]],
        settings=world.settings,
        reporter=layerferry.RecordingReporter(),
    )
    assert [str(i.config.digest) for i in loaded.images] == [config_id]
    record = json.loads(world.docker("a", "image", "inspect", tag))[0]
    assert record["Id"] == config_id
    assert record["RootFS"]["Layers"] == interop.diff_ids
    for expected in expected_tags(interop, form):
        assert world.docker("a", "image", "inspect", "--format", "{{.Id}}", expected) == config_id
    assert world.docker("a", "run", "--rm", tag, "cat", "/i.txt") == "interop"


def test_load_from_a_pipe_picks_one_image(world: World, interop: Interop) -> None:
    """`docker save a b | layerferry load - --image 1`: one image of two, through standard input."""
    data = interop.archives["docker-save-two"].read_bytes()
    world.docker("a", "rmi", "-f", interop.image_id, check=False)
    out = world.lf("--json", "load", "-", "--image", interop.tag, input=gzip.compress(data, 1))
    assert out.returncode == 0, out.stderr
    assert [i["id"] for i in json.loads(out.stdout)["images"]] == [interop.image_id]
    assert (
        world.docker("a", "image", "inspect", "--format", "{{.Id}}", interop.tag)
        == interop.image_id
    )


def test_inspect_shows_env_names_not_values(world: World, interop: Interop, tmp_path: Path) -> None:
    out = world.lf("inspect", str(interop.archives["docker-save"]))
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "SECRET_TOKEN" in text and "abc" not in text and "8080/tcp" in text


# -- the other way: real tools read layerferry's archives -------------------------------------------
@pytest.fixture(scope="module")
def ours(world: World, interop: Interop) -> dict[str, Path]:
    out = {}
    for name, extra in (("plain", []), ("gzip", ["--layer-compression", "gzip"])):
        path = interop.dir / f"lf-{name}.tar"
        done = world.lf("save", interop.tag, "bb:local", "-o", str(path), *extra)
        assert done.returncode == 0, done.stderr
        out[name] = path
    return out


@pytest.mark.parametrize("layers", ["plain", "gzip"])
def test_skopeo_reads_our_archives(interop: Interop, ours: dict[str, Path], layers: str) -> None:
    path = ours[layers]
    docker_view = json.loads(run("skopeo", "inspect", f"docker-archive:{path}:{interop.tag}"))
    oci_view = json.loads(
        run("skopeo", "inspect", "--config", f"oci-archive:{path}:{interop.tag.split(':')[1]}")
    )
    assert oci_view["rootfs"]["diff_ids"] == interop.diff_ids
    config = json.loads(
        run("skopeo", "inspect", "--config", f"docker-archive:{path}:{interop.tag}")
    )
    assert config["rootfs"]["diff_ids"] == interop.diff_ids
    assert len(docker_view["Layers"]) == len(interop.diff_ids)


@pytest.mark.parametrize("layers", ["plain", "gzip"])
def test_oci_tools_validate_our_layout(
    interop: Interop, ours: dict[str, Path], layers: str, tmp_path: Path
) -> None:
    root = tmp_path / "layout"
    root.mkdir()
    with tarfile.open(ours[layers]) as tar:
        tar.extractall(root, filter="data")
    assert "Validation succeeded" in run("oci-image-tool", "validate", "--type", "image", str(root))
    assert sorted(run("umoci", "ls", "--layout", str(root)).split()) == sorted(["1", "local"])
    history = run("umoci", "stat", "--image", f"{root}:1")
    assert "echo interop > /i.txt" in history


def test_docker_loads_our_gzip_layers(world: World, ours: dict[str, Path]) -> None:
    """Docker 20.10's own `docker load` takes the archive with gzip layers (DESIGN §3)."""
    out = world.sb.docker("b", "load", "-i", str(ours["gzip"]), text=True)
    assert "Loaded image" in out.stdout


@pytest.mark.parametrize("layers", ["plain", "gzip"])
def test_docker_26_loads_and_runs_our_archives(world26: World, tmp_path: Path, layers: str) -> None:
    """Plain `docker load` on Docker 26 with the containerd image store takes what `save`
    writes (both layer forms), keeps the tag and diff IDs, and runs the image."""
    tag = f"lf26-{secrets.token_hex(3)}:{layers}"
    name = f"c-{secrets.token_hex(3)}"
    world26.docker("a", "run", "--name", name, "bb:local", "sh", "-c", "echo ours26 > /o.txt")
    world26.docker("a", "commit", "-c", 'CMD ["cat", "/o.txt"]', name, tag)
    diff_ids = json.loads(
        world26.docker("a", "image", "inspect", "--format", "{{json .RootFS.Layers}}", tag)
    )
    path = tmp_path / "lf.tar"
    extra = ["--layer-compression", "gzip"] if layers == "gzip" else []
    done = world26.lf("save", tag, "-o", str(path), *extra)
    assert done.returncode == 0, done.stderr
    out = world26.sb.ssh("b", "docker", "load", input=path.read_bytes()).stdout.decode()
    assert f"Loaded image: {tag}" in out
    loaded = world26.docker("b", "image", "inspect", "--format", "{{json .RootFS.Layers}}", tag)
    assert json.loads(loaded) == diff_ids
    assert world26.docker("b", "run", "--rm", tag) == "ours26"


# -- loader cases --------------------------------------------------------------------------------
def test_c14_save_by_id_then_tag_at_load(world: World, interop: Interop, tmp_path: Path) -> None:
    path = tmp_path / "by-id.tar"
    saved = world.lf("save", interop.image_id[7:19], "-o", str(path))
    assert saved.returncode == 0
    assert b"is an image ID: the archive will hold no tag for it" in saved.stderr
    out = world.lf("load", str(path), "--tag", "restored-by-id:1")
    assert out.returncode == 0, out.stderr
    assert interop.image_id.encode() in out.stderr
    assert (
        world.docker("a", "image", "inspect", "--format", "{{.Id}}", "restored-by-id:1")
        == interop.image_id
    )


def test_c18_platform_mismatch_is_warned(world: World, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    layer = buf.getvalue()
    import hashlib

    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "arm64",
            "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    members = {"config.json": config, "l/layer.tar": layer}
    members["manifest.json"] = json.dumps(
        [{"Config": "config.json", "RepoTags": ["arm-only:1"], "Layers": ["l/layer.tar"]}]
    ).encode()
    archive = tmp_path / "arm.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = world.lf("load", str(archive))
    assert out.returncode == 0, out.stderr
    assert b"arm-only:1 is built for linux/arm64, but local engine runs linux/amd64" in out.stderr
    assert b"exec format error" in out.stderr


def test_c01_c02_nothing_reaches_the_engine(world: World, tmp_path: Path) -> None:
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"\0" * 1024)
    before = world.listing("a", "images", "-q", "--no-trunc")
    out = world.lf("load", str(empty))
    assert out.returncode == 4 and b"archive is empty" in out.stderr
    # Compared as sets: the engine lists images created in the same second in any order.
    assert world.listing("a", "images", "-q", "--no-trunc") == before
