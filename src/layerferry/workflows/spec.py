"""A container's run configuration, read from one engine's inspect and written as another's create.

The engine's inspect document and its create body share their shape (``Config`` + ``HostConfig``),
so the spec carries them over whole, minus what only made sense on the source: its ID-derived
hostname, a container-ID file, legacy links.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_CONFIG_KEYS = (
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "NetworkDisabled",
    "MacAddress",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
)
_HOST_CONFIG_DROP = ("ContainerIDFile", "Links")


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    was_running: bool
    was_paused: bool
    mounts: list[dict[str, Any]] = field(default_factory=list)
    """The engine's own list of what is mounted (named, anonymous and image-declared volumes, binds)."""

    @classmethod
    def from_inspect(cls, data: dict[str, Any]) -> ContainerSpec:
        config = {k: v for k, v in (data.get("Config") or {}).items() if k in _CONFIG_KEYS}
        if config.get("Hostname") == str(data.get("Id", ""))[:12]:
            del config["Hostname"]  # the engine's default, derived from the source's ID
        host_config = {
            k: v for k, v in (data.get("HostConfig") or {}).items() if k not in _HOST_CONFIG_DROP
        }
        state = data.get("State") or {}
        return cls(
            name=str(data.get("Name", "")).lstrip("/"),
            config=config,
            host_config=host_config,
            was_running=bool(state.get("Running")),
            was_paused=bool(state.get("Paused")),
            mounts=[m for m in data.get("Mounts") or [] if isinstance(m, dict)],
        )

    def create_body(self, image: str) -> dict[str, Any]:
        return {**self.config, "Image": image, "HostConfig": self.host_config}

    @property
    def network_mode(self) -> str:
        return str(self.host_config.get("NetworkMode") or "default")

    @property
    def named_volumes(self) -> list[str]:
        """Named volumes the container uses (their data is not in a commit)."""
        names = []
        for bind in self.host_config.get("Binds") or []:
            source = str(bind).split(":", 1)[0]
            if source and not source.startswith("/"):
                names.append(source)
        for mount in self.host_config.get("Mounts") or []:
            if mount.get("Type") == "volume" and mount.get("Source"):
                names.append(str(mount["Source"]))
        return names

    @property
    def mounts_left_behind(self) -> list[str]:
        """One warning per mount whose data a commit does not carry (case C26)."""
        warnings = []
        for mount in self.mounts:
            where = mount.get("Destination", "?")
            if mount.get("Type") == "volume":
                name = str(mount.get("Name") or "")
                anonymous = len(name) == 64 and all(c in "0123456789abcdef" for c in name)
                kind = "an anonymous volume" if anonymous else f"volume {name!r}"
                warnings.append(
                    f"{where} is {kind}: its data is not part of a commit and stays behind "
                    "(the new container gets an empty one)"
                )
            elif mount.get("Type") == "bind":
                warnings.append(
                    f"{where} is bound from {mount.get('Source')} on this host: the target must have "
                    "that path, and its contents are not carried"
                )
        return warnings

    @property
    def published_ports(self) -> list[str]:
        out = []
        for container_port, bindings in sorted(
            (self.host_config.get("PortBindings") or {}).items()
        ):
            for binding in bindings or []:
                host_ip = binding.get("HostIp") or ""
                host_port = binding.get("HostPort") or ""
                out.append(f"{host_ip + ':' if host_ip else ''}{host_port}->{container_port}")
        return out
