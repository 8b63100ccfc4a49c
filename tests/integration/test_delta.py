"""Air-gapped deltas: record what a target holds, write only what it lacks, load it there."""

from __future__ import annotations

import json
import secrets
import tarfile
from pathlib import Path

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
