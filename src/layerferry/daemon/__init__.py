"""The Docker Engine API, through the Docker SDK: one :class:`Engine` per daemon, local or remote."""

from .engine import Engine, EngineInfo, connect_local

__all__ = ["Engine", "EngineInfo", "connect_local"]
