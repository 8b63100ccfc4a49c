"""The README's tutorial block runs as written (against the session's sandbox, as host a)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .conftest import World
from .regsupport import Registry

README = Path(__file__).resolve().parents[2] / "README.md"


def _tested_block(marker: str = "readme-test") -> str:
    text = README.read_text()
    match = re.search(rf"<!-- {marker} -->\n```sh\n(.*?)```", text, re.S)
    assert match, f"README.md lost its tested block {marker}"
    return match.group(1)


def _run_block(world: World, marker: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The README block *marker* run by bash (strict mode) as host a, layerferry on PATH."""
    environ = world.env(**env)
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _tested_block(marker)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_readme_tutorial_runs(world: World) -> None:
    out = _run_block(world, "readme-test")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "price fixed by hand"
    # The second send finds the image on b and moves nothing.
    assert re.search(r"ssh://lf-b: image [0-9a-f]{12} is already there", out.stderr), out.stderr
    assert re.search(r"ssh://lf-b\s+ok\s+0\s+0 B", out.stderr), out.stderr


def test_readme_registry_block_runs(world: World, registry: Registry) -> None:
    out = _run_block(
        world,
        "readme-test-registry",
        REGISTRY=registry.host,
        LAYERFERRY_INSECURE_REGISTRIES=registry.host,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "shipped through a registry"
    assert re.search(r"team/note:1: image [0-9a-f]{12} is already there", out.stderr), out.stderr
    assert re.search(r"other/note:1: layer [0-9a-f]{12} mounted from team/note", out.stderr)
    pushes = [u for _, u, _ in registry.requests("POST", "/v2/team/note/blobs/uploads/")]
    assert len(pushes) == 3  # config and two layers, once: the second push started no upload


def test_readme_migrate_block_runs(world: World) -> None:
    """The block in "What `migrate` does": bundle and restore, snapshot and rollback, dry run and
    migrate with volumes; each page read back is the one written on a."""
    out = _run_block(world, "readme-test-migrate")
    assert out.returncode == 0, out.stderr
    pages = [line for line in out.stdout.splitlines() if not re.fullmatch(r"[0-9a-f]{64}", line)]
    assert pages == ["note 1", "note 1", "todo 1", "todo 2"], out.stdout
    assert "volume todo-data: its previous data is kept in volume todo-data-replaced-" in out.stderr
    assert "plan: todo -> ssh://lf-b (nothing was changed)" in out.stderr
    assert "stopped the source container todo (--stop-source)" in out.stderr
