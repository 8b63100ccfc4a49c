"""Everything that would keep a container from being recreated on a site, found before anything
changes there.

Each check reads the site (its engine: containers, networks, volumes, plugins; its host: paths,
listening ports) and yields :class:`Problem` records. A name clash always refuses. Any other
problem refuses too unless the user asked to skip such things (``skip_missing``): then the spec
leaves that part out (a port binding, a bind mount, a device, a network, …), and the warning
says so. The outcome is a :class:`Preflight`: the spec to create and what to make for it.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArchiveError, ConflictError, LayerferryError, NotFoundError
from ..remote.checks import HostFacts
from ..reporting import Reporter
from .site import Site
from .spec import ContainerSpec, MountSpec, NetworkDef, PortBinding, VolumeDef

_ANY_IP = ("", "0.0.0.0", "::")


class BindMode(str, enum.Enum):
    REQUIRE = "require"
    """Bind-mounted paths must exist on the target (checked; data not copied)."""
    COPY = "copy"
    """Their contents travel like volume data; created on the target."""
    SKIP = "skip"
    """Left out: the container is recreated without them."""


@dataclass(frozen=True)
class Options:
    name: str
    replace: bool = False
    volumes: bool = False
    """Volume data travels (so named volumes must be new on the target, or refilled)."""
    bind_mounts: BindMode = BindMode.REQUIRE
    skip_missing: bool = False
    refill: bool = False
    """Named volumes that exist are emptied and refilled (rollback on the same host)."""


@dataclass(frozen=True)
class Problem:
    message: str
    conflict: bool
    """Something is taken (exit 7) rather than missing (exit 3)."""
    attributes: tuple[str, ...]
    """The normalized attributes that differ once this is skipped."""
    skip: Callable[[ContainerSpec], ContainerSpec]
    instead: str = "left out"
    """What ``skip_missing`` does about it, for the warning."""


@dataclass
class Preflight:
    spec: ContainerSpec
    existing: dict[str, Any] | None
    networks: list[tuple[NetworkDef, bool]] = field(default_factory=list)
    """Networks to create, and whether with their own address pools."""
    volumes: list[VolumeDef] = field(default_factory=list)
    """Named volumes to create."""
    data_mounts: list[MountSpec] = field(default_factory=list)
    """Mounts whose data travels."""
    refill: set[str] = field(default_factory=set)
    """Named volumes that exist and are emptied before their data is restored."""
    keep: set[str] = field(default_factory=set)
    """Named volumes that exist and are used only by the container being replaced
    (``--replace``): their current data is first copied into a new ``NAME-replaced-TIMESTAMP``
    volume there, then they are refilled (and put back if the recreation fails)."""
    present_volumes: set[str] = field(default_factory=set)
    """Named volumes the site already has."""
    occupied_binds: set[str] = field(default_factory=set)
    """Bind paths (``--bind-mounts copy``) that hold something there: their data does not
    travel (refused, or with ``skip_missing`` the site's own files are used)."""
    skipped: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    """Attributes allowed to differ from the source (what was skipped or renamed)."""


def preflight(site: Site, spec: ContainerSpec, options: Options, reporter: Reporter) -> Preflight:
    # Exactly this name: an ID prefix that happens to match must never be replaced.
    existing = site.engine.container_named(options.name)
    if existing is not None and not options.replace:
        raise ConflictError(
            f"{site.where}: a container named {options.name!r} already exists",
            hint="pass --replace to replace it, or --name to pick another name",
        )
    result = Preflight(spec=spec.renamed(options.name), existing=existing)
    if options.name != spec.name:
        result.expected.append("Name")
    if options.bind_mounts is BindMode.SKIP:
        for mount in spec.bind_mounts:
            reporter.warn(
                f"bind mount {mount.source} -> {mount.destination} left out (--bind-mounts skip)"
            )
            result.spec = result.spec.without_mount(mount.destination)
            result.expected.extend(mount_attributes(mount.destination))
    problems = list(_problems(site, result, options))
    if problems and not options.skip_missing:
        raise _refusal(site.where, problems)
    for problem in problems:
        result.spec = problem.skip(result.spec)
        result.skipped.append(problem.message)
        result.expected.extend(problem.attributes)
        reporter.warn(f"{problem.message}: {problem.instead} (--skip-missing)")
    _plan_data(result, options)
    return result


def _refusal(where: str, problems: list[Problem]) -> LayerferryError:
    text = "; ".join(p.message for p in problems)
    hint = "nothing was changed there; --skip-missing recreates the container without these"
    if any(p.conflict for p in problems):
        return ConflictError(f"{where} cannot take the container as it is: {text}", hint=hint)
    return NotFoundError(f"{where} lacks what the container needs: {text}", hint=hint)


def _problems(site: Site, plan: Preflight, options: Options) -> Iterator[Problem]:
    spec = plan.spec
    info = site.engine.raw_info()
    binds = [m for m in spec.bind_mounts] if options.bind_mounts is BindMode.REQUIRE else []
    copied = [m for m in spec.bind_mounts] if options.bind_mounts is BindMode.COPY else []
    paths = [m.source for m in binds + copied] + spec.devices
    facts = site.facts(paths) if paths or site.remote else HostFacts()
    yield from _port_problems(site, spec, plan.existing, facts)
    for mount in binds:
        if mount.source in facts.missing:
            yield Problem(
                f"bind mount source {mount.source} does not exist",
                False,
                mount_attributes(mount.destination),
                _skip_mount(mount.destination),
            )
    for mount in copied:
        if mount.source in facts.occupied:
            # Copied files would overwrite the site's own and mix with them, as for a volume.
            plan.occupied_binds.add(mount.source)
            yield Problem(
                f"bind path {mount.source} already holds files there (the source's would "
                "overwrite and mix with them; empty or remove it there first, or "
                "--skip-missing keeps its own files)",
                True,
                mount_attributes(mount.destination),
                lambda s: s,  # keep the mount; its files are the site's own
                "its own files are used, nothing copied",
            )
    for path in spec.devices:
        if path in facts.missing:
            yield Problem(
                f"device {path} does not exist", False, ("HostConfig.Devices",), _skip_device(path)
            )
    yield from _network_problems(site, plan, info)
    yield from _volume_problems(site, plan, info, options)
    yield from _engine_problems(site, spec, info)


def mount_attributes(destination: str) -> tuple[str, ...]:
    return (f"Mounts[{destination}]", "HostConfig.Binds", "HostConfig.Mounts")


def _skip_mount(destination: str) -> Callable[[ContainerSpec], ContainerSpec]:
    return lambda s: s.without_mount(destination)


def _skip_device(path: str) -> Callable[[ContainerSpec], ContainerSpec]:
    return lambda s: s.without_device(path)


def _skip_port(port: PortBinding) -> Callable[[ContainerSpec], ContainerSpec]:
    return lambda s: s.without_port(port)


def _publish_on_all(port: PortBinding) -> Callable[[ContainerSpec], ContainerSpec]:
    return lambda s: s.on_all_addresses(port)


def _skip_address(network: str) -> Callable[[ContainerSpec], ContainerSpec]:
    return lambda s: s.without_static_address(network)


def _skip_network(network: str) -> Callable[[ContainerSpec], ContainerSpec]:
    return lambda s: s.without_network(network)


def _reset_setting(key: str, value: str | None) -> Callable[[ContainerSpec], ContainerSpec]:
    return lambda s: s.with_host(**{key: value})


def _skip_setting(key: str) -> Callable[[ContainerSpec], ContainerSpec]:
    return lambda s: s.without_host_setting(key)


# -- ports --------------------------------------------------------------------------------------
def _port_problems(
    site: Site, spec: ContainerSpec, existing: dict[str, Any] | None, facts: HostFacts
) -> Iterator[Problem]:
    existing_id = str(existing["Id"]) if existing else ""
    replaced_ports = _published(existing) if existing else set()
    holders: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for summary in site.engine.containers():
        if summary.get("Id") == existing_id:
            continue
        names = [str(n).lstrip("/") for n in summary.get("Names") or []]
        for port in summary.get("Ports") or []:
            if port.get("PublicPort"):
                key = (str(port.get("Type") or "tcp"), int(port["PublicPort"]))
                holders.setdefault(key, []).append(
                    (str(port.get("IP") or ""), names[0] if names else "?")
                )
    for binding in spec.port_bindings:
        if binding.host_ip not in _ANY_IP and not facts.has_address(binding.host_ip):
            yield Problem(
                f"published port {binding}: {binding.host_ip} is not an address of that host",
                False,
                ("HostConfig.PortBindings",),
                _publish_on_all(binding),
                "published on all its addresses instead",
            )
            continue
        number = binding.fixed_port
        if number is None:
            continue
        key = (binding.protocol, number)
        users = [n for ip, n in holders.get(key, []) if _overlap(ip, binding.host_ip)]
        if users:
            message = f"port {number}/{binding.protocol} is published there by container {users[0]}"
        elif key in facts.listening and key not in replaced_ports:
            message = f"port {number}/{binding.protocol} is in use there (something listens on it)"
        else:
            continue
        yield Problem(message, True, ("HostConfig.PortBindings",), _skip_port(binding))


def _published(container: dict[str, Any]) -> set[tuple[str, int]]:
    out = set()
    for container_port, bindings in (
        (container.get("HostConfig") or {}).get("PortBindings") or {}
    ).items():
        for binding in bindings or []:
            port = str(binding.get("HostPort") or "")
            if port.isdigit():
                out.add((str(container_port).partition("/")[2] or "tcp", int(port)))
    return out


def _overlap(ip_a: str, ip_b: str) -> bool:
    return ip_a in _ANY_IP or ip_b in _ANY_IP or ip_a == ip_b


# -- networks -----------------------------------------------------------------------------------
def _network_problems(site: Site, plan: Preflight, info: dict[str, Any]) -> Iterator[Problem]:
    spec = plan.spec
    target = {str(n["Name"]): n for n in site.engine.networks()}
    drivers = set((info.get("Plugins") or {}).get("Network") or [])
    swarm = ((info.get("Swarm") or {}).get("LocalNodeState") or "") == "active"
    for endpoint in spec.endpoints:
        name = endpoint.network
        attribute = (f"Networks[{name}]",)
        if name in target:
            if endpoint.ipv4 and not _address_free(site, name, endpoint.ipv4, plan.existing):
                yield Problem(
                    f"address {endpoint.ipv4} on network {name} is taken or outside its subnet",
                    True,
                    attribute,
                    _skip_address(name),
                )
            continue
        definition = next((n for n in spec.networks if n.name == name), NetworkDef(name))
        if definition.driver not in drivers or (definition.driver == "overlay" and not swarm):
            yield Problem(
                f"network {name} uses driver {definition.driver!r}, which the engine there lacks",
                False,
                attribute,
                _skip_network(name),
            )
            continue
        free = not _overlaps(definition, target.values())
        if not free and endpoint.ipv4:
            plan.spec = plan.spec.without_static_address(name)
            plan.expected.extend(attribute)
        plan.networks.append((definition, free))
    yield from _container_mode_problems(site, spec)


def _address_free(site: Site, network: str, address: str, existing: dict[str, Any] | None) -> bool:
    data = site.engine.network(network)
    pools = [
        p.get("Subnet") for p in (data.get("IPAM") or {}).get("Config") or [] if p.get("Subnet")
    ]
    ip = ipaddress.ip_address(address)
    if not any(ip in ipaddress.ip_network(str(p), strict=False) for p in pools):
        return False
    existing_id = str(existing["Id"]) if existing else ""
    for container_id, endpoint in (data.get("Containers") or {}).items():
        used = str(endpoint.get("IPv4Address") or "").partition("/")[0]
        if used == address and container_id != existing_id:
            return False
    return True


def _overlaps(definition: NetworkDef, networks: Any) -> bool:
    mine = [
        ipaddress.ip_network(p["Subnet"], strict=False) for p in definition.subnets if "Subnet" in p
    ]
    for other in networks:
        for pool in (other.get("IPAM") or {}).get("Config") or []:
            if not pool.get("Subnet"):
                continue
            theirs = ipaddress.ip_network(str(pool["Subnet"]), strict=False)
            if any(m.version == theirs.version and m.overlaps(theirs) for m in mine):
                return True
    return False


def _container_mode_problems(site: Site, spec: ContainerSpec) -> Iterator[Problem]:
    defaults = {"NetworkMode": "default", "IpcMode": "private", "PidMode": None}
    for key, default in defaults.items():
        mode = str(spec.host_config.get(key) or "")
        if mode.startswith("container:") and site.engine.find_container(mode[10:]) is None:
            yield Problem(
                f"{key} shares container {mode[10:]}, which is not there",
                False,
                (f"HostConfig.{key}",),
                _reset_setting(key, default),
            )
    for ref in spec.host_config.get("VolumesFrom") or []:
        other = str(ref).partition(":")[0]
        if site.engine.find_container(other) is None:
            yield Problem(
                f"--volumes-from {other}: no such container there",
                False,
                ("HostConfig.VolumesFrom",),
                _skip_setting("VolumesFrom"),
            )


# -- volumes, drivers, runtimes -----------------------------------------------------------------
def _volume_problems(
    site: Site, plan: Preflight, info: dict[str, Any], options: Options
) -> Iterator[Problem]:
    present = {str(v.get("Name")) for v in site.engine.volumes()}
    drivers = set((info.get("Plugins") or {}).get("Volume") or []) | {"local"}
    for volume in plan.spec.volumes:
        mount = next((m for m in plan.spec.mounts if m.source == volume.name), None)
        if mount is None:  # a record (bundle, snapshot) that says a volume and no mount of it
            raise ArchiveError(f"unreadable container record: volume {volume.name} is not mounted")
        attribute = mount_attributes(mount.destination)
        if volume.name in present:
            plan.present_volumes.add(volume.name)
            if options.volumes and not options.refill:
                users = _volume_users(site, volume.name, plan.existing)
                if users == [] and _mounts_volume(plan.existing, volume.name):
                    plan.keep.add(volume.name)  # only the replaced container's: kept, refilled
                    continue
                if users:
                    message = (
                        f"volume {volume.name} already exists there and container {users[0]} "
                        "uses it (the source's data would replace or mix with what that "
                        f"container uses; remove or detach {users[0]} there first, or "
                        "--skip-missing keeps the volume's own data)"
                    )
                else:
                    message = (
                        f"volume {volume.name} already exists there (the source's data would "
                        "mix with its own; remove it there first, or --skip-missing keeps its "
                        "own data)"
                    )
                yield Problem(
                    message,
                    True,
                    attribute,
                    lambda s: s,  # keep the mount; its data is the target's own
                )
            continue
        if volume.driver not in drivers:
            yield Problem(
                f"volume {volume.name} uses driver {volume.driver!r}, which the engine there lacks",
                False,
                attribute,
                _skip_mount(mount.destination),
            )
            continue
        plan.volumes.append(volume)


def _mounts_volume(container: dict[str, Any] | None, volume: str) -> bool:
    mounts = (container or {}).get("Mounts") or []
    return any(m.get("Type") == "volume" and m.get("Name") == volume for m in mounts)


def _volume_users(site: Site, volume: str, existing: dict[str, Any] | None) -> list[str]:
    """The containers there (running or not) that mount *volume*, other than *existing* (the
    container being replaced)."""
    existing_id = str(existing["Id"]) if existing else ""
    users = []
    for summary in site.engine.containers(all=True):
        if summary.get("Id") == existing_id:
            continue
        if _mounts_volume(summary, volume):
            names = [str(n).lstrip("/") for n in summary.get("Names") or []]
            users.append(names[0] if names else str(summary.get("Id", "?"))[:12])
    return users


def _engine_problems(site: Site, spec: ContainerSpec, info: dict[str, Any]) -> Iterator[Problem]:
    log = str((spec.host_config.get("LogConfig") or {}).get("Type") or "")
    logs = set((info.get("Plugins") or {}).get("Log") or [])
    if log and logs and log not in logs:
        yield Problem(
            f"log driver {log!r} is not available there",
            False,
            ("HostConfig.LogConfig",),
            _skip_setting("LogConfig"),
        )
    runtime = str(spec.host_config.get("Runtime") or "")
    if runtime and runtime not in (info.get("Runtimes") or {}):
        yield Problem(
            f"runtime {runtime!r} is not available there",
            False,
            ("HostConfig.Runtime",),
            _skip_setting("Runtime"),
        )


def _plan_data(plan: Preflight, options: Options) -> None:
    """Which mounts' data travels, and which named volumes get refilled in place."""
    if options.volumes:
        for mount in plan.spec.data_mounts:
            if mount.anonymous or mount.source not in plan.present_volumes:
                plan.data_mounts.append(mount)
            elif options.refill or mount.source in plan.keep:
                plan.data_mounts.append(mount)
                plan.refill.add(mount.source)
            # else: an existing volume whose problem was skipped keeps the site's own data
    if options.bind_mounts is BindMode.COPY:
        plan.data_mounts.extend(
            m for m in plan.spec.bind_mounts if m.source not in plan.occupied_binds
        )
