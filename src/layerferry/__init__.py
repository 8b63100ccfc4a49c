"""layerferry: move a container's state between Docker hosts, with or without a registry.

The library is the product; the ``layerferry`` command is a thin layer over it. Library code
never prints: pass a :class:`~layerferry.reporting.Reporter` to hear what happens.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import (
        ArchiveError,
        AuthError,
        ConflictError,
        EngineError,
        HostKeyError,
        IntegrityError,
        LayerferryError,
        LimitExceeded,
        NotFoundError,
        PartialFailure,
        RegistryError,
        RemoteError,
        UnreachableError,
        UsageError,
    )
    from .locations import Location, parse_location
    from .reference import ImageName, RegistryReference
    from .registry.transport import RegistryOptions
    from .remote.target import SshTarget
    from .reporting import NullReporter, RecordingReporter, Reporter
    from .settings import Settings
    from .tario.compression import Compression
    from .workflows.commit import CommitResult, commit
    from .workflows.copy import CopyResult, copy, pull, push
    from .workflows.diff import DiffReport, diff
    from .workflows.inspect import VerifyResult, inspect_archive, verify_archive
    from .workflows.inventory import Inventory, inventory
    from .workflows.migrate import MigrateResult, migrate
    from .workflows.normalize import Difference, compare, normalize
    from .workflows.preflight import BindMode
    from .workflows.record import ContainerRecord
    from .workflows.restore import RestoreResult, restore
    from .workflows.snapshot import RollbackResult, SnapshotInfo, rollback, snapshot, snapshots
    from .workflows.spec import ContainerSpec
    from .workflows.transfer import LoadResult, SaveResult, SendResult, load, save, send

# Imported on first use: the command starts faster when it loads only what its verb needs.
_LAZY = {
    "ArchiveError": ".errors",
    "AuthError": ".errors",
    "ConflictError": ".errors",
    "EngineError": ".errors",
    "HostKeyError": ".errors",
    "IntegrityError": ".errors",
    "LayerferryError": ".errors",
    "LimitExceeded": ".errors",
    "NotFoundError": ".errors",
    "PartialFailure": ".errors",
    "RegistryError": ".errors",
    "RemoteError": ".errors",
    "UnreachableError": ".errors",
    "UsageError": ".errors",
    "Location": ".locations",
    "parse_location": ".locations",
    "ImageName": ".reference",
    "RegistryReference": ".reference",
    "RegistryOptions": ".registry.transport",
    "SshTarget": ".remote.target",
    "NullReporter": ".reporting",
    "RecordingReporter": ".reporting",
    "Reporter": ".reporting",
    "Settings": ".settings",
    "Compression": ".tario.compression",
    "CommitResult": ".workflows.commit",
    "commit": ".workflows.commit",
    "CopyResult": ".workflows.copy",
    "copy": ".workflows.copy",
    "pull": ".workflows.copy",
    "push": ".workflows.copy",
    "DiffReport": ".workflows.diff",
    "diff": ".workflows.diff",
    "VerifyResult": ".workflows.inspect",
    "inspect_archive": ".workflows.inspect",
    "verify_archive": ".workflows.inspect",
    "Inventory": ".workflows.inventory",
    "inventory": ".workflows.inventory",
    "MigrateResult": ".workflows.migrate",
    "migrate": ".workflows.migrate",
    "Difference": ".workflows.normalize",
    "compare": ".workflows.normalize",
    "normalize": ".workflows.normalize",
    "BindMode": ".workflows.preflight",
    "ContainerRecord": ".workflows.record",
    "RestoreResult": ".workflows.restore",
    "restore": ".workflows.restore",
    "RollbackResult": ".workflows.snapshot",
    "SnapshotInfo": ".workflows.snapshot",
    "rollback": ".workflows.snapshot",
    "snapshot": ".workflows.snapshot",
    "snapshots": ".workflows.snapshot",
    "ContainerSpec": ".workflows.spec",
    "LoadResult": ".workflows.transfer",
    "SaveResult": ".workflows.transfer",
    "SendResult": ".workflows.transfer",
    "load": ".workflows.transfer",
    "save": ".workflows.transfer",
    "send": ".workflows.transfer",
}


# The subpackage ``layerferry.copy`` shares its name with the function ``copy``. Loading the
# package first, then unbinding it here, keeps ``layerferry.copy`` the function: a package
# already loaded is never bound on its parent again (``import layerferry.copy.x`` still works).
from . import copy as _copy_package  # noqa: E402, F401

del copy  # noqa: F821


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "ArchiveError",
    "AuthError",
    "BindMode",
    "CommitResult",
    "DiffReport",
    "Compression",
    "ConflictError",
    "CopyResult",
    "ContainerRecord",
    "ContainerSpec",
    "Difference",
    "EngineError",
    "HostKeyError",
    "ImageName",
    "IntegrityError",
    "Inventory",
    "LayerferryError",
    "LimitExceeded",
    "LoadResult",
    "Location",
    "MigrateResult",
    "NotFoundError",
    "NullReporter",
    "PartialFailure",
    "RecordingReporter",
    "RegistryError",
    "RegistryOptions",
    "RegistryReference",
    "RemoteError",
    "Reporter",
    "RestoreResult",
    "RollbackResult",
    "SaveResult",
    "SendResult",
    "Settings",
    "SnapshotInfo",
    "SshTarget",
    "UnreachableError",
    "UsageError",
    "VerifyResult",
    "__version__",
    "commit",
    "copy",
    "diff",
    "compare",
    "inspect_archive",
    "inventory",
    "load",
    "migrate",
    "parse_location",
    "pull",
    "push",
    "normalize",
    "restore",
    "rollback",
    "save",
    "send",
    "snapshot",
    "snapshots",
    "verify_archive",
]
