"""Image archives: the combined docker-archive + OCI layout writer, encoders, readers."""

from .encoding import Encoder, GzipEncoder, PlainEncoder, ZstdFrameEncoder, encoder_for
from .writer import ArchiveImage, iter_archive

__all__ = [
    "ArchiveImage",
    "Encoder",
    "GzipEncoder",
    "PlainEncoder",
    "ZstdFrameEncoder",
    "encoder_for",
    "iter_archive",
]
