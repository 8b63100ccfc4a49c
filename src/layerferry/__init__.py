"""layerferry: move a container's state between Docker hosts, with or without a registry.

The library is the product; the ``layerferry`` command is a thin layer over it. Library code
never prints: pass a :class:`~layerferry.reporting.Reporter` to hear what happens.
"""

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
