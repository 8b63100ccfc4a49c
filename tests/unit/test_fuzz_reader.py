"""Mutated archives reach the reader: it answers with a reading or with one of our errors, never a crash.

The hypothesis-driven half of the fuzzing (``make fuzz`` runs atheris for longer).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerferry.archive.read import ReadOptions, read_stream
from layerferry.archive.scan import MeasuringSink
from layerferry.errors import LayerferryError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fuzz"))
from seeds import seeds  # noqa: E402

SEEDS = seeds()


def _mutate(data: bytes, edits: list[tuple[int, int, int]], cut: int | None) -> bytes:
    buf = bytearray(data)
    for kind, position, value in edits:
        at = position % max(len(buf), 1)
        if kind == 0 and buf:
            buf[at] ^= value or 1
        elif kind == 1:
            buf[at:at] = bytes([value])
        elif buf:
            del buf[at]
    if cut is not None:
        buf = buf[: cut % (len(buf) + 1)]
    return bytes(buf)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    edits=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6
    ),
    cut=st.none() | st.integers(0, 1 << 20),
)
def test_mutated_archives_never_crash_the_reader(
    seed: int, edits: list[tuple[int, int, int]], cut: int | None
) -> None:
    data = _mutate(SEEDS[seed], edits, cut)
    try:
        reading = read_stream(io.BytesIO(data), MeasuringSink(), "fuzz", ReadOptions(strict=True))
    except LayerferryError as exc:
        assert str(exc).startswith("fuzz"), str(exc)  # every message names the input
        return
    assert reading.images, "a reading without images must have been an error"


def test_seeds_are_valid() -> None:
    for data in SEEDS:
        assert read_stream(io.BytesIO(data), MeasuringSink(), "seed", ReadOptions()).images
