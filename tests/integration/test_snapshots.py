"""Rollback keeps every byte it replaces: named volumes of a removed container, anonymous volumes
a snapshot holds no data for, a failed rollback's volumes; its helpers leave no volumes behind;
what it prints is whole and true."""

from __future__ import annotations

import json
import secrets

from .conftest import World


def _token() -> str:
    return secrets.token_hex(3)


def _dangling(world: World) -> set[str]:
    return set(world.docker("a", "volume", "ls", "-qf", "dangling=true").split())


def _snapshots(world: World, name: str) -> list[dict[str, object]]:
    out = world.lf("--json", "snapshots", name)
    assert out.returncode == 0, out.stderr.decode()
    return list(json.loads(out.stdout)["snapshots"])


def _remove(world: World, name: str, *volumes: str) -> None:
    world.docker("a", "rm", "-f", "-v", name, check=False)
    for volume in volumes:
        world.docker("a", "volume", "rm", volume, check=False)


def test_rollback_of_a_removed_container_saves_its_volume_first(world: World) -> None:
    name, vol = f"gone-{_token()}", f"gonevol-{_token()}"
    world.docker("a", "run", "-d", "--name", name, "-v", f"{vol}:/v", "bb:local", "sleep", "1d")
    world.docker("a", "exec", name, "sh", "-c", "echo OLD > /v/data")
    assert world.lf("snapshot", name, "--volumes", "-l", "s1").returncode == 0
    world.docker("a", "exec", name, "sh", "-c", "echo NEWER-IMPORTANT > /v/data")
    world.docker("a", "rm", "-f", name)  # the container goes, its volume stays

    out = world.lf("--json", "rollback", name, "s1")
    assert out.returncode == 0, out.stderr.decode()
    result = json.loads(out.stdout)
    assert result["backup"], out.stderr.decode()
    assert f"as snapshot {result['backup']} (pre-rollback)" in out.stderr.decode()
    assert world.docker("a", "exec", name, "cat", "/v/data") == "OLD"
    listed = _snapshots(world, name)
    assert [s["label"] for s in listed] == ["s1", "pre-rollback"]
    assert listed[1]["snapshot"] == result["backup"]
    assert [(v["name"], v["kind"], v["anonymous"]) for v in listed[1]["volumes"]] == [
        (vol, "volume", False)
    ]

    # The data from before is one rollback away.
    out = world.lf("--json", "rollback", name, result["backup"], "--prune")
    assert out.returncode == 0, out.stderr.decode()
    assert world.docker("a", "exec", name, "cat", "/v/data") == "NEWER-IMPORTANT"
    _remove(world, name, vol)


def test_rollback_keeps_anonymous_volume_data_the_snapshot_lacks(world: World) -> None:
    name, vol = f"anon-{_token()}", f"anonvol-{_token()}"
    world.docker(
        "a", "run", "-d", "--name", name, "-v", f"{vol}:/n", "-v", "/anon", "bb:local",
        "sleep", "1d",
    )  # fmt: skip
    world.docker("a", "exec", name, "sh", "-c", "echo NAMED > /n/f; echo ANON > /anon/f")
    assert world.lf("snapshot", name, "-l", "s1").returncode == 0  # no --volumes
    world.docker("a", "exec", name, "sh", "-c", "echo ANON2 > /anon/f")
    before = _dangling(world)

    out = world.lf("--json", "rollback", name, "s1", "--prune")
    assert out.returncode == 0, out.stderr.decode()
    err = out.stderr.decode()
    assert "anonymous volume at /anon: the snapshot holds no data for it; its current data" in err
    assert world.docker("a", "exec", name, "sh", "-c", "cat /n/f /anon/f") == "NAMED\nANON2"
    # The data is also kept: the pre-rollback snapshot holds the anonymous volume.
    listed = _snapshots(world, name)
    assert [s["label"] for s in listed] == ["s1", "pre-rollback"]
    assert [(v["kind"], v["anonymous"], v["destination"]) for v in listed[1]["volumes"]] == [
        ("volume", True, "/anon")
    ]
    assert json.loads(out.stdout)["backup"] == listed[1]["snapshot"]
    # The pruned container's anonymous volume went with it; no helper left one behind.
    assert _dangling(world) == before
    _remove(world, name, vol)


def test_failed_rollback_puts_the_volume_data_back(world: World) -> None:
    name, vol = f"fail-{_token()}", f"failvol-{_token()}"
    world.docker(
        "a", "run", "-d", "--name", name, "-v", f"{vol}:/v", "--health-cmd", "test -f /v/ok",
        "--health-interval", "1s", "--health-retries", "1", "--stop-timeout", "1",
        "bb:local", "sleep", "1d",
    )  # fmt: skip
    world.docker("a", "exec", name, "sh", "-c", "echo OLD > /v/data")
    assert world.lf("snapshot", name, "--volumes", "-l", "s1").returncode == 0
    world.docker("a", "exec", name, "sh", "-c", "echo NEW > /v/data; touch /v/ok")

    out = world.lf("rollback", name, "s1", "--health-timeout", "5")
    assert out.returncode == 6, out.stderr.decode()  # an engine error: unhealthy
    err = out.stderr.decode()
    assert "the volumes' data from before the rollback was put back" in err, err
    assert world.docker("a", "inspect", "-f", "{{.State.Running}}", name) == "true"
    assert world.docker("a", "exec", name, "sh", "-c", "cat /v/data; ls /v") == "NEW\ndata\nok"
    _remove(world, name, vol)


def test_rollback_to_an_empty_snapshot_name_is_a_usage_error(world: World) -> None:
    name = f"empty-{_token()}"
    world.docker("a", "run", "-d", "--name", name, "bb:local", "sleep", "1d")
    assert world.lf("snapshot", name).returncode == 0
    cid = world.docker("a", "inspect", "-f", "{{.Id}}", name)
    out = world.lf("rollback", name, "")
    assert out.returncode == 2, out.stderr.decode()
    assert "empty snapshot name" in out.stderr.decode()
    assert world.docker("a", "inspect", "-f", "{{.Id}}", name) == cid
    assert len(_snapshots(world, name)) == 1
    _remove(world, name)


def test_helpers_leave_no_dangling_volumes(world: World) -> None:
    name, vol = f"leak-{_token()}", f"leakvol-{_token()}"
    world.docker(
        "a", "run", "-d", "--name", name, "-v", f"{vol}:/n", "-v", "/anon", "bb:local",
        "sleep", "1d",
    )  # fmt: skip
    world.docker("a", "exec", name, "sh", "-c", "echo A > /anon/f; echo N > /n/f")
    before = _dangling(world)
    assert world.lf("snapshot", name, "--volumes", "-l", "s1").returncode == 0
    assert _dangling(world) == before
    out = world.lf("rollback", name, "s1", "--prune")
    assert out.returncode == 0, out.stderr.decode()
    assert _dangling(world) == before
    # Only the helpers' own volumes went: the data of both volumes is there.
    assert world.docker("a", "exec", name, "sh", "-c", "cat /n/f /anon/f") == "N\nA"
    _remove(world, name, vol)


def test_snapshot_ids_whole_on_80_columns_and_paused_said(world: World) -> None:
    name = f"a-rather-long-container-name-{_token()}"
    world.docker("a", "run", "-d", "--name", name, "--stop-timeout", "1", "bb:local", "sleep", "1d")
    assert world.lf("snapshot", name, "-l", "a-long-label-for-it").returncode == 0
    [snap] = _snapshots(world, name)
    out = world.lf("snapshots", name, COLUMNS="80")
    assert out.returncode == 0, out.stderr.decode()
    assert str(snap["snapshot"]) in out.stdout.decode() + out.stderr.decode()

    world.docker("a", "pause", name)
    out = world.lf("rollback", name, "--prune")
    assert out.returncode == 0, out.stderr.decode()
    lines = [line for line in out.stderr.decode().splitlines() if line.strip()]
    assert f"back at snapshot {snap['snapshot']} and paused" in lines[-1], lines
    assert "and running" not in out.stderr.decode()
    assert world.docker("a", "inspect", "-f", "{{.State.Status}}", name) == "paused"
    world.docker("a", "unpause", name)
    _remove(world, name)


def test_migrate_helpers_leave_no_dangling_volumes_on_either_host(world: World) -> None:
    name, vol = f"mleak-{_token()}", f"mleakvol-{_token()}"
    world.docker(
        "a", "run", "-d", "--name", name, "-v", f"{vol}:/n", "-v", "/anon", "bb:local",
        "sleep", "1d",
    )  # fmt: skip
    world.docker("a", "exec", name, "sh", "-c", "echo A > /anon/f; echo N > /n/f")
    before = {h: set(world.docker(h, "volume", "ls", "-qf", "dangling=true").split()) for h in "ab"}
    out = world.lf("migrate", name, world.target, "--volumes", "--start")
    assert out.returncode == 0, out.stderr.decode()
    after = {h: set(world.docker(h, "volume", "ls", "-qf", "dangling=true").split()) for h in "ab"}
    assert after == before
    assert world.docker("b", "exec", name, "sh", "-c", "cat /n/f /anon/f") == "N\nA"
    _remove(world, name, vol)
    world.docker("b", "rm", "-f", "-v", name, check=False)
    world.docker("b", "volume", "rm", vol, check=False)
