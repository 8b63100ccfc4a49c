"""Resumable, verified staging of layer units on a host, then one ``docker load`` from the staged files.

On the host, a private directory (``~/.cache/layerferry/staging``, mode 0700) holds units by
content digest. A unit arrives as ``NAME.part.RUN`` (appended to, so a cut transfer resumes from
its last byte after the prefix is checked), is checked with ``sha256sum`` there, and only then
renamed to ``NAME``. Two runs never write the same part file: a run claims an earlier run's part
by renaming it (atomic), and only when no writer holds the part's lock (``flock``, held while it
is written), so concurrent sends of the same image stay correct. A load links the
units it needs into a job directory first, so another run's clean-up cannot pull them away.

Every script here is constant text; paths and names reach it as positional parameters
(``sh -c SCRIPT sh ARG…``), each quoted by :class:`SshSession`.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from ..errors import LayerferryError, RemoteError
from .session import CommandResult, SshSession

# 20.10's load copies the input to disk, then unpacks it: room for twice the layer bytes.
ENGINE_SPACE_FACTOR = 2

_NAME = re.compile(r"^[0-9a-f]{64}\.(zst|gz|tar)$")

_QUERY = r"""
d=$1; shift
mkdir -p "$d" && chmod 700 "$d" || exit 1
# Staged data nobody came back for in a week (an abandoned transfer) is removed.
find "$d" -type f -mtime +6 -exec rm -f {} + 2>/dev/null
find "$d" -type d -name 'job-*' -mtime +1 -exec rm -rf {} + 2>/dev/null
for n in "$@"; do
  [ -f "$d/$n" ] && echo "done $n $(wc -c < "$d/$n")"
  for p in "$d/$n".part.*; do
    [ -f "$p" ] && echo "part $n ${p##*.part.} $(wc -c < "$p")"
  done
done
echo "free staging $(df -Pk "$d" | awk 'NR==2 {print $4}')"
exit 0
"""

# A part whose writer still holds its lock (a run in flight) is left alone: exit 3.
# The part is renamed to this run's part of AS (default: the same name): a streamed unit's
# part, named by its layer, continues as the unit's own when a later run has its digest.
_CLAIM = r"""
d=$1; n=$2; old=$3; new=$4; as=${5:-$2}
p="$d/$n.part.$old"
[ -f "$p" ] || exit 3
if command -v flock >/dev/null 2>&1; then exec 5<"$p" && flock -n 5 || exit 3; fi
mv "$p" "$d/$as.part.$new" 2>/dev/null || exit 3
echo "$(wc -c < "$d/$as.part.$new") $(sha256sum "$d/$as.part.$new" | cut -d' ' -f1)"
"""

_UPLOAD = r"""
d=$1; n=$2; run=$3; want=$4; size=$5
p="$d/$n.part.$run"
exec 5>>"$p" || exit 1
command -v flock >/dev/null 2>&1 && flock -n 5
cat >&5 || exit 1
have=$(wc -c < "$p")
if [ "$have" -lt "$size" ]; then echo "short $have"; exit 0; fi
got=$(sha256sum "$p" | cut -d' ' -f1)
if [ "$have" -eq "$size" ] && [ "$got" = "$want" ]; then mv -f "$p" "$d/$n" && echo ok; exit 0; fi
rm -f "$p"; echo "bad $got"
"""


_HASH = r"""
d=$1; shift
for n in "$@"; do [ -f "$d/$n" ] && echo "$n $(sha256sum "$d/$n" | cut -d' ' -f1)"; done
exit 0
"""

_DISCARD = r"""
d=$1; shift
for n in "$@"; do rm -f "$d/$n"; done
"""


# A staged tar (a volume's data) unpacked into a container by the host's own `docker cp`.
_UNPACK = r"""
d=$1; n=$2; codec=$3; ctr=$4
case $codec in zstd) dec="zstd -dc";; none) dec=cat;; *) exit 97;; esac
s=$(mktemp) || exit 99
{ $dec < "$d/$n"; echo $? > "$s"; } | docker cp - "$ctr:/"
rc=$?
z=$(cat "$s"); rm -f "$s"
if [ "$z" != 0 ] && { [ "$z" != 141 ] || [ "$rc" = 0 ]; }; then
  echo "layerferry: the staged data did not decode on the host (exit $z)" >&2; exit 98
fi
exit $rc
"""

# The same, streamed (hosts without sha256sum cannot check staged files).
UNPACK_STREAM = r"""
codec=$1; ctr=$2
case $codec in zstd) dec="zstd -dc";; none) dec=cat;; *) exit 97;; esac
s=$(mktemp) || exit 99
{ $dec; echo $? > "$s"; } | docker cp - "$ctr:/"
rc=$?
z=$(cat "$s"); rm -f "$s"
if [ "$z" != 0 ] && { [ "$z" != 141 ] || [ "$rc" = 0 ]; }; then
  echo "layerferry: the data stream broke on the host (decoder exit $z)" >&2; exit 98
fi
exit $rc
"""

# Stage and load in one pass. The units come in-band on stdin, each after a record line:
#   U NAME WANT SIZE FROM   FROM "staged" (a checked copy is there: no bytes follow) or the
#                           offset at which its SIZE-FROM bytes follow (the bytes before are in
#                           this run's part file);
#   S KEY FROM NEED         a unit streamed while it is still being made: chunks "LEN\n" + LEN
#                           bytes, "0\n", then "E NAME WANT SIZE" once its digest is known. KEY
#                           names its part (FROM > 0: this run's part holds the bytes before);
#                           the engine must have NEED KiB free for it (checked first);
#   R NEED                  the engine must have NEED KiB free for what follows (checked now);
#   T                       the tail of the archive follows, to the end of the input.
# Each unit's bytes are appended to its part file and, at the same time, fed to `docker load`;
# the part is checked with sha256sum and renamed when whole. The tail (the image configs and
# manifests, all that names an image) is passed on only once every unit has checked out, and
# input that ends before "T" passes none: a short, damaged or abandoned unit leaves the engine an
# archive without images, so nothing is tagged. Names must be content digests (they become paths).
# Markers on stdout: ok|bad|short|gone NAME …, space FREE_KIB. Exit 90: a unit failed (see
# the markers); 95: no room for the job; 96: the engine lacks room; 98: the stream did not decode.
# The engine's answer is kept in the job's directory and passed on at the end, and the staged
# units go once it loaded: a client that vanished while the last bytes were still on their way
# (ssh relays them) must not turn a finished load into a failed one that leaves its units behind.
# (Its errors go straight to stderr: they are what the client reports, even if no file is free.)
_SEND_LOAD = r"""
d=$1; j=$2; codec=$3; run=$4; need=$5; root=$6
case $codec in zstd) dec="zstd -dc";; gzip) dec="gzip -dc";; none) dec=cat;; *) exit 97;; esac
mkdir -p "$d" && chmod 700 "$d" || exit 95
exec 3>&1  # markers; inside feed, stdout is the engine's input
# The engine's disk must have $need KiB free (its data root, $root, when it is known here).
room() {
  [ -n "$root" ] && [ -d "$root" ] || return 0
  free=$(df -Pk "$root" | awk 'NR==2 {print $4}')
  if [ -n "$free" ] && [ "$free" -lt "$need" ]; then echo "space $free" >&3; return 1; fi
}
room || exit 96
mkdir "$d/$j" || exit 95
# Exactly N bytes of stdin, never more (busybox `head -c` reads ahead; dd does not).
take() { dd bs=65536 count="$1" iflag=count_bytes,fullblock 2>/dev/null; }
# Held while a part is written, so another run's claim leaves it alone (see _CLAIM).
lock() { exec 5>>"$1"; command -v flock >/dev/null 2>&1 && flock -n 5; }
named() {
  x=${1%.*}
  case $x in ''|*[!0-9a-f]*) return 1;; esac
  case $1 in *.zst|*.gz|*.tar) [ ${#x} -eq 64 ];; *) return 1;; esac
}
number() { case $1 in ''|*[!0-9]*) return 1;; esac; }
chunks() { while read -r len && number "$len" && [ "$len" -gt 0 ]; do take "$len"; done; }
# The part $p of unit $1 (want $2, size $3) is complete: check it, rename it, say so.
settle() {
  have=$(wc -c < "$p")
  if [ "$have" -ne "$3" ]; then
    echo "short $1 $have $(df -Pk "$d" | awk 'NR==2 {print $4}')" >&3; return 1
  fi
  [ -n "$rehash" ] && sha256sum < "$p" > "$h"
  got=$(cut -d' ' -f1 < "$h")
  if [ "$got" = "$2" ] && mv -f "$p" "$d/$1"; then
    echo "ok $1" >&3
  else
    rm -f "$p"; bad=1; echo "bad $1 $got" >&3
  fi
  exec 5>&-
}
feed() {
  trap '' PIPE
  bad=
  while read -r kind n want size from; do
    case $kind in
    T) [ -z "$bad" ] || return 1; cat 2>/dev/null; return 0;;
    U) named "$n" && number "$size" || return 1
      echo "$n" >> "$s/names"
      if [ "$from" = staged ]; then
        ln "$d/$n" "$d/$j/$n" 2>/dev/null || { echo "gone $n" >&3; return 1; }
        cat "$d/$j/$n" 2>/dev/null
        continue
      fi
      number "$from" || return 1
      p="$d/$n.part.$run"; h="$d/$j/$n.sum"; rehash=
      if [ "$from" -gt 0 ]; then
        # A part another run took away is gone. Writes to an engine that stopped reading fail
        # quietly (as tee's do): the unit is still staged and checked, and the engine's own
        # error stays the last line the client reads.
        [ -f "$p" ] || { echo "gone $n" >&3; return 1; }
        lock "$p"; rehash=1
        cat "$p" 2>/dev/null
        take "$((size - from))" | tee -a "$p"
      else
        # A new unit is hashed as it arrives (through a FIFO), so its check costs no re-read.
        rm -f "$p"; lock "$p"; q="$d/$j/$n.fifo"
        mkfifo "$q" || return 1
        sha256sum < "$q" > "$h" &
        take "$size" | tee -a "$p" "$q"
        wait
      fi
      settle "$n" "$want" "$size" || return 1;;
    S) from=$want; need=$size
      named "$n" && number "$from" && number "$need" || return 1
      room || return 1
      p="$d/$n.part.$run"; h="$d/$j/$n.sum"; rehash=
      if [ "$from" -gt 0 ]; then
        [ -f "$p" ] || { echo "gone $n" >&3; return 1; }
        lock "$p"; rehash=1
        cat "$p" 2>/dev/null
        chunks | tee -a "$p"
      else
        rm -f "$p"; lock "$p"; q="$d/$j/$n.fifo"
        mkfifo "$q" || return 1
        sha256sum < "$q" > "$h" &
        chunks | tee -a "$p" "$q"
        wait
      fi
      read -r e n want size || return 1
      [ "$e" = E ] && named "$n" && number "$size" || return 1
      echo "$n" >> "$s/names"
      settle "$n" "$want" "$size" || return 1;;
    R) number "$n" || return 1; need=$n; room || return 1;;
    *) return 1;;
    esac
  done
  return 1
}
s=$(mktemp -d) || exit 95
: > "$s/names"
{ feed; echo $? > "$s/feed"; } | { $dec; echo $? > "$s/dec"; } | docker load >"$d/$j/out"
rc=$?
f=$(cat "$s/feed"); z=$(cat "$s/dec")
if [ "$rc" = 0 ]; then
  while read -r n; do rm -f "$d/$n"; done < "$s/names"
fi
trap '' PIPE
cat "$d/$j/out"; rm -rf "$d/$j"
if [ "$f" != 0 ]; then rm -rf "$s"; exit 90; fi
if [ "$z" != 0 ] && { [ "$z" != 141 ] || [ "$rc" = 0 ]; }; then
  rm -rf "$s"
  echo "layerferry: the staged data did not decode on the host (exit $z)" >&2; exit 98
fi
rm -rf "$s"
exit $rc
"""

_CLEANUP = r"""
d=$1; j=$2; shift 2
rm -rf "$d/$j"
for n in "$@"; do rm -f "$d/$n"; done
exit 0
"""


@dataclass
class StagingState:
    """What the host already holds: complete units, half-sent parts, free space (KiB)."""

    done: dict[str, int] = field(default_factory=dict)
    parts: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    free_staging_kib: int | None = None


def state_from_listing(files: Iterable[tuple[str, int]], free_kib: int | None) -> StagingState:
    """The staging state from a listing of the directory (the probe's)."""
    state = StagingState(free_staging_kib=free_kib)
    for name, size in files:
        unit, _, run = name.partition(".part.")
        if not _NAME.match(unit):
            continue
        if run:
            state.parts.setdefault(unit, []).append((run, size))
        else:
            state.done[unit] = size
    return state


@dataclass(frozen=True)
class UnitPlan:
    """One unit of a :meth:`RemoteStaging.send_and_load`: staged already, or sent from *offset*."""

    name: str
    want_hex: str
    size: int
    offset: int | None
    """None: a checked copy is staged on the host; else the bytes from here on follow."""


CLEANUP_AFTER_CUT_SECONDS = 2.0
"""How long a cut send waits for its clean-up command before leaving it to the host's script."""

TAIL = b"T\n"
"""The record after which the archive's tail follows (see ``_SEND_LOAD``)."""


def unit_record(unit: UnitPlan) -> bytes:
    """The record before a unit's bytes (none follow for a staged one)."""
    if not re.fullmatch(r"[0-9a-f]{64}", unit.want_hex):
        raise ValueError(f"not a sha256: {unit.want_hex!r}")
    name = _check_names([unit.name])[0]
    start = "staged" if unit.offset is None else str(unit.offset)
    return f"U {name} {unit.want_hex} {unit.size} {start}\n".encode()


def stream_start(key: str, offset: int, need_kib: int = 0) -> bytes:
    """The record before a unit streamed while it is made; its part is named by *key*, and
    the engine must have *need_kib* free for it."""
    return f"S {_check_names([key])[0]} {offset} {need_kib}\n".encode()


def room_record(need_kib: int) -> bytes:
    """A record that makes the host check, before what follows, that the engine has
    *need_kib* free (a load already running checks what is left to send)."""
    return f"R {int(need_kib)}\n".encode()


SLICE = 256 * 1024
"""Bytes written to a host at a time: a write blocked on a slow link reaches the next check
for Ctrl-C soon (at 1 Mbit/s, 2 s; a 4 MiB chunk would take over 30 s)."""


def slices(data: bytes) -> Iterator[bytes]:
    """*data* in pieces of at most :data:`SLICE` bytes."""
    if len(data) <= SLICE:
        yield data
        return
    view = memoryview(data)
    for start in range(0, len(data), SLICE):
        yield bytes(view[start : start + SLICE])


def stream_chunk(data: bytes) -> list[bytes]:
    """One chunk of a streamed unit (an empty one would end it, so none is made)."""
    return [f"{len(data)}\n".encode(), data] if data else []


def stream_end(name: str, want_hex: str, size: int) -> bytes:
    """The end of a streamed unit: its name, digest and size, known now that it is made."""
    if not re.fullmatch(r"[0-9a-f]{64}", want_hex):
        raise ValueError(f"not a sha256: {want_hex!r}")
    return f"0\nE {_check_names([name])[0]} {want_hex} {size}\n".encode()


@dataclass
class LoadMarks:
    """What the host said of each unit during a :meth:`RemoteStaging.send_and_load`."""

    ok: set[str] = field(default_factory=set)
    bad: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    short: dict[str, int] = field(default_factory=dict)
    free_kib: int | None = None
    """Set when the engine's disk had too little room: nothing was sent."""
    staging_free_kib: int | None = None
    """Room left in staging when a unit stopped short (none: the disk filled up)."""


def parse_marks(text: str) -> LoadMarks:
    marks = LoadMarks()
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("ok", "bad", "gone") and _NAME.match(words[1]):
            getattr(marks, words[0]).add(words[1])
        elif len(words) >= 3 and words[0] == "short" and words[2].isdigit():
            marks.short[words[1]] = int(words[2])
            if len(words) == 4 and words[3].isdigit():
                marks.staging_free_kib = int(words[3])
        elif len(words) == 2 and words[0] == "space" and words[1].isdigit():
            marks.free_kib = int(words[1])
    return marks


def parse_query(text: str) -> StagingState:
    state = StagingState()
    for line in text.splitlines():
        words = line.split()
        if len(words) == 4 and words[0] == "part" and words[3].isdigit():
            state.parts.setdefault(words[1], []).append((words[2], int(words[3])))
        elif len(words) == 3 and words[0] == "done" and words[2].isdigit():
            state.done[words[1]] = int(words[2])
        elif len(words) == 3 and words[:2] == ["free", "staging"] and words[2].isdigit():
            state.free_staging_kib = int(words[2])
    return state


def _check_names(names: Iterable[str]) -> list[str]:
    checked = list(names)
    for name in checked:
        if not _NAME.match(name):
            raise ValueError(f"not a unit name: {name!r}")
    return checked


class RemoteStaging:
    """The staging directory of one host, driven over that host's SSH session."""

    def __init__(self, session: SshSession, directory: str) -> None:
        self.session = session
        self.directory = directory
        self.run_id = secrets.token_hex(6)

    @property
    def where(self) -> str:
        return str(self.session.target)

    def _script(
        self,
        script: str,
        args: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 300,
    ) -> CommandResult:
        return self.session.run(["sh", "-c", script, "sh", *args], check=check, timeout=timeout)

    def query(self, names: Sequence[str]) -> StagingState:
        result = self._script(_QUERY, [self.directory, *_check_names(names)])
        return parse_query(result.text)

    def claim(self, name: str, old_run: str, as_name: str | None = None) -> tuple[int, str] | None:
        """Take over another run's part file of *name* (as this run's part of *as_name*, when
        given); returns its (size, sha256) or None if it is gone or still being written."""
        if not re.fullmatch(r"[0-9a-zA-Z]+", old_run):
            return None
        args = [self.directory, *_check_names([name]), old_run, self.run_id]
        if as_name is not None:
            args += _check_names([as_name])
        result = self._script(_CLAIM, args, check=False)
        words = result.text.split()
        if result.returncode != 0 or len(words) != 2 or not words[0].isdigit():
            return None
        return int(words[0]), words[1]

    def upload(self, name: str, want_hex: str, size: int, chunks: Iterable[bytes]) -> bool:
        """Append *chunks* to this run's part; True once the whole unit hashes to *want_hex*.

        False means the bytes arrived complete but wrong (the part is gone: send it all again).
        A part left short (the stream stopped early) stays for the next run to resume.
        """
        argv = ["sh", "-c", _UPLOAD, "sh", self.directory, *_check_names([name])]
        argv += [self.run_id, want_hex, str(size)]
        result = self.session.pipe_in(argv, chunks)
        if result.returncode != 0:
            raise RemoteError(
                f"{self.where}: staging {name[:12]} failed: {last_line(result.stderr)}",
                hint="run the same command again: it resumes where it stopped",
            )
        answer = result.text.strip()
        if answer == "ok":
            return True
        if answer.startswith("bad"):
            return False
        if answer.startswith("short"):
            raise RemoteError(
                f"{self.where}: staging {name[:12]} stopped early ({answer.split()[-1]} of {size} bytes)",
                hint="run the same command again: it resumes where it stopped",
            )
        raise RemoteError(f"{self.where}: staging {name[:12]}: unexpected answer {answer[:80]!r}")

    def discard_part(self, name: str) -> None:
        """Drop this run's part of *name* (its bytes did not match ours)."""
        self._script(
            _DISCARD, [self.directory, f"{_check_names([name])[0]}.part.{self.run_id}"], check=False
        )

    def discard(self, names: Sequence[str]) -> None:
        self._script(_DISCARD, [self.directory, *_check_names(names)])

    def hashes(self, names: Sequence[str]) -> dict[str, str]:
        """sha256 of staged units, computed on the host (catches damage since they were staged)."""
        result = self._script(_HASH, [self.directory, *_check_names(names)])
        out: dict[str, str] = {}
        for line in result.text.splitlines():
            words = line.split()
            if len(words) == 2:
                out[words[0]] = words[1]
        return out

    def send_and_load(
        self, codec: str, need_kib: int, engine_root: str, records: Iterable[bytes]
    ) -> tuple[CommandResult, LoadMarks]:
        """Stage units and run ``docker load`` on them in one pass (see ``_SEND_LOAD``).

        *records* is the command's whole input: unit records (:func:`unit_record`, or a stream
        made with :func:`stream_start`, :func:`stream_chunk` and :func:`stream_end`), then
        :data:`TAIL` and the archive's tail. Units it staged stay staged unless the load succeeded.
        """
        job = f"job-{self.run_id}-{secrets.token_hex(3)}"
        argv = ["sh", "-c", _SEND_LOAD, "sh", self.directory, job, codec, self.run_id]
        argv += [str(need_kib), engine_root]
        try:
            result = self.session.pipe_in(argv, records)
        except BaseException:
            # Cut here (Ctrl-C, a lost link): the host's script removes its job when its input
            # ends, but possibly after we are gone; the staged units and parts are kept.
            # Not for long: the shared connection may still carry what the cut command left
            # in its buffers (at 1 Mbit/s, ~2 MB is 16 s), and the script cleans up after itself.
            with contextlib.suppress(LayerferryError, subprocess.TimeoutExpired):
                self.cleanup(job, [], timeout=CLEANUP_AFTER_CUT_SECONDS)
            raise
        return result, parse_marks(result.text)

    def unpack(self, name: str, codec: str, container: str) -> None:
        """Unpack the staged tar *name* into *container* at ``/`` with the host's ``docker cp``."""
        if not re.fullmatch(r"[0-9a-f]{12,64}", container):
            raise ValueError(f"not a container ID: {container!r}")
        args = [self.directory, *_check_names([name]), codec, container]
        result = self._script(_UNPACK, args, check=False)
        if result.returncode != 0:
            raise RemoteError(
                f"{self.where}: unpacking {name[:12]} into container {container[:12]} failed: "
                f"{last_line(result.stderr)}"
            )

    def cleanup(
        self, job: str | None, names: Sequence[str], *, timeout: float | None = 300
    ) -> None:
        args = [self.directory, job or f"job-{self.run_id}", *_check_names(names)]
        self._script(_CLEANUP, args, check=False, timeout=timeout)


def last_line(data: bytes) -> str:
    """The last non-blank line of a remote command's output (for one-line errors)."""
    lines = [ln.strip() for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"
