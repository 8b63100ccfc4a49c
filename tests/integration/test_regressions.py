"""Faults a hostile review found, each kept as a test."""

from __future__ import annotations

import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from .conftest import World


def test_target_name_is_matched_exactly_never_as_an_id_prefix(world: World) -> None:
    assert world.lf("send", "bb:local", world.target).returncode == 0  # never let b try to pull
    victim = f"victim-{secrets.token_hex(3)}"
    world.docker("b", "run", "-d", "--name", victim, "bb:local", "sleep", "100000")
    prefix = world.docker("b", "inspect", "--format", "{{.Id}}", victim)[:4]
    world.docker("a", "rm", "-f", prefix, check=False)
    world.docker("a", "run", "-d", "--name", prefix, "bb:local", "sleep", "100000")
    out = world.lf("migrate", prefix, world.target, "--replace")
    assert out.returncode == 0, out.stderr.decode()
    assert world.docker("b", "inspect", "--format", "{{.State.Running}}", victim) == "true"
    world.docker("b", "rm", "-f", prefix, victim)
    world.docker("a", "rm", "-f", prefix)


def test_migrating_onto_the_source_engine_is_refused(world: World) -> None:
    name = f"self-{secrets.token_hex(3)}"
    world.docker("a", "run", "-d", "--name", name, "bb:local", "sleep", "100000")
    out = world.lf("migrate", name, "ssh://lf-a", "--replace")
    assert out.returncode == 2
    assert b"is the source's own engine" in out.stderr
    assert world.docker("a", "inspect", "--format", "{{.State.Running}}", name) == "true"


def test_every_mount_left_behind_is_named(world: World) -> None:
    name = f"anon-{secrets.token_hex(3)}"
    world.docker(
        "a", "run", "-d", "--name", name, "-v", "/var/lib/db", "bb:local", "sleep", "100000"
    )
    out = world.lf("migrate", name, world.target)
    assert out.returncode == 0, out.stderr.decode()
    assert (
        b"anonymous volume at /var/lib/db: its data is not part of a commit and stays behind"
        in out.stderr
    )


def test_save_follows_symlinks_and_writes_pipes_in_place(world: World, tmp_path: Path) -> None:
    real = tmp_path / "real.tar"
    real.write_bytes(b"old")
    link = tmp_path / "link.tar"
    link.symlink_to(real)
    assert world.lf("save", "bb:local", "-o", str(link)).returncode == 0
    assert link.is_symlink() and real.stat().st_size > 1_000_000
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    drain = subprocess.Popen(["sh", "-c", f"wc -c < {fifo}"], stdout=subprocess.PIPE)
    assert world.lf("save", "bb:local", "-o", str(fifo)).returncode == 0
    count = int(drain.communicate(timeout=60)[0])
    assert count == real.stat().st_size
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_damaged_cache_entry_is_removed_and_the_next_run_recovers(
    world: World, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    assert (
        world.lf(
            "save", "bb:local", "-o", str(tmp_path / "one.tar"), LAYERFERRY_CACHE_DIR=str(cache)
        ).returncode
        == 0
    )
    blobs = list((cache / "blobs" / "layers").glob("*.tar.zst"))
    assert blobs
    data = bytearray(blobs[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    blobs[0].write_bytes(bytes(data))
    out = world.lf(
        "save", "bb:local", "-o", str(tmp_path / "two.tar"), LAYERFERRY_CACHE_DIR=str(cache)
    )
    assert out.returncode == 4
    assert b"was damaged" in out.stderr and b"it has been removed" in out.stderr
    assert not (tmp_path / "two.tar").exists()
    again = world.lf(
        "save", "bb:local", "-o", str(tmp_path / "two.tar"), LAYERFERRY_CACHE_DIR=str(cache)
    )
    assert again.returncode == 0, again.stderr.decode()


def test_ctrl_c_during_save_is_exit_130_and_leaves_no_file(world: World, tmp_path: Path) -> None:
    tag = f"bigsave-{secrets.token_hex(3)}:1"
    name = f"s-{secrets.token_hex(3)}"
    world.docker(
        "a", "run", "--name", name, "bb:local", "sh", "-c", "head -c 60000000 /dev/urandom > /big"
    )
    world.docker("a", "commit", name, tag)
    target = tmp_path / "x.tar.gz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "layerferry", "save", tag, "-o", str(target), "--compress", "gzip"],
        env=world.env(LAYERFERRY_CACHE_DIR=str(tmp_path / "c")),
        stderr=subprocess.PIPE,
    )
    # Interrupt while the archive itself is being written (its temp file beside the target exists):
    # a fixed sleep raced a fast machine, where the whole save was done before the signal.
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".x.tar.gz.*")):
        assert proc.poll() is None, "save ended before its archive was being written"
        assert time.monotonic() < deadline, "save never started writing its archive"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert b"interrupted" in err
    assert not target.exists()
    assert not list(tmp_path.glob(".x.tar.gz.*"))
