"""Faults survived: Ctrl-C, concurrent sends, a full disk on the target, hostile names."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import World
from .test_transfer import _parts, _random_image, _staging, _tagged_on

MB = 1_000_000


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
    assert any(".part." in name for name in _parts(world, "b"))
    out = world.lf("send", tag, world.target)
    assert out.returncode == 0, out.stderr.decode()
    assert b"resuming layer" in out.stderr
    assert world.docker("b", "run", "--rm", tag, "sh", "-c", "wc -c < /big0") == str(10 * MB)


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


def test_full_staging_disk_is_refused_before_sending(world: World) -> None:
    tag = f"full-{secrets.token_hex(3)}:1"
    _random_image(world, tag, [6])
    cache = Path(world.sb.host("b").dir) / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "lfsb-test-full", str(cache)], check=True
    )
    try:
        out = world.lf("send", tag, world.target)
    finally:
        subprocess.run(["umount", str(cache)], check=True)
    assert out.returncode == 5, out.stderr.decode()
    line = out.stderr.decode().splitlines()[-2]
    assert line.startswith("layerferry: error: ssh://lf-b: not enough disk space for staging"), line
    assert "needs about 6." in line and "MB" in line
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
