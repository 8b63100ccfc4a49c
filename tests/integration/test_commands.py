"""Each command on its own, against the sandbox's real engines, and the errors users meet."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

import layerferry
from layerferry import RecordingReporter

from .conftest import World


def _image_with_change(world: World, tag: str, content: str) -> None:
    name = f"c-{secrets.token_hex(3)}"
    world.docker(
        "a", "run", "--name", name, "bb:local", "sh", "-c", f"echo '{content}' > /data.txt"
    )
    out = world.lf(
        "commit", name, tag, "-c", "ENV FIXED=1", "-c", 'CMD ["cat", "/data.txt"]', "-m", "test"
    )
    assert out.returncode == 0, out.stderr.decode()
    world.docker("a", "rm", name)


def test_commit_applies_changes(world: World) -> None:
    tag = f"app-{secrets.token_hex(3)}:1"
    _image_with_change(world, tag, "committed")
    config = json.loads(world.docker("a", "image", "inspect", tag))[0]["Config"]
    assert "FIXED=1" in config["Env"]
    assert config["Cmd"] == ["cat", "/data.txt"]
    assert world.docker("a", "run", "--rm", tag) == "committed"


def test_save_and_load_round_trip(world: World, tmp_path: Path) -> None:
    tag = f"app-{secrets.token_hex(3)}:1"
    _image_with_change(world, tag, "round trip")
    image_id = world.docker("a", "image", "inspect", "--format", "{{.Id}}", tag)
    archive = tmp_path / "app.tar.zst"
    out = world.lf("save", tag, "-o", str(archive), "--compress", "zstd")
    assert out.returncode == 0, out.stderr.decode()
    assert archive.stat().st_mode & 0o777 == 0o600
    world.docker("a", "rmi", tag)
    out = world.lf("--json", "load", str(archive))
    assert out.returncode == 0, out.stderr.decode()
    summary = json.loads(out.stdout)
    assert summary["images"][0]["id"] == image_id
    assert world.docker("a", "image", "inspect", "--format", "{{.Id}}", tag) == image_id
    assert world.docker("a", "run", "--rm", tag) == "round trip"


def test_docker_itself_loads_what_save_writes(world: World) -> None:
    """The archive on stdout is what plain `docker load` (here host b's engine) accepts."""
    tag = f"app-{secrets.token_hex(3)}:1"
    _image_with_change(world, tag, "plain docker")
    out = world.lf("save", tag, "-o", "-")
    assert out.returncode == 0, out.stderr.decode()
    loaded = world.sb.docker("b", "load", input=out.stdout)
    assert tag.encode() in loaded.stdout
    assert world.docker("b", "run", "--rm", tag) == "plain docker"


def test_load_onto_a_remote_host(world: World, tmp_path: Path) -> None:
    tag = f"app-{secrets.token_hex(3)}:1"
    _image_with_change(world, tag, "remote load")
    archive = tmp_path / "app.tar.gz"
    assert world.lf("save", tag, "-o", str(archive), "--compress", "gzip").returncode == 0
    out = world.lf("load", str(archive), "--host", world.target)
    assert out.returncode == 0, out.stderr.decode()
    assert world.docker("b", "run", "--rm", tag) == "remote load"


def test_send_moves_only_what_is_missing(world: World, reporter: RecordingReporter) -> None:
    tag = f"app-{secrets.token_hex(3)}:1"
    _image_with_change(world, tag, "sent")
    first = layerferry.send([tag], [world.target], settings=world.settings, reporter=reporter)
    assert world.docker("b", "run", "--rm", tag) == "sent"
    assert first.reports[world.target].layers_sent >= 1
    again = layerferry.send([tag], [world.target], settings=world.settings, reporter=reporter)
    assert again.reports[world.target].layers_sent == 0
    assert again.reports[world.target].bytes_sent == 0
    source_id = world.docker("a", "image", "inspect", "--format", "{{.Id}}", tag)
    assert world.docker("b", "image", "inspect", "--format", "{{.Id}}", tag) == source_id


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["commit", "no-such-container", "x:1"], 3, b"no container named 'no-such-container'"),
        (
            ["migrate", "no-such-container", "ssh://lf-b"],
            3,
            b"no container named 'no-such-container'",
        ),
        (["save", "no-such-image:1", "-o", "/tmp/lf-never.tar"], 3, b"no-such-image:1"),
        (["send", "no-such-image:1", "ssh://lf-b"], 3, b"no-such-image:1"),
    ],
)
def test_unknown_things(world: World, args: list[str], code: int, message: bytes) -> None:
    out = world.lf(*args)
    assert out.returncode == code, out.stderr
    assert message in out.stderr
    assert b"Traceback" not in out.stderr
    assert not Path("/tmp/lf-never.tar").exists()


def test_unreachable_host(world: World) -> None:
    out = world.lf("send", "bb:local", world.sb.closed_port_url)
    assert out.returncode == 5
    assert b"cannot connect" in out.stderr and b"Connection refused" in out.stderr


def test_host_key_mismatch_is_refused(world: World) -> None:
    out = world.lf("send", "bb:local", f"ssh://{world.sb.bad_hostkey_alias}")
    assert out.returncode == 5
    assert b"host key verification failed: refused" in out.stderr
    assert b"Traceback" not in out.stderr


def test_unknown_host_key_is_refused(world: World, tmp_path: Path) -> None:
    """With no known_hosts entry at all, BatchMode ssh refuses; layerferry never adds one."""
    config = tmp_path / "ssh_config"
    b = world.sb.host("b")
    config.write_text(
        f"Host fresh\n  HostName {b.ip}\n  User root\n  IdentityFile {world.sb.identity}\n"
        f"  UserKnownHostsFile {tmp_path}/empty_known_hosts\n  StrictHostKeyChecking yes\n"
    )
    out = world.lf("send", "bb:local", "ssh://fresh", LAYERFERRY_SSH_CONFIG=str(config))
    assert out.returncode == 5
    assert b"host key verification failed" in out.stderr
    assert (
        not (tmp_path / "empty_known_hosts").exists()
        or (tmp_path / "empty_known_hosts").read_text() == ""
    )
