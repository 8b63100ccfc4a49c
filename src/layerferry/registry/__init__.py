"""The OCI distribution API: pull and push of Docker v2s2 and OCI images, token and basic auth,
blob mounts, chunked uploads that resume. The protocol is ours; httpx carries the bytes.

``client`` (requests, manifests, blobs, mounts), ``upload`` (chunked, resumable), ``auth``
(challenges, tokens), ``credentials`` (``~/.docker/config.json``, credential helpers),
``transport`` (TLS, insecure hosts, httpx errors), ``pull`` (a source), ``push`` (a destination).
Only the leaf modules are imported here, so the settings can import the options early.
"""

from typing import TYPE_CHECKING, Any

from .transport import RegistryOptions

if TYPE_CHECKING:
    from .client import RegistryClient, Traffic


def __getattr__(name: str) -> Any:
    # The client (and httpx under it) loads on first use: the settings import the options.
    if name in ("RegistryClient", "Traffic"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RegistryClient", "RegistryOptions", "Traffic"]
