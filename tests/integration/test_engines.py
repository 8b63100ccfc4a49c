"""The engine matrix: a Docker 26 host (containerd image store) beside a 20.10 host, and the
DESIGN §3 load-matrix facts that decide what layerferry may hand each kind of engine."""

from __future__ import annotations

import io
import json
import secrets
import tarfile
from pathlib import Path

import zstandard
from sandbox.sandbox import CONTAINERD_SNAPSHOTTER, Sandbox

from layerferry.archive.encoding import PlainEncoder
from layerferry.archive.writer import ArchiveImage, iter_archive
from layerferry.copy.blobcache import BlobCache
from layerferry.oci.digest import Digest

from ..imagegen import config_for, layer_tar, make_image
from .conftest import NEW_ENGINE, World


def _tag(name: str) -> str:
    return f"{name}-{secrets.token_hex(3)}:1"


def _legacy_archive(config: bytes, tag: str, layers: list[tuple[Digest, bytes | None]]) -> bytes:
    """A docker-archive in ``manifest.json``-only form; a layer given as None is left out
    (thin), though ``manifest.json`` still names its file."""
    members = {f"{Digest.of(config).hex}.json": config}
    for diff_id, data in layers:
        if data is not None:
            members[f"{diff_id.hex}/layer.tar"] = data
    manifest = {
        "Config": f"{Digest.of(config).hex}.json",
        "RepoTags": [tag],
        "Layers": [f"{diff_id.hex}/layer.tar" for diff_id, _ in layers],
    }
    members["manifest.json"] = json.dumps([manifest]).encode()
    return layer_tar(members)


def _combined_archive(
    cache: BlobCache, image: ArchiveImage, include: set[Digest] | None = None
) -> bytes:
    """layerferry's own form: OCI layout + ``manifest.json``, thin when ``include`` is given."""
    return b"".join(iter_archive([image], PlainEncoder(cache), include=include))


def _load(world: World, host: str, archive: bytes) -> tuple[bool, str]:
    res = world.sb.docker(host, "load", input=archive, check=False)
    return res.returncode == 0, (res.stdout + res.stderr).decode(errors="replace")


def _diff_ids(world: World, host: str, tag: str) -> list[str]:
    return list(
        json.loads(world.docker(host, "image", "inspect", "-f", "{{json .RootFS}}", tag))["Layers"]
    )


def test_new_engine_host_uses_the_containerd_image_store(world26: World) -> None:
    sb = world26.sb
    a, b = sb.host("a"), sb.host("b")
    assert (a.engine, b.engine) == ("docker-20.10", NEW_ENGINE)
    assert a.engine_version.startswith("20.10.") and b.engine_version.startswith("26.")
    assert Sandbox.load(sb.dir).host("b").engine_version == b.engine_version  # env.json
    status = json.loads(world26.docker("b", "info", "--format", "{{json .DriverStatus}}"))
    assert ["driver-type", CONTAINERD_SNAPSHOTTER] in status
    assert world26.docker("a", "info", "--format", "{{.Driver}}") == "overlay2"
    # A session on b sees b's daemon through its own 26 CLI, as on a real trixie host.
    fmt = "{{.Client.Version}}/{{.Server.Version}}"  # no space: ssh joins argv for a shell
    client, server = sb.ssh("b", "docker", "version", "--format", fmt, text=True).stdout.split("/")
    assert client.startswith("26.") and server.strip() == b.engine_version
    ids = {world26.docker(h, "info", "--format", "{{.ID}}") for h in ("a", "b")}
    assert len(ids) == 2


def test_docker_save_of_2010_loads_and_runs_on_26(world26: World) -> None:
    tag = _tag("from2010")
    world26.docker("a", "tag", "bb:local", tag)
    archive = world26.sb.docker("a", "save", tag, text=False).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = set(tar.getnames())
    assert "manifest.json" in names and "index.json" not in names  # the legacy form
    out = world26.sb.ssh("b", "docker", "load", input=archive).stdout.decode()
    assert f"Loaded image: {tag}" in out
    assert world26.docker("b", "run", "--rm", tag, "echo", "ok") == "ok"


def test_thin_archives_need_the_combined_form_on_26(world26: World, tmp_path: Path) -> None:
    """A thin ``manifest.json``-only archive loads on 20.10 but not on 26; the combined
    (OCI layout + ``manifest.json``) thin archive loads on both, given the base."""
    cache = BlobCache(tmp_path / "cache")
    base_layer = world26.sb.busybox_rootfs().read_bytes()
    top = layer_tar({"hello": b"thin\n"})
    run: dict[str, object] = {"config": {"Cmd": ["cat", "/hello"], "Env": ["PATH=/bin"]}}
    base = make_image(cache, [base_layer], [_tag("thin-base")])
    base_id, top_id = base.layers[0].diff_id, Digest.of(top)
    legacy_tag = _tag("thin-legacy")
    child = make_image(cache, [base_layer, top], [_tag("thin-combined")], run)
    thin_legacy = _legacy_archive(child.config.raw, legacy_tag, [(base_id, None), (top_id, top)])
    thin_combined = _combined_archive(cache, child, include={top_id})
    assert len(thin_combined) < len(base_layer)

    for host in ("a", "b"):
        ok, out = _load(world26, host, _combined_archive(cache, base))
        assert ok, out

    ok, out = _load(world26, "a", thin_legacy)
    assert ok, out
    assert world26.docker("a", "run", "--rm", legacy_tag) == "thin"
    world26.docker("a", "rmi", legacy_tag)
    ok, out = _load(world26, "b", thin_legacy)
    assert not ok and "not found" in out, out
    assert world26.sb.docker("b", "image", "inspect", legacy_tag, check=False).returncode != 0

    for host in ("a", "b"):
        ok, out = _load(world26, host, thin_combined)
        assert ok, f"host {host}: {out}"
        assert world26.docker(host, "run", "--rm", str(child.tags[0])) == "thin"


def test_zstd_layers_fail_on_2010_and_load_on_26(world26: World) -> None:
    layer = layer_tar({"z.txt": b"zstd layer\n" * 64})
    tag = _tag("zstd")
    diff_id = Digest.of(layer)
    archive = _legacy_archive(
        config_for([layer]), tag, [(diff_id, zstandard.ZstdCompressor().compress(layer))]
    )
    ok, out = _load(world26, "a", archive)
    assert not ok and "tar" in out, out  # "invalid tar header" or "unexpected EOF"
    ok, out = _load(world26, "b", archive)
    assert ok, out
    assert _diff_ids(world26, "b", tag) == [str(diff_id)]


def test_send_to_the_containerd_store_moves_only_missing_layers(world26: World) -> None:
    """b runs Docker 26 with the containerd store: thin sends work there too."""
    first = world26.lf("--json", "send", "bb:local", world26.target)
    assert first.returncode == 0, first.stderr.decode()
    name = f"c26-{secrets.token_hex(3)}"
    tag = f"on26-{secrets.token_hex(3)}:1"
    world26.docker("a", "run", "--name", name, "bb:local", "sh", "-c", "echo on26 > /x.txt")
    world26.docker("a", "commit", name, tag)
    out = world26.lf("--json", "send", tag, world26.target)
    assert out.returncode == 0, out.stderr.decode()
    host = json.loads(out.stdout)["hosts"][world26.target]
    assert host["layers_sent"] == 1
    assert host["bytes_sent"] < 50_000
    assert b"refused the thin load" not in out.stderr
    assert world26.docker("b", "run", "--rm", tag, "cat", "/x.txt") == "on26"


def test_migrate_to_the_containerd_store(world26: World) -> None:
    name = f"m26-{secrets.token_hex(3)}"
    world26.docker(
        "a",
        "run",
        "-d",
        "--name",
        name,
        "-p",
        "8181:80",
        "bb:local",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    )
    world26.docker("a", "exec", name, "sh", "-c", "echo 'moved to 26' > /www/index.html")
    out = world26.lf("migrate", name, world26.target, "--start")
    assert out.returncode == 0, out.stderr.decode()
    assert world26.fetch("b", 8181) == "moved to 26\n"
