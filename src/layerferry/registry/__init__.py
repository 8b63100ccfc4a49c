"""The OCI distribution API: pull and push of Docker v2s2 and OCI images, token and basic auth,
blob mounts, chunked uploads that resume. The protocol is ours; httpx carries the bytes.

``client`` (requests, manifests, blobs, mounts), ``upload`` (chunked, resumable), ``auth``
(challenges, tokens), ``credentials`` (``~/.docker/config.json``, credential helpers),
``transport`` (TLS, insecure hosts, httpx errors), ``pull`` (a source), ``push`` (a destination).
Only the leaf modules are imported here, so the settings can import the options early.
"""

from .client import RegistryClient, Traffic
from .transport import RegistryOptions

__all__ = ["RegistryClient", "RegistryOptions", "Traffic"]
