"""Faults survived: Ctrl-C, concurrent sends, a full disk on the target, hostile names."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sandbox.sandbox import Sandbox

from .conftest import World, _world
from .test_transfer import _parts, _random_image, _staging, _tagged_on, _unit_sizes

MB = 1_000_000


def _named_by(name: str) -> str:
    """The digest or diff ID a staged file (a unit or a part of one) is named by."""
    return name.split(".")[0]


def _lf_background(world: World, *args: str) -> subprocess.Popen[bytes]:
    """layerferry running in the background, its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "layerferry", *args],
        env=world.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], what: str, poll: float = 0.05
) -> None:
    """Wait until *ready*; fail with the process's stderr if it ends first, or after 60 s."""
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < deadline, what
        time.sleep(poll)


def _staged_over(world: World, size: int) -> Callable[[], bool]:
    return lambda: any(s > size for s in _parts(world, "b").values())


def test_ctrl_c_during_send_stops_cleanly_and_resumes(world: World) -> None:
    tag = f"intr-{secrets.token_hex(3)}:1"
    _random_image(world, tag, [10])
    assert world.lf("send", "bb:local", world.target).returncode == 0
    world.sb.shape("b", 24)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "layerferry", "send", tag, world.target],
            env=world.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            s > 2 * MB for s in _parts(world, "b").values()
        ):
            time.sleep(0.05)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        stopped_in = time.monotonic() - started
    finally:
        world.sb.shape("b", None)
    assert proc.returncode == 130, err.decode()
    assert b"interrupted" in err and b"Traceback" not in err
    assert stopped_in < 10, "Ctrl-C must stop the transfer, not wait for it"
    assert not _tagged_on(world, "b", tag)
    staging = _staging(world, "b")
    assert not list(staging.glob("job-*")), "no half-made load job is left on the host"
    # What arrived stays staged: a part, or the whole unit when the bytes still in flight at
    # Ctrl-C (ssh's and the kernel's buffers hold megabytes) completed it.
    staged = _parts(world, "b")
    assert len(staged) == 1, staged
    out = world.lf("--json", "send", tag, world.target)
    assert out.returncode == 0, out.stderr.decode()
    if any(".part." in name for name in staged):
        assert b"resuming layer" in out.stderr
    sent = json.loads(out.stdout)["hosts"][world.target]["bytes_sent"]
    remainder = _unit_sizes(world)[_named_by(next(iter(staged)))] - sum(staged.values())
    assert remainder <= sent <= remainder * 1.05 + 64_000, (sent, remainder, staged)
    assert world.docker("b", "run", "--rm", tag, "sh", "-c", "wc -c < /big0") == str(10 * MB)
    assert _parts(world, "b") == {}


def test_two_sends_of_the_same_image_at_once(world: World) -> None:
    tag = f"twice-{secrets.token_hex(3)}:1"
    _random_image(world, tag, [6, 6])
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "layerferry", "--json", "send", tag, world.target],
            env=world.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=180) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
        assert json.loads(out)["hosts"][world.target]["ok"]
    assert world.docker(
        "b", "run", "--rm", tag, "sh", "-c", "wc -c < /big0; wc -c < /big1"
    ).split() == [
        str(6 * MB),
        str(6 * MB),
    ]
    assert _parts(world, "b") == {}


def test_a_second_send_started_mid_transfer_leaves_the_first_ones_part_alone(
    world: World,
) -> None:
    """The second run's probe sees the first run's part while it grows; claiming it would
    pull it from under its writer (the first run then saw its own unit as damaged)."""
    tag = f"later-{secrets.token_hex(3)}:1"
    _random_image(world, tag, [8, 8])
    assert world.lf("send", "bb:local", world.target).returncode == 0
    argv = [sys.executable, "-m", "layerferry", "--json", "send", tag, world.target]
    world.sb.shape("b", 40)
    try:
        first = subprocess.Popen(
            argv, env=world.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        _wait_for(first, _staged_over(world, 2 * MB), "the first run's part to grow")
        second = subprocess.Popen(
            argv, env=world.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        results = [p.communicate(timeout=180) for p in (first, second)]
    finally:
        world.sb.shape("b", None)
    for proc, (out, err) in zip((first, second), results, strict=True):
        assert proc.returncode == 0, err.decode()
        assert b"damaged" not in err, err.decode()
        assert json.loads(out)["hosts"][world.target]["ok"]
    assert (
        world.docker("b", "run", "--rm", tag, "sh", "-c", "wc -c < /big0; wc -c < /big1").split()
        == [str(8 * MB)] * 2
    )
    assert _parts(world, "b") == {}


@contextlib.contextmanager
def _small_staging_disk(world: World, size: str) -> Iterator[None]:
    """Host b's cache directory (its staging) on a tmpfs of *size*, for the block's length."""
    cache = Path(world.sb.host("b").dir) / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "lfsb-test-full", str(cache)], check=True
    )
    try:
        yield
    finally:
        subprocess.run(["umount", str(cache)], check=True)


def test_full_staging_disk_is_refused_before_sending(world: World) -> None:
    tag = f"full-{secrets.token_hex(3)}:1"
    _random_image(world, tag, [6])
    with _small_staging_disk(world, "2m"):
        out = world.lf("send", tag, world.target)
    assert out.returncode == 5, out.stderr.decode()
    line = out.stderr.decode().splitlines()[-2]
    assert line.startswith("layerferry: error: ssh://lf-b: not enough disk space for staging"), line
    assert "needs about 6." in line and "MB" in line
    assert not _tagged_on(world, "b", tag)


def test_a_cold_send_whose_rest_does_not_fit_is_refused_before_the_rest_goes(
    world: World,
) -> None:
    """A cold send streams the layers that fit in the host's staging while it reads; the ones
    left for after the read are checked against the room the streamed ones left, and refused
    before a byte of them goes (the host's disk is not filled up)."""
    tag = f"fullcold-{secrets.token_hex(3)}:1"
    _random_image(world, tag, [8, 2])  # 8 MB does not fit in 6 MB; 2 MB is streamed
    assert world.lf("send", "bb:local", world.target).returncode == 0
    with _small_staging_disk(world, "6m"):
        out = world.lf("send", tag, world.target)
        staged = _parts(world, "b")
    assert out.returncode == 5, out.stderr.decode()
    line = out.stderr.decode().splitlines()[-2]
    assert line.startswith("layerferry: error: ssh://lf-b: not enough disk space for staging"), line
    assert "needs about 8." in line and "more" in line, line
    assert "the layers sent so far stay staged" in out.stderr.decode()
    assert len(staged) == 1 and max(staged.values()) < 3 * MB, staged  # the 2 MB unit only
    assert not _tagged_on(world, "b", tag)


HOSTILE = [
    "a b",
    "x'y",
    'q"q',
    "$(touch /tmp/lf-pwned)",
    "`touch /tmp/lf-pwned`",
    "new\nline",
    "-rf",
    "--help-me",
]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_names_are_refused_and_nothing_runs(world: World, bad: str) -> None:
    cases = [
        ["commit", "bb-none", f"app:{bad}"],
        ["commit", bad],
        ["save", f"app{bad}", "-o", "/tmp/lf-hostile.tar"],
        ["send", f"app{bad}", world.target],
        ["migrate", bad, world.target],
        ["migrate", "web", world.target, "--name", bad],
        ["send", "bb:local", f"ssh://{bad}"],
    ]
    for args in cases:
        out = world.lf(*args)
        assert out.returncode in (2, 3), (args, out.stderr)
        assert b"Traceback" not in out.stderr
        assert out.stderr.startswith(b"layerferry: error: ") or b"Usage:" in out.stderr, (
            args,
            out.stderr,
        )
    assert not Path("/tmp/lf-pwned").exists()
    assert not Path("/tmp/lf-hostile.tar").exists()


def test_ctrl_c_during_migrate_leaves_source_and_target_as_they_were(world: World) -> None:
    name = f"intr-{secrets.token_hex(3)}"
    world.docker("a", "run", "-d", "--name", name, "bb:local", "httpd", "-f", "-p", "80")
    world.docker("a", "exec", name, "sh", "-c", f"head -c {10 * MB} /dev/urandom > /big")
    assert world.lf("send", "bb:local", world.target).returncode == 0
    containers_before = world.listing("b", "ps", "-a", "--format", "{{.Names}}")
    world.sb.shape("b", 24)
    try:
        proc = _lf_background(world, "migrate", name, world.target, "--start")
        _wait_for(proc, _staged_over(world, 2 * MB), "the migration never started staging")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        world.sb.shape("b", None)
    assert proc.returncode == 130, err.decode()
    assert b"interrupted" in err and b"Traceback" not in err
    # The source runs on, unpaused, with its change; the target got no container and no load job.
    state = json.loads(world.docker("a", "inspect", name))[0]["State"]
    assert state["Running"] and not state["Paused"]
    assert world.docker("a", "exec", name, "sh", "-c", "wc -c < /big") == str(10 * MB)
    assert world.listing("b", "ps", "-a", "--format", "{{.Names}}") == containers_before
    assert not list(_staging(world, "b").glob("job-*"))
    # Run again: the layer resumes from what arrived, and the container comes up on b.
    out = world.lf("migrate", name, world.target, "--start")
    assert out.returncode == 0, out.stderr.decode()
    assert b"resuming layer" in out.stderr
    assert world.docker("b", "exec", name, "sh", "-c", "wc -c < /big") == str(10 * MB)


@pytest.fixture
def lone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A sandbox of its own, for a test that stops an engine (the shared one stays untouched)."""
    sb = Sandbox.up()
    try:
        yield _world(sb, tmp_path_factory)
    finally:
        sb.down()


def test_target_engine_dies_in_the_middle_of_a_load(lone: World) -> None:
    tag = f"dies-{secrets.token_hex(3)}:1"
    _random_image(lone, tag, [40])
    assert lone.lf("send", "bb:local", lone.target).returncode == 0
    # With the layer in the cache already, the load starts only once the image is read (a cold
    # send would start it with the first layer it streams, while the image is still read).
    assert lone.lf("save", tag, "-o", str(lone.state_dir / "warm.tar")).returncode == 0
    proc = _lf_background(lone, "send", tag, lone.target)
    # The load job's directory appears as the host's load command starts: the engine is killed
    # then, while the layer streams into its `docker load`, with no time to finish.
    job_ready = lambda: bool(list(_staging(lone, "b").glob("job-*")))  # noqa: E731
    _wait_for(proc, job_ready, "the send never started its load", poll=0.002)
    lone.sb.stop_engine("b", kill=True)
    _, err = proc.communicate(timeout=120)
    lone.sb.start_engine("b")
    text = err.decode()
    assert proc.returncode == 6, text
    assert "Traceback" not in text
    error = [line for line in text.splitlines() if line.startswith("layerferry: error: ")]
    assert len(error) == 1, text
    assert error[0].startswith(
        "layerferry: error: ssh://lf-b: the engine stopped answering during the load"
    ), text
    # Nothing tagged, no load job left behind; the layer stays staged, so a re-run sends nothing.
    assert not _tagged_on(lone, "b", tag)
    assert not list(_staging(lone, "b").glob("job-*"))
    out = lone.lf("--json", "send", tag, lone.target)
    assert out.returncode == 0, out.stderr.decode()
    assert json.loads(out.stdout)["hosts"][lone.target]["bytes_sent"] < MB
    assert lone.docker("b", "run", "--rm", tag, "sh", "-c", "wc -c < /big0") == str(40 * MB)


def test_target_engine_disk_fills_during_the_load(lone: World) -> None:
    tag = f"fills-{secrets.token_hex(3)}:1"
    _random_image(lone, tag, [30])
    # Host b's engine on a 100 MB filesystem of its own (a fresh, empty data root).
    data_root = Path(lone.sb.host("b").data_root)
    lone.sb.stop_engine("b")
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=100m", "lfsb-test-data", str(data_root)], check=True
    )
    lone.sb.start_engine("b")
    assert lone.lf("send", "bb:local", lone.target).returncode == 0
    # A warm cache: the load starts once the image is read, its room checked then (a cold
    # send's load starts earlier and checks the room again before the rest of the image).
    assert lone.lf("save", tag, "-o", str(lone.state_dir / "warm.tar")).returncode == 0
    proc = _lf_background(lone, "send", tag, lone.target)
    # The space check before sending passes (about 60 MB needed, 95 MB free); then something
    # else on the host takes the space while the layer is on its way.
    _wait_for(proc, _staged_over(lone, 2 * MB), "the send never started staging", poll=0.01)
    filler = data_root / "filler"
    subprocess.run(["fallocate", "-l", str(shutil.disk_usage(data_root).free - 4 * MB), filler])
    _, err = proc.communicate(timeout=120)
    text = err.decode()
    assert proc.returncode == 6, text
    error = [line for line in text.splitlines() if line.startswith("layerferry: error: ")]
    assert len(error) == 1 and "Traceback" not in text, text
    assert error[0].startswith(
        "layerferry: error: ssh://lf-b: the engine ran out of disk space during the load ("
    ), text
    assert "it needs about 6" in error[0] and "no space left on device" in error[0], text
    assert not _tagged_on(lone, "b", tag)
    assert not list(_staging(lone, "b").glob("job-*"))
    # Space freed: the same command completes from the staged layer, sending nothing again.
    filler.unlink()
    out = lone.lf("--json", "send", tag, lone.target)
    assert out.returncode == 0, out.stderr.decode()
    assert json.loads(out.stdout)["hosts"][lone.target]["bytes_sent"] < MB
    assert lone.docker("b", "run", "--rm", tag, "sh", "-c", "wc -c < /big0") == str(30 * MB)
