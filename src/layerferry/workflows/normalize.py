"""What makes two containers the same: their inspect documents without what differs by nature.

:func:`normalize` keeps every attribute a user can set and drops what each engine makes up on its
own: IDs, timestamps, state, host paths (log, resolv.conf, a volume's directory), the image's ID
and name (a migrated container runs a committed copy), the engine-made aliases, hostname and
anonymous volume names. Given the engine's defaults (the ``HostConfig`` of a container it made
from the image with no options), a ``HostConfig`` value equal to its default is left out too: it
is the engine's choice, not the user's, and another engine chooses its own. The result is a flat
mapping ``attribute → value``; :func:`compare` tells, attribute by attribute, where two of them
differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .spec import BUILTIN_NETWORKS, canonical_host_value, drop_defaults, drop_empty, own_aliases

#: Config keys that are not settings (``Image`` names the image each engine ran from).
_CONFIG_SKIP = ("Image", "ArgsEscaped", "OnBuild")
_HOST_SKIP = ("ContainerIDFile", "ConsoleSize")
#: Lists whose order the engine does not keep meaningful.
_UNORDERED = ("Config.Env", "HostConfig.CapAdd", "HostConfig.CapDrop", "HostConfig.ExtraHosts")


@dataclass(frozen=True)
class Difference:
    attribute: str
    source: Any
    target: Any

    def __str__(self) -> str:
        return f"{self.attribute}: {_show(self.source)} on the source, {_show(self.target)} here"


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def normalize(inspect: dict[str, Any], defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings of a container (from ``docker inspect``) as ``{attribute: value}``;
    *defaults*: its engine's ``HostConfig`` defaults for the image (values equal to those are
    left out)."""
    container_id = str(inspect.get("Id", ""))
    out: dict[str, Any] = {"Name": str(inspect.get("Name", "")).lstrip("/")}
    config = dict(inspect.get("Config") or {})
    if config.get("Hostname") == container_id[:12]:
        config.pop("Hostname")
    for key, value in drop_empty(config).items():
        if key not in _CONFIG_SKIP:
            out[f"Config.{key}"] = value
    host = {k: v for k, v in (inspect.get("HostConfig") or {}).items() if k not in _HOST_SKIP}
    for key, value in drop_defaults(host, defaults).items():
        out[f"HostConfig.{key}"] = canonical_host_value(key, value)
    for mount in inspect.get("Mounts") or []:
        out[f"Mounts[{mount.get('Destination')}]"] = _mount(mount, inspect.get("HostConfig") or {})
    hostname = str((inspect.get("Config") or {}).get("Hostname") or "")
    networks = (inspect.get("NetworkSettings") or {}).get("Networks") or {}
    for name, endpoint in networks.items():
        out[f"Networks[{name}]"] = _endpoint(str(name), endpoint or {}, container_id, hostname)
    for key in _UNORDERED:
        if isinstance(out.get(key), list):
            out[key] = sorted(out[key])
    return out


def _mount(mount: dict[str, Any], host_config: dict[str, Any]) -> dict[str, Any]:
    kind = mount.get("Type")
    named = _named_volumes(host_config)
    return drop_empty(
        {
            "Type": kind,
            # A named volume by its name; an anonymous one has a new name on every host; a bind
            # by its host path; a volume's own directory is a host detail.
            "Name": mount.get("Name") if kind == "volume" and mount.get("Name") in named else "",
            "Source": mount.get("Source") if kind == "bind" else "",
            "Driver": mount.get("Driver"),
            "Mode": mount.get("Mode"),
            "ReadOnly": not mount.get("RW", True),
            "Propagation": mount.get("Propagation"),
        }
    )


def _named_volumes(host_config: dict[str, Any]) -> set[str]:
    names = {str(b).split(":", 1)[0] for b in host_config.get("Binds") or [] if ":" in str(b)}
    names |= {str(m.get("Source")) for m in host_config.get("Mounts") or [] if m.get("Source")}
    return names


def _endpoint(
    name: str, endpoint: dict[str, Any], container_id: str, hostname: str
) -> dict[str, Any]:
    if name in BUILTIN_NETWORKS:
        return {}
    return drop_empty(
        {
            "Aliases": sorted(own_aliases(endpoint.get("Aliases"), container_id, hostname)),
            "IPAMConfig": drop_empty(endpoint.get("IPAMConfig") or {}),
            "Links": endpoint.get("Links"),
            "DriverOpts": endpoint.get("DriverOpts"),
        }
    )


def compare(
    source: dict[str, Any],
    target: dict[str, Any],
    *,
    ignore: Iterable[str] = (),
    target_defaults: dict[str, Any] | None = None,
) -> tuple[int, list[Difference]]:
    """How many attributes were compared, and those that differ (*ignore*: expected ones,
    by attribute or attribute prefix). *target_defaults*: the target engine's ``HostConfig``
    defaults; a setting left out of *target* as one of those equals a *source* that names the
    same value (a record written before engine defaults were left out of it)."""
    skipped = tuple(ignore)
    keys = sorted(set(source) | set(target))
    keys = [k for k in keys if not any(k == s or k.startswith(f"{s}.") for s in skipped)]
    filled = {
        f"HostConfig.{k}": canonical_host_value(k, v)
        for k, v in drop_empty(target_defaults or {}).items()
    }
    theirs = {**filled, **target}
    differences = [
        Difference(k, source.get(k), target.get(k)) for k in keys if source.get(k) != theirs.get(k)
    ]
    return len(keys), differences
