"""Safe tar streaming and compression: detection by magic bytes, in-process codecs, verified reads."""

from .compression import Compression, detect, open_decompressed
from .tarstream import END_OF_ARCHIVE, member_header, padding
from .verify import VerifyingReader

__all__ = [
    "END_OF_ARCHIVE",
    "Compression",
    "VerifyingReader",
    "detect",
    "member_header",
    "open_decompressed",
    "padding",
]
