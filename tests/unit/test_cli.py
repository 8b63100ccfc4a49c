"""The command line: usage errors are one line and exit 2; nothing needs an engine to fail early."""

from __future__ import annotations

import subprocess
import sys

import pytest


def lf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "layerferry", *args], capture_output=True, text=True, timeout=60
    )


def test_help_lists_the_verbs() -> None:
    out = lf("--help")
    assert out.returncode == 0
    for verb in ("commit", "save", "load", "send", "migrate"):
        assert verb in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["save", "app:1", "-o", "x.tar", "--compress", "lz4"], "unknown compression 'lz4'"),
        (["send", "app:1"], "usage: layerferry send"),
        (["send", "app:1", "ssh://-oProxyCommand=id"], "invalid host name"),
        (["migrate", "web", "notaurl"], "expected ssh://"),
        (["commit", "web", "App:Bad"], "invalid image name"),
        (["commit", "web", "app:1", "-c", "RUN rm -rf /"], "unsupported change"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    out = lf(*args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("layerferry: error: ")


def test_missing_archive_is_not_found(tmp_path: object) -> None:
    out = lf("load", "/nonexistent/archive.tar")
    assert out.returncode == 3
    assert "/nonexistent/archive.tar: no such file" in out.stderr


def test_empty_archive_is_refused(tmp_path: pytest.TempPathFactory) -> None:  # type: ignore[name-defined]
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "empty.tar"
    path.write_bytes(b"")
    out = lf("--cache-dir", str(path.parent / "c"), "load", str(path))
    assert out.returncode == 4
    assert "archive is empty" in out.stderr


@pytest.mark.parametrize(
    ("name", "kind", "warned"),
    [
        ("x.tar", "gzip", "x.tar will hold a gzip stream; name it x.tar.gz to say so"),
        ("x.tar.gz", "zstd", "x.tar.gz ends in .gz but the archive is zstd"),
        ("x.tar.zst", "zstd", None),
    ],
)
def test_c03_save_warns_when_the_name_contradicts_the_content(
    tmp_path: pytest.TempPathFactory, name: str, kind: str, warned: str | None
) -> None:
    """Checked before any engine is asked (here there is none: the save then fails)."""
    import os

    out = subprocess.run(
        [sys.executable, "-m", "layerferry", "save", "app:1", "-o", f"{tmp_path}/{name}"]
        + ["--compress", kind],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock"},
    )
    assert out.returncode != 0
    assert (warned in out.stderr) if warned else ("warning" not in out.stderr)


def test_a_host_without_its_scheme_is_pointed_out() -> None:
    out = lf("send", "app:1", "lf-b")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "layerferry: error: usage: layerferry send IMAGE… ssh://[user@]host[:port]…",
        "  hint: hosts are written ssh://HOST: did you mean ssh://lf-b?",
    ]


def test_a_local_engine_that_is_not_there_is_an_engine_error_said_plainly(tmp_path: object) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "layerferry", "diff", "web"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": f"unix://{tmp_path}/none.sock"},
    )
    assert out.returncode == 6, out.stderr
    assert out.stderr.splitlines()[0] == (
        f"layerferry: error: local engine: cannot connect to unix://{tmp_path}/none.sock: "
        "no such file or directory"
    )
    assert "Traceback" not in out.stderr and "FileNotFoundError" not in out.stderr
