"""The second migration of a container with data: ``--replace --volumes`` refills the volume the
replaced container used, keeping its previous data in ``VOLUME-replaced-TIMESTAMP`` first."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from .conftest import World


def _todo(world: World, name: str, volume: str, command: str = "exec sleep 3600") -> None:
    world.docker(
        "a", "run", "-d", "--name", name, "--stop-timeout", "1",
        "-v", f"{volume}:/data", "bb:local", "sh", "-c", command,
    )  # fmt: skip
    world.docker("a", "exec", name, "sh", "-c", "echo v1 > /data/todo && touch /data/ok")


def _read(world: World, container: str, volume: str, script: str) -> str:
    """*script* run on b with *volume* at /k, in the image *container* runs there (b has no
    bb:local: only the images migrated to it)."""
    image = world.docker("b", "inspect", "-f", "{{.Config.Image}}", container)
    return world.docker("b", "run", "--rm", "-v", f"{volume}:/k", image, "sh", "-c", script)


def _kept(world: World, volume: str) -> list[str]:
    return [
        v for v in world.listing("b", "volume", "ls", "-q") if v.startswith(f"{volume}-replaced-")
    ]


def test_second_migration_refills_the_volume_and_keeps_its_old_data(world: World) -> None:
    name, volume = f"todo-{secrets.token_hex(3)}", f"todo-data-{secrets.token_hex(3)}"
    _todo(world, name, volume)
    first = world.lf("migrate", name, world.target, "--volumes", "--start")
    assert first.returncode == 0, first.stderr.decode()
    assert world.docker("b", "exec", name, "cat", "/data/todo") == "v1"
    world.docker("b", "exec", name, "sh", "-c", "echo only-on-b > /data/b-only")
    old_id = world.docker("b", "inspect", "-f", "{{.Id}}", name)
    world.docker("a", "exec", name, "sh", "-c", "echo v2 > /data/todo && echo new > /data/added")

    plan = world.lf("migrate", name, world.target, "--replace", "--volumes", "--dry-run")
    assert plan.returncode == 0, plan.stderr.decode()
    assert f"refill   volume {volume} (its current data kept in" in plan.stderr.decode()
    out = world.lf("--json", "migrate", name, world.target, "--replace", "--volumes", "--start")
    assert out.returncode == 0, out.stderr.decode()
    kept = json.loads(out.stdout)["kept_volumes"][volume]
    assert kept.startswith(f"{volume}-replaced-") and _kept(world, volume) == [kept]
    assert f"kept in volume {kept}" in out.stderr.decode()
    # b's volume holds exactly the source's new data; the old data (b's own file too) is kept.
    files = world.docker("b", "exec", name, "sh", "-c", "cd /data && ls -A && cat todo")
    assert files.split() == ["added", "ok", "todo", "v2"]
    assert _read(world, name, kept, "cd /k && ls -A && cat todo b-only").split() == [
        "b-only", "ok", "todo", "v1", "only-on-b",
    ]  # fmt: skip
    # The replaced container is handled as before: set aside, removed once the new one runs.
    assert world.docker("b", "inspect", "-f", "{{.Id}}", name) != old_id
    names = world.docker("b", "ps", "-a", "--format", "{{.Names}}").split()
    assert names.count(name) == 1 and not [n for n in names if n.startswith(f"{name}-")]


def test_a_failed_replace_puts_the_old_data_back(world: World) -> None:
    name, volume = f"todo-{secrets.token_hex(3)}", f"todo-data-{secrets.token_hex(3)}"
    # It runs only while /data/ok exists: without it the new container dies on start.
    _todo(world, name, volume, "sleep 1; test -f /data/ok && exec sleep 3600")
    first = world.lf("migrate", name, world.target, "--volumes", "--start")
    assert first.returncode == 0, first.stderr.decode()
    old_id = world.docker("b", "inspect", "-f", "{{.Id}}", name)
    world.docker("a", "exec", name, "sh", "-c", "rm /data/ok && echo v2 > /data/todo")

    out = world.lf("migrate", name, world.target, "--replace", "--volumes", "--start")
    assert out.returncode != 0 and b"exited right after start" in out.stderr, out.stderr
    assert b"has its previous data back" in out.stderr
    assert world.docker("b", "inspect", "-f", "{{.Id}}", name) == old_id
    assert world.docker("b", "inspect", "-f", "{{.State.Running}}", name) == "true"
    assert world.docker("b", "exec", name, "sh", "-c", "cd /data && ls -A && cat todo").split() == [
        "ok", "todo", "v1",
    ]  # fmt: skip
    assert _kept(world, volume) == []


def test_a_volume_another_container_uses_is_still_refused(world: World) -> None:
    name, volume = f"todo-{secrets.token_hex(3)}", f"todo-data-{secrets.token_hex(3)}"
    _todo(world, name, volume)
    first = world.lf("migrate", name, world.target, "--volumes", "--start")
    assert first.returncode == 0, first.stderr.decode()
    other = f"other-{secrets.token_hex(3)}"
    image = world.docker("b", "inspect", "-f", "{{.Config.Image}}", name)
    world.docker("b", "create", "--name", other, "-v", f"{volume}:/x", image, "true")
    world.docker("a", "exec", name, "sh", "-c", "echo v2 > /data/todo")
    before = world.listing("b", "ps", "-a", "--format", "{{.Names}}")

    out = world.lf("migrate", name, world.target, "--replace", "--volumes", "--start")
    assert out.returncode == 7, out.stderr.decode()
    err = out.stderr.decode()
    assert f"volume {volume} already exists there and container {other} uses it" in err
    assert "Traceback" not in err
    assert world.listing("b", "ps", "-a", "--format", "{{.Names}}") == before
    assert world.docker("b", "exec", name, "cat", "/data/todo") == "v1"
    assert _kept(world, volume) == []
    # Without --replace the refusal is the name clash, as before.
    assert world.lf("migrate", name, world.target, "--volumes").returncode == 7
    world.docker("b", "rm", "-f", other)


def test_restore_replace_refills_the_volume_and_keeps_its_old_data(
    world: World, tmp_path: Path
) -> None:
    name, volume = f"notes-{secrets.token_hex(3)}", f"notes-data-{secrets.token_hex(3)}"
    _todo(world, name, volume)
    bundle = tmp_path / "notes.bundle"
    assert world.lf("migrate", name, "-o", str(bundle), "--volumes").returncode == 0
    first = world.lf("restore", str(bundle), "--host", world.target, "--start")
    assert first.returncode == 0, first.stderr.decode()
    world.docker("a", "exec", name, "sh", "-c", "echo v2 > /data/todo")
    again = tmp_path / "notes2.bundle"
    assert world.lf("migrate", name, "-o", str(again), "--volumes").returncode == 0

    refused = world.lf("restore", str(again), "--host", world.target, "--start")
    assert refused.returncode == 7, refused.stderr.decode()
    out = world.lf("--json", "restore", str(again), "--host", world.target, "--replace", "--start")
    assert out.returncode == 0, out.stderr.decode()
    kept = json.loads(out.stdout)["kept_volumes"][volume]
    assert _kept(world, volume) == [kept]
    assert world.docker("b", "exec", name, "cat", "/data/todo") == "v2"
    assert _read(world, name, kept, "cat /k/todo") == "v1"
