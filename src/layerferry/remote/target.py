"""``ssh://[user@]host[:port]`` targets, validated so no part can be read as an ssh option."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError

_HOST_RE = re.compile(r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])$")
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class SshTarget:
    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, url: str) -> SshTarget:
        if not url.startswith("ssh://"):
            raise UsageError(
                f"invalid host {url!r}: expected ssh://[user@]host[:port]",
                hint="for example ssh://root@web2 or ssh://web2:2222 (a Host alias from ~/.ssh/config works)",
            )
        rest = url[len("ssh://") :].rstrip("/")
        user: str | None = None
        if "@" in rest:
            user, rest = rest.rsplit("@", 1)
            if not _USER_RE.match(user):
                raise UsageError(f"invalid user {user!r} in {url!r}")
        host, port = rest, None
        if rest.startswith("["):
            end = rest.find("]")
            host, tail = rest[: end + 1], rest[end + 1 :]
            if tail:
                port = _port(tail.removeprefix(":"), url)
        elif ":" in rest:
            host, raw_port = rest.rsplit(":", 1)
            port = _port(raw_port, url)
        if not _HOST_RE.match(host):
            raise UsageError(f"invalid host name {host!r} in {url!r}")
        return cls(host=host, user=user, port=port)

    @property
    def destination(self) -> str:
        """The ``user@host`` word handed to ssh (after ``--``, so it is never an option)."""
        host = self.host.strip("[]")
        return f"{self.user}@{host}" if self.user else host

    def __str__(self) -> str:
        text = "ssh://"
        if self.user:
            text += f"{self.user}@"
        text += self.host
        if self.port:
            text += f":{self.port}"
        return text


def _port(raw: str, url: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise UsageError(f"invalid port {raw!r} in {url!r}")
    return int(raw)
