"""The main job: a container hot-fixed on host a is migrated to host b and serves the change there."""

from __future__ import annotations

import json
import secrets

import pytest

import layerferry
from layerferry import ConflictError, RecordingReporter

from .conftest import World


def _web(world: World, name: str, port: int, page: str) -> None:
    world.docker(
        "a",
        "run",
        "-d",
        "--name",
        name,
        "-p",
        f"{port}:80",
        "-e",
        "GREETING=hello world",
        "--label",
        "team=ops",
        "--restart",
        "unless-stopped",
        # httpd as PID 1 ignores SIGTERM: a replace stops it within 1 s instead of 10.
        "--stop-timeout",
        "1",
        "-w",
        "/www",
        "bb:local",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    )
    world.docker("a", "exec", name, "sh", "-c", f"echo '{page}' > /www/index.html")


def test_migrate_carries_the_hot_fix_and_run_config(
    world: World, reporter: RecordingReporter
) -> None:
    name = f"web-{secrets.token_hex(3)}"
    _web(world, name, 8081, "hot-fixed on a")
    result = layerferry.migrate(
        name, world.target, start=True, settings=world.settings, reporter=reporter
    )
    assert result.started
    assert world.fetch("b", 8081) == "hot-fixed on a\n"
    target = json.loads(world.docker("b", "inspect", name))[0]
    assert "GREETING=hello world" in target["Config"]["Env"]
    assert target["Config"]["Labels"]["team"] == "ops"
    assert target["Config"]["WorkingDir"] == "/www"
    assert target["Config"]["Cmd"] == ["httpd", "-f", "-p", "80", "-h", "/www"]
    assert target["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert target["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8081"}]}
    assert target["State"]["Running"]
    # The source keeps running, untouched.
    source = json.loads(world.docker("a", "inspect", name))[0]
    assert source["State"]["Running"] and not source["State"]["Paused"]
    assert world.fetch("a", 8081) == "hot-fixed on a\n"


def test_second_migration_sends_only_the_new_layer(
    world: World, reporter: RecordingReporter
) -> None:
    first = f"web-{secrets.token_hex(3)}"
    _web(world, first, 8082, "first")
    layerferry.migrate(first, world.target, start=False, settings=world.settings, reporter=reporter)
    second = f"web-{secrets.token_hex(3)}"
    _web(world, second, 8083, "second")
    result = layerferry.migrate(
        second, world.target, start=True, settings=world.settings, reporter=reporter
    )
    # The busybox base (about 1 MB compressed) is on b already: only the small change layer moves.
    assert result.transfer.layers_sent == 1
    assert result.transfer.bytes_sent < 20_000
    assert world.fetch("b", 8083) == "second\n"


def test_name_clash_is_refused_unless_replace(world: World, reporter: RecordingReporter) -> None:
    name = f"web-{secrets.token_hex(3)}"
    _web(world, name, 8084, "v1")
    layerferry.migrate(name, world.target, start=True, settings=world.settings, reporter=reporter)
    before = world.listing("b", "ps", "-a", "--format", "{{.Names}}")
    world.docker("a", "exec", name, "sh", "-c", "echo v2 > /www/index.html")
    with pytest.raises(ConflictError, match=f"a container named '{name}' already exists"):
        layerferry.migrate(
            name, world.target, start=True, settings=world.settings, reporter=reporter
        )
    assert world.listing("b", "ps", "-a", "--format", "{{.Names}}") == before
    assert world.fetch("b", 8084) == "v1\n"
    out = world.lf("migrate", name, world.target, "--start", "--replace")
    assert out.returncode == 0, out.stderr.decode()
    assert world.fetch("b", 8084) == "v2\n"
    names = world.docker("b", "ps", "-a", "--format", "{{.Names}}").split()
    assert names.count(name) == 1 and not [n for n in names if n.startswith(f"{name}-")]


def test_cli_name_clash_exit_code(world: World) -> None:
    name = f"web-{secrets.token_hex(3)}"
    _web(world, name, 8085, "x")
    assert world.lf("migrate", name, world.target).returncode == 0
    out = world.lf("migrate", name, world.target)
    assert out.returncode == 7
    assert b"already exists" in out.stderr and b"Traceback" not in out.stderr


def test_port_in_use_on_the_target_is_refused_before_anything_changes(world: World) -> None:
    busy = f"web-{secrets.token_hex(3)}"
    _web(world, busy, 8086, "holder")
    layerferry.migrate(busy, world.target, start=True, settings=world.settings)
    other = f"web-{secrets.token_hex(3)}"
    # Created (not started) on a; recreated on b with port 8086, which `busy` already holds there.
    world.docker(
        "a", "create", "--name", other, "-p", "8086:80", "bb:local", "httpd", "-f", "-p", "80"
    )
    before = world.listing("b", "ps", "-a", "--format", "{{.Names}}")
    images_before = world.listing("b", "images", "-q", "--no-trunc")
    out = world.lf("migrate", other, world.target, "--start")
    assert out.returncode == 7, out.stderr.decode()
    assert f"port 8086/tcp is published there by container {busy}".encode() in out.stderr
    assert b"nothing was changed there" in out.stderr and b"Traceback" not in out.stderr
    assert len(out.stderr.decode().strip().splitlines()) <= 3
    assert world.listing("b", "ps", "-a", "--format", "{{.Names}}") == before
    assert world.listing("b", "images", "-q", "--no-trunc") == images_before


def test_failed_start_leaves_nothing_on_the_target(world: World) -> None:
    other = f"web-{secrets.token_hex(3)}"
    # Created (not started) on a with a command the image lacks: only starting it can fail.
    world.docker("a", "create", "--name", other, "bb:local", "/no/such/binary")
    before = world.listing("b", "ps", "-a", "--format", "{{.Names}}")
    out = world.lf("migrate", other, world.target, "--start")
    assert out.returncode == 6, out.stderr.decode()
    assert b"starting container" in out.stderr
    assert world.listing("b", "ps", "-a", "--format", "{{.Names}}") == before


def test_secret_looking_files_are_named_and_a_missing_container_before_any_host(
    world: World,
) -> None:
    name = f"web-{secrets.token_hex(3)}"
    _web(world, name, 8087, "with a key")
    world.docker("a", "exec", name, "sh", "-c", "mkdir -p /root/.ssh && echo k > /root/.ssh/id_rsa")
    out = world.lf("migrate", name, world.target)
    assert out.returncode == 0, out.stderr.decode()
    assert (
        f"/root/.ssh/id_rsa travels with the container: SSH private key (by name); "
        f"`layerferry diff {name}` shows what else its changes hold"
    ).encode() in out.stderr
    missing = world.lf("migrate", "no-such-container", world.target)
    assert missing.returncode == 3
    assert missing.stderr.decode().splitlines()[0] == (
        "layerferry: error: local engine: no container named 'no-such-container'"
    ), missing.stderr.decode()
    assert b"connected to" not in missing.stderr  # refused before any host was reached
