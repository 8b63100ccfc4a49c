"""Air-gapped deltas: record what a target holds, write only what it lacks, load it there."""

from __future__ import annotations

import json
import secrets
import tarfile
from pathlib import Path

from tests.imagegen import layer_tar

from .conftest import World


def test_inventory_then_thin_save_then_plain_docker_load(world: World, tmp_path: Path) -> None:
    # b holds the base image; the delta for b must leave its layers out.
    assert world.lf("send", "bb:local", world.target).returncode == 0
    inventory = tmp_path / "b.json"
    out = world.lf("inventory", "--host", world.target, "-o", str(inventory))
    assert out.returncode == 0, out.stderr.decode()
    record = json.loads(inventory.read_text())
    assert record["host"] == world.target
    assert record["engine"]["name"] == world.sb.host("b").hostname
    base_layers = json.loads(
        world.docker("a", "image", "inspect", "--format", "{{json .RootFS.Layers}}", "bb:local")
    )
    assert base_layers[0] in record["chains"]  # one layer: its chain ID is its diff ID
    assert any("bb:local" in image["tags"] for image in record["images"])

    tag = f"delta-{secrets.token_hex(3)}:1"
    name = f"d-{secrets.token_hex(3)}"
    world.docker("a", "run", "--name", name, "bb:local", "sh", "-c", "echo delta > /delta.txt")
    world.docker("a", "commit", name, tag)
    delta = tmp_path / "delta.tar"
    out = world.lf("save", tag, "--thin-for", str(inventory), "-o", str(delta))
    assert out.returncode == 0, out.stderr.decode()
    layers = json.loads(
        world.docker("a", "image", "inspect", "--format", "{{json .RootFS.Layers}}", tag)
    )
    with tarfile.open(delta) as tar:
        names = set(tar.getnames())
    assert f"blobs/sha256/{layers[0].split(':')[1]}" not in names  # the base stays home
    assert f"blobs/sha256/{layers[1].split(':')[1]}" in names  # the change travels
    full = tmp_path / "full.tar"
    assert world.lf("save", tag, "-o", str(full)).returncode == 0
    assert delta.stat().st_size < full.stat().st_size - 1_000_000

    # The receiving engine has the base: plain `docker load` of the delta works there.
    loaded = world.sb.docker("b", "load", "-i", str(delta), text=True)
    assert tag in str(loaded.stdout)
    assert world.docker("b", "run", "--rm", tag, "cat", "/delta.txt") == "delta"


def test_delta_loads_with_layerferry_where_the_base_is_and_is_refused_elsewhere(
    world: World, tmp_path: Path
) -> None:
    """Case C06 on a real engine: check the receiver has the left-out layers before loading."""
    assert world.lf("send", "bb:local", world.target).returncode == 0
    inventory = tmp_path / "b.json"
    assert world.lf("inventory", "--host", world.target, "-o", str(inventory)).returncode == 0
    tag = f"delta2-{secrets.token_hex(3)}:1"
    name = f"d-{secrets.token_hex(3)}"
    world.docker("a", "run", "--name", name, "bb:local", "sh", "-c", "echo two > /two.txt")
    world.docker("a", "commit", name, tag)
    delta = tmp_path / "delta.tar"
    out = world.lf("save", tag, "--thin-for", str(inventory), "-o", str(delta))
    assert out.returncode == 0, out.stderr.decode()
    assert (
        f"{delta}: writing 1 of 2 layers (the rest is left out: the receiver holds it)"
        in out.stderr.decode()
    )
    verified = world.lf("verify", str(delta))
    assert verified.returncode == 0, verified.stderr.decode()
    assert "left out: a delta for a receiver that holds them (1 layer)" in verified.stderr.decode()
    # Loaded with the sender's own cache (which holds the left-out base): b holds the base, so
    # the cache's copy is not sent, and nothing says it is.
    same_cache = world.lf("load", str(delta), "--host", world.target)
    assert same_cache.returncode == 0, same_cache.stderr.decode()
    err = same_cache.stderr.decode()
    assert "using the copy in the local cache" not in err
    assert "sending 1 of 2 layers" in err
    assert world.docker("b", "run", "--rm", tag, "cat", "/two.txt") == "two"
    world.docker("b", "rmi", tag)
    fresh = str(tmp_path / "fresh-cache")  # the receiving site has no layer cache of ours
    out = world.lf("load", str(delta), "--host", world.target, LAYERFERRY_CACHE_DIR=fresh)
    assert out.returncode == 0, out.stderr.decode()
    assert world.docker("b", "run", "--rm", tag, "cat", "/two.txt") == "two"

    # A delta made against a base that b has never seen: refused there, before anything loads.
    base = f"uniq-{secrets.token_hex(3)}:base"
    world.sb.docker("a", "import", "-", base, input=layer_tar({"uniq": secrets.token_bytes(64)}))
    child = f"uniq-{secrets.token_hex(3)}:child"
    name = f"d-{secrets.token_hex(3)}"
    world.docker("a", "create", "--name", name, base, "/x")
    world.docker("a", "commit", name, child)
    local_inventory = tmp_path / "a.json"
    assert world.lf("inventory", "-o", str(local_inventory)).returncode == 0
    orphan = tmp_path / "orphan.tar"
    assert (
        world.lf("save", child, "--thin-for", str(local_inventory), "-o", str(orphan)).returncode
        == 0
    )
    before = world.listing("b", "images", "-q")
    out = world.lf(
        "load", str(orphan), "--host", world.target, LAYERFERRY_CACHE_DIR=str(tmp_path / "fresh2")
    )
    assert out.returncode == 4, out.stderr.decode()
    message = out.stderr.decode()
    assert f"{child}: layer 1 (sha256:" in message
    assert "is not in the archive and ssh://lf-b does not have it" in message
    assert "load the image this delta was made against" in message
    assert world.listing("b", "images", "-q") == before

    # The sender's own cache holds the base b lacks: that copy is sent, and the warning says so.
    out = world.lf("load", str(orphan), "--host", world.target)
    assert out.returncode == 0, out.stderr.decode()
    err = out.stderr.decode()
    assert err.count("using the copy in the local cache") == 1
    assert f"{child}: layer 1 (sha256:" in err
    world.docker("b", "rmi", child)
