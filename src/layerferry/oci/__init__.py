"""The image model: digests, descriptors, manifests, configs. Knows no transport."""

from .config import ImageConfig
from .descriptor import Descriptor, Platform
from .digest import Digest, chain_ids
from .manifest import Index, Manifest, RawManifest, canonical_json

__all__ = [
    "Descriptor",
    "Digest",
    "ImageConfig",
    "Index",
    "Manifest",
    "Platform",
    "RawManifest",
    "canonical_json",
    "chain_ids",
]
