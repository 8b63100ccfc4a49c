"""The host side of a one-pass stage-and-load, run with the local ``sh`` and coreutils.

Real staging runs against real sshd and dockerd in the integration tests. Two faults cannot be
made there on demand: bytes damaged on the wire, and a stream cut at a chosen byte. Here the
script runs as it does on a host, with ``docker`` standing in as ``tar -t`` (which lists what
reached the engine), so what a damaged or cut unit lets through can be asserted exactly; once
with the system's coreutils and once on a host that has only busybox's applets.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from layerferry.remote.staging import _SEND_LOAD, parse_marks, state_from_listing

FAKE_DOCKER = """#!/bin/sh
[ "$1" = load ] || exit 2
tar -t > "$LISTING" 2>/dev/null
if grep -qx manifest.json "$LISTING"; then echo "Loaded image: app:1"; exit 0; fi
echo "open manifest.json: no such file or directory" >&2; exit 1
"""


@dataclass
class Unit:
    name: str
    data: bytes

    @property
    def want(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _archive() -> tuple[list[Unit], bytes]:
    """Two layer members as units (plain tar, codec none) and the tail naming the image."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, size in (("one.tar", 3000), ("two.tar", 5000), ("manifest.json", 10)):
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(os.urandom(size)))
    raw = buf.getvalue()
    one, two = raw[: 512 + 3072], raw[512 + 3072 : 2 * 512 + 3072 + 5120]
    units = [Unit(hashlib.sha256(u).hexdigest() + ".tar", u) for u in (one, two)]
    return units, raw[len(one) + len(two) :]


# What the script uses on a host; a busybox host (Alpine, small appliances) has only these applets.
APPLETS = (
    "sh", "cat", "tee", "dd", "sha256sum", "mkfifo", "wc", "cut", "df", "awk", "rm", "mv",
    "ln", "mkdir", "chmod", "mktemp", "tar", "grep",
)  # fmt: skip


@pytest.fixture(params=["coreutils", "busybox"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if request.param == "busybox":
        busybox = shutil.which("busybox")
        if busybox is None:
            pytest.fail("busybox is missing: scripts/install-deps.sh installs busybox-static")
        for applet in APPLETS:
            (bin_dir / applet).symlink_to(busybox)
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    (tmp_path / "only-busybox").write_text("1" if request.param == "busybox" else "")
    return tmp_path


def _run(
    host: Path, units: list[Unit], offsets: list[int | None], stdin: bytes
) -> subprocess.CompletedProcess[bytes]:
    argv = ["sh", "-c", _SEND_LOAD, "sh", str(host / "staging"), "job-1", "none", "run1", "0", ""]
    for unit, offset in zip(units, offsets, strict=True):
        argv += [
            unit.name,
            unit.want,
            str(len(unit.data)),
            "staged" if offset is None else str(offset),
        ]
    only_busybox = bool((host / "only-busybox").read_text())
    path = str(host / "bin") if only_busybox else f"{host / 'bin'}:{os.environ['PATH']}"
    if only_busybox:
        argv[0] = str(host / "bin" / "sh")
    env = dict(os.environ, PATH=path, LISTING=str(host / "listing"))
    return subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=30)


def _staged(host: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in (host / "staging").iterdir()}


def _reached_engine(host: Path) -> list[str]:
    return (host / "listing").read_text().split()


def test_whole_units_are_loaded_and_staging_emptied(host: Path) -> None:
    units, tail = _archive()
    out = _run(host, units, [0, 0], units[0].data + units[1].data + tail)
    assert out.returncode == 0, out.stderr
    marks = parse_marks(out.stdout.decode())
    assert marks.ok == {units[0].name, units[1].name} and not marks.bad
    assert _reached_engine(host) == ["one.tar", "two.tar", "manifest.json"]
    assert _staged(host) == {}, "units and the job directory go once the load succeeded"


def test_a_unit_damaged_on_the_way_keeps_the_image_from_the_engine(host: Path) -> None:
    units, tail = _archive()
    damaged = bytearray(units[1].data)
    damaged[700] ^= 0xFF
    out = _run(host, units, [0, 0], units[0].data + bytes(damaged) + tail)
    assert out.returncode == 90
    marks = parse_marks(out.stdout.decode())
    assert marks.ok == {units[0].name} and marks.bad == {units[1].name}
    # The engine saw the layers but never the manifest: nothing can have been tagged.
    assert "manifest.json" not in _reached_engine(host)
    # The good unit stays staged for the retry; the damaged one is gone.
    assert _staged(host) == {units[0].name: len(units[0].data)}


def test_a_cut_stream_keeps_what_arrived_and_a_resume_completes_it(host: Path) -> None:
    units, tail = _archive()
    cut = 2000
    out = _run(host, units, [0, 0], units[0].data + units[1].data[:cut])
    assert out.returncode == 90
    marks = parse_marks(out.stdout.decode())
    assert marks.short == {units[1].name: cut}
    assert "manifest.json" not in _reached_engine(host)
    assert _staged(host) == {units[0].name: len(units[0].data), f"{units[1].name}.part.run1": cut}
    # The next run: the first unit is staged, the second continues from the cut.
    out = _run(host, units, [None, cut], units[1].data[cut:] + tail)
    assert out.returncode == 0, out.stderr
    assert _reached_engine(host) == ["one.tar", "two.tar", "manifest.json"]
    assert _staged(host) == {}


def test_a_staged_unit_removed_meanwhile_is_reported_gone(host: Path) -> None:
    units, tail = _archive()
    out = _run(host, units, [None, 0], units[1].data + tail)
    assert out.returncode == 90
    assert parse_marks(out.stdout.decode()).gone == {units[0].name}
    assert "manifest.json" not in _reached_engine(host)


def test_the_listing_the_probe_makes_is_read_back() -> None:
    hexa, hexb = "a" * 64, "b" * 64
    state = state_from_listing(
        [(f"{hexa}.zst", 10), (f"{hexb}.zst.part.r1", 4), (f"{hexb}.zst.part.r2", 6),
         ("job-x", 0), ("../evil", 1)],
        123,
    )  # fmt: skip
    assert state.done == {f"{hexa}.zst": 10}
    assert state.parts == {f"{hexb}.zst": [("r1", 4), ("r2", 6)]}
    assert state.free_staging_kib == 123
