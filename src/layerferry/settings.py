"""Where layerferry finds things: the local engine, the SSH config, the blob cache, its state."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from .copy.blobcache import BlobCache
from .registry.transport import RegistryOptions


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


@dataclass(frozen=True)
class Settings:
    """Explicit settings; :meth:`from_env` fills the gaps from ``LAYERFERRY_*``/``DOCKER_HOST``."""

    docker_host: str | None = None
    ssh_config: Path | None = None
    cache_dir: Path = field(default_factory=lambda: Path(platformdirs.user_cache_dir("layerferry")))
    registry: RegistryOptions = field(default_factory=RegistryOptions)
    """CA file, registries allowed over plain HTTP, Docker client config (for logins)."""
    state_dir: Path = field(default_factory=lambda: Path(platformdirs.user_state_dir("layerferry")))
    """What must survive a cleared cache: snapshots (records and volume data)."""

    @classmethod
    def from_env(
        cls,
        *,
        docker_host: str | None = None,
        ssh_config: Path | None = None,
        cache_dir: Path | None = None,
        registry: RegistryOptions | None = None,
        state_dir: Path | None = None,
    ) -> Settings:
        return cls(
            docker_host=docker_host or os.environ.get("DOCKER_HOST") or None,
            ssh_config=ssh_config or _env_path("LAYERFERRY_SSH_CONFIG"),
            cache_dir=cache_dir
            or _env_path("LAYERFERRY_CACHE_DIR")
            or Path(platformdirs.user_cache_dir("layerferry")),
            registry=registry or RegistryOptions.from_env(),
            state_dir=state_dir
            or _env_path("LAYERFERRY_STATE_DIR")
            or Path(platformdirs.user_state_dir("layerferry")),
        )

    def blob_cache(self) -> BlobCache:
        return BlobCache(self.cache_dir / "blobs")
