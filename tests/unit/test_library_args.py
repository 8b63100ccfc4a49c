"""Library calls take the argument forms a Python caller naturally writes (no engine needed)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import layerferry
from layerferry import Settings, UsageError
from layerferry.tario.compression import Compression
from layerferry.workflows._args import as_enum, as_list, as_path_or_stream
from tests.archivegen import Tar, docker_legacy, make_img


def test_a_single_name_is_a_list_of_one_never_its_characters() -> None:
    assert as_list("app:1", "images") == ["app:1"]
    assert as_list(["a", "b"], "images") == ["a", "b"]
    assert as_list(("a",), "images") == ["a"]
    with pytest.raises(UsageError, match="images: expected text, not bytes"):
        as_list(b"app:1", "images")


def test_paths_as_text_or_pathlike_and_streams_as_they_are(tmp_path: Path) -> None:
    assert as_path_or_stream(str(tmp_path / "x.tar"), "output") == tmp_path / "x.tar"
    assert as_path_or_stream(tmp_path / "x.tar", "output") == tmp_path / "x.tar"
    stream = io.BytesIO()
    assert as_path_or_stream(stream, "output") is stream
    with pytest.raises(UsageError, match="output: expected a path or a binary stream, not int"):
        as_path_or_stream(3, "output")  # type: ignore[arg-type]


def test_enums_by_value() -> None:
    assert as_enum("gzip", Compression, "compression") is Compression.GZIP
    assert as_enum(Compression.ZSTD, Compression, "compression") is Compression.ZSTD
    with pytest.raises(UsageError, match="compression must be one of .*not 'lz4'"):
        as_enum("lz4", Compression, "compression")


def test_verify_and_inspect_take_a_path_as_text(tmp_path: Path) -> None:
    archive = docker_legacy(Tar(), [make_img(3, tags=["app:1"])]).write(tmp_path / "app.tar")
    result = layerferry.verify_archive(str(archive))
    assert not result.problems
    reading = layerferry.inspect_archive(str(archive))
    assert len(reading.images) == 1


def test_save_and_send_refuse_bad_forms_before_any_engine_is_asked(tmp_path: Path) -> None:
    nowhere = Settings(docker_host="unix:///nonexistent/docker.sock", cache_dir=tmp_path / "c")
    with pytest.raises(UsageError, match="compression must be one of"):
        layerferry.save("app:1", str(tmp_path / "x.tar"), compression="lz4", settings=nowhere)
    with pytest.raises(UsageError, match="invalid host"):
        layerferry.send("app:1", "lf-b", settings=nowhere)
