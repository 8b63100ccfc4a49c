"""HTTP to a registry: TLS settings, the one httpx client, and where httpx's exceptions stop.

TLS is verified against the system's CAs, plus ``--ca-file`` when given. Plain HTTP is used only
for a registry named explicitly as insecure (``--insecure-registry HOST:PORT`` or
``LAYERFERRY_INSECURE_REGISTRIES``): never implied, not even for localhost.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

from ..errors import LayerferryError, RegistryError, UnreachableError, UsageError

USER_AGENT = "layerferry"
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 120.0
INSECURE_ENV = "LAYERFERRY_INSECURE_REGISTRIES"
CA_FILE_ENV = "LAYERFERRY_CA_FILE"


@dataclass(frozen=True)
class RegistryOptions:
    """How registries are reached: extra CA certificates, registries allowed over plain HTTP."""

    ca_file: Path | None = None
    insecure: frozenset[str] = field(default_factory=frozenset)
    docker_config: Path | None = None
    """A Docker client config directory (``DOCKER_CONFIG``); default ``~/.docker``."""
    chunk_size: int = 16 * 1024 * 1024
    """Bytes per PATCH of a chunked upload; smaller blobs go in one request."""

    @classmethod
    def from_env(
        cls,
        *,
        ca_file: Path | None = None,
        insecure: tuple[str, ...] | list[str] = (),
        docker_config: Path | None = None,
    ) -> RegistryOptions:
        env_hosts = [h.strip() for h in os.environ.get(INSECURE_ENV, "").split(",") if h.strip()]
        env_ca = os.environ.get(CA_FILE_ENV)
        env_config = os.environ.get("DOCKER_CONFIG")
        return cls(
            ca_file=ca_file or (Path(env_ca) if env_ca else None),
            insecure=frozenset(check_insecure_host(h) for h in [*insecure, *env_hosts]),
            docker_config=docker_config or (Path(env_config) if env_config else None),
        )

    def scheme(self, registry: str) -> str:
        return "http" if registry in self.insecure else "https"

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file is not None:
            try:
                context.load_verify_locations(cafile=str(self.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(
                    f"--ca-file {self.ca_file}: cannot read a CA from it ({exc})"
                ) from exc
        return context


def check_insecure_host(text: str) -> str:
    """``HOST[:PORT]`` as a registry is named in a reference; no scheme, path or spaces."""
    if not text or "/" in text or any(c.isspace() for c in text) or text.startswith("-"):
        raise UsageError(f"invalid --insecure-registry {text!r}: expected HOST:PORT")
    return text


def new_client(options: RegistryOptions) -> httpx.Client:
    import httpx  # only registry verbs pay for importing it

    return httpx.Client(
        verify=options.ssl_context(),
        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
        follow_redirects=True,  # blob storage; httpx drops Authorization across origins
        headers={"User-Agent": USER_AGENT},
    )


@contextlib.contextmanager
def translated(where: str, what: str) -> Iterator[None]:
    """httpx's exceptions become ours here, naming the registry and the operation."""
    import httpx

    try:
        yield
    except LayerferryError:
        raise
    except httpx.ConnectError as exc:
        hint = "is the registry running, and is the address right?"
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "SSL" in str(exc):
            hint = (
                "the registry's certificate is not trusted: pass its CA with --ca-file, or allow "
                "plain HTTP for it with --insecure-registry HOST:PORT if it serves no TLS"
            )
        raise UnreachableError(f"{where}: cannot connect ({exc})", hint=hint) from exc
    except httpx.TimeoutException as exc:
        raise UnreachableError(f"{where}: {what}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise RegistryError(f"{where}: {what}: connection failed ({exc})") from exc
    except httpx.HTTPError as exc:
        raise RegistryError(f"{where}: {what}: {exc}") from exc
