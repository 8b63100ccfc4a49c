"""Cases C16 and C28: saves from an engine that fails, cuts its stream, or pauses mid-way.

A real ``dockerd`` cannot be made to do these on demand, so a fake engine
(:mod:`tests.fakeengine`) answers ``layerferry save`` over a unix socket.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.archivegen import Img, Tar, docker_legacy, sha
from tests.fakeengine import Behaviour, FakeEngine
from tests.imagegen import config_for, layer_tar


def _image(layer_bytes: int = 200_000) -> tuple[Img, bytes]:
    rng = random.Random(28)
    layers = [layer_tar({"data/blob": rng.randbytes(layer_bytes)})]
    img = Img(layers, config_for(layers), ["fake:1"])
    return img, docker_legacy(Tar(), [img]).bytes()


def _behaviour(**kw: object) -> Behaviour:
    img, body = _image()
    return Behaviour(
        body=body,
        image_id=img.config_digest,
        diff_ids=img.diff_ids,
        tags=img.tags,
        **kw,  # type: ignore[arg-type]
    )


def _save(
    engine: FakeEngine, out: Path, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ)
    full.update(
        DOCKER_HOST=engine.docker_host,
        LAYERFERRY_CACHE_DIR=str(tmp_path / "cache"),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "layerferry", "save", "fake:1", "-o", str(out)],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("layerferry: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_a_good_save_through_the_fake_engine(tmp_path: Path) -> None:
    """The fake is faithful enough: an unbroken stream gives the archive."""
    behaviour = _behaviour()
    out = tmp_path / "ok.tar"
    with FakeEngine(tmp_path / "engine.sock", behaviour) as engine:
        res = _save(engine, out, tmp_path)
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 200_000
    assert "/images/fake:1/get" in behaviour.requests or any(
        r.endswith("/get") for r in behaviour.requests
    )


def test_c16_engine_error_status_fails_the_save_and_leaves_no_file(tmp_path: Path) -> None:
    behaviour = _behaviour(status=500, message="write /var/lib/docker/tmp: no space left on device")
    out = tmp_path / "out" / "app.tar"
    out.parent.mkdir()
    with FakeEngine(tmp_path / "engine.sock", behaviour) as engine:
        res = _save(engine, out, tmp_path)
    assert res.returncode == 6, res.stderr
    line = _one_line_error(res.stderr)
    assert "no space left on device" in line and "fake:1" in line
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("cut", [100, 512 + 300, 30_000, 150_000])
def test_c16_c17_stream_dropped_mid_way_fails_and_leaves_no_file(tmp_path: Path, cut: int) -> None:
    """Cut inside a header, inside the config, inside layer data: the producer's stream was
    cut short; the message says truncated, not a bare EOF, and nothing is left behind."""
    behaviour = _behaviour(drop_at=cut)
    out = tmp_path / "out" / "app.tar"
    out.parent.mkdir()
    with FakeEngine(tmp_path / "engine.sock", behaviour) as engine:
        res = _save(engine, out, tmp_path)
    assert res.returncode in (4, 6), res.stderr
    line = _one_line_error(res.stderr)
    assert "local engine" in line and "fake:1" in line, line
    assert "cut short" in line or "truncated" in line, line
    assert list(out.parent.iterdir()) == []


def test_c28_a_long_pause_mid_stream_is_waited_for(tmp_path: Path) -> None:
    """No per-read deadline shorter than the idle timeout: a save that goes quiet (20.10 copies
    the whole image before its first byte) is waited for, and the archive is complete."""
    behaviour = _behaviour(pause_at=50_000, pause=3.0)
    out = tmp_path / "app.tar"
    with FakeEngine(tmp_path / "engine.sock", behaviour) as engine:
        started = time.monotonic()
        res = _save(engine, out, tmp_path, LAYERFERRY_ENGINE_IDLE_TIMEOUT="10")
        took = time.monotonic() - started
    assert res.returncode == 0, res.stderr
    assert took >= 3.0
    assert out.stat().st_size > 200_000


def test_c28_an_engine_silent_past_the_idle_timeout_is_named(tmp_path: Path) -> None:
    behaviour = _behaviour(pause_at=50_000, pause=6.0)
    out = tmp_path / "out" / "app.tar"
    out.parent.mkdir()
    with FakeEngine(tmp_path / "engine.sock", behaviour) as engine:
        res = _save(engine, out, tmp_path, LAYERFERRY_ENGINE_IDLE_TIMEOUT="2")
    assert res.returncode != 0
    line = _one_line_error(res.stderr)
    assert "local engine" in line and "2 s" in line, line
    assert "LAYERFERRY_ENGINE_IDLE_TIMEOUT" in res.stderr
    assert list(out.parent.iterdir()) == []


def test_c28_a_large_save_streams_with_flat_memory(tmp_path: Path) -> None:
    """~300 MB through the save path: the child's peak RSS stays far below the image size."""
    rng = random.Random(7)
    chunk = rng.randbytes(1 << 20)
    files = {f"data/f{i}": chunk[i:] + chunk[:i] for i in range(300)}
    layers = [layer_tar(files)]
    img = Img(layers, config_for(layers), ["fake:1"])
    body = docker_legacy(Tar(), [img]).bytes()
    del files, layers
    behaviour = Behaviour(
        body=body, image_id=sha(img.config), diff_ids=img.diff_ids, tags=["fake:1"], chunk=1 << 20
    )
    out = tmp_path / "big.tar"
    with FakeEngine(tmp_path / "engine.sock", behaviour) as engine:
        full = dict(os.environ, DOCKER_HOST=engine.docker_host)
        full["LAYERFERRY_CACHE_DIR"] = str(tmp_path / "cache")
        script = (
            "import resource, subprocess, sys;"
            "r = subprocess.run(sys.argv[1:]);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
            "sys.exit(r.returncode)"
        )
        res = subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                sys.executable,
                "-m",
                "layerferry",
                "save",
                "fake:1",
                "-o",
                str(out),
            ],
            env=full,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert res.returncode == 0, res.stderr
    peak_mb = int(res.stdout.strip().splitlines()[-1]) / 1024
    assert out.stat().st_size > 300 * (1 << 20)
    assert peak_mb < 150, f"peak RSS {peak_mb:.0f} MB for a 300 MB save"
