"""A remote Docker host: one SSH session, a probe of what is there, and its engine's API.

The engine is reached through the session's multiplexed connection by forwarding a local unix
socket to the remote daemon's socket, so every API call costs a channel, not a new ssh process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from ..daemon.engine import Engine, EngineInfo, connect_socket
from ..errors import RemoteError, UnreachableError
from .session import SshSession
from .target import SshTarget

# Also lists what earlier runs left staged (see .staging), so a send needs no query of its own.
_PROBE = r"""
printf 'docker_host=%s\n' "${DOCKER_HOST-}"
c="${XDG_CACHE_HOME:-$HOME/.cache}"
printf 'cache=%s\n' "$c"
for t in docker zstd gzip sha256sum; do
  command -v "$t" >/dev/null 2>&1 && printf 'tool=%s\n' "$t"
done
d="$c/layerferry/staging"
if [ -d "$d" ]; then
  find "$d" -type f -mtime +6 -exec rm -f {} + 2>/dev/null
  find "$d" -type d -name 'job-*' -mtime +1 -exec rm -rf {} + 2>/dev/null
  for f in "$d"/*; do [ -f "$f" ] && printf 'staged=%s %s\n' "${f##*/}" "$(wc -c < "$f")"; done
fi
# Room where staging will be (it is made on the first send).
for x in "$d" "$c" "$HOME"; do
  [ -d "$x" ] && { printf 'free_staging=%s\n' "$(df -Pk "$x" | awk 'NR==2 {print $4}')"; break; }
done
exit 0
"""


@dataclass(frozen=True)
class HostProbe:
    docker_host: str
    cache_dir: str = ""
    tools: frozenset[str] = field(default_factory=frozenset)
    staged: tuple[tuple[str, int], ...] = ()
    """Files in the staging directory when the host was probed (name, size)."""
    free_staging_kib: int | None = None

    @property
    def staging_dir(self) -> str:
        return (
            f"{self.cache_dir}/layerferry/staging"
            if self.cache_dir
            else ".cache/layerferry/staging"
        )


def parse_probe(text: str) -> HostProbe:
    docker_host = ""
    cache_dir = ""
    tools: set[str] = set()
    staged: list[tuple[str, int]] = []
    free: int | None = None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "docker_host":
            docker_host = value.strip()
        elif key == "cache":
            cache_dir = value.strip()
        elif key == "tool":
            tools.add(value.strip())
        elif key == "staged":
            name, _, size = value.strip().partition(" ")
            if size.isdigit():
                staged.append((name, int(size)))
        elif key == "free_staging" and value.strip().isdigit():
            free = int(value.strip())
    return HostProbe(
        docker_host=docker_host,
        cache_dir=cache_dir,
        tools=frozenset(tools),
        staged=tuple(staged),
        free_staging_kib=free,
    )


def _remote_socket(target: SshTarget, docker_host: str) -> str:
    if not docker_host:
        return "/var/run/docker.sock"
    if docker_host.startswith("unix://"):
        return docker_host[len("unix://") :]
    raise RemoteError(
        f"{target}: DOCKER_HOST on the host is {docker_host!r}; only unix sockets are supported",
    )


class RemoteHost:
    """Use as a context manager: ``with RemoteHost.connect(target) as host: host.engine…``."""

    def __init__(
        self, session: SshSession, probe: HostProbe, engine: Engine, info: EngineInfo
    ) -> None:
        self.session = session
        self.probe = probe
        self.engine = engine
        self.info = info

    @property
    def target(self) -> SshTarget:
        return self.session.target

    @classmethod
    def connect(cls, target: SshTarget, *, ssh_config: Path | None = None) -> RemoteHost:
        session = SshSession(target, ssh_config=ssh_config).open()
        try:
            probe = parse_probe(session.run_script(_PROBE).text)
            if "docker" not in probe.tools:
                raise UnreachableError(
                    f"{target}: no `docker` command on the host",
                    hint="layerferry needs Docker on the target (and nothing else)",
                )
            local = session.forward_unix_socket(_remote_socket(target, probe.docker_host))
            engine = connect_socket(local, str(target))
            info = engine.info()
        except BaseException:
            session.close()
            raise
        return cls(session, probe, engine, info)

    def close(self) -> None:
        self.engine.close()
        self.session.close()

    def __enter__(self) -> RemoteHost:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
