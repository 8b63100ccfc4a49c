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
import signal
import subprocess
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from layerferry.copy.staged import stage_and_load
from layerferry.oci.digest import Digest
from layerferry.remote.session import CommandResult
from layerferry.remote.staging import (
    _SEND_LOAD,
    TAIL,
    RemoteStaging,
    StagingState,
    UnitPlan,
    last_line,
    parse_marks,
    room_record,
    state_from_listing,
    stream_chunk,
    stream_end,
    stream_start,
    unit_record,
)
from layerferry.reporting import RecordingReporter

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


def _units(sizes: dict[str, int]) -> tuple[list[Unit], bytes]:
    """One unit per layer member of *sizes* (plain tar, codec none, random bytes), in order,
    and the tail: the ``manifest.json`` that names the image, and the archive's end."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, size in [*sizes.items(), ("manifest.json", 10)]:
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(os.urandom(size)))
    raw = buf.getvalue()
    units: list[Unit] = []
    start = 0
    for size in sizes.values():
        end = start + 512 + -(-size // 512) * 512  # header, then the data padded to a block
        units.append(Unit(hashlib.sha256(raw[start:end]).hexdigest() + ".tar", raw[start:end]))
        start = end
    return units, raw[start:]


def _archive() -> tuple[list[Unit], bytes]:
    """Two layer members as units and the tail naming the image."""
    return _units({"one.tar": 3000, "two.tar": 5000})


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


def _input(
    units: list[Unit], offsets: list[int | None], payloads: list[bytes], tail: bytes | None
) -> bytes:
    """The script's stdin: each unit's record and *payload*, then the tail (None: cut before)."""
    out = b""
    for unit, offset, payload in zip(units, offsets, payloads, strict=True):
        out += unit_record(UnitPlan(unit.name, unit.want, len(unit.data), offset)) + payload
    return out if tail is None else out + TAIL + tail


def _run(
    host: Path,
    units: list[Unit],
    offsets: list[int | None],
    payloads: list[bytes],
    tail: bytes | None,
) -> subprocess.CompletedProcess[bytes]:
    return _run_input(host, _input(units, offsets, payloads, tail))


def _script(host: Path, root: str = "") -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run the host script as the host would (codec none)."""
    argv = ["sh", "-c", _SEND_LOAD, "sh", str(host / "staging"), "job-1", "none", "run1", "0", root]
    only_busybox = bool((host / "only-busybox").read_text())
    path = str(host / "bin") if only_busybox else f"{host / 'bin'}:{os.environ['PATH']}"
    if only_busybox:
        argv[0] = str(host / "bin" / "sh")
    return argv, dict(os.environ, PATH=path, LISTING=str(host / "listing"))


def _run_input(host: Path, stdin: bytes, root: str = "") -> subprocess.CompletedProcess[bytes]:
    argv, env = _script(host, root)
    return subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=30)


def _staged(host: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in (host / "staging").iterdir()}


def _reached_engine(host: Path) -> list[str]:
    return (host / "listing").read_text().split()


def test_whole_units_are_loaded_and_staging_emptied(host: Path) -> None:
    units, tail = _archive()
    out = _run(host, units, [0, 0], [units[0].data, units[1].data], tail)
    assert out.returncode == 0, out.stderr
    marks = parse_marks(out.stdout.decode())
    assert marks.ok == {units[0].name, units[1].name} and not marks.bad
    assert _reached_engine(host) == ["one.tar", "two.tar", "manifest.json"]
    assert _staged(host) == {}, "units and the job directory go once the load succeeded"


def test_a_unit_damaged_on_the_way_keeps_the_image_from_the_engine(host: Path) -> None:
    units, tail = _archive()
    damaged = bytearray(units[1].data)
    damaged[700] ^= 0xFF
    out = _run(host, units, [0, 0], [units[0].data, bytes(damaged)], tail)
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
    out = _run(host, units, [0, 0], [units[0].data, units[1].data[:cut]], None)
    assert out.returncode == 90
    marks = parse_marks(out.stdout.decode())
    assert marks.short == {units[1].name: cut}
    assert "manifest.json" not in _reached_engine(host)
    assert _staged(host) == {units[0].name: len(units[0].data), f"{units[1].name}.part.run1": cut}
    # The next run: the first unit is staged, the second continues from the cut.
    out = _run(host, units, [None, cut], [b"", units[1].data[cut:]], tail)
    assert out.returncode == 0, out.stderr
    assert _reached_engine(host) == ["one.tar", "two.tar", "manifest.json"]
    assert _staged(host) == {}


def test_a_staged_unit_removed_meanwhile_is_reported_gone(host: Path) -> None:
    units, tail = _archive()
    out = _run(host, units, [None, 0], [b"", units[1].data], tail)
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


# -- stage_and_load driving the script: a staged unit another run removed meanwhile ------------


class LocalSession:
    """Runs the staging scripts with the local ``sh`` (what a host's sshd would run)."""

    def __init__(self, host: Path, before_load: Callable[[], None] | None = None) -> None:
        self.host = host
        self.target = "ssh://test"
        self.before_load = before_load
        self.loads: list[list[str]] = []

    def _env(self) -> dict[str, str]:
        return dict(
            os.environ,
            PATH=f"{self.host / 'bin'}:{os.environ['PATH']}",
            LISTING=str(self.host / "listing"),
        )

    def run(
        self, argv: list[str], *, check: bool = True, timeout: float | None = 30
    ) -> CommandResult:
        out = subprocess.run(argv, capture_output=True, env=self._env(), timeout=timeout)
        return CommandResult(out.returncode, out.stdout, out.stderr)

    def pipe_in(self, argv: list[str], chunks: Iterable[bytes]) -> CommandResult:
        if self.before_load is not None:
            self.before_load()
            self.before_load = None
        data = b"".join(chunks)
        self.loads.append(_unit_records(data))
        out = subprocess.run(argv, input=data, capture_output=True, env=self._env(), timeout=30)
        return CommandResult(out.returncode, out.stdout, out.stderr)


def _unit_records(data: bytes) -> list[list[str]]:
    """The unit records (U NAME WANT SIZE FROM) of a stage-and-load's input, up to its tail."""
    records: list[list[str]] = []
    pos = 0
    while True:
        end = data.index(b"\n", pos)
        words = data[pos:end].decode().split()
        pos = end + 1
        if words[0] != "U":
            return records
        records.append(words)
        if words[4] != "staged":
            pos += int(words[3]) - int(words[4])


@dataclass(frozen=True)
class Item:
    unit: Unit

    @property
    def name(self) -> str:
        return self.unit.name

    @property
    def digest(self) -> Digest:
        return Digest("sha256", self.unit.want)

    @property
    def size(self) -> int:
        return len(self.unit.data)

    @property
    def label(self) -> str:
        return f"layer {self.name[:12]}"

    @property
    def other_part_names(self) -> tuple[str, ...]:
        return ()

    def chunks_from(self, offset: int) -> Iterator[bytes]:
        yield self.unit.data[offset:]

    def prefix_digest(self, length: int) -> Digest:
        return Digest("sha256", hashlib.sha256(self.unit.data[:length]).hexdigest())


def _three_units() -> tuple[list[Unit], bytes]:
    return _units({"one.tar": 1024, "two.tar": 2048, "three.tar": 512})


def test_a_staged_unit_removed_meanwhile_is_sent_again_with_the_units_after_it(
    host: Path,
) -> None:
    units, tail = _three_units()
    staging_dir = host / "staging"
    staging_dir.mkdir(mode=0o700)
    (staging_dir / units[0].name).write_bytes(units[0].data)  # an earlier run staged it
    # Another send's successful load removes it after this run checked it, before its load.
    session = LocalSession(host, before_load=(staging_dir / units[0].name).unlink)
    staging = RemoteStaging(session, str(staging_dir))  # type: ignore[arg-type]
    state = StagingState(done={units[0].name: len(units[0].data)})
    reporter = RecordingReporter()
    result = stage_and_load(
        staging, [Item(u) for u in units], state, lambda: iter([tail]), reporter, [0],
        need_kib=0, engine_root="", codec="none",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _reached_engine(host) == ["one.tar", "two.tar", "three.tar", "manifest.json"]
    assert any(
        step.endswith(
            "1 layer staged there by an earlier run used as staged (1.5 kB not sent again)"
        )
        for step in reporter.steps
    ), reporter.steps
    # The second attempt sends the removed unit and the two its first attempt never reached.
    assert [record[4] for record in session.loads[1]] == ["0", "0", "0"]
    assert _staged(host) == {}


@dataclass(frozen=True)
class StreamedItem(Item):
    """An item whose part an earlier run may have left under its layer's stream key."""

    key: str = ""

    @property
    def other_part_names(self) -> tuple[str, ...]:
        return (self.key,)

    def chunks_from(self, offset: int) -> Iterator[bytes]:
        assert offset < self.size, "a whole part found staged is not made again"
        yield self.unit.data[offset:]


def test_a_part_holding_the_whole_unit_is_checked_and_used_not_left_behind(host: Path) -> None:
    """A cut after a streamed unit's last byte but before its end record leaves a part with all
    its bytes, named by the layer. The next run takes it over (nothing of it is sent again),
    the host checks it, the engine gets it, and staging is emptied; none is left behind."""
    units, tail = _three_units()
    staging_dir = host / "staging"
    staging_dir.mkdir(mode=0o700)
    key = "d" * 64 + ".zst"
    whole = units[1]
    (staging_dir / f"{key}.part.old1").write_bytes(whole.data)
    session = LocalSession(host)
    staging = RemoteStaging(session, str(staging_dir))  # type: ignore[arg-type]
    state = StagingState(parts={key: [("old1", len(whole.data))]})
    reporter = RecordingReporter()
    items = [Item(units[0]), StreamedItem(whole, key), Item(units[2])]
    sent = [0]
    result = stage_and_load(
        staging, items, state, lambda: iter([tail]), reporter, sent,
        need_kib=0, engine_root="", codec="none",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [record[4] for record in session.loads[0]] == ["0", str(len(whole.data)), "0"]
    assert sent[0] < len(units[0].data) + len(units[2].data) + len(tail) + 1000
    assert _reached_engine(host) == ["one.tar", "two.tar", "three.tar", "manifest.json"]
    assert any("resuming layer" in step for step in reporter.steps)
    assert _staged(host) == {}


FAILING_DOCKER = """#!/bin/sh
echo "Error processing tar file(exit status 1): write /l: no space left on device" >&2
exit 1
"""


def test_an_engine_that_fails_at_once_is_what_a_resumed_unit_reports(host: Path) -> None:
    """The engine stops reading before a resumed unit's staged bytes are replayed: the unit is
    still completed and checked, and the run ends with the engine's error, not a broken pipe."""
    (host / "bin" / "docker").write_text(FAILING_DOCKER)
    units, tail = _archive()
    staging_dir = host / "staging"
    staging_dir.mkdir(mode=0o700)
    cut = 2000
    (staging_dir / f"{units[1].name}.part.run1").write_bytes(units[1].data[:cut])
    out = _run(host, units, [0, cut], [units[0].data, units[1].data[cut:]], tail)
    assert out.returncode == 1, out.stderr
    assert parse_marks(out.stdout.decode()).ok == {units[0].name, units[1].name}
    assert last_line(out.stderr).endswith("no space left on device")
    assert _staged(host) == {units[0].name: len(units[0].data), units[1].name: len(units[1].data)}


def test_a_resumed_part_another_run_took_is_reported_gone(host: Path) -> None:
    units, tail = _archive()
    (host / "staging").mkdir(mode=0o700)
    out = _run(host, units, [0, 2000], [units[0].data, units[1].data[2000:]], tail)
    assert out.returncode == 90
    assert parse_marks(out.stdout.decode()).gone == {units[1].name}


def test_a_part_still_being_written_is_not_claimed(tmp_path: Path) -> None:
    from layerferry.remote.staging import _CLAIM

    d = tmp_path / "staging"
    d.mkdir()
    name = "c" * 64 + ".zst"
    part = d / f"{name}.part.live"
    part.write_bytes(b"x" * 100)
    claim = ["sh", "-c", _CLAIM, "sh", str(d), name, "live", "mine"]
    # A run in flight holds the lock on its part, as _SEND_LOAD's writer does.
    writer = subprocess.Popen(
        ["sh", "-c", 'exec 5>>"$1"; flock -n 5; echo locked; sleep 30', "sh", str(part)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == b"locked\n"
        assert subprocess.run(claim, capture_output=True).returncode == 3
        assert part.exists(), "the live part keeps its name"
    finally:
        os.killpg(writer.pid, signal.SIGKILL)  # the writer and its children: the lock goes
        writer.wait()
    done = subprocess.run(claim, capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.split() == ["100", hashlib.sha256(b"x" * 100).hexdigest()]
    assert (d / f"{name}.part.mine").exists() and not part.exists()


# -- units streamed while they are made (send's early load) ------------------------------------
KEY = "e" * 64 + ".tar"  # a streamed unit's part is named by its layer before its digest is known


def _streamed(unit: Unit, offset: int = 0, chunk: int = 700, end: bool = True) -> bytes:
    """A unit as an S record: its bytes from *offset* in chunks, then its name and digest."""
    out = stream_start(KEY, offset)
    for start in range(offset, len(unit.data), chunk):
        out += b"".join(stream_chunk(unit.data[start : start + chunk]))
    return out + (stream_end(unit.name, unit.want, len(unit.data)) if end else b"")


def test_a_streamed_unit_is_staged_under_its_digest_and_loaded(host: Path) -> None:
    units, tail = _archive()
    stdin = _streamed(units[0]) + _input(units[1:], [0], [units[1].data], tail)
    out = _run_input(host, stdin)
    assert out.returncode == 0, out.stderr
    assert parse_marks(out.stdout.decode()).ok == {units[0].name, units[1].name}
    assert _reached_engine(host) == ["one.tar", "two.tar", "manifest.json"]
    assert _staged(host) == {}


def test_a_streamed_unit_that_is_not_what_its_end_says_keeps_the_image_from_the_engine(
    host: Path,
) -> None:
    units, tail = _archive()
    wrong = Unit(units[0].name, units[0].data[:-1] + b"\x01")  # one byte off on the way
    stdin = _streamed(wrong, end=False)
    stdin += stream_end(units[0].name, units[0].want, len(units[0].data)) + TAIL + tail
    out = _run_input(host, stdin)
    assert out.returncode == 90
    assert parse_marks(out.stdout.decode()).bad == {units[0].name}
    assert "manifest.json" not in _reached_engine(host)
    assert _staged(host) == {}


def test_a_cut_stream_leaves_its_part_and_the_next_run_continues_it(host: Path) -> None:
    units, tail = _archive()
    stdin = _streamed(units[0], end=False)[: len(stream_start(KEY, 0)) + 2 * (4 + 700)]
    out = _run_input(host, stdin)
    assert out.returncode == 90
    assert "manifest.json" not in _reached_engine(host)
    assert _staged(host) == {f"{KEY}.part.run1": 1400}
    # The next run claimed the part (same run name here) and sends the rest.
    out = _run_input(host, _streamed(units[0], offset=1400) + TAIL + tail)
    assert out.returncode == 0, out.stderr
    assert parse_marks(out.stdout.decode()).ok == {units[0].name}
    assert _reached_engine(host) == ["one.tar", "manifest.json"]
    assert _staged(host) == {}


@pytest.mark.parametrize(
    "record",
    [b"S ../../evil.tar 0\n", b"U x/../../evil.tar " + b"0" * 64 + b" 1 0\n", b"Q what\n"],
)
def test_records_that_are_not_content_digests_are_refused(host: Path, record: bytes) -> None:
    out = _run_input(host, record + b"1\nx0\n" + TAIL + b"tail")
    assert out.returncode == 90
    assert not (host / "evil.tar").exists() and not (host.parent / "evil.tar").exists()
    assert not (host / "listing").exists() or "manifest.json" not in _reached_engine(host)


def test_a_stream_the_engine_has_no_room_for_stops_before_its_bytes(host: Path) -> None:
    units, tail = _archive()
    free_kib = shutil.disk_usage(host).free // 1024
    stdin = (
        stream_start(KEY, 0, free_kib + 1024 * 1024)
        + _streamed(units[0])[len(stream_start(KEY, 0)) :]
    )
    out = _run_input(host, stdin + TAIL + tail, root=str(host))
    assert out.returncode == 90
    marks = parse_marks(out.stdout.decode())
    assert marks.free_kib is not None and abs(marks.free_kib - free_kib) < 64 * 1024
    assert not marks.ok and _staged(host) == {}
    assert "manifest.json" not in _reached_engine(host)


def test_a_room_record_stops_the_load_before_units_the_engine_has_no_room_for(host: Path) -> None:
    """A load already running (its first units streamed) checks the engine's room for the
    rest before the rest's bytes: none of them is staged, nothing reaches the engine's tags."""
    units, tail = _archive()
    free_kib = shutil.disk_usage(host).free // 1024
    rest = _input(units[1:], [0], [units[1].data], tail)
    out = _run_input(
        host, _streamed(units[0]) + room_record(free_kib + 1024 * 1024) + rest, root=str(host)
    )
    assert out.returncode == 90
    marks = parse_marks(out.stdout.decode())
    assert marks.ok == {units[0].name}
    assert marks.free_kib is not None and abs(marks.free_kib - free_kib) < 64 * 1024
    assert _staged(host) == {units[0].name: len(units[0].data)}  # kept for the next run
    assert "manifest.json" not in _reached_engine(host)
    # With room, the same records let the load through.
    (host / "staging" / units[0].name).unlink()
    rest = _input(units[1:], [0], [units[1].data], tail)
    ok = _run_input(host, _streamed(units[0]) + room_record(1) + rest, root=str(host))
    assert ok.returncode == 0, ok.stderr
    assert _staged(host) == {}


SLOW_DOCKER = """#!/bin/sh
[ "$1" = load ] || exit 2
tar -t > "$LISTING" 2>/dev/null
sleep 0.5
echo "Loaded image: app:1"
"""


def test_a_load_that_ends_after_its_client_vanished_still_empties_staging(host: Path) -> None:
    """The client died (SIGKILL) while its last bytes were still on their way: ssh relays
    them, the engine loads the image, and the answer meets a closed pipe. The staged units go
    all the same, as after any load that succeeded; none is left for a week."""
    (host / "bin" / "docker").write_text(SLOW_DOCKER)
    units, tail = _archive()
    argv, env = _script(host)
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the answer comes
    proc.stdin.write(_input(units, [0, 0], [units[0].data, units[1].data], tail))
    proc.stdin.close()
    proc.wait(timeout=30)
    assert _reached_engine(host)[-1] == "manifest.json"
    assert _staged(host) == {}


def test_parts_of_no_use_are_removed_not_left_for_the_sweep(host: Path) -> None:
    """An empty part, and one longer than its unit (damaged), cannot be continued: the run that
    meets them removes them (unless a run still writes them) and sends the unit whole."""
    units, tail = _three_units()
    staging_dir = host / "staging"
    staging_dir.mkdir(mode=0o700)
    key = "d" * 64 + ".zst"
    (staging_dir / f"{key}.part.old1").write_bytes(units[1].data + b"junk")
    (staging_dir / f"{units[1].name}.part.old2").write_bytes(b"")
    session = LocalSession(host)
    staging = RemoteStaging(session, str(staging_dir))  # type: ignore[arg-type]
    state = StagingState(
        parts={key: [("old1", len(units[1].data) + 4)], units[1].name: [("old2", 0)]}
    )
    items = [Item(units[0]), StreamedItem(units[1], key), Item(units[2])]
    result = stage_and_load(
        staging, items, state, lambda: iter([tail]), RecordingReporter(), [0],
        need_kib=0, engine_root="", codec="none",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [record[4] for record in session.loads[0]] == ["0", "0", "0"]
    assert _staged(host) == {}
