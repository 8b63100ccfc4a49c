from __future__ import annotations

from pathlib import Path

import pytest

from layerferry.copy.blobcache import BlobCache


@pytest.fixture
def cache(tmp_path: Path) -> BlobCache:
    return BlobCache(tmp_path / "cache")
