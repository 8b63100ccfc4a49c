"""The copy engine between sources and destinations, and the local blob cache it reads from."""

from .blobcache import BlobCache, LayerEntry
from .engine import CopyReport, copy_images
from .plan import Holding, Plan, plan_copy

__all__ = ["BlobCache", "CopyReport", "Holding", "LayerEntry", "Plan", "copy_images", "plan_copy"]
