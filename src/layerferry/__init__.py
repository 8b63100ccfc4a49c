"""layerferry: move a container's state between Docker hosts without a registry.

The library is the product; the ``layerferry`` command is a thin layer over it. Library code
never prints: pass a :class:`~layerferry.reporting.Reporter` to hear what happens.
"""

from .errors import (
    ArchiveError,
    ConflictError,
    EngineError,
    HostKeyError,
    IntegrityError,
    LayerferryError,
    LimitExceeded,
    NotFoundError,
    PartialFailure,
    RemoteError,
    UnreachableError,
    UsageError,
)
from .reference import ImageName
from .remote.target import SshTarget
from .reporting import NullReporter, RecordingReporter, Reporter
from .settings import Settings
from .tario.compression import Compression
from .workflows.commit import CommitResult, commit
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
    "BindMode",
    "CommitResult",
    "Compression",
    "ConflictError",
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
    "MigrateResult",
    "NotFoundError",
    "NullReporter",
    "PartialFailure",
    "RecordingReporter",
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
    "compare",
    "inspect_archive",
    "inventory",
    "load",
    "migrate",
    "normalize",
    "restore",
    "rollback",
    "save",
    "send",
    "snapshot",
    "snapshots",
    "verify_archive",
]
