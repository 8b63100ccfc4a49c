"""A container's run configuration: everything ``docker run`` can set, read from one engine's
inspect and written as another engine's create body.

The engine's inspect document and its create body share their shape (``Config`` + ``HostConfig``),
so most of the configuration is carried over as it is. What needs reasoning gets a typed field:
published ports (a port may be taken on the target), mounts (a volume's data may travel, a bind
path may be missing), devices, and networks (user-defined ones are created on the target).

``Config`` keeps only *overrides*: a value equal to the image's own default is left for the image
to supply (so the spec says what the user chose, not what the image already says). Entrypoint and
Cmd go together: an overridden entrypoint resets the image's Cmd in the engine, so both are sent.
``HostConfig`` drops what only made sense on the source (a container-ID file, legacy links),
empty values, and every value equal to the source *engine's* default for the image (learned from
a reference container created there with no options, see :func:`.capture.engine_defaults`):
those the target engine fills with its own (a newer engine masks more paths, names the default
network ``bridge``, …), so only what the user chose travels. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

_CONFIG_BOOLS = (
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "NetworkDisabled",
)
_CONFIG_SCALARS = ("User", "WorkingDir", "StopSignal", "Domainname", "MacAddress")
_CONFIG_COMPARED = ("Healthcheck", "Shell")
_CONFIG_KEYED = ("ExposedPorts", "Volumes")
#: Links need the other container there under the same name; legacy, not carried (reported).
_HOST_CONFIG_DROP = ("ContainerIDFile", "Links", "ConsoleSize")
#: Zero that means something other than "the default" (null is the default).
_MEANINGFUL_ZERO = ("MemorySwappiness",)
BUILTIN_NETWORKS = frozenset({"default", "bridge", "host", "none"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _empty(key: str, value: Any) -> bool:
    if value is None or value is False or value in ("", [], {}):
        return True
    return value == 0 and not isinstance(value, bool) and key not in _MEANINGFUL_ZERO


def drop_empty(values: dict[str, Any]) -> dict[str, Any]:
    """*values* without the keys whose value is an engine default (None, 0, "", [], {}, False)."""
    return {k: v for k, v in values.items() if not _empty(k, v)}


def canonical_host_value(key: str, value: Any) -> Any:
    """*value* of HostConfig *key* in one spelling: the default network is ``default`` to older
    engines and ``bridge`` to newer ones (API 1.44+), the same network either way; a restart
    policy without a name is ``no``."""
    if key == "NetworkMode" and value in ("default", "bridge"):
        return "bridge"
    if key == "RestartPolicy" and isinstance(value, dict) and not value.get("Name"):
        return {**value, "Name": "no"}  # unset (an API client) or "no" (the CLI): never
    return value


def drop_defaults(values: dict[str, Any], defaults: dict[str, Any] | None) -> dict[str, Any]:
    """*values* (a ``HostConfig``) without empty values and those equal to *defaults* (the
    ``HostConfig`` of a container the same engine made with no options)."""
    known = defaults or {}
    return {
        k: v
        for k, v in drop_empty(values).items()
        if k not in known or canonical_host_value(k, v) != canonical_host_value(k, known[k])
    }


@dataclass(frozen=True)
class PortBinding:
    container_port: str
    """``80/tcp``"""
    host_ip: str
    host_port: str
    """``8080``, a range ``8000-8010``, or "" (the engine picks one)."""

    @property
    def protocol(self) -> str:
        return self.container_port.partition("/")[2] or "tcp"

    @property
    def fixed_port(self) -> int | None:
        """The one host port this binding takes, or None (engine-chosen or a range)."""
        return int(self.host_port) if self.host_port.isdigit() else None

    def __str__(self) -> str:
        host = f"{self.host_ip}:" if self.host_ip else ""
        return f"{host}{self.host_port}->{self.container_port}"


@dataclass(frozen=True)
class MountSpec:
    """One mount as the engine reports it (inspect ``Mounts``), plus whether it was named."""

    type: str
    """``volume``, ``bind`` or ``tmpfs``"""
    destination: str
    source: str
    """The volume's name (anonymous ones too: a random name), or the bind's host path."""
    read_only: bool = False
    propagation: str = ""
    driver: str = ""
    anonymous: bool = False
    """A volume the engine made up (image ``VOLUME`` or ``-v /path``): new on every host."""

    @property
    def label(self) -> str:
        if self.type == "volume":
            return (
                f"anonymous volume at {self.destination}"
                if self.anonymous
                else f"volume {self.source!r}"
            )
        return f"{self.type} {self.source} at {self.destination}"


@dataclass(frozen=True)
class VolumeDef:
    """How a named volume is made: driver, its options, labels."""

    name: str
    driver: str = "local"
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointSpec:
    """The container on one user-defined network: its aliases and static addresses."""

    network: str
    aliases: tuple[str, ...] = ()
    ipv4: str = ""
    ipv6: str = ""
    driver_opts: dict[str, str] = field(default_factory=dict)

    def endpoint_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        if self.aliases:
            config["Aliases"] = list(self.aliases)
        ipam = drop_empty({"IPv4Address": self.ipv4, "IPv6Address": self.ipv6})
        if ipam:
            config["IPAMConfig"] = ipam
        if self.driver_opts:
            config["DriverOpts"] = dict(self.driver_opts)
        return config


@dataclass(frozen=True)
class NetworkDef:
    """How a user-defined network is made: driver, options, address pools."""

    name: str
    driver: str = "bridge"
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    subnets: tuple[dict[str, str], ...] = ()
    """IPAM pools: ``Subnet``, ``Gateway``, ``IPRange``."""
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False

    @classmethod
    def from_inspect(cls, data: dict[str, Any]) -> NetworkDef:
        ipam = data.get("IPAM") or {}
        pools = tuple(
            {k: str(v) for k, v in pool.items() if k in ("Subnet", "Gateway", "IPRange") and v}
            for pool in ipam.get("Config") or []
        )
        return cls(
            name=str(data.get("Name", "")),
            driver=str(data.get("Driver") or "bridge"),
            options={str(k): str(v) for k, v in (data.get("Options") or {}).items()},
            labels={str(k): str(v) for k, v in (data.get("Labels") or {}).items()},
            subnets=tuple(p for p in pools if p),
            internal=bool(data.get("Internal")),
            attachable=bool(data.get("Attachable")),
            enable_ipv6=bool(data.get("EnableIPv6")),
        )

    def create_body(self, *, with_subnets: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Driver": self.driver,
            "Options": dict(self.options),
            "Labels": dict(self.labels),
            "Internal": self.internal,
            "Attachable": self.attachable,
            "EnableIPv6": self.enable_ipv6,
            "CheckDuplicate": True,
        }
        if with_subnets and self.subnets:
            body["IPAM"] = {"Driver": "default", "Config": [dict(p) for p in self.subnets]}
        return body


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    config: dict[str, Any]
    """``Config`` overrides: only values that differ from the image's defaults."""
    host_config: dict[str, Any]
    was_running: bool = False
    was_paused: bool = False
    image: str = ""
    """The image as the container names it (``Config.Image``)."""
    image_id: str = ""
    mounts: tuple[MountSpec, ...] = ()
    volumes: tuple[VolumeDef, ...] = ()
    """Definitions of the named volumes the container uses."""
    endpoints: tuple[EndpointSpec, ...] = ()
    """User-defined networks, the one of ``NetworkMode`` first."""
    networks: tuple[NetworkDef, ...] = ()
    not_carried: tuple[str, ...] = ()
    """What cannot be recreated and is left out (told to the user)."""

    # -- reading ------------------------------------------------------------------------------
    @classmethod
    def from_inspect(
        cls,
        data: dict[str, Any],
        image_config: dict[str, Any] | None = None,
        *,
        volumes: dict[str, VolumeDef] | None = None,
        networks: dict[str, NetworkDef] | None = None,
        engine_defaults: dict[str, Any] | None = None,
    ) -> ContainerSpec:
        """The spec of a container from its inspect document, its image's ``Config`` and the
        inspect of the named volumes and user-defined networks it uses (when known);
        *engine_defaults*: the ``HostConfig`` the engine gives that image with no options (its
        values are left for the target engine to choose)."""
        container_id = str(data.get("Id", ""))
        config = config_overrides(data.get("Config") or {}, image_config or {}, container_id)
        raw_host = data.get("HostConfig") or {}
        host_config = drop_defaults(
            {k: v for k, v in raw_host.items() if k not in _HOST_CONFIG_DROP}, engine_defaults
        )
        not_carried = []
        if raw_host.get("Links"):
            not_carried.append("legacy links (--link): " + ", ".join(map(str, raw_host["Links"])))
        mounts = tuple(_mounts(data))
        named = [m.source for m in mounts if m.type == "volume" and not m.anonymous]
        known_volumes = volumes or {}
        endpoints = tuple(_endpoints(data, container_id))
        known_networks = networks or {}
        state = data.get("State") or {}
        return cls(
            name=str(data.get("Name", "")).lstrip("/"),
            config=config,
            host_config=host_config,
            was_running=bool(state.get("Running")),
            was_paused=bool(state.get("Paused")),
            image=str((data.get("Config") or {}).get("Image") or ""),
            image_id=str(data.get("Image") or ""),
            mounts=mounts,
            volumes=tuple(known_volumes.get(n) or VolumeDef(n) for n in dict.fromkeys(named)),
            endpoints=endpoints,
            networks=tuple(
                known_networks[e.network] for e in endpoints if e.network in known_networks
            ),
            not_carried=tuple(not_carried),
        )

    # -- writing ------------------------------------------------------------------------------
    def create_body(self, image: str) -> dict[str, Any]:
        """``POST /containers/create`` for this spec from *image*; extra networks are attached
        afterwards (:attr:`extra_endpoints`): engines before API 1.44 take one at create."""
        body: dict[str, Any] = {**self.config, "Image": image, "HostConfig": dict(self.host_config)}
        primary = self.primary_endpoint
        if primary is not None:
            body["NetworkingConfig"] = {
                "EndpointsConfig": {primary.network: primary.endpoint_config()}
            }
        return body

    @property
    def network_mode(self) -> str:
        return str(self.host_config.get("NetworkMode") or "default")

    @property
    def primary_endpoint(self) -> EndpointSpec | None:
        return next((e for e in self.endpoints if e.network == self.network_mode), None)

    @property
    def extra_endpoints(self) -> list[EndpointSpec]:
        return [e for e in self.endpoints if e.network != self.network_mode]

    @property
    def named_volumes(self) -> list[str]:
        """Named volumes the container uses (their data is not in a commit)."""
        from_mounts = [m.source for m in self.mounts if m.type == "volume" and not m.anonymous]
        if from_mounts or self.mounts:
            return from_mounts
        return _named_in_host_config(self.host_config)  # a spec read without inspect Mounts

    @property
    def data_mounts(self) -> list[MountSpec]:
        """Volumes, named and anonymous: data that lives outside the container's layer."""
        return [m for m in self.mounts if m.type == "volume"]

    @property
    def bind_mounts(self) -> list[MountSpec]:
        return [m for m in self.mounts if m.type == "bind"]

    @property
    def port_bindings(self) -> list[PortBinding]:
        out = []
        for container_port, bindings in sorted(
            (self.host_config.get("PortBindings") or {}).items()
        ):
            for binding in bindings or []:
                out.append(
                    PortBinding(
                        str(container_port),
                        str(binding.get("HostIp") or ""),
                        str(binding.get("HostPort") or ""),
                    )
                )
        return out

    @property
    def published_ports(self) -> list[str]:
        return [str(p) for p in self.port_bindings]

    @property
    def devices(self) -> list[str]:
        return [str(d.get("PathOnHost", "")) for d in self.host_config.get("Devices") or []]

    @property
    def healthcheck(self) -> bool:
        test = (self.config.get("Healthcheck") or {}).get("Test") or []
        return bool(test) and test[0] != "NONE"

    # -- leaving things out (what the target cannot provide) ----------------------------------
    def without_port(self, port: PortBinding) -> ContainerSpec:
        bindings = {
            k: [
                b
                for b in (v or [])
                if not (
                    k == port.container_port
                    and str(b.get("HostIp") or "") == port.host_ip
                    and str(b.get("HostPort") or "") == port.host_port
                )
            ]
            for k, v in (self.host_config.get("PortBindings") or {}).items()
        }
        return self.with_host(PortBindings={k: v for k, v in bindings.items() if v})

    def on_all_addresses(self, port: PortBinding) -> ContainerSpec:
        """*port* published on every address of the host instead of its one host IP."""
        bindings = {
            k: [
                {**b, "HostIp": ""}
                if k == port.container_port
                and str(b.get("HostIp") or "") == port.host_ip
                and str(b.get("HostPort") or "") == port.host_port
                else b
                for b in (v or [])
            ]
            for k, v in (self.host_config.get("PortBindings") or {}).items()
        }
        return self.with_host(PortBindings=bindings)

    def without_mount(self, destination: str) -> ContainerSpec:
        binds = [
            b
            for b in self.host_config.get("Binds") or []
            if _bind_destination(str(b)) != destination
        ]
        mounts = [m for m in self.host_config.get("Mounts") or [] if m.get("Target") != destination]
        kept = tuple(m for m in self.mounts if m.destination != destination)
        names = {m.source for m in kept if m.type == "volume" and not m.anonymous}
        spec = self.with_host(Binds=binds, Mounts=mounts)
        return dataclasses.replace(
            spec, mounts=kept, volumes=tuple(v for v in self.volumes if v.name in names)
        )

    def without_device(self, path: str) -> ContainerSpec:
        devices = [d for d in self.host_config.get("Devices") or [] if d.get("PathOnHost") != path]
        return self.with_host(Devices=devices)

    def without_network(self, network: str) -> ContainerSpec:
        """Leave *network* out; a container whose main network it was goes on the default one."""
        changes: dict[str, Any] = {}
        if self.network_mode == network:
            changes["NetworkMode"] = "default"
        spec = self.with_host(**changes)
        return dataclasses.replace(
            spec,
            endpoints=tuple(e for e in self.endpoints if e.network != network),
            networks=tuple(n for n in self.networks if n.name != network),
        )

    def without_static_address(self, network: str) -> ContainerSpec:
        endpoints = tuple(
            dataclasses.replace(e, ipv4="", ipv6="") if e.network == network else e
            for e in self.endpoints
        )
        return dataclasses.replace(self, endpoints=endpoints)

    def without_host_setting(self, key: str) -> ContainerSpec:
        return self.with_host(**{key: None})

    def renamed(self, name: str) -> ContainerSpec:
        return dataclasses.replace(self, name=name)

    def with_host(self, **changes: Any) -> ContainerSpec:
        host_config = drop_empty({**self.host_config, **changes})
        return dataclasses.replace(self, host_config=host_config)

    # -- storing ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerSpec:
        return cls(
            name=str(data["name"]),
            config=dict(data.get("config") or {}),
            host_config=dict(data.get("host_config") or {}),
            was_running=bool(data.get("was_running")),
            was_paused=bool(data.get("was_paused")),
            image=str(data.get("image") or ""),
            image_id=str(data.get("image_id") or ""),
            mounts=tuple(MountSpec(**m) for m in data.get("mounts") or []),
            volumes=tuple(VolumeDef(**v) for v in data.get("volumes") or []),
            endpoints=tuple(
                EndpointSpec(**{**e, "aliases": tuple(e.get("aliases") or ())})
                for e in data.get("endpoints") or []
            ),
            networks=tuple(
                NetworkDef(**{**n, "subnets": tuple(n.get("subnets") or ())})
                for n in data.get("networks") or []
            ),
            not_carried=tuple(data.get("not_carried") or ()),
        )


def config_overrides(
    config: dict[str, Any], image: dict[str, Any], container_id: str = ""
) -> dict[str, Any]:
    """The part of a container's ``Config`` that differs from its image's ``Config``."""
    out: dict[str, Any] = {}
    hostname = config.get("Hostname")
    if hostname and hostname != container_id[:12]:
        out["Hostname"] = hostname  # the default hostname derives from the source's ID
    for key in _CONFIG_BOOLS:
        if config.get(key):
            out[key] = True
    for key in _CONFIG_SCALARS + _CONFIG_COMPARED:
        value = config.get(key)
        if value and value != image.get(key):
            out[key] = value
    if config.get("StopTimeout") is not None:
        out["StopTimeout"] = config["StopTimeout"]
    image_env = set(image.get("Env") or [])
    env = [e for e in config.get("Env") or [] if e not in image_env]
    if env:
        out["Env"] = env
    image_labels = image.get("Labels") or {}
    labels = {k: v for k, v in (config.get("Labels") or {}).items() if image_labels.get(k) != v}
    if labels:
        out["Labels"] = labels
    for key in _CONFIG_KEYED:
        extra: dict[str, Any] = {
            k: {} for k in config.get(key) or {} if k not in (image.get(key) or {})
        }
        if extra:
            out[key] = extra
    if config.get("Entrypoint") != image.get("Entrypoint"):
        # An entrypoint of one's own resets the image's Cmd in the engine: send both.
        out["Entrypoint"] = config.get("Entrypoint")
        out["Cmd"] = config.get("Cmd")
    elif config.get("Cmd") != image.get("Cmd"):
        out["Cmd"] = config.get("Cmd")
    return out


def _bind_destination(bind: str) -> str:
    parts = bind.split(":")
    return parts[1] if len(parts) >= 2 else parts[0]


def _named_in_host_config(host_config: dict[str, Any]) -> list[str]:
    names = []
    for bind in host_config.get("Binds") or []:
        source = str(bind).split(":", 1)[0]
        if source and not source.startswith("/") and ":" in str(bind):
            names.append(source)
    for mount in host_config.get("Mounts") or []:
        if mount.get("Type") == "volume" and mount.get("Source"):
            names.append(str(mount["Source"]))
    return names


def _mounts(data: dict[str, Any]) -> list[MountSpec]:
    named = set(_named_in_host_config(data.get("HostConfig") or {}))
    out = []
    for mount in data.get("Mounts") or []:
        kind = str(mount.get("Type") or "")
        name = str(mount.get("Name") or "")
        source = name if kind == "volume" else str(mount.get("Source") or "")
        out.append(
            MountSpec(
                type=kind,
                destination=str(mount.get("Destination") or ""),
                source=source,
                read_only=not mount.get("RW", True),
                propagation=str(mount.get("Propagation") or ""),
                driver=str(mount.get("Driver") or ""),
                anonymous=kind == "volume" and name not in named,
            )
        )
    return sorted(out, key=lambda m: m.destination)


def own_aliases(
    aliases: list[str] | None, container_id: str, hostname: str = ""
) -> tuple[str, ...]:
    """Aliases the user gave; the engine adds the short container ID (and, on some versions,
    the hostname) itself."""
    automatic = {container_id[:12]}
    if hostname:
        automatic.add(hostname)
    return tuple(a for a in aliases or [] if a not in automatic)


def _endpoints(data: dict[str, Any], container_id: str) -> list[EndpointSpec]:
    networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
    hostname = str((data.get("Config") or {}).get("Hostname") or "")
    mode = str((data.get("HostConfig") or {}).get("NetworkMode") or "default")
    out = []
    for name, endpoint in networks.items():
        if name in BUILTIN_NETWORKS:
            continue
        endpoint = endpoint or {}
        ipam = endpoint.get("IPAMConfig") or {}
        out.append(
            EndpointSpec(
                network=str(name),
                aliases=own_aliases(endpoint.get("Aliases"), container_id, hostname),
                ipv4=str(ipam.get("IPv4Address") or ""),
                ipv6=str(ipam.get("IPv6Address") or ""),
                driver_opts={str(k): str(v) for k, v in (endpoint.get("DriverOpts") or {}).items()},
            )
        )
    return sorted(out, key=lambda e: (e.network != mode, e.network))


def is_anonymous_name(name: str) -> bool:
    return bool(_HEX64.match(name))
