"""Resumable, verified staging of layer units on a host, then one ``docker load`` from the staged files.

On the host, a private directory (``~/.cache/layerferry/staging``, mode 0700) holds units by
content digest. A unit arrives as ``NAME.part.RUN`` (appended to, so a cut transfer resumes from
its last byte after the prefix is checked), is checked with ``sha256sum`` there, and only then
renamed to ``NAME``. Two runs never write the same part file: a run claims an earlier run's part
by renaming it (atomic), so concurrent sends of the same image stay correct. A load links the
units it needs into a job directory first, so another run's clean-up cannot pull them away.

Every script here is constant text; paths and names reach it as positional parameters
(``sh -c SCRIPT sh ARG…``), each quoted by :class:`SshSession`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import RemoteError
from .session import CommandResult, SshSession

_NAME = re.compile(r"^[0-9a-f]{64}\.(zst|gz|tar)$")

_QUERY = r"""
d=$1; root=$2; shift 2
mkdir -p "$d" && chmod 700 "$d" || exit 1
# Staged data nobody came back for in a week (an abandoned transfer) is removed.
find "$d" -type f -mtime +7 -exec rm -f {} + 2>/dev/null
find "$d" -type d -name 'job-*' -mtime +1 -exec rm -rf {} + 2>/dev/null
for n in "$@"; do
  [ -f "$d/$n" ] && echo "done $n $(wc -c < "$d/$n")"
  for p in "$d/$n".part.*; do
    [ -f "$p" ] && echo "part $n ${p##*.part.} $(wc -c < "$p")"
  done
done
echo "free staging $(df -Pk "$d" | awk 'NR==2 {print $4}')"
[ -n "$root" ] && [ -d "$root" ] && echo "free engine $(df -Pk "$root" | awk 'NR==2 {print $4}')"
exit 0
"""

_CLAIM = r"""
d=$1; n=$2; old=$3; new=$4
mv "$d/$n.part.$old" "$d/$n.part.$new" 2>/dev/null || exit 3
echo "$(wc -c < "$d/$n.part.$new") $(sha256sum "$d/$n.part.$new" | cut -d' ' -f1)"
"""

_UPLOAD = r"""
d=$1; n=$2; run=$3; want=$4; size=$5
p="$d/$n.part.$run"
cat >> "$p" || exit 1
have=$(wc -c < "$p")
if [ "$have" -lt "$size" ]; then echo "short $have"; exit 0; fi
got=$(sha256sum "$p" | cut -d' ' -f1)
if [ "$have" -eq "$size" ] && [ "$got" = "$want" ]; then mv -f "$p" "$d/$n" && echo ok; exit 0; fi
rm -f "$p"; echo "bad $got"
"""

_PREPARE = r"""
d=$1; j=$2; shift 2
mkdir "$d/$j" || exit 1
for n in "$@"; do ln "$d/$n" "$d/$j/$n" || exit 1; done
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

# A decoder that died of SIGPIPE (141) lost its reader: then `docker`'s own error is the cause.
_LOAD = r"""
d=$1; j=$2; codec=$3; shift 3
case $codec in zstd) dec="zstd -dc";; gzip) dec="gzip -dc";; none) dec=cat;; *) exit 97;; esac
s=$(mktemp) || exit 99
{ { for n in "$@"; do cat "$d/$j/$n" || exit 1; done; cat; } | $dec; echo $? > "$s"; } | docker load
rc=$?
z=$(cat "$s"); rm -f "$s"
if [ "$z" != 0 ] && { [ "$z" != 141 ] || [ "$rc" = 0 ]; }; then
  echo "layerferry: the staged data did not decode on the host (exit $z)" >&2; exit 98
fi
exit $rc
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
    free_engine_kib: int | None = None


def parse_query(text: str) -> StagingState:
    state = StagingState()
    for line in text.splitlines():
        words = line.split()
        if len(words) == 4 and words[0] == "part" and words[3].isdigit():
            state.parts.setdefault(words[1], []).append((words[2], int(words[3])))
        elif len(words) == 3 and words[0] == "done" and words[2].isdigit():
            state.done[words[1]] = int(words[2])
        elif len(words) == 3 and words[0] == "free" and words[2].isdigit():
            if words[1] == "staging":
                state.free_staging_kib = int(words[2])
            elif words[1] == "engine":
                state.free_engine_kib = int(words[2])
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

    def _script(self, script: str, args: Sequence[str], *, check: bool = True) -> CommandResult:
        return self.session.run(["sh", "-c", script, "sh", *args], check=check)

    def query(self, names: Sequence[str], engine_root: str) -> StagingState:
        result = self._script(_QUERY, [self.directory, engine_root, *_check_names(names)])
        return parse_query(result.text)

    def claim(self, name: str, old_run: str) -> tuple[int, str] | None:
        """Take over another run's part file; returns its (size, sha256) or None if gone."""
        if not re.fullmatch(r"[0-9a-zA-Z]+", old_run):
            return None
        result = self._script(_CLAIM, [self.directory, name, old_run, self.run_id], check=False)
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
                f"{self.where}: staging {name[:12]} failed: {_last_line(result.stderr)}",
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

    def prepare(self, names: Sequence[str]) -> str:
        job = f"job-{self.run_id}"
        self._script(_PREPARE, [self.directory, job, *_check_names(names)])
        return job

    def hashes(self, names: Sequence[str]) -> dict[str, str]:
        """sha256 of staged units, computed on the host (catches damage since they were staged)."""
        result = self._script(_HASH, [self.directory, *_check_names(names)])
        out: dict[str, str] = {}
        for line in result.text.splitlines():
            words = line.split()
            if len(words) == 2:
                out[words[0]] = words[1]
        return out

    def load(
        self, job: str, codec: str, names: Sequence[str], tail: Iterable[bytes]
    ) -> CommandResult:
        argv = ["sh", "-c", _LOAD, "sh", self.directory, job, codec, *_check_names(names)]
        return self.session.pipe_in(argv, tail)

    def unpack(self, name: str, codec: str, container: str) -> None:
        """Unpack the staged tar *name* into *container* at ``/`` with the host's ``docker cp``."""
        if not re.fullmatch(r"[0-9a-f]{12,64}", container):
            raise ValueError(f"not a container ID: {container!r}")
        args = [self.directory, *_check_names([name]), codec, container]
        result = self._script(_UNPACK, args, check=False)
        if result.returncode != 0:
            raise RemoteError(
                f"{self.where}: unpacking {name[:12]} into container {container[:12]} failed: "
                f"{_last_line(result.stderr)}"
            )

    def cleanup(self, job: str | None, names: Sequence[str]) -> None:
        args = [self.directory, job or f"job-{self.run_id}", *_check_names(names)]
        self._script(_CLEANUP, args, check=False)


def _last_line(data: bytes) -> str:
    lines = [ln.strip() for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"
