"""The OCI distribution API: pull and push of Docker v2s2 and OCI images, token and basic auth,
blob mounts, chunked uploads that resume. The protocol is ours; httpx carries the bytes."""

from .client import RegistryClient, Traffic
from .pull import RegistrySource
from .push import RegistryDestination
from .transport import RegistryOptions

__all__ = ["RegistryClient", "RegistryDestination", "RegistryOptions", "RegistrySource", "Traffic"]
