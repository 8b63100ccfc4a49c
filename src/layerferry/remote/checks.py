"""Facts about a target host that its engine does not tell: which paths exist (bind sources,
devices) and which ports something already listens on.

One constant script answers both in one round trip; paths reach it as positional parameters
(``sh -c SCRIPT sh PATH…``) and come back by number, never echoed. Listening sockets are read
from ``/proc/net/{tcp,udp}{,6}`` (no ``ss`` or ``netstat`` needed). Over SSH the script runs on
the host; for the local engine it runs here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import LayerferryError
from .session import SshSession

_CHECK = r"""
mode=paths; i=0
for a in "$@"; do
  if [ "$a" = "--ports" ]; then mode=ports; continue; fi
  i=$((i+1))
  if [ -e "$a" ]; then echo "path $i yes"; else echo "path $i no"; fi
done
[ "$mode" = ports ] || exit 0
for f in /proc/net/tcp /proc/net/tcp6; do
  [ -r "$f" ] || continue
  while read -r _ l _ st _; do
    [ "$st" = 0A ] && echo "listen tcp $((0x${l##*:}))"
  done < "$f"
done
for f in /proc/net/udp /proc/net/udp6; do
  [ -r "$f" ] || continue
  while read -r _ l _ st _; do
    [ "$st" = 07 ] && echo "listen udp $((0x${l##*:}))"
  done < "$f"
done
exit 0
"""


@dataclass(frozen=True)
class HostFacts:
    missing: frozenset[str] = frozenset()
    """Paths asked about that do not exist."""
    listening: frozenset[tuple[str, int]] = field(default_factory=frozenset)
    """(protocol, port) something listens on; empty when ports were not asked about."""


def parse_facts(text: str, paths: Sequence[str]) -> HostFacts:
    missing: set[str] = set()
    listening: set[tuple[str, int]] = set()
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "path" and words[1].isdigit() and words[2] == "no":
            index = int(words[1]) - 1
            if 0 <= index < len(paths):
                missing.add(paths[index])
        elif len(words) == 3 and words[0] == "listen" and words[2].isdigit():
            listening.add((words[1], int(words[2])))
    return HostFacts(frozenset(missing), frozenset(listening))


def _args(paths: Sequence[str], ports: bool) -> list[str]:
    for path in paths:
        if not path.startswith("/"):
            raise ValueError(f"not an absolute path: {path!r}")
    return ["sh", "-c", _CHECK, "sh", *paths, *(["--ports"] if ports else [])]


def remote_facts(session: SshSession, paths: Sequence[str]) -> HostFacts:
    """Paths and listening ports on the host behind *session*."""
    result = session.run(_args(paths, True))
    return parse_facts(result.text, paths)


def local_facts(paths: Sequence[str]) -> HostFacts:
    """Paths on this machine (the local engine's). Ports are not probed here: this process may
    sit in another network namespace than the engine, and the engine's own containers answer
    for the ports it publishes."""
    try:
        result = subprocess.run(_args(paths, False), capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise LayerferryError(f"checking paths on this machine failed: {exc}") from exc
    return parse_facts(result.stdout.decode(errors="replace"), paths)
