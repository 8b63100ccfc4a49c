"""Facts about a target host that its engine does not tell: which paths exist (bind sources,
devices) and which of them hold something, which ports something already listens on, and which
addresses the host has (``ip -o addr``, ``/proc/net/fib_trie``, ``/proc/net/if_inet6``).

One constant script answers both in one round trip; paths reach it as positional parameters
(``sh -c SCRIPT sh PATH…``) and come back by number, never echoed. Listening sockets are read
from ``/proc/net/{tcp,udp}{,6}`` (no ``ss`` or ``netstat`` needed). Over SSH the script runs on
the host; for the local engine it runs here.
"""

from __future__ import annotations

import ipaddress
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
  if [ -d "$a" ]; then
    [ -n "$(ls -A "$a" 2>/dev/null)" ] && echo "full $i"
  elif [ -s "$a" ]; then echo "full $i"; fi
done
[ "$mode" = ports ] || exit 0
if command -v ip >/dev/null 2>&1; then
  ip -o addr show 2>/dev/null | while read -r _ _ _ a _; do echo "addr ${a%/*}"; done
fi
if [ -r /proc/net/fib_trie ]; then
  p=; while read -r x y _; do
    [ "$x $y" = "/32 host" ] && echo "addr $p"; [ "$x" = "|--" ] && p=$y
  done < /proc/net/fib_trie
fi
if [ -r /proc/net/if_inet6 ]; then
  while read -r a _; do echo "addr6 $a"; done < /proc/net/if_inet6
fi
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
    occupied: frozenset[str] = frozenset()
    """Paths asked about that exist and are not empty (a directory with entries, a file with
    bytes)."""
    addresses: frozenset[str] | None = None
    """The host's own IP addresses (normalized); None when unknown (not asked, not readable)."""

    def has_address(self, address: str) -> bool:
        """Whether *address* is one of the host's; True when that is unknown."""
        if self.addresses is None:
            return True
        try:
            return str(ipaddress.ip_address(address)) in self.addresses
        except ValueError:
            return False


def parse_facts(text: str, paths: Sequence[str]) -> HostFacts:
    missing: set[str] = set()
    occupied: set[str] = set()
    listening: set[tuple[str, int]] = set()
    addresses: set[str] = set()
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "path" and words[1].isdigit() and words[2] == "no":
            index = int(words[1]) - 1
            if 0 <= index < len(paths):
                missing.add(paths[index])
        elif len(words) == 2 and words[0] == "full" and words[1].isdigit():
            index = int(words[1]) - 1
            if 0 <= index < len(paths):
                occupied.add(paths[index])
        elif len(words) == 3 and words[0] == "listen" and words[2].isdigit():
            listening.add((words[1], int(words[2])))
        elif len(words) == 2 and words[0] in ("addr", "addr6"):
            address = _address(words[0], words[1])
            if address:
                addresses.add(address)
    return HostFacts(
        frozenset(missing),
        frozenset(listening),
        frozenset(occupied),
        frozenset(addresses) if addresses else None,
    )


def _address(kind: str, text: str) -> str:
    try:
        if kind == "addr6":  # /proc/net/if_inet6: 32 hex digits
            return str(ipaddress.IPv6Address(int(text, 16))) if len(text) == 32 else ""
        return str(ipaddress.ip_address(text.partition("%")[0]))
    except ValueError:
        return ""


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
