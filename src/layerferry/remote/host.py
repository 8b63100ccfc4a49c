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

_PROBE = r"""
printf 'docker_host=%s\n' "${DOCKER_HOST-}"
printf 'cache=%s\n' "${XDG_CACHE_HOME:-$HOME/.cache}"
for t in docker zstd gzip sha256sum; do
  command -v "$t" >/dev/null 2>&1 && printf 'tool=%s\n' "$t"
done
exit 0
"""


@dataclass(frozen=True)
class HostProbe:
    docker_host: str
    cache_dir: str = ""
    tools: frozenset[str] = field(default_factory=frozenset)

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
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "docker_host":
            docker_host = value.strip()
        elif key == "cache":
            cache_dir = value.strip()
        elif key == "tool":
            tools.add(value.strip())
    return HostProbe(docker_host=docker_host, cache_dir=cache_dir, tools=frozenset(tools))


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
